"""Assets past processed_tracking: the occupancy table, NWB files, labeled videos (on
demand) and an overview picture across recordings; a multi-animal recording gets its
multi-animal NWB file and labeled video (after multi_animal_tracking).

Wiring only: the exports read the warehouse (``dlc_tracking.io.stored_recording``) and
call the plain-Python writers; a recording that was skipped is recorded as such, one
without processed tracking fails with the reason and the fix.
"""


import time
from pathlib import Path

import dagster as dg
import numpy as np

from dlc_assets.assets import qc_plots
from dlc_assets.assets.social import multi_animal_tracking
from dlc_assets.assets.tracking import (
    clear_failures,
    multi_camera_skip,
    processed_tracking,
    raw_state_vectors,
)
from dlc_assets.partitions import recordings_partitions
from dlc_assets.schemas import column_schema
from dlc_tracking.io.stored_recording import StoredRecording, load_stored_recording
from dlc_tracking.qc import plots
from dlc_tracking.tracking.occupancy import occupancy_grid, occupancy_table
from dlc_tracking.warehouse import insert_constant_columns
from resources import DataRoot, WarehouseResource

GROUP = "exports"
NWB_FOLDER = "nwb"
LABELED_FOLDER = "labeled_videos"
FLAG_TRACKED_FRACTION = 0.9
"""Recordings tracked in fewer frames than this share are flagged in the overview."""


def nwb_path(warehouse_root: Path, recording_id: str) -> Path:
    """Where the nwb_files asset writes a recording's NWB file."""
    return Path(warehouse_root) / NWB_FOLDER / f"{recording_id}.nwb"


def labeled_video_path(warehouse_root: Path, recording_id: str) -> Path:
    """Where the labeled_videos asset writes a recording's labeled video."""
    return Path(warehouse_root) / LABELED_FOLDER / f"{recording_id}.mp4"


def _multi_animal_skip(context, warehouse: WarehouseResource) -> dg.MaterializeResult | None:
    """The single-animal skip of a multi-animal recording (no predictions, a skipped row
    saying why): its exports are the multi-animal ones (docs/multi-animal.md)."""
    store = warehouse.get()
    rid = context.partition_key
    if store.partition_path("predictions", rid) is not None \
            or store.partition_path("skipped_recordings", rid) is None:
        return None
    reason = str(store.read_partition("skipped_recordings", rid)["reason"].iloc[0])
    if not reason.startswith("multi-animal recording"):
        return None
    return dg.MaterializeResult(metadata={"skipped": True, "reason": reason})


def _stored(context, warehouse: WarehouseResource, data_root: DataRoot | None = None
            ) -> StoredRecording | dg.MaterializeResult:
    """The recording's stored tables; with ``data_root``, a multi-camera recording (which
    has none) gives its skip result instead of a failure."""
    rid = context.partition_key
    try:
        with clear_failures(rid):
            return load_stored_recording(rid, warehouse.get().root)
    except dg.Failure:
        # Only on this failure path is the data root scanned, to tell a multi-camera take.
        if data_root is not None and (
                multi := multi_camera_skip(context, data_root, [])) is not None:
            return multi
        raise


def _skipped(rec: StoredRecording) -> dg.MaterializeResult | None:
    if rec.skipped_reason and (rec.processed is None or not len(rec.processed)):
        return dg.MaterializeResult(metadata={"skipped": True, "reason": rec.skipped_reason})
    return None


def _params(data_root: DataRoot, rec: StoredRecording, processed):
    return _check_params(data_root, rec.recording_id, processed)


def _check_params(data_root: DataRoot, rid: str, processed):
    name = str(processed["params_name"].iloc[0])
    params = data_root.registry().processing_params(name)
    if params.param_hash != str(processed["params_hash"].iloc[0]):
        raise dg.Failure(description=(
            f"recording {rid}: processing parameter set {name!r} changed since "
            f"the recording was processed (hash {processed['params_hash'].iloc[0]} then, "
            f"{params.param_hash} now); reprocess it (`dlc-platform reprocess "
            f"{rid}`) so the export describes the parameters it used."))
    return params


def _multi_camera_tracking(context, data_root: DataRoot, warehouse: WarehouseResource):
    """A multi-camera recording's processed_tracking rows (written by pose_3d) and its
    parameter set; None when pose_3d wrote none (failed, or not run yet)."""
    store = warehouse.get()
    rid = context.partition_key
    if store.partition_path("processed_tracking", rid) is None:
        return None
    processed = store.read_partition("processed_tracking", rid).sort_values(
        "frame", ignore_index=True)
    with clear_failures(rid):
        params = _check_params(data_root, rid, processed)
    return processed, params


def _write_occupancy(store, rid: str, processed, params, width: float | None,
                     height: float | None) -> dg.MaterializeResult:
    args = (processed["x_cm"].to_numpy(np.float64), processed["y_cm"].to_numpy(np.float64),
            processed["time_s"].to_numpy(np.float64), params.occupancy_bin_cm, width, height)
    df = occupancy_table(*args)
    insert_constant_columns(df, [("recording_id", rid),
                                 ("model_name", str(processed["model_name"].iloc[0])),
                                 ("method_name", str(processed["method_name"].iloc[0])),
                                 ("params_name", params.name),
                                 ("params_hash", params.param_hash)])
    store.write_partition("occupancy", rid, df)
    seconds, _ = occupancy_grid(*args)
    return dg.MaterializeResult(metadata={
        "bin_cm": params.occupancy_bin_cm, "bins": int(seconds.size),
        "visited_bins": int((seconds > 0).sum()),
        "tracked_s": round(float(seconds.sum()), 3),
        "occupancy": qc_plots.png_md(plots.occupancy_png(seconds, params.occupancy_bin_cm),
                                     "occupancy heatmap"),
    })


@dg.asset(
    group_name="tracking", partitions_def=recordings_partitions,
    deps=[processed_tracking, "pose_3d"], kinds={"duckdb", "parquet"},
    metadata=column_schema("occupancy"),
    description="Time spent per square spatial bin (occupancy_bin_cm of the processing "
    "parameters) in the arena frame: the denominator of rate maps. A multi-camera "
    "recording's from its 3D state vector's floor-plane position (world frame; grid from "
    "0 to the largest position).",
)
def occupancy(context: dg.AssetExecutionContext, data_root: DataRoot,
              warehouse: WarehouseResource) -> dg.MaterializeResult:
    if (multi := _multi_animal_skip(context, warehouse)) is not None:
        return multi
    rec = _stored(context, warehouse, data_root)
    store = warehouse.get()
    if isinstance(rec, dg.MaterializeResult):  # a multi-camera recording
        found = _multi_camera_tracking(context, data_root, warehouse)
        if found is None:
            return rec
        return _write_occupancy(store, context.partition_key, *found, None, None)
    if (skipped := _skipped(rec)) is not None:
        store.delete_partition("occupancy", rec.recording_id)
        return skipped
    with clear_failures(rec.recording_id):
        processed = rec.require_processed("compute its occupancy")
        params = _params(data_root, rec, processed)
    width, height = rec.info.get("arena_width_cm"), rec.info.get("arena_height_cm")
    width = None if width is None or np.isnan(width) else float(width)
    height = None if height is None or np.isnan(height) else float(height)
    return _write_occupancy(store, rec.recording_id, processed, params, width, height)


def _multi_animal_nwb(context, warehouse: WarehouseResource) -> dg.MaterializeResult:
    """The NWB file of a multi-animal recording (one PoseEstimation per individual, its
    subject; dlc_tracking.io.madlc_nwb) from multi_animal_tracking's rows; without them
    (that asset failed or has not run) a failure says what to do."""
    from dlc_tracking.io.madlc_nwb import export_multi_animal_nwb, missing_subject_facts
    from dlc_tracking.io.stored_multi_animal import load_stored_multi_animal

    rid = context.partition_key
    store = warehouse.get()
    start = time.perf_counter()
    with clear_failures(rid):
        rec = load_stored_multi_animal(rid, store.root)
        path = export_multi_animal_nwb(rec, nwb_path(store.root, rid))
    seconds = time.perf_counter() - start
    context.log.info(f"{rid}: wrote {path} ({rec.n_frames} frames, {len(rec.subjects)} "
                     f"individuals in {seconds:.2f} s)")
    missing = missing_subject_facts(rec)
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(path)), "frames": rec.n_frames,
        "individuals": dg.MetadataValue.json(rec.subjects),
        "size_mb": round(path.stat().st_size / 1e6, 3), "export_s": round(seconds, 3),
        "subject_facts_missing": "; ".join(f"{s}: {', '.join(m)}"
                                           for s, m in missing.items()) or "none",
    })


def _multi_camera_nwb(context, data_root: DataRoot, warehouse: WarehouseResource
                      ) -> dg.MaterializeResult:
    """The NWB file of a multi-camera recording (3D pose, cameras with their calibration,
    processed 3D tracking; dlc_tracking.io.pose3d_nwb) from pose_3d's rows; without them
    (pose_3d failed or has not run) a failure says what to do."""
    from dlc_tracking.io.pose3d_nwb import export_multi_camera_nwb
    from dlc_tracking.io.stored_multi_camera import load_stored_multi_camera

    rid = context.partition_key
    store = warehouse.get()
    start = time.perf_counter()
    with clear_failures(rid):
        recording = data_root.recording(rid)
        rec = load_stored_multi_camera(rid, store.root, session_dir=recording.session_dir)
        params = _check_params(data_root, rid, rec.processed)
        path = export_multi_camera_nwb(rec, nwb_path(store.root, rid), params=params.to_dict())
    seconds = time.perf_counter() - start
    context.log.info(f"{rid}: wrote {path} ({rec.n_frames} frames, cameras "
                     f"{', '.join(rec.cameras)} in {seconds:.2f} s)")
    missing = [k for k in ("species", "sex", "age") if k not in rec.subject]
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(path)), "frames": rec.n_frames,
        "cameras": ", ".join(rec.cameras),
        "size_mb": round(path.stat().st_size / 1e6, 3), "export_s": round(seconds, 3),
        "subject_facts_missing": ", ".join(missing) or "none",
    })


@dg.asset(
    group_name=GROUP, partitions_def=recordings_partitions,
    # imaging sessions: behaviour on imaging; multi-animal recordings: their per-individual
    # rows (multi_animal_tracking skips a single-animal recording, so nothing changes there)
    deps=[processed_tracking, "tracking_on_imaging", multi_animal_tracking, "pose_3d"],
    kinds={"nwb"},
    description="One NWB file per recording (<warehouse>/nwb/<recording id>.nwb): raw pose "
    "as ndx-pose PoseEstimation, processed position (Position), head direction "
    "(CompassDirection), speed, angular head velocity and flags; a multi-animal recording: "
    "one PoseEstimation per individual with its subject (ndx-multisubjects); a "
    "multi-camera recording: the 3D pose (ndx-pose MultiCameraPoseEstimation, each camera a "
    "CalibratedCamera) and its processed 3D tracking; see docs/exports.md, docs/3d.md.",
)
def nwb_files(context: dg.AssetExecutionContext, data_root: DataRoot,
              warehouse: WarehouseResource) -> dg.MaterializeResult:
    from dlc_tracking.io.nwb import export_nwb

    if _multi_animal_skip(context, warehouse) is not None:
        return _multi_animal_nwb(context, warehouse)
    rec = _stored(context, warehouse, data_root)
    if isinstance(rec, dg.MaterializeResult):  # a multi-camera recording
        return _multi_camera_nwb(context, data_root, warehouse)
    if (skipped := _skipped(rec)) is not None:
        nwb_path(warehouse.get().root, rec.recording_id).unlink(missing_ok=True)
        return skipped
    start = time.perf_counter()
    with clear_failures(rec.recording_id):
        params = _params(data_root, rec, rec.require_processed("export it to NWB"))
        root = warehouse.get().root
        path = export_nwb(rec, nwb_path(root, rec.recording_id), params=params.to_dict(),
                          labeled_video=labeled_video_path(root, rec.recording_id))
    seconds = time.perf_counter() - start
    context.log.info(f"{rec.recording_id}: wrote {path} ({rec.n_frames} frames in "
                     f"{seconds:.2f} s, {rec.n_frames / seconds:.0f} frames/s)")
    missing = [k for k in ("species", "sex", "age") if k not in rec.subject]
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(path)), "frames": rec.n_frames,
        "size_mb": round(path.stat().st_size / 1e6, 3), "export_s": round(seconds, 3),
        "subject_facts_missing": ", ".join(missing) or "none",
    })


@dg.asset(
    group_name=GROUP, partitions_def=recordings_partitions,
    deps=[raw_state_vectors, multi_animal_tracking], kinds={"opencv"},
    description="On demand (not in the process_recording job): the recording's video with "
    "each body part (coloured by likelihood, hidden below the method's cutoff), the "
    "state-vector position and a head-direction arrow drawn; a multi-animal recording: one "
    "colour per individual, its subject id beside it, unique body parts in white; "
    "<warehouse>/labeled_videos/.",
)
def labeled_videos(context: dg.AssetExecutionContext, data_root: DataRoot,
                   warehouse: WarehouseResource) -> dg.MaterializeResult:
    from dlc_tracking.io.stored_multi_animal import load_stored_multi_animal
    from dlc_tracking.qc.labeled_video import render_recording, thumbnail_strip
    from dlc_tracking.qc.social_video import render_multi_animal_recording

    rid = context.partition_key
    store = warehouse.get()

    def progress(done: int, total: int, fps: float) -> None:
        context.log.info(f"{rid}: labeled video {done}/{total} frames ({fps:.0f} frames/s)")

    if _multi_animal_skip(context, warehouse) is not None:
        with clear_failures(rid):  # no per-individual rows, no video: the fix is said
            multi = load_stored_multi_animal(rid, store.root)
            result, cutoff = render_multi_animal_recording(
                multi, labeled_video_path(store.root, rid), store, data_root.registry(),
                progress=progress)
    else:
        rec = _stored(context, warehouse)
        with clear_failures(rid):  # no video path, video gone: the failure says what to do
            result, cutoff = render_recording(rec, labeled_video_path(store.root, rid),
                                              store, data_root.registry(),
                                              progress=progress)
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(result.path)), "frames": result.n_frames,
        "frames_per_s": round(result.frames_per_s, 1), "likelihood_cutoff": cutoff,
        "thumbnails": qc_plots.png_md(thumbnail_strip(result.thumbnails),
                                      "labeled video thumbnails"),
    })


@dg.asset(
    group_name=GROUP, deps=[processed_tracking], kinds={"duckdb"},
    description="Distance and tracked fraction per recording in one picture (recordings "
    f"tracked in less than {FLAG_TRACKED_FRACTION:.0%} of their frames flagged in red), "
    "from the recording_summary view.",
)
def recording_overview(context: dg.AssetExecutionContext,
                       warehouse: WarehouseResource) -> dg.MaterializeResult:
    summary = warehouse.get().query(
        "SELECT recording_id, distance_cm, tracked_fraction, interpolated_fraction "
        "FROM recording_summary ORDER BY recording_id")
    if summary.empty:
        return dg.MaterializeResult(metadata={"recordings": 0})
    flagged = (summary["tracked_fraction"].fillna(0) < FLAG_TRACKED_FRACTION).to_numpy()
    png = plots.overview_png(list(summary["recording_id"]), list(summary["distance_cm"]),
                             list(summary["tracked_fraction"]), list(flagged))
    return dg.MaterializeResult(metadata={
        "recordings": len(summary), "flagged": int(flagged.sum()),
        "flagged_recordings": ", ".join(summary["recording_id"][flagged]) or "none",
        "overview": qc_plots.png_md(png, "distance and tracked fraction per recording"),
        "summary": dg.MetadataValue.md(summary.round(4).to_markdown(index=False)),
    })


export_assets = [occupancy, nwb_files, labeled_videos, recording_overview]
