"""Per-recording assets: recordings -> dlc_predictions -> raw_state_vectors ->
processed_tracking, each one Parquet partition in the warehouse.

Wiring only: the science lives in ``dlc_tracking``. Bad input raises a ``dg.Failure``
naming the file, the recording and what to do, before anything is written, so a failed
partition never leaves half-written rows and other recordings are unaffected.
"""


import contextlib
import json
from collections.abc import Iterator

import dagster as dg
import numpy as np
import pandas as pd

from dlc_assets import checks
from dlc_assets.assets import qc_plots
from dlc_assets.assets.registry import dlc_models, model_method_pairings, processing_methods
from dlc_assets.execution.worker_info import worker_metadata
from dlc_assets.partitions import recordings_partitions
from dlc_assets.schemas import column_schema
from dlc_assets.status import check_warnings
from dlc_tracking.errors import DLCPlatformError
from dlc_tracking.model_review.version_predictions import compare_output
from dlc_tracking.sessions.recording_info import RecordingInfo, inspect_recording
from dlc_tracking.social.routing import MULTI_ANIMAL_SKIP_REASON, is_multi_animal
from dlc_tracking.tracking import predictions as preds
from dlc_tracking.tracking.arena import Boundary
from dlc_tracking.tracking.calibration import calibrate_from_arena
from dlc_tracking.tracking.processed import (
    body_parts_to_frame,
    process_body_parts,
    process_tracking,
)
from dlc_tracking.tracking.raw_state import RawStateVector, raw_state_vector
from dlc_tracking.warehouse import insert_constant_columns
from resources import DataRoot, DLCInference, WarehouseResource

GROUP = "tracking"
KINDS = {"duckdb", "parquet"}


@contextlib.contextmanager
def clear_failures(recording_id: str) -> Iterator[None]:
    """Turn the platform's bad-input errors into a Dagster failure with the message."""
    try:
        yield
    except DLCPlatformError as exc:
        raise dg.Failure(description=f"recording {recording_id}: {exc}",
                         metadata={"error": type(exc).__name__}) from exc


MULTI_CAMERA_REASON = ("multi-camera recording (session.yaml `cameras:`): its recordings "
                       "row (the take), predictions (one camera per row) and processed "
                       "tracking (3D state vector) are written by "
                       "the pose_3d asset (docs/3d.md), not by the single-camera assets")


def multi_camera_skip(context: dg.AssetExecutionContext, data_root: DataRoot,
                      check_specs: list[dg.AssetCheckSpec], recording=None
                      ) -> dg.MaterializeResult | None:
    """A multi-camera recording is skipped here with the reason (not a failure); None for a
    single-camera one."""
    if recording is None:
        rid = context.partition_key
        with clear_failures(rid):
            recording = data_root.recording(rid)
    if not recording.is_multi_camera:
        return None
    return dg.MaterializeResult(
        metadata={"skipped": True, "reason": MULTI_CAMERA_REASON},
        check_results=[dg.AssetCheckResult(check_name=spec.name, passed=True,
                                           metadata={"skipped": MULTI_CAMERA_REASON})
                       for spec in check_specs])


def _info(context: dg.AssetExecutionContext, data_root: DataRoot, recording=None
          ) -> RecordingInfo:
    rid = context.partition_key
    with clear_failures(rid):
        return inspect_recording(recording or data_root.recording(rid), data_root.registry())


def _recording(context: dg.AssetExecutionContext, data_root: DataRoot):
    """The recording of this partition (found once per step)."""
    with clear_failures(context.partition_key):
        return data_root.recording(context.partition_key)


def multi_animal_reason(info: RecordingInfo, data_root: DataRoot) -> str:
    """Why the single-animal assets skip this recording ("" when they do not): its model
    is multi-animal (the multi_animal_tracking asset processes it)."""
    if info.model_name is None:
        return ""
    with clear_failures(info.recording_id):
        model = data_root.registry().model(info.model_name)
        where = f"{info.recording.session_yaml} (recording {info.recording_id})"
        if not is_multi_animal(model.name, model.multi_animal, info.metadata.individuals,
                               info.metadata.individual_prefixes, where):
            return ""
    return MULTI_ANIMAL_SKIP_REASON.format(model=model.name,
                                           individuals=model.multi_animal["individuals"])


@dg.asset(
    group_name=GROUP, partitions_def=recordings_partitions, kinds=KINDS,
    deps=[model_method_pairings],
    check_specs=checks.RECORDING_CHECKS, metadata=column_schema("recordings"),
    description="One recording (a video of a session): video facts, session metadata, "
    "frame times, and its model + method assignment (the seed's RecordingDLC).",
)
def recordings(context: dg.AssetExecutionContext, data_root: DataRoot,
               warehouse: WarehouseResource) -> dg.MaterializeResult:
    recording = _recording(context, data_root)
    skipped = multi_camera_skip(context, data_root, checks.RECORDING_CHECKS, recording)
    if skipped is not None:
        return skipped
    info = _info(context, data_root, recording)
    row = info.row()
    store = warehouse.get()
    store.write_partition("recordings", info.recording_id, pd.DataFrame([row]))
    store.ensure_catalog()  # analysts always find warehouse.duckdb; no-op when current
    return dg.MaterializeResult(
        metadata={
            "frames": info.video.n_frames, "fps": info.video.fps,
            "size_px": f"{info.video.width_px}x{info.video.height_px}",
            "duration_s": round(info.video.duration_s, 3), "codec": info.video.codec,
            "model": info.model_name, "method": str(info.method_name),
            "tracking_type": info.metadata.tracking_type, "camera_view": info.metadata.camera_view,
            "state_vector": row["state_vector_status"] + (
                f" ({info.status_reason})" if info.status_reason else ""),
            "video": dg.MetadataValue.path(str(info.recording.video_path)),
            **worker_metadata(),
        },
        check_results=checks.recording_checks(info),
    )


@dg.asset(
    group_name=GROUP, partitions_def=recordings_partitions, deps=[recordings, dlc_models],
    kinds=KINDS | {"deeplabcut"}, pool="gpu", check_specs=checks.PREDICTION_CHECKS,
    op_tags={"dagster-celery/queue": "gpu"},
    metadata=column_schema("predictions", "prediction_sources"),
    description="DLC predictions per frame and body part (the seed's TrackingRaw.DLCPart): "
    "ingested from the session's dlc_<video stem>/ folder when its outputs are there for "
    "the assigned model, else inferred with DeepLabCut on the inference resource.",
)
def dlc_predictions(context: dg.AssetExecutionContext, data_root: DataRoot,
                    warehouse: WarehouseResource, dlc_inference: DLCInference
                    ) -> dg.MaterializeResult:
    recording = _recording(context, data_root)
    skipped = multi_camera_skip(context, data_root, checks.PREDICTION_CHECKS, recording)
    if skipped is not None:
        return skipped
    info = _info(context, data_root, recording)
    rid = info.recording_id
    if multi := multi_animal_reason(info, data_root):
        inferred = _infer_multi_animal(context, info, data_root, dlc_inference)
        context.log.info(f"{rid}: {multi}; single-animal predictions skipped")
        skipped = _skip(warehouse, rid, multi, ("predictions", "prediction_sources"),
                        checks.PREDICTION_CHECKS)
        return dg.MaterializeResult(metadata={**skipped.metadata, **inferred},
                                    check_results=skipped.check_results)
    params = info.params
    with clear_failures(rid):
        registry = data_root.registry()
        model = registry.model(info.model_name)
        manual_dir = info.recording.manual_output_dir
        extra, dlc_fps, notes, alternatives = {}, None, [], {}
        if preds.manual_outputs_present(manual_dir):
            manual = preds.load_manual_outputs(manual_dir, model.scorer, rid, info.video.fps)
            loaded, files, start = manual.predictions, manual.files, manual.start_timestamp
            dlc_fps, notes, source = manual.dlc_fps, manual.notes, "manual"
            alternatives = manual.alternatives
            context.log.info(f"{rid}: ingesting {len(files)} DLC output file(s) from {manual_dir}")
        elif reused := compare_output(
                warehouse.get(), rid, model.name, dlc_inference.output_dir(rid, model.name),
                info.recording.video_path, model.scorer):
            from dlc_tracking.io.dlc_files import read_predictions

            # `models compare` ran this version on this video moments ago (promote after
            # compare): its file gives the same rows without running the model again.
            context.log.info(f"{rid}: reading {reused.name}, which `models compare` wrote "
                             f"with {model.name}; the model is not run again")
            loaded = read_predictions(reused)
            source, files, start = "inference", [str(reused)], None
            notes = [f"predictions inferred by `models compare` ({reused}), reused"]
            extra = {"reused_compare_output": str(reused)}
        else:
            from dlc_tracking.io.dlc_files import read_predictions

            # Fail at once when inference cannot run here: ingest-only model, no video.
            dlc_inference.check_available(model)  # names the worker (host, pid, queue)
            context.log.info(f"{rid}: no manual outputs in {manual_dir}; running DLC "
                             f"({model.engine}, model {model.name})")
            result = dlc_inference.analyze(model, info.recording.video_path, rid,
                                           log=context.log, video_info=info.video)
            loaded = read_predictions(result.h5_path)
            source, files, start = "inference", [str(result.h5_path)], None
            extra = {"inference_frames_per_s": round(result.frames_per_s, 2),
                     "inference_seconds": round(result.seconds, 2),
                     "model_load_s": round(result.model_load_s, 2),
                     "device": result.device, "dlc_version": result.dlc_version,
                     "inference_engine": result.inference_engine,
                     "inference_batch_size": result.batch_size,
                     **{f"inference_{k}": v for k, v in result.extra.items()}}
        scorer, dlc_names = loaded.scorer, list(loaded.body_parts)
        where = f"{files[0]} (recording {rid})"
        body_parts = preds.map_body_parts(dlc_names, model.to_canonical(), where)
        poses, fit = preds.fit_frame_count(loaded.poses, info.video.n_frames,
                                           params.frame_count_tolerance, where)
        if fit.adjusted:
            context.log.warning(f"{rid}: {fit.rows_in_files} prediction rows for "
                                f"{fit.video_frames} video frames: {fit.dropped} dropped, "
                                f"{fit.padded} padded as missing (frame_count_tolerance "
                                f"{params.frame_count_tolerance})")
        outside = preds.outside_frame(poses, info.video.width_px, info.video.height_px,
                                      params.outside_frame_margin_px)
        n_outside = int(outside.sum())
    df = preds.to_long(rid, model.name, poses, body_parts, info.time_s, outside)
    store = warehouse.get()
    store.write_partition("predictions", rid, df)
    store.write_partition("prediction_sources", rid, pd.DataFrame([{
        "recording_id": rid, "model_name": model.name, "source": source, "scorer": scorer,
        "files": json.dumps(files), "rows_in_files": fit.rows_in_files,
        "video_frames": fit.video_frames, "rows_dropped": fit.dropped,
        "rows_padded": fit.padded, "dlc_fps": dlc_fps, "points_outside_frame": n_outside,
        "notes": json.dumps(notes)}]))
    if alternatives:  # other models' outputs of this video: kept as their predictions
        from dlc_tracking.model_review.version_predictions import keep_alternative_outputs

        kept, not_kept = keep_alternative_outputs(
            store, registry, rid, manual_dir, model.name, alternatives, info.time_s,
            (info.video.width_px, info.video.height_px), params.frame_count_tolerance)
        for name, kept_files in kept.items():
            context.log.info(f"{rid}: outputs of {name} kept as an alternative "
                             f"(model_predictions): {[f.rsplit('/', 1)[-1] for f in kept_files]}")
        for scorer, why in not_kept.items():
            context.log.warning(f"{rid}: outputs of scorer {scorer} not kept: {why}")
        extra["alternative_models"] = dg.MetadataValue.json(
            {**{name: "kept" for name in kept}, **{sc: f"not kept: {why}"
                                                   for sc, why in not_kept.items()}})
    method = registry.methods.get(info.method_name) if info.method_name else None
    cutoff = method.likelihood_cutoff if method is not None else checks.LOW_LIKELIHOOD
    low = checks.low_likelihood_fraction(poses, cutoff)
    return dg.MaterializeResult(
        metadata={
            "source": source, "model": model.name, "scorer": scorer, "engine": model.engine,
            "frames": int(poses.shape[0]), "body_parts": ", ".join(body_parts),
            "fraction_low_likelihood": round(low, 4),
            "points_outside_frame": n_outside, "start_timestamp": str(start or
                                                                      info.metadata.start_time),
            "rows_in_files": fit.rows_in_files, "rows_dropped": fit.dropped,
            "rows_padded": fit.padded, "dlc_metadata_fps": dlc_fps,
            "reader_notes": dg.MetadataValue.json(notes),
            "files": dg.MetadataValue.json(files), **extra,
            **qc_plots.prediction_plots(poses, body_parts, info.time_s,
                                        cutoff=method.likelihood_cutoff if method else None),
            **worker_metadata(),
        },
        check_results=checks.prediction_checks(poses, body_parts, model.canonical_body_parts,
                                               info, fit, n_outside, dlc_fps, cutoff),
    )


def _infer_multi_animal(context: dg.AssetExecutionContext, info: RecordingInfo,
                        data_root: DataRoot, dlc_inference: DLCInference) -> dict:
    """A multi-animal recording without maDLC outputs in its dlc_<video stem>/: run
    DeepLabCut's multi-animal path (analyze_videos with auto_track) into the work area,
    where multi_animal_tracking reads it. Metadata of the run (only ``source: manual``
    when outputs are there: multi_animal_tracking ingests them)."""
    from dlc_tracking.social.recording import madlc_outputs_present

    rid = info.recording_id
    manual_dir = info.recording.manual_output_dir
    if madlc_outputs_present(manual_dir):
        return {"source": "manual"}
    with clear_failures(rid):
        model = data_root.registry().model(info.model_name)
        dlc_inference.check_available(model)  # ingest-only model: says so, names the worker
        context.log.info(f"{rid}: no maDLC outputs in {manual_dir}; running DeepLabCut's "
                         f"multi-animal path (model {model.name}, "
                         f"{len(model.multi_animal['individuals'])} tracks)")
        result = dlc_inference.analyze_multi_animal(model, info.recording.video_path, rid,
                                                    log=context.log, video_info=info.video)
    return {"source": "inference", "model": model.name,
            "tracks_file": dg.MetadataValue.path(str(result.h5_path)),
            "files": dg.MetadataValue.json([str(f) for f in result.files]),
            "inference_frames_per_s": round(result.frames_per_s, 2),
            "inference_seconds": round(result.seconds, 2), "device": result.device,
            "dlc_version": result.dlc_version, "inference_engine": "dlc (multi-animal)"}


def _load_poses(warehouse: WarehouseResource, info: RecordingInfo):
    """The recording's predictions with the ``outside_frame`` rule of its parameter set
    applied (the stored predictions stay as DLC wrote them)."""
    df = warehouse.get().read_partition("predictions", info.recording_id)
    poses, body_parts, time_s = preds.from_long(df)
    poses, n_excluded = preds.exclude_outside_frame(
        poses, info.video.width_px, info.video.height_px, info.params.outside_frame,
        info.params.outside_frame_margin_px)
    return poses, body_parts, time_s, n_excluded


def _skip(warehouse: WarehouseResource, rid: str, reason: str, tables: tuple[str, ...],
          check_specs: list[dg.AssetCheckSpec]) -> dg.MaterializeResult:
    """An unsupported tracking type: no state vector, and the reason in the warehouse."""
    store = warehouse.get()
    for table in tables:
        store.delete_partition(table, rid)
    store.write_partition("skipped_recordings", rid, pd.DataFrame([{
        "recording_id": rid, "asset": "raw_state_vectors, processed_tracking",
        "reason": reason}]))
    return dg.MaterializeResult(
        metadata={"skipped": True, "reason": reason, **worker_metadata()},
        check_results=[dg.AssetCheckResult(check_name=spec.name, passed=True,
                                           metadata={"skipped": reason})
                       for spec in check_specs])


@dg.asset(
    group_name=GROUP, partitions_def=recordings_partitions,
    deps=[dlc_predictions, processing_methods], kinds=KINDS,
    check_specs=checks.RAW_CHECKS,
    metadata=column_schema("raw_state_vectors", "arena_boundaries", "skipped_recordings"),
    description="Raw subject state vector (the seed's TrackingRaw.OpenField): the assigned "
    "method applied; position (px, unflipped), head angle (rad, arena frame), speed (px/s), "
    "validity, and the arena boundary (px).",
)
def raw_state_vectors(context: dg.AssetExecutionContext, data_root: DataRoot,
                      warehouse: WarehouseResource) -> dg.MaterializeResult:
    recording = _recording(context, data_root)
    skipped = multi_camera_skip(context, data_root, checks.RAW_CHECKS, recording)
    if skipped is not None:
        return skipped
    info = _info(context, data_root, recording)
    rid = info.recording_id
    if (reason := info.status_reason if not info.supported
            else multi_animal_reason(info, data_root)):
        context.log.info(f"{rid}: {reason}; state vector skipped")
        return _skip(warehouse, rid, reason,
                     ("raw_state_vectors", "arena_boundaries"), checks.RAW_CHECKS)
    warehouse.get().delete_partition("skipped_recordings", rid)
    params = info.params
    with clear_failures(rid):
        method = data_root.registry().method(info.method_name)
        poses, body_parts, time_s, n_excluded = _load_poses(warehouse, info)
        raw = raw_state_vector(method, poses, body_parts, time_s, info.metadata.camera_view,
                               (info.video.width_px, info.video.height_px),
                               source=f"recording {rid}")
    if not raw.valid.any():
        raise dg.Failure(description=(
            f"recording {rid}: no frame has every body part of method {method.name!r} "
            f"({', '.join(method.body_parts)}) above likelihood {method.likelihood_cutoff}: the "
            "predictions are all missing or all low-likelihood. Check the video and the model "
            "(is it the right model for this setup?)."))
    df = raw.to_frame()
    insert_constant_columns(df, [("recording_id", rid), ("model_name", info.model_name),
                                 ("method_name", method.name),
                                 ("method_hash", method.param_hash),
                                 ("params_name", params.name),
                                 ("params_hash", params.param_hash)])
    b = raw.boundary
    store = warehouse.get()
    store.write_partition("raw_state_vectors", rid, df)
    store.write_partition("arena_boundaries", rid, pd.DataFrame([{
        "recording_id": rid, "model_name": info.model_name, "method_name": method.name,
        "left_px": b.left, "right_px": b.right, "top_px": b.top, "bottom_px": b.bottom}]))
    return dg.MaterializeResult(
        metadata={"method": method.name, "method_hash": method.param_hash,
                  "params": params.name, "params_hash": params.param_hash,
                  "fraction_valid": round(float(raw.valid.mean()), 4),
                  "outside_frame_rule": params.outside_frame,
                  "points_excluded_outside_frame": n_excluded,
                  "boundary_px": dg.MetadataValue.json(b.to_dict()), **worker_metadata()},
        check_results=checks.raw_checks(raw, method.has_head_direction, params),
    )


def _load_raw(warehouse: WarehouseResource, info: RecordingInfo, method) -> RawStateVector:
    store = warehouse.get()
    df = store.read_partition("raw_state_vectors", info.recording_id).sort_values("frame")
    b = store.read_partition("arena_boundaries", info.recording_id).iloc[0]
    return RawStateVector(
        time_s=df["time_s"].to_numpy(), x_px=df["x_px"].to_numpy(), y_px=df["y_px"].to_numpy(),
        head_angle_rad=df["head_angle_rad"].to_numpy(), speed_px_s=df["speed_px_s"].to_numpy(),
        valid=df["valid"].to_numpy(), boundary=Boundary(b.left_px, b.right_px, b.top_px,
                                                         b.bottom_px),
        camera_view=info.metadata.camera_view,
        frame_size=(info.video.width_px, info.video.height_px), method_name=method.name,
        method_hash=method.param_hash, has_head_direction=method.has_head_direction)


@dg.asset(
    group_name=GROUP, partitions_def=recordings_partitions, deps=[raw_state_vectors],
    kinds=KINDS, check_specs=checks.PROCESSED_CHECKS,
    metadata=column_schema("processed_tracking", "recording_summaries", "processed_body_parts",
                           "calibrations"),
    description="Processed tracking (the seed's Tracking.OpenField and Tracking.DLCPart): "
    "calibrated to cm in the arena frame, jumps removed, short gaps interpolated, smoothed; "
    "position, speed, head direction, angular head velocity, movement direction; plus "
    "processed positions per body part, and the recording's summary row (distance, mean "
    "speed, coverage...: recording_summaries, read by the recording_summary view).",
)
def processed_tracking(context: dg.AssetExecutionContext, data_root: DataRoot,
                       warehouse: WarehouseResource) -> dg.MaterializeResult:
    recording = _recording(context, data_root)
    skipped = multi_camera_skip(context, data_root, checks.PROCESSED_CHECKS, recording)
    if skipped is not None:
        return skipped
    info = _info(context, data_root, recording)
    rid = info.recording_id
    if (reason := info.status_reason if not info.supported
            else multi_animal_reason(info, data_root)):
        return _skip(warehouse, rid, reason,
                     ("processed_tracking", "processed_body_parts"), checks.PROCESSED_CHECKS)
    params = info.params
    with clear_failures(rid):
        registry = data_root.registry()
        method = registry.method(info.method_name)
        raw = _load_raw(warehouse, info, method)
        arena = info.metadata.arena
        calibration = None
        if info.arena is not None:  # the arena's outline in pixels: independent of tracking
            calibration = calibrate_from_arena(info.arena, info.metadata.camera_view,
                                               (info.video.width_px, info.video.height_px),
                                               source=f"recording {rid}: {info.arena.source}")
            arena = info.arena
        processed = process_tracking(
            raw, params, arena_width_cm=arena.width_cm if arena else None,
            arena_height_cm=arena.height_cm if arena else None,
            pixels_per_cm=info.metadata.pixels_per_cm, calibration=calibration,
            head_perpendicular=method.kind == "two_ears", source=f"recording {rid}")
        poses, body_parts, time_s, _ = _load_poses(warehouse, info)
        parts = process_body_parts(poses, body_parts, time_s, info.metadata.camera_view,
                                   (info.video.width_px, info.video.height_px),
                                   processed.calibration, params, method.likelihood_cutoff,
                                   source=f"recording {rid}")
    df = processed.to_frame()
    insert_constant_columns(df, [("recording_id", rid), ("model_name", info.model_name),
                                 ("method_name", method.name), ("params_name", params.name),
                                 ("params_hash", params.param_hash)])
    parts_df = body_parts_to_frame(parts, time_s)
    insert_constant_columns(parts_df, [("recording_id", rid), ("model_name", info.model_name)])
    store = warehouse.get()
    # Frames, then their recording_summaries row (the recording_summary view's figures).
    store.write_processed_tracking(rid, df, arena_width_cm=arena.width_cm if arena else None,
                                   arena_height_cm=arena.height_cm if arena else None)
    store.write_partition("processed_body_parts", rid, parts_df)
    cal = processed.calibration
    store.write_partition("calibrations", rid, pd.DataFrame([{
        "recording_id": rid, "model_name": info.model_name, "method_name": method.name,
        "params_name": params.name, "params_hash": params.param_hash, "source": cal.source,
        "from_tracked_extent": cal.from_tracked_extent, "outline_source": cal.geometry_from,
        "pixels_per_cm": cal.pixels_per_cm, "pixels_per_cm_x": cal.pixels_per_cm_x,
        "pixels_per_cm_y": cal.pixels_per_cm_y, "per_axis": cal.per_axis,
        "rotation_deg": cal.rotation_deg, "origin_x_px": cal.origin_x_px,
        "origin_y_px": cal.origin_y_px, "fit_residual_cm": cal.fit_residual_cm,
        "anisotropy": cal.anisotropy}]))
    step = np.hypot(np.diff(processed.x_cm), np.diff(processed.y_cm))
    distance = float(np.nansum(step))
    own_checks = checks.processed_checks(processed, params, info.arena)
    # the recording's verdict, as `dlc-platform status` gives it: this run's earlier
    # warnings (upstream assets) and this asset's own
    warnings = check_warnings(context.instance, context.run_id) + [
        f"{r.check_name}: {r.description}" for r in own_checks if not r.passed]
    return dg.MaterializeResult(
        metadata={
            "status": (f"processed with warnings ({len(warnings)}): " + " | ".join(warnings)
                       if warnings else "processed"),
            "frames": processed.n_frames, "distance_cm": round(distance, 1),
            "mean_speed_cm_s": round(float(np.nanmean(processed.speed_cm_s)), 2),
            "fraction_interpolated": round(float(processed.interpolated.mean()), 4),
            "params": params.name, "params_hash": params.param_hash,
            "calibration_source": cal.source,
            "pixels_per_cm_x_y": f"{cal.pixels_per_cm_x or cal.pixels_per_cm:.3f} / "
                                 f"{cal.pixels_per_cm_y or cal.pixels_per_cm:.3f}",
            "calibration": dg.MetadataValue.json(cal.to_dict()),
            **qc_plots.processed_tracking_plots(processed, arena.width_cm if arena else None,
                                                arena.height_cm if arena else None),
            **worker_metadata(),
        },
        check_results=own_checks,
    )


tracking_assets = [recordings, dlc_predictions, raw_state_vectors, processed_tracking]
