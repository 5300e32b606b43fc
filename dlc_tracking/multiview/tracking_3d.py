"""A multi-camera recording's rows of the single-camera tables: processed tracking from its
3D state vector, and predictions / prediction sources with one camera per row.

The house rule (docs/architecture.md): a new capability extends the existing tables with
a column rather than copying them. A multi-camera recording therefore writes
``processed_tracking`` (with ``z_cm``, ``pitch_deg``, ``roll_deg``, ``speed_3d_cm_s``) and
``predictions`` / ``prediction_sources`` (with ``camera``); single-camera recordings leave
those columns out and read them as NULL. No Dagster here: the pose_3d asset writes these
frames.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import pandas as pd

from dlc_tracking.multiview.orientation import StateVector3D
from dlc_tracking.tracking.kinematics import _derivative
from dlc_tracking.tracking.methods import TWO_PI

__all__ = ["processed_tracking_frame", "camera_predictions_frame",
           "camera_prediction_sources"]


def processed_tracking_frame(state: StateVector3D, times_s: np.ndarray) -> pd.DataFrame:
    """The ``processed_tracking`` columns (without the recording / model / method / params
    keys) of a 3D state vector.

    Positions are the triangulated ones (mm -> cm), not smoothed or interpolated: the
    triangulation's likelihood cutoff and robust camera choice are the cleaning, and a
    frame without the method's parts stays NULL (``interpolated`` is false throughout).
    Derivatives are central differences as in 2D (one-sided next to a gap).

    Parameters
    ----------
    state : StateVector3D
        ``(n_frames,)`` arrays in the world frame (x/y on the floor, z up, mm; radians).
    times_s : np.ndarray
        ``(n_frames,)`` frame times.

    Returns
    -------
    pandas.DataFrame
        ``frame, time_s, x_cm, y_cm, speed_cm_s, head_direction_deg,
        angular_head_velocity_deg_s, movement_direction_deg, interpolated, z_cm,
        pitch_deg, roll_deg, speed_3d_cm_s``; one row per frame.
    """
    t = np.asarray(times_s, dtype=np.float64)
    x, y, z = (np.asarray(v, dtype=np.float64) / 10.0 for v in (state.x_mm, state.y_mm,
                                                                 state.z_mm))
    vx, vy, vz = _derivative(x, t), _derivative(y, t), _derivative(z, t)
    moving = (vx != 0.0) | (vy != 0.0)
    with np.errstate(invalid="ignore"):
        move_dir = np.where(moving, np.degrees(np.arctan2(vy, vx)) % 360.0, np.nan)
    azimuth = np.asarray(state.azimuth_rad, dtype=np.float64)
    head_deg = np.degrees(azimuth) % 360.0
    return pd.DataFrame({
        "frame": np.arange(t.shape[0], dtype=np.int64), "time_s": t,
        "x_cm": x, "y_cm": y, "speed_cm_s": np.hypot(vx, vy),
        "head_direction_deg": np.where(head_deg >= 360.0, 0.0, head_deg),
        "angular_head_velocity_deg_s": np.degrees(_derivative(azimuth, t, period=TWO_PI)),
        "movement_direction_deg": np.where(move_dir >= 360.0, 0.0, move_dir),
        "interpolated": np.zeros(t.shape[0], dtype=bool),
        "z_cm": z, "pitch_deg": np.degrees(state.pitch_rad),
        "roll_deg": np.degrees(state.roll_rad),
        "speed_3d_cm_s": np.sqrt(vx * vx + vy * vy + vz * vz),
    })


def camera_predictions_frame(recording_id: str, cameras: Mapping[str, object],
                             times_s: np.ndarray,
                             image_sizes: Mapping[str, tuple[int, int] | None] | None = None,
                             margin_px: float = 0.5) -> pd.DataFrame:
    """``predictions`` rows of every camera: one row per camera x frame x body part.

    Parameters
    ----------
    recording_id : str
    cameras : mapping of str to CameraPredictions
        In the session's camera order (``dlc_tracking.multiview.recording``); poses
        ``(n_frames, n_parts, 3)``, body parts canonical.
    times_s : np.ndarray
        ``(n_frames,)`` frame times, for cameras without their own ``times_s`` (matched
        by frame index); a camera with ``times_s`` (frame times on the take's clock) keeps
        its own frames and times.
    image_sizes : mapping, optional
        Camera -> ``(width, height)`` px (the calibration's); ``outside_frame`` is NULL
        for a camera whose size is unknown.
    margin_px : float
        As the single-camera ``outside_frame`` (points kept as written either way).
    """
    from dlc_tracking.tracking import predictions as preds

    frames = []
    for name, cam in cameras.items():
        size = (image_sizes or {}).get(name)
        outside = (preds.outside_frame(cam.poses, size[0], size[1], margin_px)
                   if size else None)
        own = getattr(cam, "times_s", None)
        times = np.asarray(times_s if own is None else own, dtype=np.float64)
        df = preds.to_long(recording_id, cam.model, cam.poses, list(cam.body_parts), times,
                           outside)
        if outside is None:
            df["outside_frame"] = pd.array([pd.NA] * len(df), dtype="boolean")
        df["camera"] = pd.Categorical.from_codes(np.zeros(len(df), np.int8), [name])
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    for col in ("recording_id", "model_name", "body_part", "camera"):
        out[col] = out[col].astype(str)
    return out


def camera_prediction_sources(recording_id: str, cameras: Mapping[str, object],
                              predictions: pd.DataFrame) -> pd.DataFrame:
    """``prediction_sources`` rows, one per camera (its DLC outputs ingested as written;
    ``source`` says whether they were the session's files or inferred by the platform).

    Parameters
    ----------
    recording_id : str
    cameras : mapping of str to CameraPredictions
    predictions : pandas.DataFrame
        :func:`camera_predictions_frame`'s rows (for the outside-frame counts).
    """
    rows = []
    for name, cam in cameras.items():
        outside = predictions.loc[predictions["camera"] == name, "outside_frame"]
        rows.append({
            "recording_id": recording_id, "model_name": cam.model, "source": cam.source,
            "scorer": cam.scorer, "files": json.dumps(list(cam.files)),
            "rows_in_files": int(cam.poses.shape[0]), "video_frames": None,
            "rows_dropped": 0, "rows_padded": 0, "dlc_fps": None,
            "points_outside_frame": (None if outside.isna().all()
                                     else int(outside.fillna(False).sum())),
            "notes": json.dumps(["SLEAP predictions read with sleap-io; point scores as "
                                 "likelihood"] if getattr(cam, "source_format", "dlc")
                                == "sleap" else []), "camera": name})
    return pd.DataFrame(rows)
