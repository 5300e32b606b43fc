"""Per-recording assets of multi-camera recordings (session.yaml ``cameras:``, docs/3d.md):
pose_3d, with the calibration each used in pose_3d_calibrations, and the recording's rows
of the single-camera tables: recordings (one row per take, with its cameras),
predictions / prediction_sources (one camera per row) and
processed_tracking (its 3D state vector, with recording_summaries).

Wiring only: the science is dlc_tracking.multiview (recording.process_multicamera,
tracking_3d). A
single-camera recording is skipped with a stated reason (nothing written, checks passed
as not applicable); bad input fails before anything is written.
"""

import hashlib

import dagster as dg
import numpy as np
import pandas as pd

from dlc_assets.assets.camera_inference import camera_inference
from dlc_assets.assets.qc_plots import png_md
from dlc_assets.assets.registry import dlc_models, processing_methods
from dlc_assets.assets.tracking import clear_failures
from dlc_assets.execution.worker_info import worker_metadata
from dlc_assets.partitions import recordings_partitions
from dlc_assets.schemas import column_schema
from dlc_tracking.multiview.errors import CalibrationPending
from dlc_tracking.sessions.layout import load_session_metadata
from resources import DataRoot, DLCInference, WarehouseResource

GROUP = "multiview"
KINDS = {"duckdb", "parquet"}
MAX_CALIBRATION_ERROR_PX = 5.0  # median reprojection error above which a calibration is flagged

POSE_3D_CHECKS = [
    dg.AssetCheckSpec("calibration_fits_session", asset="pose_3d", blocking=False,
                      description="The calibration explains the session's 2D points: median "
                      f"reprojection error at most {MAX_CALIBRATION_ERROR_PX:g} px (a "
                      "calibration of another rig, or a moved camera, fails)."),
    dg.AssetCheckSpec("parts_seen_by_two_cameras", asset="pose_3d", blocking=False,
                      description="Share of frame x body part triangulated (seen by 2 or more "
                      "cameras); the rest stays missing, never invented."),
]


def _pictures(result, processed: pd.DataFrame, recording) -> dict:
    """Inline pictures: reprojection error per camera and body part, 3D trajectory, and
    one frame per camera with the 3D points reprojected over the 2D ones."""
    from dlc_tracking.qc import plots
    from dlc_tracking.qc.reprojection import reprojection_png

    pose = result.pose
    videos = {c.camera: (c.video_path if c.has_video else None) for c in recording.cameras}
    return {
        "reprojection_frame": png_md(reprojection_png(
            result.calibration, pose.points, pose.body_parts,
            result.take.poses, videos, video_frames=result.take.clock.index),
            "one frame per camera: 2D points (circles) and reprojected 3D points (crosses)"),
        "reprojection_error": png_md(plots.reprojection_error_png(
            pose.camera_error_px, pose.cameras, pose.body_parts),
            "reprojection error per camera and body part"),
        "trajectory_3d": png_md(plots.trajectory_3d_png(
            processed["x_cm"].to_numpy(), processed["y_cm"].to_numpy(),
            processed["z_cm"].to_numpy()), "3D trajectory, top and side views"),
    }


def _wait_for_calibration(context: dg.AssetExecutionContext, pending) -> None:
    """Wait for the rig's calibration of the session's date when its run is on the way.

    A lab often drops the day's calibration folder and its sessions together: the
    calibrations sensor has then added the partition and its run is queued or running.
    Rather than fail the session, wait for the stored calibration (at most
    ``DLC_PLATFORM_CALIBRATION_WAIT_S`` seconds, default 1800). When no such partition
    exists (the calibrations sensor is off), fail at once with the pending error.
    """
    import os
    import time

    from dlc_assets.partitions import calibrations_partitions

    if pending.result_path is None or not context.instance.has_dynamic_partition(
            calibrations_partitions.name, pending.key):
        raise pending
    limit = float(os.environ.get("DLC_PLATFORM_CALIBRATION_WAIT_S", 1800))
    context.log.info(f"waiting up to {limit:.0f} s for camera_calibrations partition "
                     f"{pending.key} (the rig's calibration of this session's date)")
    deadline = time.monotonic() + limit
    while not pending.result_path.is_file():
        if time.monotonic() > deadline:
            raise pending
        time.sleep(5.0)


def _skipped(reason: str) -> dg.MaterializeResult:
    return dg.MaterializeResult(
        metadata={"skipped": reason},
        check_results=[dg.AssetCheckResult(check_name=spec.name, passed=True,
                                           metadata={"skipped": reason})
                       for spec in POSE_3D_CHECKS])


@dg.asset(
    group_name=GROUP, partitions_def=recordings_partitions, kinds=KINDS | {"aniposelib"},
    deps=[dlc_models, processing_methods, camera_inference], check_specs=POSE_3D_CHECKS,
    metadata=column_schema("pose_3d", "pose_3d_calibrations", "recordings", "predictions",
                           "prediction_sources", "processed_tracking", "recording_summaries"),
    description="Multi-camera recordings: each camera's DLC or SLEAP outputs "
    "(dlc_<video stem>/, else the DLC outputs camera_inference wrote), matched by frame "
    "index or by per-camera frame times on one clock, triangulated with the rig's "
    "calibration (aniposelib, robust with 3+ cameras) into pose_3d (mm), the take's "
    "recordings row (column cameras), the calibration used and its fit in "
    "pose_3d_calibrations, each camera's "
    "2D rows in predictions / prediction_sources (column camera), and the 3D state vector "
    "in processed_tracking (x/y on the floor, head direction, plus z_cm, pitch_deg, "
    "roll_deg, speed_3d_cm_s). Single-camera recordings are skipped.",
)
def pose_3d(context: dg.AssetExecutionContext, data_root: DataRoot,
            warehouse: WarehouseResource, dlc_inference: DLCInference) -> dg.MaterializeResult:
    from dlc_tracking.multiview.calibration_store import CalibrationStore
    from dlc_tracking.multiview.recording import process_multicamera
    from dlc_tracking.multiview.take_facts import take_fps, take_recording_row

    rid = context.partition_key
    with clear_failures(rid):
        recording = data_root.recording(rid)
        if not recording.is_multi_camera:
            return _skipped("single-camera recording: processed by the tracking assets")
        meta = load_session_metadata(recording.session_yaml)
        fps, fps_source = take_fps(recording, meta)

        def process():
            return process_multicamera(
                recording, meta, data_root.registry(), fps=fps,
                max_error_px=MAX_CALIBRATION_ERROR_PX,
                inferred_dir=lambda cam, model: dlc_inference.output_dir(rid, model, cam),
                calibration_store=CalibrationStore.at(data_root.root(), warehouse.get().root))

        try:
            result = process()
        except CalibrationPending as pending:
            _wait_for_calibration(context, pending)
            result = process()
        take_row = take_recording_row(recording, meta, data_root.registry(), result.take,
                                      fps_source)
    times = result.processed["time_s"].to_numpy()
    pose = result.pose.to_frame()
    pose.insert(0, "recording_id", rid)
    pose.insert(2, "time_s", np.repeat(times, len(result.pose.body_parts)))
    pose["body_part"] = pose["body_part"].astype(str)
    pose["n_cameras"] = pose["n_cameras"].astype(np.int32)
    digest = hashlib.sha256(result.calibration_path.read_bytes()).hexdigest()
    calib = pd.DataFrame([{
        "recording_id": rid, "rig": result.rig.name, "camera": cam,
        "calibration_file": str(result.calibration_path), "calibration_sha256": digest,
        "reprojection_error_px": result.fit.per_camera_px.get(cam, np.nan),
        "median_reprojection_error_px": result.fit.median_error_px,
        "flagged": result.fit.flagged} for cam in result.pose.cameras])
    predictions, sources = result.prediction_rows(rid)
    processed = result.tracking_rows(rid)
    store = warehouse.get()
    store.write_partition("recordings", rid, pd.DataFrame([take_row]))
    store.write_partition("predictions", rid, predictions)
    store.write_partition("prediction_sources", rid, sources)
    store.write_partition("pose_3d", rid, pose)
    store.write_partition("pose_3d_calibrations", rid, calib)
    # frames, then their recording_summaries row (no arena size: world frame, no coverage)
    store.write_processed_tracking(rid, processed, arena_width_cm=None, arena_height_cm=None)
    store.ensure_catalog()
    seen = float(np.mean(result.pose.n_cameras >= 2)) if result.pose.n_cameras.size else 0.0
    return dg.MaterializeResult(
        metadata={
            "rig": result.rig.name, "cameras": ", ".join(result.pose.cameras),
            "camera_sources": {c: f"{p.source} ({p.model})" for c, p in result.cameras.items()},
            "frames": result.pose.n_frames, "fps": round(result.clock.fps, 4),
            "synchronised_by": result.clock.method,
            "matched_fraction_per_camera": {
                c: round(v, 4) for c, v in result.clock.matched_fraction().items()},
            "body_parts": ", ".join(result.pose.body_parts),
            "calibration": dg.MetadataValue.path(str(result.calibration_path)),
            "median_reprojection_error_px": round(float(result.fit.median_error_px), 3),
            "reprojection_error_px_per_camera": {
                c: round(float(v), 3) for c, v in result.fit.per_camera_px.items()},
            "triangulated_fraction": round(seen, 4),
            "median_z_cm": float(np.nanmedian(processed["z_cm"])) if len(processed) else None,
            **_pictures(result, processed, recording),
            **worker_metadata(),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="calibration_fits_session", passed=not result.fit.flagged,
                severity=dg.AssetCheckSeverity.WARN,
                description=result.fit.message or None,
                metadata={"median_reprojection_error_px": float(result.fit.median_error_px),
                          "threshold_px": MAX_CALIBRATION_ERROR_PX}),
            dg.AssetCheckResult(
                check_name="parts_seen_by_two_cameras", passed=seen > 0.5,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"triangulated_fraction": seen}),
        ],
    )


multiview_assets = [camera_inference, pose_3d]
