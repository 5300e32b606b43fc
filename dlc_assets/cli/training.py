"""``dlc-platform models train | evaluate | merge``: the model lifecycle from the command line.

Each command writes what Dagster needs (a training plan, a ``model_versions`` partition)
and runs the assets through Dagster in this process, so the UI shows the runs, their
lineage and metadata exactly as if they had been launched there. ``--plan-only`` stops
after the plan: the run is then launched from the UI (``train_model_version`` job, the
version's partition) and runs wherever the gpu queue is served.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dlc_assets import settings
from dlc_assets.cli.common import job_run_config, print_steps
from dlc_tracking.errors import DLCPlatformError

PARTITIONS = "model_versions"


def _registry(args) -> Path:
    return Path(args.registry or settings.registry_path()).absolute()


def _overrides(args) -> dict:
    """Training parameters given on the command line (None = keep the model's)."""
    return {"epochs": args.epochs, "batch_size": args.batch_size, "net_type": args.net_type,
            "pretrained": args.pretrained, "augmentation": args.augmentation,
            "learning_rate": args.learning_rate, "save_epochs": args.save_epochs,
            "seed": args.seed}


def _run_job(job_name: str, partition: str, tags: dict | None = None,
             only: list[str] | None = None, verbose: bool = False) -> bool:
    """Run a job of the code location (``only``: some of its assets) for one
    model_versions partition, in this process; print failures and failed checks."""
    import socket

    import dagster as dg

    from dlc_assets.definitions import build_definitions
    from dlc_assets.execution.pool_slots import HOST_TAG

    instance = dg.DagsterInstance.get()
    if not instance.has_dynamic_partition(PARTITIONS, partition):
        instance.add_dynamic_partitions(PARTITIONS, [partition])
    tags = {HOST_TAG: socket.gethostname(), **(tags or {})}  # its process is checkable here
    job = build_definitions().resolve_job_def(job_name)
    selection = [dg.AssetKey(a) for a in only] if only else None
    result = job.execute_in_process(partition_key=partition, instance=instance,
                                    raise_on_error=False, tags=tags or {},
                                    asset_selection=selection,
                                    run_config=job_run_config(verbose))
    if not verbose:  # the DEBUG log says all this, step by step
        print_steps(result)
    print(f"run {result.run_id}: {'success' if result.success else 'FAILED'}")
    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data
            user = data.user_failure_data
            print((user.description if user and user.description
                   else data.error.message).strip(), file=sys.stderr)
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            check = event.event_specific_data
            if not check.passed:
                print(f"check {check.check_name} FAILED: {check.description}",
                      file=sys.stderr)
    return result.success


def _queue_tags(registry_path: Path, model: str | None) -> dict:
    """Route the run's gpu steps to the queue the base model names (registry ``queue:``)."""
    from dlc_assets.execution.celery_executor import GPU_QUEUE_TAG
    from dlc_tracking.registry.registry_file import load_registry

    if model is None:
        return {}
    queue = load_registry(registry_path).model(model).queue
    return {GPU_QUEUE_TAG: queue} if queue else {}


def _train(args, plan) -> None:
    import dagster as dg

    registry = _registry(args)
    print(f"planned {plan.version}: project {plan.config_path}, iteration {plan.iteration}, "
          f"shuffle {plan.shuffle}, {plan.params.epochs} epochs, pretrained "
          f"{plan.params.pretrained} (plan {registry.parent / 'training' / plan.version}.yaml)")
    if args.plan_only:
        instance = dg.DagsterInstance.get()
        if not instance.has_dynamic_partition(PARTITIONS, plan.version):
            instance.add_dynamic_partitions(PARTITIONS, [plan.version])
        print(f"launch it from the UI: job train_model_version, partition {plan.version}")
        return
    tags = {"dlc_platform/model_version": plan.version,
            **_queue_tags(registry, plan.from_model)}
    ok = _run_job("train_model_version", plan.version, tags,
                  only=["dlc_training_runs"] if args.no_evaluate else None,
                  verbose=getattr(args, "verbose", False))
    if not ok:
        raise SystemExit(1)
    _print_evaluation(args, plan.version)


def cmd_models_train(args) -> None:
    from dlc_tracking.training.versions import plan_training

    if args.name is None and args.config is None:
        raise DLCPlatformError("give a registered model to retrain (`models train NAME`) or "
                               "a project (`models train --config CONFIG.yaml --base NAME`).")
    plan = plan_training(_registry(args), args.name,
                         config_path=Path(args.config) if args.config else None,
                         base=args.base, overrides=_overrides(args),
                         description=args.description or "",
                         body_part_map=_name_map(args.map))
    _train(args, plan)


def _name_map(pairs: list[str] | None) -> dict[str, str]:
    """``--map DLC_NAME=CANONICAL`` (repeated) as a dict."""
    out = {}
    for pair in pairs or []:
        dlc, sep, canonical = pair.partition("=")
        if not sep or not dlc.strip() or not canonical.strip():
            raise DLCPlatformError(f"--map {pair!r}: write DLC_NAME=CANONICAL, e.g. "
                                   "--map snout=nose.")
        out[dlc.strip()] = canonical.strip()
    return out


def cmd_models_merge(args) -> None:
    from dlc_tracking.registry.registry_file import load_registry
    from dlc_tracking.training.merge import merge_refined
    from dlc_tracking.training.versions import plan_training

    registry = _registry(args)
    entry = load_registry(registry).model(args.name)
    if entry.project_config is None:
        raise DLCPlatformError(f"model {args.name!r} has no DLC project (ingest-only): "
                               "nothing to merge.")
    print(f"Checking the refined labels of {entry.project_config} ...", file=sys.stderr)
    merged = merge_refined(entry.project_config, allow_unrefined=args.allow_unrefined)
    print(f"merged: {entry.project_config.parent.name} iteration {merged.previous_iteration} "
          f"-> {merged.iteration}; {merged.labeled.labeled_frames} labeled frames in "
          f"{len(merged.labeled.folders)} folder(s); refined "
          f"{sum(merged.refinement.refined.values())} of "
          f"{sum(merged.refinement.extracted.values())} extracted frames")
    for note in merged.notes:
        print(f"note: {note}")
    if args.no_train:
        print(f"train the next version with `dlc-platform models train {args.name}`")
        return
    plan = plan_training(registry, args.name, overrides=_overrides(args), reason="merge",
                         description=args.description or
                         f"{args.name} retrained on the merged labels of iteration "
                         f"{merged.iteration}")
    _train(args, plan)


def cmd_models_evaluate(args) -> None:
    from dlc_tracking.registry.registry_file import load_registry

    load_registry(_registry(args)).model(args.name)  # unknown names fail here, clearly
    ok = _run_job("evaluate_model", args.name, verbose=getattr(args, "verbose", False))
    _print_evaluation(args, args.name)
    if not ok:
        raise SystemExit(1)


def _print_evaluation(args, name: str) -> None:
    print_evaluation(name, getattr(args, "warehouse", None))


def print_evaluation(name: str, warehouse: str | None = None) -> None:
    """Print a model's evaluation from the warehouse (``models show``, ``models evaluate``).

    Parameters
    ----------
    name : str
        Registered model name.
    warehouse : str, optional
        Warehouse folder; default ``$DLC_PLATFORM_WAREHOUSE``.
    """
    from dlc_tracking.warehouse import Warehouse

    store = Warehouse(warehouse or settings.warehouse_root())
    if name not in store.partitions("model_evaluations"):
        print(f"evaluation: none yet (`dlc-platform models evaluate {name}`)")
        return
    rows = store.read_partition("model_evaluations", name)
    reg = rows[rows["registered_snapshot"]]
    head = reg[reg["body_part"] == "all"].iloc[0]
    print(f"evaluation ({head['evaluated_at']:%Y-%m-%d %H:%M} UTC, snapshot {head['snapshot']}, "
          f"{int(head['snapshot_epochs'])} epochs, pcutoff {head['pcutoff']:g}):")
    cols = ["body_part", "train_rmse_px", "test_rmse_px", "train_rmse_pcutoff_px",
            "test_rmse_pcutoff_px", "n_test_keypoints"]
    print(reg[cols].round(2).to_string(index=False))
    others = rows[~rows["registered_snapshot"] & (rows["body_part"] == "all")]
    for _, r in others.iterrows():
        print(f"  other snapshot {r['snapshot']}: train {r['train_rmse_px']:.2f} px, test "
              f"{r['test_rmse_px']:.2f} px")


def _training_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training parameters (override the model's registry "
                             "`training:`; docs/models.md)")
    g.add_argument("--epochs", type=int)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--net-type", help="DLC network, e.g. resnet_50, cspnext_s")
    g.add_argument("--pretrained", help="imagenet (download) | none (random init) | "
                   "previous (the registered snapshot of the model trained from; offline) | "
                   "a .pt snapshot file (offline)")
    g.add_argument("--augmentation", choices=("default", "none"))
    g.add_argument("--learning-rate", type=float)
    g.add_argument("--save-epochs", type=int, help="epochs between snapshots (default: "
                   "only the last)")
    g.add_argument("--seed", type=int)
    p.add_argument("--description", default="")
    p.add_argument("--plan-only", action="store_true",
                   help="write the plan and the partition; launch the run from the UI")
    p.add_argument("--no-evaluate", action="store_true",
                   help="train and register only (no model_evaluations)")


def add_training_parsers(models) -> None:
    """Add ``train``, ``evaluate`` and ``merge`` to the ``models`` subcommands.

    Parameters
    ----------
    models : argparse subparsers action
        The ``dlc-platform models`` subcommands.
    """
    tr = models.add_parser("train", help="train the next version of a model (or a first "
                           "version from a DLC project) with DeepLabCut; registers it")
    tr.add_argument("name", nargs="?", help="registered model to retrain")
    tr.add_argument("--config", help="a DLC project's config.yaml (first training)")
    tr.add_argument("--base", help="base of the version names (<base>-iter<N>-shuffle<S>)")
    tr.add_argument("--map", action="append", metavar="DLC_NAME=CANONICAL",
                    help="body-part name map of the new version (repeatable; default the "
                    "model's map, or with --config the map of the registered model named "
                    "--base); names are checked before training")
    _training_options(tr)
    tr.set_defaults(func=cmd_models_train)

    ev = models.add_parser("evaluate", help="DeepLabCut's evaluate_network of a registered "
                           "model into the model_evaluations table")
    ev.add_argument("name")
    ev.set_defaults(func=cmd_models_evaluate)

    mg = models.add_parser("merge", help="merge the refined labels (deeplabcut."
                           "merge_datasets) and train the next version on them")
    mg.add_argument("name", help="the model whose project was refined")
    mg.add_argument("--allow-unrefined", action="store_true",
                    help="merge although some extracted frames were not refined (left "
                    "out); a folder with no CollectedData at all is still refused (DLC "
                    "cannot merge it): refine one frame of it or move it out of labeled-data")
    mg.add_argument("--no-train", action="store_true", help="merge only")
    _training_options(mg)
    mg.set_defaults(func=cmd_models_merge)


def print_model_lifecycle(registry, name: str, warehouse: str | None = None) -> None:
    """The lifecycle part of ``dlc-platform models show NAME``: the model's registry
    ``training:`` / ``evaluation:`` / ``trained:`` sections and its evaluation.

    Parameters
    ----------
    registry : Registry
        The loaded registry.
    name : str
        Registered model name.
    warehouse : str, optional
        Warehouse folder; default ``$DLC_PLATFORM_WAREHOUSE``.
    """
    import yaml

    spec = (registry.raw.get("models") or {}).get(name) or {}
    shown = {k: spec[k] for k in ("training", "evaluation", "trained") if spec.get(k)}
    if shown:
        print(yaml.safe_dump(shown, sort_keys=False, allow_unicode=True).rstrip())
    print_evaluation(name, warehouse)
