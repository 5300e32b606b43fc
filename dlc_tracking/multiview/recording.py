"""One multi-camera recording end to end (no Dagster): per-camera 2D predictions, the
rig's calibration, triangulation, the calibration fit and the 3D state vector.

The Dagster assets (dlc_assets/assets/multiview.py) call these functions and write their
frames to the warehouse; this module only reads files and returns arrays and frames.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlc_tracking.errors import SessionError
from dlc_tracking.multiview.calibration import RigCalibration, check_camera_names
from dlc_tracking.multiview.calibration_store import CalibrationStore
from dlc_tracking.multiview.errors import MultiviewError
from dlc_tracking.multiview.orientation import StateVector3D, state_vector_3d
from dlc_tracking.multiview.rigs import Rig, check_session_cameras
from dlc_tracking.multiview.tracking_3d import (
    camera_prediction_sources,
    camera_predictions_frame,
    processed_tracking_frame,
)
from dlc_tracking.multiview.triangulation import (
    CalibrationFit,
    Pose3D,
    assess_calibration_fit,
    triangulate_poses,
)

__all__ = ["CameraPredictions", "load_camera_predictions", "load_recording_calibration",
           "recording_rig", "MultiCameraResult", "process_multicamera"]


@dataclass(frozen=True)
class CameraPredictions:
    """One camera's 2D predictions, body parts canonical.

    Attributes
    ----------
    camera, model, scorer : str
    body_parts : list of str
        Canonical names, order of axis 1 of ``poses``.
    poses : np.ndarray
        ``(n_frames, n_parts, 3)`` ``[x_px, y_px, likelihood]``; NaN = missing.
    files : list of str
        The DLC files read.
    source : str
        ``manual`` (the session's ``dlc_<video stem>/`` folder) or ``inference`` (the
        camera_inference asset ran the camera's model on its video).
    """

    camera: str
    model: str
    scorer: str
    body_parts: list[str]
    poses: np.ndarray
    files: list[str]
    source: str = "manual"

    def to_frame(self) -> pd.DataFrame:
        """Long table ``camera, frame, body_part, x_px, y_px, likelihood``."""
        n, k = self.poses.shape[:2]
        return pd.DataFrame({
            "camera": self.camera,
            "frame": np.repeat(np.arange(n, dtype=np.int64), k),
            "body_part": np.tile(np.asarray(self.body_parts, dtype=object), n),
            "x_px": self.poses[..., 0].ravel(), "y_px": self.poses[..., 1].ravel(),
            "likelihood": self.poses[..., 2].ravel(),
        })


def recording_rig(recording: Any, meta: Any, registry: Any) -> Rig:
    """The rig of a multi-camera recording: the registry's rig named by ``rig:`` (its
    cameras checked against the session's), else a rig of the session's cameras."""
    cams = [c.camera for c in recording.cameras]
    if meta.rig is not None:
        rig = registry.camera_rig(meta.rig, str(recording.session_yaml))
        check_session_cameras(rig, cams, str(recording.session_yaml))
        return rig
    return Rig(name="multicam", cameras=tuple(cams))


def _model_for(camera: str, rig: Rig, meta: Any, registry: Any, where: str) -> str:
    model = rig.model_for(camera) or (meta.assignment.model if meta.assignment else None)
    if model is None:
        model = registry.defaults.get(meta.tracking_type, (None, None))[0]
    if model is None:
        raise SessionError(f"{where}: no model for camera {camera!r}: name one per camera "
                           "in the registry rig (`cameras: {CAMERA: {model: ...}}`), or give "
                           "the session an `assignment:` (docs/3d.md).")
    return model


def load_camera_predictions(recording: Any, meta: Any, registry: Any, rig: Rig,
                            inferred_dir: Callable[[str, str], Path] | None = None
                            ) -> dict[str, CameraPredictions]:
    """Each camera's DLC outputs from its ``dlc_<video stem>/`` folder (manual outputs),
    else from the folder the camera_inference asset wrote them to.

    Parameters
    ----------
    inferred_dir : callable, optional
        ``(camera, model name) -> folder`` of a camera's inferred DLC outputs.

    Raises
    ------
    SessionError
        A camera with outputs in neither folder, frame counts that differ between
        cameras, or body parts that differ.
    """
    from dlc_tracking.tracking import predictions as preds

    where = f"{recording.session_yaml} (recording {recording.recording_id})"
    out: dict[str, CameraPredictions] = {}
    for cam in recording.cameras:
        model = registry.model(_model_for(cam.camera, rig, meta, registry, where))
        folder, source = cam.manual_output_dir, "manual"
        if not preds.manual_outputs_present(folder) and inferred_dir is not None:
            folder, source = inferred_dir(cam.camera, model.name), "inference"
        if not preds.manual_outputs_present(folder):
            raise SessionError(
                f"{where}: camera {cam.camera!r} has no DLC outputs in "
                f"{cam.manual_output_dir}" + (f" nor in {folder}" if source == "inference"
                                              else "") +
                "; put that camera's DLC .h5/.csv there, or materialize camera_inference "
                "for this recording (it runs the camera's model on its video).")
        manual = preds.load_manual_outputs(folder, model.scorer, recording.recording_id)
        loaded = manual.predictions
        mapping = model.body_part_map or {}
        parts = [mapping.get(p, p) for p in loaded.body_parts]
        out[cam.camera] = CameraPredictions(cam.camera, model.name, loaded.scorer, parts,
                                            np.asarray(loaded.poses, dtype=np.float64),
                                            list(manual.files), source)
    counts = {c: p.poses.shape[0] for c, p in out.items()}
    if len(set(counts.values())) > 1:
        raise SessionError(f"{where}: the cameras' predictions have different frame counts "
                           f"{counts}; cameras are matched by frame index, so trim them to "
                           "the same frames (or give per-camera `timestamps:`; docs/3d.md).")
    parts = {c: tuple(p.body_parts) for c, p in out.items()}
    if len(set(parts.values())) > 1:
        raise SessionError(f"{where}: the cameras' predictions name different body parts "
                           f"{parts}; use one model, or map them to the same canonical names.")
    return out


def load_recording_calibration(recording: Any, meta: Any, rig: Rig,
                               store: CalibrationStore | None = None
                               ) -> tuple[RigCalibration, Path]:
    """The calibration a recording uses (docs/3d.md, section 3), in this order:

    1. session.yaml's ``calibration:``: a date (``2026-01-05``: the rig's calibration of
       that day in ``store``), or a path relative to the session folder (an Anipose
       ``calibration.toml``, or a DeepLabCut 3D project folder whose ``calibration.yaml``
       gives ``dlc_3d: {square_mm: ...}``);
    2. the rig's latest dated calibration at or before the session's date
       (``<data root>/calibrations/<rig>/<YYYY-MM-DD>/``, as the ``camera_calibrations``
       asset stored it; board videos not calibrated yet: an error naming the partition);
    3. the registry rig's ``calibration:`` (an Anipose toml or a DeepLabCut 3D project).

    Parameters
    ----------
    store : CalibrationStore, optional
        The rigs' dated calibrations; None: only 1 (paths) and 3.

    Raises
    ------
    SessionError
        No calibration named, a missing file, a dated calibration not materialized yet, or
        camera names that do not match.
    """
    from dlc_tracking.multiview.calibration_store import load_named_calibration

    where = f"{recording.session_yaml} (recording {recording.recording_id})"
    session_date = meta.start_time.date() if meta.start_time is not None else None
    found = None
    if store is not None:
        found = store.for_session(rig, meta.calibration, session_date, recording.session_dir,
                                  where)
    elif meta.calibration:
        found = load_named_calibration(recording.session_dir / str(meta.calibration), where)
    if found is None:
        if not rig.calibration:
            raise SessionError(
                f"{where}: no calibration; calibrate the rig (a dated folder "
                f"<data root>/calibrations/{rig.name}/<YYYY-MM-DD>/), name the rig's "
                "calibration file in the registry (`rigs: {NAME: {calibration: PATH}}`) or "
                "the session's in session.yaml (`calibration: calibration.toml`), docs/3d.md.")
        found = load_named_calibration(Path(rig.calibration), where)
    calibration, path = found
    check_camera_names(calibration, [c.camera for c in recording.cameras], where, str(path))
    return calibration, path


@dataclass(frozen=True)
class MultiCameraResult:
    """Everything one multi-camera recording gives (frames ready for the warehouse).

    Attributes
    ----------
    processed : pandas.DataFrame
        The recording's ``processed_tracking`` rows without their keys
        (:func:`~dlc_tracking.multiview.tracking_3d.processed_tracking_frame`).
    model_name : str
        The cameras' model, or their models joined by ``+`` (sorted) when they differ.
    params_name, params_hash : str
        The recording's processing parameter set (session ``processing:``, else the
        tracking type's default): recorded with its rows; the 3D positions are not
        smoothed with it.
    """

    rig: Rig
    calibration: RigCalibration
    calibration_path: Path
    cameras: dict[str, CameraPredictions]
    pose: Pose3D
    fit: CalibrationFit
    state: StateVector3D
    processed: pd.DataFrame
    model_name: str
    params_name: str
    params_hash: str

    def tracking_rows(self, recording_id: str) -> pd.DataFrame:
        """``processed_tracking`` rows of the recording (keys first, as the table)."""
        df = self.processed.copy()
        for i, (col, value) in enumerate([
                ("recording_id", recording_id), ("model_name", self.model_name),
                ("method_name", self.state.method_name), ("params_name", self.params_name),
                ("params_hash", self.params_hash)]):
            df.insert(i, col, value)
        return df

    def prediction_rows(self, recording_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``predictions`` rows (one camera per row) and ``prediction_sources`` rows (one
        per camera) of the recording."""
        times = self.processed["time_s"].to_numpy()
        preds = camera_predictions_frame(recording_id, self.cameras, times,
                                         self.calibration.image_sizes)
        return preds, camera_prediction_sources(recording_id, self.cameras, preds)


def process_multicamera(recording: Any, meta: Any, registry: Any, *, fps: float,
                        method_name: str | None = None, front_part: str | None = "nose",
                        max_error_px: float | None = None,
                        inferred_dir: Callable[[str, str], Path] | None = None,
                        calibration_store: CalibrationStore | None = None
                        ) -> MultiCameraResult:
    """Triangulate a multi-camera recording and compute its 3D state vector.

    Parameters
    ----------
    recording : dlc_tracking.sessions.layout.Recording
        ``is_multi_camera``.
    meta : SessionMetadata
    registry : Registry
    fps : float
        Frame rate giving the frame times (session ``fps:``, else the caller's).
    method_name : str, optional
        State-vector method; default the session's assignment, else ``two_ears``.
    front_part : str, optional
        The point ahead of the ears giving pitch and roll (when triangulated).
    inferred_dir : callable, optional
        Where a camera's inferred outputs are (:func:`load_camera_predictions`).
    calibration_store : CalibrationStore, optional
        The rigs' dated calibrations (:func:`load_recording_calibration`).
    """
    if not recording.is_multi_camera:
        raise MultiviewError(f"recording {recording.recording_id} has one camera; it is "
                             "processed by the single-camera assets.")
    rig = recording_rig(recording, meta, registry)
    calibration, path = load_recording_calibration(recording, meta, rig,
                                                    calibration_store)
    cams = load_camera_predictions(recording, meta, registry, rig, inferred_dir)
    parts = next(iter(cams.values())).body_parts
    source = f"recording {recording.recording_id}"
    pose = triangulate_poses(calibration, {c: p.poses for c, p in cams.items()}, parts,
                             source=source)
    fit = assess_calibration_fit(pose, max_error_px, calibration_source=str(path),
                                 source=source)
    method = registry.method(method_name or (meta.assignment.method if meta.assignment
                                             else "two_ears"))
    front = front_part if front_part in parts else None
    state = state_vector_3d(method, pose.points, parts, front_part=front, source=source)
    times = np.arange(pose.n_frames, dtype=np.float64) / float(fps)
    params = registry.resolve_processing(meta.tracking_type, meta.processing,
                                         str(recording.session_yaml))
    model_name = "+".join(sorted({c.model for c in cams.values()}))
    return MultiCameraResult(rig, calibration, path, cams, pose, fit, state,
                             processed_tracking_frame(state, times), model_name,
                             params.name, params.param_hash)
