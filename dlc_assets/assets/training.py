"""Model lifecycle assets: labeled data -> dlc_training_runs -> model_evaluations.

One dynamic partition per model version (``model_versions``, key = the version's
registry name, e.g. ``openfield-iter1-shuffle1``). ``dlc-platform models train`` /
``models merge`` write the version's training plan (docs/models.md) and add its
partition; materializing ``dlc_training_runs`` runs the plan (DeepLabCut's
``create_training_dataset`` + ``train_network``) on a ``gpu`` worker and registers the
version; ``model_evaluations`` runs ``evaluate_network`` and writes the
``model_evaluations`` table, with an asset check against the model's threshold.

Wiring only: the science lives in ``dlc_tracking.training``.
"""


import contextlib
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import numpy as np

from dlc_assets.assets import qc_plots
from dlc_assets.execution.worker_info import worker_description, worker_metadata
from dlc_tracking.errors import DLCPlatformError
from resources import DataRoot, DLCInference, WarehouseResource

GROUP = "models"
model_versions_partitions = dg.DynamicPartitionsDefinition(name="model_versions")

dlc_labeled_data = dg.AssetSpec(
    "dlc_labeled_data", group_name=GROUP, kinds={"deeplabcut"},
    description="The labeled frames of the DLC projects (labeled-data/<video>/"
    "CollectedData_<scorer>.h5 and images), made by the labellers in DeepLabCut's GUI "
    "(napari-deeplabcut) and by `dlc-platform models review` + refinement. Not "
    "materialized by the platform: the training runs read them.")


def markdown_table(df) -> str:
    """A DataFrame as a Markdown table for the UI's metadata (no tabulate dependency)."""
    lines = ["| " + " | ".join(map(str, df.columns)) + " |",
             "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join("" if v != v else str(v) for v in row) + " |"
              for row in df.itertuples(index=False)]
    return "\n".join(lines)


@contextlib.contextmanager
def model_failures(version: str) -> Iterator[None]:
    """The platform's bad-input errors as a Dagster failure naming the model version."""
    try:
        yield
    except DLCPlatformError as exc:
        # allow_retries=False only stops op retry policies (these assets have none). What
        # re-runs a training is the instance's run retries (dagster.yaml run_retries,
        # retry_on_asset_or_op_failure: false): they re-launch a run that failed without a
        # step failure (its run worker or Celery worker died), never one whose step
        # failed like this: bad input fails the same way every time.
        raise dg.Failure(description=f"model {version}: {exc}",
                         metadata={"error": type(exc).__name__}, allow_retries=False) from exc


@dg.asset(
    group_name=GROUP, partitions_def=model_versions_partitions, deps=[dlc_labeled_data],
    kinds={"deeplabcut", "pytorch"}, pool="gpu", op_tags={"dagster-celery/queue": "gpu"},
    check_specs=[dg.AssetCheckSpec(
        "losses_finite", asset="dlc_training_runs",
        description="Every epoch's train loss (and valid loss where evaluated) is a finite "
        "number: a diverged training (NaN/inf) is flagged on the version's partition.")],
    description="A model version trained with DeepLabCut (create_training_dataset + "
    "train_network) from its training plan (<registry folder>/training/<version>.yaml), "
    "then registered under the partition's name. Runs on a gpu worker; a run killed "
    "mid-training registers nothing and its retry starts the shuffle over.",
)
def dlc_training_runs(context: dg.AssetExecutionContext, data_root: DataRoot,
                      dlc_inference: DLCInference) -> dg.MaterializeResult:
    from dlc_tracking.training.runs import run_training_plan

    version = context.partition_key
    work = Path(dlc_inference.work_dir).absolute()
    with model_failures(version):
        try:
            outcome = run_training_plan(
                data_root.registry_path, version, device=dlc_inference.device,
                progress=lambda p: context.log.info(f"{version}: {p.line()}"),
                log=context.log.info, gpu_lock_dir=work / "staging" / "gpu-locks")
        except DLCPlatformError as exc:
            raise type(exc)(f"{exc} ({worker_description()})") from exc
    return training_run_result(outcome, version)


def training_run_result(outcome, version: str) -> dg.MaterializeResult:
    """The ``dlc_training_runs`` materialization of a training outcome: metadata (losses
    table and plot, parameters, device, ...) and the ``losses_finite`` check.

    A version trained before whose ``learning_stats.csv`` is gone (a reused outcome) has
    no losses: the losses are then reported missing and the check warns.
    """
    from dlc_tracking.training import plots

    result, plan, entry = outcome.result, outcome.plan, outcome.entry
    losses = result.losses
    bad = [int(e) for e, t, v in zip(losses["epoch"], losses["train_loss"],
                                     losses["valid_loss"], strict=True)
           if not np.isfinite(t) or (v == v and not np.isfinite(v))]
    valid = losses["valid_loss"].dropna()
    if len(losses):
        loss_meta = {
            "final_train_loss": float(losses["train_loss"].iloc[-1]),
            "final_valid_loss": float(valid.iloc[-1]) if len(valid) else None,
            "losses_per_epoch": dg.MetadataValue.md(markdown_table(losses.round(6))),
            "losses_plot": qc_plots.png_md(plots.losses_png(losses, version),
                                           "losses per epoch"),
        }
        check = dg.AssetCheckResult(
            check_name="losses_finite", passed=not bad, severity=dg.AssetCheckSeverity.WARN,
            description=(f"losses finite at all {len(losses)} epochs" if not bad else
                         f"non-finite losses at epochs {bad}: the training diverged; lower "
                         "the learning rate or check the labels"),
            metadata={"epochs_not_finite": len(bad)})
    else:
        missing = result.train_dir / "learning_stats.csv"
        loss_meta = {"final_train_loss": None, "final_valid_loss": None,
                     "losses_missing": dg.MetadataValue.path(str(missing))}
        check = dg.AssetCheckResult(
            check_name="losses_finite", passed=False, severity=dg.AssetCheckSeverity.WARN,
            description=f"no losses recorded: {missing} is missing or empty, so the losses "
                        "of this version cannot be checked (restore the file from a backup "
                        "of the model folder)",
            metadata={"epochs_not_finite": None})
    return dg.MaterializeResult(metadata={
        "model_version": version, "reused": outcome.reused,
        "from_model": str(plan.from_model or ""),
        "reason": plan.reason, "project": dg.MetadataValue.path(str(plan.config_path)),
        "iteration": plan.iteration, "shuffle": plan.shuffle,
        "labeled_frames": outcome.labeled.labeled_frames,
        "labeled_folders": len(outcome.labeled.folders),
        "labeled_data_notes": dg.MetadataValue.json(outcome.labeled.notes),
        "epochs": int(result.epochs), "batch_size": plan.params.batch_size,
        "net_type": entry.derived["net_type"], "pretrained": plan.params.pretrained,
        "params_hash": plan.params.param_hash,
        "training_params": dg.MetadataValue.json(plan.params.to_dict()),
        **loss_meta,
        "wall_s": float(result.wall_s),
        "s_per_epoch": round(float(result.wall_s) / max(int(result.epochs), 1), 3),
        "device": result.device,
        "snapshot": dg.MetadataValue.path(str(result.snapshot)),
        "scorer": entry.scorer,
        **worker_metadata(),
    }, check_results=[check])


@dg.asset(
    group_name=GROUP, partitions_def=model_versions_partitions, deps=[dlc_training_runs],
    kinds={"deeplabcut", "duckdb", "parquet"}, pool="gpu",
    op_tags={"dagster-celery/queue": "gpu"},
    check_specs=[dg.AssetCheckSpec(
        "test_error_within_threshold", asset="model_evaluations",
        description="The registered snapshot's test RMSE (all body parts, px) is at most "
        "the model's evaluation.max_test_rmse_px (registry); no threshold: passes and "
        "reports the error.")],
    description="DeepLabCut's evaluate_network of the model version (any registered "
    "model): train/test RMSE in px, all and above p-cutoff, per body part and snapshot, "
    "written to the warehouse table model_evaluations.",
)
def model_evaluations(context: dg.AssetExecutionContext, data_root: DataRoot,
                      dlc_inference: DLCInference, warehouse: WarehouseResource
                      ) -> dg.MaterializeResult:
    from dlc_tracking.training import plots
    from dlc_tracking.training.evaluate import evaluate_model, threshold_check
    from dlc_tracking.training.params import model_evaluation_params

    name = context.partition_key
    with model_failures(name):
        registry = data_root.registry()
        entry = registry.model(name)
        params = model_evaluation_params(registry.raw, name, str(registry.path))
        evaluation = evaluate_model(entry, pcutoff=params.pcutoff, device=dlc_inference.device,
                                    work_dir=Path(dlc_inference.work_dir).absolute()
                                    / "evaluations", log=context.log.info)
        passed, text = threshold_check(evaluation.rows, params.max_test_rmse_px)
    store = warehouse.get()
    store.write_partition("model_evaluations", name, evaluation.rows)
    store.ensure_catalog()
    overall = evaluation.overall()
    per_part = evaluation.rows[evaluation.rows["registered_snapshot"]]
    return dg.MaterializeResult(
        metadata={
            "model": name, "snapshot": str(overall["snapshot"]),
            "snapshot_epochs": int(overall["snapshot_epochs"]),
            "train_rmse_px": float(overall["train_rmse_px"]),
            "test_rmse_px": float(overall["test_rmse_px"]),
            "train_rmse_pcutoff_px": float(overall["train_rmse_pcutoff_px"]),
            "test_rmse_pcutoff_px": float(overall["test_rmse_pcutoff_px"]),
            "pcutoff": evaluation.pcutoff,
            "max_test_rmse_px": params.max_test_rmse_px,
            "snapshots_evaluated": int(evaluation.rows["snapshot"].nunique()),
            "per_body_part": dg.MetadataValue.md(markdown_table(per_part[[
                "body_part", "train_rmse_px", "test_rmse_px", "train_rmse_pcutoff_px",
                "test_rmse_pcutoff_px"]].round(2))),
            "evaluation_plot": qc_plots.png_md(plots.evaluation_png(evaluation.rows, name),
                                               "RMSE per body part"),
            "evaluation_s": evaluation.seconds, **worker_metadata(),
        },
        check_results=[dg.AssetCheckResult(
            check_name="test_error_within_threshold", passed=passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=text,
            metadata={"test_rmse_px": float(overall["test_rmse_px"]),
                      "max_test_rmse_px": params.max_test_rmse_px})],
    )


train_model_version_job = dg.define_asset_job(
    "train_model_version", selection=[dlc_training_runs, model_evaluations],
    description="Train a planned model version (dlc_training_runs), register it, and "
    "evaluate it (model_evaluations); the partition is the version's name.")

evaluate_model_job = dg.define_asset_job(
    "evaluate_model", selection=[model_evaluations],
    description="Evaluate a registered model (partition = its registry name).")

training_assets = [dlc_labeled_data, dlc_training_runs, model_evaluations]
training_jobs = [train_model_version_job, evaluate_model_job]
