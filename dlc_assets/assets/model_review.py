"""Model review in Dagster: the per-recording ``frame_quality`` asset (in the
process_recording job, after dlc_predictions) and ``model_agreement`` (per recording,
reported by ``dlc-platform models compare`` with the comparison picture).

Wiring only: the science lives in ``dlc_tracking.model_review``.
"""

from pathlib import Path

import dagster as dg

from dlc_assets import checks
from dlc_assets.assets.social import multi_animal_tracking
from dlc_assets.assets.tracking import (
    GROUP,
    KINDS,
    _info,
    _recording,
    clear_failures,
    dlc_predictions,
    multi_animal_reason,
    multi_camera_skip,
)
from dlc_assets.execution.worker_info import worker_metadata
from dlc_assets.partitions import recordings_partitions
from dlc_assets.schemas import column_schema
from dlc_tracking.model_review.comparison import likelihood_cutoff
from dlc_tracking.model_review.frame_quality import (
    FrameQualityParams,
    outlier_figures,
    summarize,
)
from dlc_tracking.model_review.multi_animal import recording_multi_animal_quality
from dlc_tracking.model_review.version_predictions import recording_frame_quality
from resources import DataRoot, DLCInference, WarehouseResource


@dg.asset(
    group_name=GROUP, partitions_def=recordings_partitions,
    deps=[dlc_predictions, multi_animal_tracking],
    kinds=KINDS, metadata=column_schema("frame_quality"), check_specs=checks.FRAME_QUALITY_CHECKS,
    description="Frames the recording's model may have got wrong (one row per flagged "
    "frame): body parts below the method's likelihood cutoff or missing, jumps, confident "
    "mistakes (body-part outliers whatever the likelihood), and "
    "disagreement with another version's predictions of the recording (model_predictions); "
    "a multi-animal recording's rows are per frame and individual, with identity swaps and "
    "two tracks on one animal. "
    "`dlc-platform models review MODEL` picks the frames to relabel from it.",
)
def frame_quality(context: dg.AssetExecutionContext, data_root: DataRoot,
                  warehouse: WarehouseResource) -> dg.MaterializeResult:
    recording = _recording(context, data_root)
    if (skipped := multi_camera_skip(context, data_root, checks.FRAME_QUALITY_CHECKS,
                                     recording)) is not None:
        return skipped
    info = _info(context, data_root, recording)
    rid = info.recording_id
    store = warehouse.get()
    multi = multi_animal_reason(info, data_root)
    with clear_failures(rid):
        params = FrameQualityParams(
            likelihood_cutoff=likelihood_cutoff(data_root.registry(), info.method_name))
        size = (info.video.width_px, info.video.height_px)
        # a multi-animal recording: per individual, with its identity flags (written by
        # multi_animal_tracking, upstream in the same run)
        rows = (recording_multi_animal_quality(store, rid, params, size) if multi
                else recording_frame_quality(store, rid, params, size))
    store.write_partition("frame_quality", rid, rows)
    compared = rows["compared_model"].dropna()
    model = data_root.registry().model(info.model_name)
    n_tracks = len(model.multi_animal["individuals"]) if multi else 1
    figures = outlier_figures(rows, info.video.n_frames * n_tracks,
                              list(model.canonical_body_parts))
    return dg.MaterializeResult(check_results=checks.frame_quality_checks(figures), metadata={
        "model": info.model_name, **summarize(rows, info.video.n_frames),
        "outlier_fraction": figures["outlier_fraction"],
        "compared_model": str(compared.iloc[0]) if len(compared) else "none",
        "likelihood_cutoff": params.likelihood_cutoff,
        "jump_threshold_px": round(params.jump_threshold(info.video.width_px,
                                                         info.video.height_px), 2),
        "disagreement_threshold_px": params.disagreement_px,
        **worker_metadata(),
    })


model_agreement = dg.AssetSpec(
    "model_agreement", group_name="model_review", partitions_def=recordings_partitions,
    deps=[frame_quality], kinds=KINDS, metadata=column_schema("model_agreement"),
    description="How a new model version differs from the recording's current one (median "
    "and p95 distance in px, share of frames above the threshold, change in low-likelihood "
    "share and in distance travelled, per body part), with a picture of the frame where "
    "they differ most (red circles: old, green crosses: new). Reported by `dlc-platform "
    "models compare OLD NEW` for each recording it compares.",
)

review_assets = [frame_quality, model_agreement]


# ----------------------------------------------------------------------------- jobs (UI)
# The CLI commands as jobs, so the loop runs from the UI's Launchpad too.


class ReviewConfig(dg.Config):
    """`models review` as run config."""

    model: str
    n: int = 50
    max_share: float = 0.5
    out: str | None = None  # config.yaml of the project to write into; default the model's


class CompareConfig(dg.Config):
    """`models compare` as run config."""

    old: str
    new: str
    recordings: list[str] | None = None
    sample: int | None = 20  # None: every recording of old
    threshold_px: float = 10.0


class PromoteConfig(dg.Config):
    """`models promote` as run config."""

    new: str
    replaces: str | None = None
    force: bool = False  # promote although NEW failed its evaluation threshold


@dg.op(description="Pick the most informative frames of a model across its recordings and "
       "write them into its DLC project for refinement (`dlc-platform models review`).")
def review_model(context: dg.OpExecutionContext, config: ReviewConfig, data_root: DataRoot,
                 warehouse: WarehouseResource) -> None:
    from dlc_tracking.errors import DLCPlatformError
    from dlc_tracking.model_review.flows import review_model_frames

    try:
        review = review_model_frames(warehouse.get(), data_root.registry(), config.model,
                                     config.n, out=config.out, max_share=config.max_share)
    except DLCPlatformError as exc:
        raise dg.Failure(description=f"model {config.model}: {exc}") from exc
    images = review.extraction.images
    for reason in sorted(f"{r}: {why}" for r, why in review.skipped.items()):
        context.log.warning(f"skipped {reason}")
    for note in review.extraction.notes:
        context.log.warning(note)
    per = images.groupby("recording_id").size().to_dict()
    context.log.info(f"{len(images)} frame(s) written into {review.out.parent}/labeled-data: "
                     f"{per}")
    context.add_output_metadata({
        "frames": len(images), "project": str(review.out),
        "frames_per_recording": dg.MetadataValue.json({str(k): int(v) for k, v in per.items()}),
        "skipped": dg.MetadataValue.json(review.skipped)})


@dg.op(description="Compare OLD's and NEW's predictions of the same recordings (stored "
       "ones wherever both exist, inference only where one is missing and can run), write "
       "model_agreement and report it per recording (`dlc-platform models compare`).",
       tags={"dagster-celery/queue": "gpu"}, pool="gpu")
def compare_model_versions(context: dg.OpExecutionContext, config: CompareConfig,
                           data_root: DataRoot, warehouse: WarehouseResource,
                           dlc_inference: DLCInference) -> None:
    from dlc_tracking.errors import DLCPlatformError
    from dlc_tracking.model_review.comparison import compare_models

    store = warehouse.get()
    try:
        result = compare_models(
            store, data_root.registry(), config.old, config.new,
            lambda m, v, r: dlc_inference.analyze(m, v, r, log=context.log).h5_path,
            recordings=config.recordings, sample=config.sample,
            threshold_px=config.threshold_px,
            progress=lambda rid: context.log.info(f"{rid}: compared"))
    except DLCPlatformError as exc:
        raise dg.Failure(description=f"compare {config.old} -> {config.new}: {exc}") from exc
    for rid, why in sorted(result.skipped.items()):
        context.log.warning(f"skipped {rid}: {why}")
    compared = (sorted(result.agreement["recording_id"].unique())
                if not result.agreement.empty else [])
    context.add_output_metadata({"compared": len(compared), "inferred": len(result.inferred),
                                 "skipped": dg.MetadataValue.json(result.skipped)})
    if not compared:
        raise dg.Failure(description=f"compare {config.old} -> {config.new}: no recording "
                         "could be compared", metadata={
                             "skipped": dg.MetadataValue.json(result.skipped)})
    report_agreement(context.instance, store, config.old, config.new, result.agreement)


@dg.op(description="Make NEW the model of OLD's recordings and launch a backfill of exactly "
       "those (`dlc-platform models promote`).")
def promote_model_version(context: dg.OpExecutionContext, config: PromoteConfig,
                          data_root: DataRoot, warehouse: WarehouseResource) -> None:
    from dlc_assets.backfills import PROMOTION_TAG, launch_backfill
    from dlc_tracking.errors import DLCPlatformError
    from dlc_tracking.model_review.flows import promote_model

    try:
        plan = promote_model(warehouse.get(), data_root.registry(), config.new,
                             config.replaces, force=config.force)
    except DLCPlatformError as exc:
        raise dg.Failure(description=f"promote {config.new}: {exc}") from exc
    context.log.info(f"{plan.new} replaces {plan.old}: {len(plan.recordings)} recording(s) "
                     f"to re-run; evaluation: {plan.evaluation}")
    for rid, why in sorted(plan.kept.items()):
        context.log.warning(f"not re-run {rid}: {why}")
    metadata = {"plan": dg.MetadataValue.json(plan.summary())}
    if plan.recordings:
        backfill = launch_backfill(context.instance, context.repository_def.asset_graph,
                                   list(plan.recordings),
                                   {PROMOTION_TAG: f"{plan.old}->{plan.new}"},
                                   f"promote {plan.new}")
        context.log.info(f"backfill {backfill} requested")
        metadata["backfill"] = backfill
    context.add_output_metadata(metadata)


@dg.job(description="`dlc-platform models review` from the UI (run config: model, n).")
def review_model_job() -> None:
    review_model()


@dg.job(description="`dlc-platform models compare` from the UI (run config: old, new, "
        "recordings or sample).")
def compare_models_job() -> None:
    compare_model_versions()


@dg.job(description="`dlc-platform models promote` from the UI (run config: new, replaces).")
def promote_model_job() -> None:
    promote_model_version()


review_jobs = [review_model_job, compare_models_job, promote_model_job]


def report_agreement(instance, store, old: str, new: str, agreement) -> int:
    """Report one ``model_agreement`` materialization per compared recording, with the
    figures and the comparison picture; returns how many were reported."""
    from dlc_assets.assets.qc_plots import png_md
    from dlc_assets.assets.training import markdown_table
    from dlc_tracking.errors import DLCPlatformError
    from dlc_tracking.model_review.frame_quality import align_poses
    from dlc_tracking.model_review.pictures import comparison_png, disagreement_frame
    from dlc_tracking.model_review.version_predictions import version_predictions

    reported = 0
    for rid, rows in agreement.groupby("recording_id"):
        overall = rows[rows["body_part"] == "all"].iloc[0]
        metadata = {
            "old_model": old, "new_model": new,
            "median_distance_px": round(float(overall["median_distance_px"]), 3),
            "p95_distance_px": round(float(overall["p95_distance_px"]), 3),
            "fraction_above_threshold": round(float(overall["fraction_above_threshold"]), 4),
            "low_likelihood_change": round(float(overall["low_likelihood_change"]), 4),
            "distance_travelled_change": round(float(overall["distance_travelled_change"]), 4),
            "per_body_part": dg.MetadataValue.md(markdown_table(rows.drop(
                columns=["old_model", "new_model", "recording_id", "compared_at"]).round(3))),
        }
        try:
            old_p, parts, _ = version_predictions(store, rid, old)
            new_p, new_parts, _ = version_predictions(store, rid, new)
            new_p = align_poses(old_p, parts, new_p, new_parts)
            frame = disagreement_frame(old_p, new_p)
            video = store.query("SELECT video_path FROM recordings WHERE recording_id = ?",
                                [rid])["video_path"].iloc[0]
            metadata["comparison"] = png_md(comparison_png(
                Path(video), frame, old_p[frame], new_p[frame], parts, old, new),
                f"{rid} frame {frame}: {old} (o) vs {new} (x)")
            metadata["comparison_frame"] = frame
        except (DLCPlatformError, ValueError, OSError, TypeError) as exc:
            metadata["comparison"] = f"no picture: {exc}"
        if not instance.has_dynamic_partition(recordings_partitions.name, rid):
            instance.add_dynamic_partitions(recordings_partitions.name, [rid])
        instance.report_runless_asset_event(dg.AssetMaterialization(
            asset_key="model_agreement", partition=rid, metadata=metadata))
        reported += 1
    return reported
