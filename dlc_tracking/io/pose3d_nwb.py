"""A multi-camera recording as an NWB file: ndx-pose ``MultiCameraPoseEstimation`` (3D
body parts) with one ``PoseEstimation`` per camera, each camera a ``CalibratedCamera``
device (docs/3d.md, section 7; docs/exports.md).

Layout::

    general/devices/<camera>            ndx-pose CalibratedCamera: intrinsic_matrix (px),
                                        distortion_coefficients (OpenCV order),
                                        rotation_matrix / translation_vector (mm) from the
                                        pose's world frame to the camera frame; description:
                                        image size, lens model, calibration file + SHA-256,
                                        source, reprojection error on this session
    acquisition/video_<camera>          ImageSeries, external file (relative path), where the
                                        camera's video is there
    processing/behavior/
        Skeletons/subject               nodes = the pose_3d body parts (as stored)
        MultiCameraPoseEstimation       description: rig, calibration file, SHA-256,
                                        source, world axes; one PoseEstimationSeries per
                                        body part: (n_frames, 3) x/y/z in mm (unit meters,
                                        conversion 0.001), confidence = the 3D score
          PoseEstimation_<camera>       the camera's 2D predictions (px, likelihood),
                                        device = its CalibratedCamera
        reprojection_error_px, n_cameras   TimeSeries (n_frames, n_body_parts)
        Position/position               x, y, z (cm, conversion 0.01 -> m), world frame
        CompassDirection/head_direction, head_pitch, head_roll   degrees
        speed, speed_3d, angular_head_velocity, movement_direction, interpolated

Values are the warehouse's (``pose_3d``, ``predictions``, ``processed_tracking``): a
reader gets back exactly the numbers analysts query.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dlc_tracking.io.atomic import atomic_write
from dlc_tracking.io.nwb import (
    CONFIDENCE_DEFINITION,
    IMAGE_FRAME,
    SOURCE_SOFTWARE,
    UNKNOWN_VERSION,
    _lab_facts,
    _timing,
    skeleton_edges,
)
from dlc_tracking.io.stored_multi_camera import StoredMultiCamera

__all__ = ["MULTI_CAMERA_POSE", "camera_extrinsics_world", "export_multi_camera_nwb"]

MULTI_CAMERA_POSE = "MultiCameraPoseEstimation"
_MM_TO_M = 0.001
_CM_TO_M = 0.01
SCORE_DEFINITION = ("Mean DeepLabCut likelihood of the cameras used to triangulate the "
                    "point (the pose_3d score), in [0, 1]; NaN where missing.")


def camera_extrinsics_world(calibration: Any, camera: str) -> tuple[np.ndarray, np.ndarray]:
    """A camera's rotation and translation from the pose's world frame to its camera frame.

    aniposelib's extrinsics map the calibration frame; the world frame is the calibration
    frame moved by ``world_from_calibration`` (A, b: ``world = A @ p + b``), so
    ``R_world = R @ A.T`` and ``t_world = t - R @ A.T @ b``.

    Returns
    -------
    tuple of np.ndarray
        ``(3, 3)`` rotation and ``(3,)`` translation (mm):
        ``p_camera = R_world @ p_world + t_world``.
    """
    import cv2

    cam = calibration.group.cameras[calibration.camera_names.index(camera)]
    rotation, _ = cv2.Rodrigues(np.asarray(cam.get_rotation(), dtype=np.float64))
    m = np.asarray(calibration.world_from_calibration, dtype=np.float64)
    r_world = rotation @ m[:3, :3].T
    t_world = np.asarray(cam.get_translation(), dtype=np.float64) - r_world @ m[:3, 3]
    return r_world, t_world


def _calibration_facts(rec: StoredMultiCamera) -> dict[str, Any]:
    rows = rec.calibrations
    return {"rig": str(rows["rig"].iloc[0]), "file": str(rows["calibration_file"].iloc[0]),
            "sha256": str(rows["calibration_sha256"].iloc[0]),
            "source": rec.calibration.source, "axes": rec.calibration.axes,
            "world_from_calibration": np.asarray(rec.calibration.world_from_calibration
                                                 ).round(9).tolist(),
            "median_reprojection_error_px_on_session": float(
                rows["median_reprojection_error_px"].iloc[0]),
            "flagged": bool(rows["flagged"].iloc[0])}


def _add_cameras(nwb, rec: StoredMultiCamera, facts: dict[str, Any]) -> dict[str, Any]:
    from ndx_pose import CalibratedCamera

    devices = {}
    sizes = rec.calibration.image_sizes
    for _, row in rec.calibrations.iterrows():
        name = str(row["camera"])
        cam = rec.calibration.group.cameras[rec.calibration.camera_names.index(name)]
        rotation, translation = camera_extrinsics_world(rec.calibration, name)
        size = sizes.get(name)
        lens = "fisheye" if type(cam).__name__ == "FisheyeCamera" else "pinhole"
        video = rec.videos.get(name)
        error = row["reprojection_error_px"]
        devices[name] = CalibratedCamera(
            name=name,
            description=(
                f"Camera {name} of rig {facts['rig']}"
                + (f", {size[0]}x{size[1]} px" if size else "")
                + f"; {lens} model (aniposelib, OpenCV distortion order); calibration "
                f"{facts['file']} (SHA-256 {facts['sha256']}, source {facts['source']}); "
                "rotation_matrix and translation_vector (mm) map the world frame of the "
                "3D pose (MultiCameraPoseEstimation) to this camera's frame (OpenCV: x "
                "right, y down, z forward); reprojection error of its points on this "
                "session (median) "
                + ("n/a" if error is None or not np.isfinite(error) else f"{error:.3f} px")
                + f"; video {video.name if video else 'not available'}."),
            intrinsic_matrix=np.asarray(cam.get_camera_matrix(), dtype=np.float64),
            rotation_matrix=rotation, translation_vector=translation,
            distortion_coefficients=np.asarray(cam.get_distortions(), dtype=np.float64))
        nwb.add_device(devices[name])
    return devices


def _add_videos(nwb, rec: StoredMultiCamera, devices, out: Path, timing) -> dict[str, Any]:
    from pynwb.image import ImageSeries

    series = {}
    sizes = rec.calibration.image_sizes
    for cam, video in rec.videos.items():
        if video is None or cam not in devices:
            continue
        size = sizes.get(cam)
        series[cam] = ImageSeries(
            name=f"video_{cam}", description=f"Behaviour video of camera {cam} ({video.name}).",
            external_file=[os.path.relpath(video.absolute(), out.parent.absolute())],
            format="external", starting_frame=[0], unit="n.a.", num_samples=rec.n_frames,
            dimension=list(size) if size else None, device=devices[cam], **timing)
        nwb.add_acquisition(series[cam])
    return series


def _camera_pose(rec: StoredMultiCamera, cam: str, skeleton, device, video, timing):
    from ndx_pose import PoseEstimation, PoseEstimationSeries

    poses = rec.camera_poses(cam)
    source = rec.sources[rec.sources["camera"].astype(str) == cam]
    scorer = str(source["scorer"].iloc[0]) if len(source) else ""
    model = str(source["model_name"].iloc[0]) if len(source) else "unknown"
    series = []
    for i, part in enumerate(rec.body_parts):
        series.append(PoseEstimationSeries(
            name=part, description=f"Position of {part} in camera {cam}, estimated by "
            "DeepLabCut.", data=poses[:, i, :2], unit="pixels", reference_frame=IMAGE_FRAME,
            confidence=poses[:, i, 2], confidence_definition=CONFIDENCE_DEFINITION, **timing))
        if "rate" not in timing:
            timing = {"timestamps": series[0]}
    return PoseEstimation(
        name=f"PoseEstimation_{cam}", pose_estimation_series=series,
        description=(f"2D pose of camera {cam} (DeepLabCut outputs ingested by dlc-platform, "
                     f"model {model}): the points triangulated into the 3D pose. Missing "
                     "points are NaN."),
        scorer=scorer or None, source_software=SOURCE_SOFTWARE,
        source_software_version=UNKNOWN_VERSION, skeleton=skeleton, source_video=video,
        device=device), timing


def _renamed(rec: StoredMultiCamera) -> str:
    """Where the models' registry rows map DeepLabCut's names to other canonical ones."""
    notes = []
    for _, model in rec.models.iterrows():
        dlc = [p for p in str(model.get("dlc_body_parts") or "").split(",") if p]
        canonical = [p for p in str(model.get("body_parts") or "").split(",") if p]
        if dlc and len(dlc) == len(canonical) and dlc != canonical:
            notes.append(f"model {model['model_name']}: DeepLabCut's {dlc} -> {canonical}")
    return (" Body parts renamed to the platform's canonical names: " + "; ".join(notes)
            + ".") if notes else ""


def _add_pose(nwb, behavior, rec: StoredMultiCamera, devices, videos, timing,
              facts: dict[str, Any]) -> None:
    from ndx_pose import MultiCameraPoseEstimation, PoseEstimationSeries, Skeleton, Skeletons

    parts = rec.body_parts
    skeleton = Skeleton(name="subject", nodes=parts, edges=skeleton_edges(parts),
                        subject=nwb.subject)
    behavior.add(Skeletons(skeletons=[skeleton]))
    points, score = rec.points_mm, rec.grid("score")
    frame = (f"world frame of the calibration {facts['file']} (axes {facts['axes']}: x, y "
             "on the floor and z up when aligned to the arena, else the first camera's "
             "frame; docs/3d.md), in millimetres: multiply by conversion (0.001) for meters")
    series = []
    for i, part in enumerate(parts):
        series.append(PoseEstimationSeries(
            name=part, description=f"3D position of {part}: triangulated from the cameras' "
            "2D points (aniposelib; robust with 3+ cameras). NaN where seen by fewer than 2 "
            "cameras.", data=points[:, i, :], unit="meters", conversion=_MM_TO_M,
            reference_frame=frame, confidence=score[:, i],
            confidence_definition=SCORE_DEFINITION, **timing))
        if "rate" not in timing:
            timing = {"timestamps": series[0]}
    cam_timing = timing
    per_camera = []
    for cam in rec.cameras:
        pose, cam_timing = _camera_pose(rec, cam, skeleton, devices[cam], videos.get(cam),
                                        cam_timing)
        per_camera.append(pose)
    scorers = sorted({str(s) for s in rec.sources["scorer"] if str(s)})
    behavior.add(MultiCameraPoseEstimation(
        name=MULTI_CAMERA_POSE, pose_estimation_series=series, pose_estimations=per_camera,
        description=(
            f"3D pose of recording {rec.recording_id} triangulated by dlc-platform "
            f"(aniposelib) from cameras {rec.cameras} of rig {facts['rig']}. Calibration: "
            f"{facts['file']} (SHA-256 {facts['sha256']}, source {facts['source']}, world "
            f"axes {facts['axes']}, world_from_calibration "
            f"{json.dumps(facts['world_from_calibration'])}); median reprojection error on "
            f"this session {facts['median_reprojection_error_px_on_session']:.3f} px"
            + (" (FLAGGED: the calibration may be another rig's)" if facts["flagged"] else "")
            + ". Each camera's intrinsics and extrinsics are in its CalibratedCamera device."
            + _renamed(rec)),
        scorer="dlc-platform triangulation of " + (", ".join(scorers) or "unknown scorers"),
        source_software="dlc-platform", source_software_version=UNKNOWN_VERSION,
        skeleton=skeleton))


def _add_pose_quality(behavior, rec: StoredMultiCamera, timing) -> None:
    from pynwb import TimeSeries

    order = ", ".join(rec.body_parts)
    behavior.add(TimeSeries(
        name="reprojection_error_px", data=rec.grid("reprojection_error_px"), unit="pixels",
        description=f"Mean reprojection error over the cameras used, per frame and body part "
        f"(columns: {order}); NaN where missing.", **timing))
    behavior.add(TimeSeries(
        name="n_cameras", data=np.nan_to_num(rec.grid("n_cameras")).astype(np.uint8),
        unit="n.a.", description=f"Cameras used to triangulate each body part (columns: "
        f"{order}); 0 where missing.", **timing))


def _add_processed(behavior, rec: StoredMultiCamera) -> None:
    from pynwb import TimeSeries
    from pynwb.behavior import CompassDirection, Position, SpatialSeries

    df = rec.processed
    timing = _timing(df["time_s"].to_numpy(np.float64), rec.fps)

    def col(name: str) -> np.ndarray:
        return df[name].to_numpy(np.float64)

    position = SpatialSeries(
        name="position", data=np.column_stack([col("x_cm"), col("y_cm"), col("z_cm")]),
        reference_frame="world frame of the calibration (as the 3D pose), x, y on the floor, "
        "z up when aligned to the arena; cm", unit="meters", conversion=_CM_TO_M,
        description="Subject position (the 3D state vector): x, y, z in cm; multiply by "
        "conversion (0.01) for meters. NaN where missing.", **timing)
    behavior.add(Position(spatial_series=position))
    shared = {"timestamps": position} if "timestamps" in timing else timing
    angles = []
    for name, column, frame, text in (
            ("head_direction", "head_direction_deg", "counter-clockwise from the world "
             "frame's +x axis in the floor plane, [0, 360)", "Head azimuth."),
            ("head_pitch", "pitch_deg", "elevation of the head's forward axis above the "
             "floor plane, nose up positive (docs/conventions.md, '3D')", "Head pitch."),
            ("head_roll", "roll_deg", "rotation about the head's forward axis, left ear up "
             "positive (docs/conventions.md, '3D')", "Head roll.")):
        angles.append(SpatialSeries(name=name, data=col(column), reference_frame=frame,
                                    unit="degrees", description=text + " NaN where unknown.",
                                    **shared))
    behavior.add(CompassDirection(spatial_series=angles))
    for name, column, unit, conversion, text in (
            ("speed", "speed_cm_s", "m/s", _CM_TO_M, "Speed in the floor plane, cm/s "
             "(x 0.01 for m/s)."),
            ("speed_3d", "speed_3d_cm_s", "m/s", _CM_TO_M, "3D speed, cm/s (x 0.01 for m/s)."),
            ("angular_head_velocity", "angular_head_velocity_deg_s", "degrees/s", 1.0,
             "Angular head velocity (azimuth), counter-clockwise positive."),
            ("movement_direction", "movement_direction_deg", "degrees", 1.0,
             "Direction of movement in the floor plane, counter-clockwise from +x.")):
        behavior.add(TimeSeries(name=name, data=col(column), unit=unit,
                                conversion=conversion, description=text, **shared))
    behavior.add(TimeSeries(
        name="interpolated", data=df["interpolated"].fillna(False).to_numpy(bool).astype(
            np.uint8), unit="n.a.", description="1 where the position was interpolated "
        "(never, for 3D positions: docs/3d.md).", **shared))


def _subject(rec: StoredMultiCamera, override: Mapping[str, str] | None):
    from datetime import datetime

    from pynwb.file import Subject

    facts = {**rec.subject, **(override or {})}
    born = facts.get("date_of_birth")
    if born:
        born = datetime.fromisoformat(born)
        born = born if born.tzinfo else born.replace(tzinfo=rec.start_time.tzinfo)
    return Subject(subject_id=rec.subject_id, species=facts.get("species"),
                   sex=facts.get("sex", "U"), age=facts.get("age"), date_of_birth=born or None,
                   strain=facts.get("strain"), genotype=facts.get("genotype"),
                   weight=facts.get("weight"), description=facts.get("description"))


def export_multi_camera_nwb(rec: StoredMultiCamera, path: str | os.PathLike, *,
                            params: Mapping[str, Any] | None = None,
                            subject: Mapping[str, str] | None = None,
                            experimenter: str | list[str] | None = None,
                            institution: str | None = None, lab: str | None = None) -> Path:
    """Write a multi-camera recording to an NWB file (atomically).

    Parameters
    ----------
    rec : StoredMultiCamera
        From :func:`~dlc_tracking.io.stored_multi_camera.load_stored_multi_camera`.
    path : path
        Output ``.nwb`` file; its folder is created.
    params : mapping, optional
        The processing parameters, written into the session description.
    subject : mapping, optional
        Subject facts overriding the subject's ``subject.yaml``.
    experimenter, institution, lab : optional
        As for :func:`dlc_tracking.io.nwb.export_nwb`.

    Returns
    -------
    pathlib.Path
        The file written (layout: module docstring).
    """
    from pynwb import NWBHDF5IO, NWBFile

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    facts = _calibration_facts(rec)
    df = rec.processed
    lines = [f"dlc-platform export of multi-camera recording {rec.recording_id} (subject "
             f"{rec.subject_id}, session {rec.session}, rig {facts['rig']}, cameras "
             f"{', '.join(rec.cameras)})."]
    if len(df):
        lines.append(f"Models {df['model_name'].iloc[0]}; state-vector method "
                     f"{df['method_name'].iloc[0]}; processing parameters "
                     f"{df['params_name'].iloc[0]} (hash {df['params_hash'].iloc[0]}).")
    if params:
        lines.append("Processing parameters: " + json.dumps(dict(params), sort_keys=True))
    tracking_type = getattr(rec.meta, "tracking_type", "openfield")
    nwb = NWBFile(
        session_description=" ".join(lines), identifier=str(uuid.uuid4()),
        session_start_time=rec.start_time, session_id=rec.session,
        experiment_description=f"{tracking_type} behaviour filmed by {len(rec.cameras)} "
        "calibrated cameras, tracked with DeepLabCut per camera and triangulated in 3D by "
        "dlc-platform.",
        keywords=["DeepLabCut", "pose estimation", "3D", "multi-camera", str(tracking_type)],
        subject=_subject(rec, subject),
        source_script="dlc-platform (dlc_tracking.io.pose3d_nwb.export_multi_camera_nwb)",
        source_script_file_name="dlc_tracking/io/pose3d_nwb.py",
        **_lab_facts(experimenter, institution, lab))
    timing = _timing(rec.time_s, rec.fps)
    devices = _add_cameras(nwb, rec, facts)
    videos = _add_videos(nwb, rec, devices, out, timing)
    behavior = nwb.create_processing_module(
        name="behavior", description="3D pose (DeepLabCut per camera, triangulated), each "
        "camera's 2D pose and the processed 3D tracking, from dlc-platform.")
    _add_pose(nwb, behavior, rec, devices, videos, timing, facts)
    _add_pose_quality(behavior, rec, timing)
    _add_processed(behavior, rec)

    def write(tmp: Path) -> None:
        with NWBHDF5IO(str(tmp), "w") as io:
            io.write(nwb)

    return atomic_write(out, write)
