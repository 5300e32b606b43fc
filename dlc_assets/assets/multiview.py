"""Per-recording assets of multi-camera recordings (session.yaml ``cameras:``, docs/3d.md):
pose_3d, with the calibration each used in camera_calibrations, and the recording's rows
of the single-camera tables: predictions / prediction_sources (one camera per row) and
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

from dlc_assets.assets.qc_plots import png_md
from dlc_assets.assets.registry import dlc_models, processing_methods
from dlc_assets.assets.tracking import clear_failures
from dlc_assets.execution.worker_info import worker_metadata
from dlc_assets.partitions import recordings_partitions
from dlc_assets.schemas import column_schema
from dlc_tracking.sessions.layout import load_session_metadata
from resources import DataRoot, WarehouseResource

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


def _fps(meta, recording) -> float:
    """Frame rate: session.yaml ``fps:``, else the first camera's video."""
    if meta.fps:
        return float(meta.fps)
    from dlc_tracking.errors import SessionError
    from dlc_tracking.io.video import probe_video

    first = recording.cameras[0]
    if not first.has_video:
        raise SessionError(f"{recording.session_yaml}: camera {first.camera!r} has no video "
                           "here to read the frame rate from; add `fps:` to session.yaml.")
    return float(probe_video(first.video_path, check_last_frame=False).fps)


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
            {c: p.poses for c, p in result.cameras.items()}, videos),
            "one frame per camera: 2D points (circles) and reprojected 3D points (crosses)"),
        "reprojection_error": png_md(plots.reprojection_error_png(
            pose.camera_error_px, pose.cameras, pose.body_parts),
            "reprojection error per camera and body part"),
        "trajectory_3d": png_md(plots.trajectory_3d_png(
            processed["x_cm"].to_numpy(), processed["y_cm"].to_numpy(),
            processed["z_cm"].to_numpy()), "3D trajectory, top and side views"),
    }


def _skipped(reason: str) -> dg.MaterializeResult:
    return dg.MaterializeResult(
        metadata={"skipped": reason},
        check_results=[dg.AssetCheckResult(check_name=spec.name, passed=True,
                                           metadata={"skipped": reason})
                       for spec in POSE_3D_CHECKS])


@dg.asset(
    group_name=GROUP, partitions_def=recordings_partitions, kinds=KINDS | {"aniposelib"},
    deps=[dlc_models, processing_methods], check_specs=POSE_3D_CHECKS,
    metadata=column_schema("pose_3d", "camera_calibrations", "predictions",
                           "prediction_sources", "processed_tracking", "recording_summaries"),
    description="Multi-camera recordings: each camera's DLC outputs (dlc_<video stem>/) "
    "triangulated with the rig's calibration (aniposelib, robust with 3+ cameras) into "
    "pose_3d (mm), the calibration used and its fit in camera_calibrations, each camera's "
    "2D rows in predictions / prediction_sources (column camera), and the 3D state vector "
    "in processed_tracking (x/y on the floor, head direction, plus z_cm, pitch_deg, "
    "roll_deg, speed_3d_cm_s). Single-camera recordings are skipped.",
)
def pose_3d(context: dg.AssetExecutionContext, data_root: DataRoot,
            warehouse: WarehouseResource) -> dg.MaterializeResult:
    from dlc_tracking.multiview.recording import process_multicamera

    rid = context.partition_key
    with clear_failures(rid):
        recording = data_root.recording(rid)
        if not recording.is_multi_camera:
            return _skipped("single-camera recording: processed by the tracking assets")
        meta = load_session_metadata(recording.session_yaml)
        result = process_multicamera(recording, meta, data_root.registry(),
                                     fps=_fps(meta, recording),
                                     max_error_px=MAX_CALIBRATION_ERROR_PX)
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
    store.write_partition("predictions", rid, predictions)
    store.write_partition("prediction_sources", rid, sources)
    store.write_partition("pose_3d", rid, pose)
    store.write_partition("camera_calibrations", rid, calib)
    # frames, then their recording_summaries row (no arena size: world frame, no coverage)
    store.write_processed_tracking(rid, processed, arena_width_cm=None, arena_height_cm=None)
    store.ensure_catalog()
    seen = float(np.mean(result.pose.n_cameras >= 2)) if result.pose.n_cameras.size else 0.0
    return dg.MaterializeResult(
        metadata={
            "rig": result.rig.name, "cameras": ", ".join(result.pose.cameras),
            "frames": result.pose.n_frames, "body_parts": ", ".join(result.pose.body_parts),
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


multiview_assets = [pose_3d]
