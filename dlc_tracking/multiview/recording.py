"""One multi-camera recording end to end (no Dagster): per-camera 2D predictions, the
rig's calibration, triangulation, the calibration fit and the 3D state vector.

The Dagster assets (dlc_assets/assets/multiview.py) call these functions and write their
frames to the warehouse; this module only reads files and returns arrays and frames.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
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
from dlc_tracking.multiview.sync import (
    TakeClock,
    read_camera_times,
    synchronise_take,
    take_frames,
)
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

__all__ = ["CameraPredictions", "read_camera_input", "load_camera_predictions", "Take",
           "load_take", "load_recording_calibration", "recording_rig", "MultiCameraResult",
           "process_multicamera"]


@dataclass(frozen=True)
class CameraPredictions:
    """One camera's 2D predictions, body parts canonical.

    Attributes
    ----------
    camera, model, scorer : str
    body_parts : list of str
        Canonical names, order of axis 1 of ``poses``.
    poses : np.ndarray
        ``(n_frames, n_parts, 3)`` ``[x_px, y_px, likelihood]``; NaN = missing. The
        camera's own frames (before the take's synchronisation).
    files : list of str
        The files read.
    source_format : str
        ``dlc`` (DeepLabCut .h5/.csv) or ``sleap`` (SLEAP .slp / analysis .h5; its point
        scores are the likelihood).
    times_s : np.ndarray, optional
        ``(n_frames,)`` the camera's frame times on the take's clock (set by
        :func:`load_take`).
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
    source_format: str = "dlc"
    times_s: np.ndarray | None = None
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


SLEAP_ENGINE = "sleap"  # the registry engine of models registered from SLEAP files


def _read_dlc(camera: str, folder: Path, model: Any, recording_id: str, where: str
              ) -> CameraPredictions:
    """DeepLabCut ``.h5`` / ``.csv`` outputs of the camera's model in ``folder``."""
    from dlc_tracking.io.sleap_files import find_sleap_files
    from dlc_tracking.tracking import predictions as preds

    if not preds.manual_outputs_present(folder) and find_sleap_files(folder):
        raise SessionError(
            f"{where}: camera {camera!r}'s folder {folder} holds SLEAP predictions but its "
            f"model {model.name!r} is a DeepLabCut model; register the SLEAP model "
            "(`dlc-platform models add --name NAME --from-outputs FILE.slp`) and name it for "
            "this camera in the registry rig (`cameras: {CAMERA: {model: NAME}}`).")
    manual = preds.load_manual_outputs(folder, model.scorer, recording_id)
    loaded = manual.predictions
    mapping = model.body_part_map or {}
    parts = [mapping.get(p, p) for p in loaded.body_parts]
    return CameraPredictions(camera, model.name, loaded.scorer, parts,
                             np.asarray(loaded.poses, dtype=np.float64), list(manual.files))


def _read_sleap(camera: str, folder: Path, model: Any, where: str,
                n_frames: int | None) -> CameraPredictions:
    """One SLEAP ``.slp`` / analysis ``.h5`` in ``folder`` (sleap-io), checked against the
    camera's SLEAP model (scorer, node names)."""
    from dlc_tracking.io.sleap_files import find_sleap_files, read_sleap_predictions

    files = find_sleap_files(folder)
    if len(files) != 1:
        raise SessionError(
            f"{where}: camera {camera!r} is tracked by the SLEAP model {model.name!r}, so "
            f"{folder} must hold exactly one SLEAP .slp or analysis .h5; it holds "
            f"{[p.name for p in files] or 'none'}. Keep this camera's predictions only.")
    loaded = read_sleap_predictions(files[0], n_frames=n_frames)
    if loaded.scorer != model.scorer:
        raise SessionError(f"{where}: {files[0]} was written by {loaded.scorer!r}, not by "
                           f"{model.scorer!r} (model {model.name!r}): predictions of another "
                           "model. Register that one, or export this model's predictions.")
    if list(loaded.body_parts) != model.dlc_body_parts:
        raise SessionError(f"{where}: {files[0]} has nodes {loaded.body_parts}, the model "
                           f"{model.name!r} {model.dlc_body_parts}; export it with the "
                           "model's skeleton, or register the skeleton it has.")
    mapping = model.body_part_map or {}
    parts = [mapping.get(p, p) for p in loaded.body_parts]
    return CameraPredictions(camera, model.name, loaded.scorer, parts,
                             np.asarray(loaded.poses, dtype=np.float64),
                             [str(files[0])], "sleap")


def read_camera_input(camera: str, folder: Path, model: Any, recording_id: str, where: str,
                      n_frames: int | None = None) -> CameraPredictions:
    """One camera's 2D predictions from ``folder``, read by the format of its model: a
    SLEAP model's ``.slp`` / analysis ``.h5`` (sleap-io), else DeepLabCut's ``.h5`` /
    ``.csv`` (matched to the model's scorer).

    Parameters
    ----------
    n_frames : int, optional
        The camera's frames (from its frame times or its video), for a SLEAP ``.slp``
        that does not record them (without: frames after its last prediction are absent).
    """
    if model.engine == SLEAP_ENGINE:
        return _read_sleap(camera, folder, model, where, n_frames)
    return _read_dlc(camera, folder, model, recording_id, where)


def load_camera_predictions(recording: Any, meta: Any, registry: Any, rig: Rig,
                            n_frames: dict[str, int] | None = None,
                            inferred_dir: Callable[[str, str], Path] | None = None
                            ) -> dict[str, CameraPredictions]:
    """Each camera's 2D predictions from its ``dlc_<video stem>/`` folder (DeepLabCut or
    SLEAP outputs, :func:`read_camera_input`), else from the folder the camera_inference
    asset wrote its DLC outputs to; each camera's own frames.

    Parameters
    ----------
    n_frames : dict, optional
        Camera -> its frame count (from its frame times), for SLEAP ``.slp`` files.
    inferred_dir : callable, optional
        ``(camera, model name) -> folder`` of a camera's inferred DLC outputs.

    Raises
    ------
    SessionError
        A camera with outputs in neither folder, or body parts that differ between
        cameras.
    """
    from dlc_tracking.io.sleap_files import find_sleap_files
    from dlc_tracking.tracking import predictions as preds

    where = f"{recording.session_yaml} (recording {recording.recording_id})"
    out: dict[str, CameraPredictions] = {}
    for cam in recording.cameras:
        model = registry.model(_model_for(cam.camera, rig, meta, registry, where))
        folder, source = cam.manual_output_dir, "manual"
        if (not (preds.manual_outputs_present(folder) or find_sleap_files(folder))
                and inferred_dir is not None):
            folder, source = inferred_dir(cam.camera, model.name), "inference"
        if not (preds.manual_outputs_present(folder) or find_sleap_files(folder)):
            raise SessionError(
                f"{where}: camera {cam.camera!r} has no DLC outputs in "
                f"{cam.manual_output_dir}" + (f" nor in {folder}" if source == "inference"
                                              else "") +
                "; put that camera's DLC .h5/.csv (or SLEAP .slp) there, or materialize "
                "camera_inference for this recording (it runs the camera's model on its "
                "video).")
        frames = (n_frames or {}).get(cam.camera)
        if frames is None and model.engine == SLEAP_ENGINE and cam.has_video:
            from dlc_tracking.io.video import probe_video

            frames = probe_video(cam.video_path, check_last_frame=False).n_frames
        read = read_camera_input(cam.camera, folder, model, recording.recording_id, where,
                                 frames)
        out[cam.camera] = replace(read, source=source)
    parts = {c: tuple(p.body_parts) for c, p in out.items()}
    if len(set(parts.values())) > 1:
        raise SessionError(f"{where}: the cameras' predictions name different body parts "
                           f"{parts}; use one model, or map them to the same canonical names.")
    return out


@dataclass(frozen=True)
class Take:
    """A multi-camera take's 2D input, synchronised (before triangulation).

    Attributes
    ----------
    rig : Rig
    cameras : dict
        Camera -> :class:`CameraPredictions` (its own frames, ``times_s`` set).
    clock : TakeClock
        How the cameras were matched; the take's frame times.
    poses : dict
        Camera -> ``(n, n_parts, 3)`` poses at the take's frames (NaN where the camera
        has no frame within half a frame).
    """

    rig: Rig
    cameras: dict[str, CameraPredictions]
    clock: TakeClock
    poses: dict[str, np.ndarray]

    @property
    def body_parts(self) -> list[str]:
        return list(next(iter(self.cameras.values())).body_parts)

    @property
    def model_name(self) -> str:
        """The cameras' model, or their models joined by ``+`` (sorted)."""
        return "+".join(sorted({c.model for c in self.cameras.values()}))


def load_take(recording: Any, meta: Any, registry: Any, fps: float | None,
              inferred_dir: Callable[[str, str], Path] | None = None) -> Take:
    """Each camera's 2D predictions, matched into the take's frames: by every camera's
    frame times on one clock (session.yaml ``cameras: {cam: {timestamps: ...}}``), else by
    frame index (equal frame counts, checked).

    Parameters
    ----------
    fps : float or None
        Frame rate (session ``fps:`` or the first camera's video); None is allowed when
        every camera has frame times (then from the reference camera's times).

    Raises
    ------
    SessionError
        Bad outputs (:func:`load_camera_predictions`); frame counts that differ without
        frame times; frame times for some cameras only, unreadable, or not one per frame.
    """
    where = f"{recording.session_yaml} (recording {recording.recording_id})"
    rig = recording_rig(recording, meta, registry)
    files = {c.camera: c.timestamps_path for c in recording.cameras}
    counts_hint = None
    if all(files.values()):  # a SLEAP .slp does not record its video's length: the times do
        counts_hint = {c: len(t) for c, t in read_camera_times(files).items()}
    cams = load_camera_predictions(recording, meta, registry, rig, counts_hint, inferred_dir)
    clock = synchronise_take({c: p.poses.shape[0] for c, p in cams.items()}, files, fps,
                             where)
    cams = {c: replace(p, times_s=clock.camera_times[c]) for c, p in cams.items()}
    poses = ({c: p.poses for c, p in cams.items()} if clock.method == "frame_index"
             else {c: take_frames(p.poses, clock.index[c]) for c, p in cams.items()})
    return Take(rig, cams, clock, poses)


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
    take: Take | None = None  # the synchronised 2D input (load_take)

    @property
    def clock(self) -> TakeClock:
        """How the cameras were matched; the take's frame times."""
        return self.take.clock

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
        """``predictions`` rows (one camera per row, each camera's own frames and frame
        times) and ``prediction_sources`` rows (one per camera) of the recording."""
        times = self.processed["time_s"].to_numpy()
        preds = camera_predictions_frame(recording_id, self.cameras, times,
                                         self.calibration.image_sizes)
        return preds, camera_prediction_sources(recording_id, self.cameras, preds)


def process_multicamera(recording: Any, meta: Any, registry: Any, *, fps: float | None,
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
    fps : float or None
        Frame rate giving the frame times (session ``fps:``, else the caller's); None
        when every camera has frame times (:func:`load_take`).
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
    take = load_take(recording, meta, registry, fps, inferred_dir)
    rig, cams, parts = take.rig, take.cameras, take.body_parts
    calibration, path = load_recording_calibration(recording, meta, rig, calibration_store)
    source = f"recording {recording.recording_id}"
    pose = triangulate_poses(calibration, take.poses, parts, source=source)
    fit = assess_calibration_fit(pose, max_error_px, calibration_source=str(path),
                                 source=source)
    method = registry.method(method_name or (meta.assignment.method if meta.assignment
                                             else "two_ears"))
    front = front_part if front_part in parts else None
    state = state_vector_3d(method, pose.points, parts, front_part=front, source=source)
    params = registry.resolve_processing(meta.tracking_type, meta.processing,
                                         str(recording.session_yaml))
    return MultiCameraResult(rig, calibration, path, cams, pose, fit, state,
                             processed_tracking_frame(state, take.clock.time_s),
                             take.model_name, params.name, params.param_hash, take)
