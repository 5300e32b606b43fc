"""Raw state vectors and processed tracking (the seed's TrackingRaw / Tracking).

Two stages:

1. :func:`raw_state_vector` applies a state-vector method to DLC predictions and adds
   speed (px/s) and the arena boundary (px). Positions stay in image pixels, unflipped;
   the head angle is in the arena frame (radians, ``[0, 2 pi)``).
2. :func:`process_tracking` turns it into analysis-ready tracking: arena frame (x right,
   y up, per ``docs/conventions.md``), calibrated to cm with the origin at the
   boundary's lower-left corner, jumps removed, short gaps linearly interpolated,
   Gaussian-smoothed (NaN-aware), with speed, head direction, angular head velocity and
   movement direction. :func:`process_body_parts` applies the same cleaning to every
   body part (the seed's ``Tracking.DLCPart``).

Everything is vectorised numpy/scipy (no Python loop over frames): a one-hour 50 Hz
recording (180,000 frames x 4 body parts) goes from poses to processed tracking in about
0.1 s of CPU time, plus about 0.15 s for the per-body-part positions.

Missing data are NaN throughout. Missing stays missing: interpolation fills only gaps no
longer than ``max_gap_s``, smoothing is a normalised convolution (missing samples carry
no weight and do not pull values towards 0), and a head direction the method cannot
measure stays NaN, never faked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dlc_tracking.errors import ProcessingError
from dlc_tracking.tracking.arena import Boundary
from dlc_tracking.tracking.calibration import Calibration, calibrate
from dlc_tracking.tracking.cleaning import (
    _clean_xy,
    _rows_finite,
    _sigma_samples,
    interpolate_gaps,
    smooth_nan,
)
from dlc_tracking.tracking.kinematics import _derivative, _prefix, check_time
from dlc_tracking.tracking.methods import (
    DEFAULT_LIKELIHOOD_CUTOFF,
    TWO_PI,
    check_camera_view,
    check_frame_size,
    check_poses,
    wrap_angle_rad,
)
from dlc_tracking.tracking.params import ProcessingParams, _check_positive
from dlc_tracking.tracking.raw_state import RawStateVector

# --------------------------------------------------------------------------- processed


@dataclass(frozen=True, eq=False)
class ProcessedTracking:
    """Analysis-ready tracking of one recording (the seed's ``Tracking.OpenField``).

    Attributes
    ----------
    time_s
        Frame times (s).
    x_cm, y_cm
        Position in the arena frame (x right, y up), cm, origin at the boundary's
        lower-left corner; NaN where missing.
    speed_cm_s
        Smoothed speed (cm/s).
    head_direction_deg
        Smoothed head direction, degrees ``[0, 360)`` counter-clockwise from +x; NaN
        where unknown (always NaN for methods without head direction).
    angular_head_velocity_deg_s
        Time derivative of the head direction (deg/s, counter-clockwise positive).
    movement_direction_deg
        Direction of the smoothed velocity, degrees ``[0, 360)``; NaN where the subject
        does not move at all. Noisy at low speed: filter by ``speed_cm_s``.
    interpolated
        Frames whose position was filled by interpolation.
    jump_removed
        Frames whose position was removed as a jump (then possibly interpolated).
    params
        The processing parameters.
    calibration
        The calibration used (scale, its source, origin).
    method_name, method_hash, has_head_direction
        Provenance of the state vector.
    """

    time_s: np.ndarray
    x_cm: np.ndarray
    y_cm: np.ndarray
    speed_cm_s: np.ndarray
    head_direction_deg: np.ndarray
    angular_head_velocity_deg_s: np.ndarray
    movement_direction_deg: np.ndarray
    interpolated: np.ndarray
    jump_removed: np.ndarray
    params: ProcessingParams
    calibration: Calibration
    method_name: str
    method_hash: str
    has_head_direction: bool
    stats: dict[str, Any] = field(default_factory=dict)

    COLUMNS = (
        "frame",
        "time_s",
        "x_cm",
        "y_cm",
        "speed_cm_s",
        "head_direction_deg",
        "angular_head_velocity_deg_s",
        "movement_direction_deg",
        "interpolated",
    )

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return int(self.time_s.shape[0])

    def metadata(self) -> dict[str, Any]:
        """Parameters, calibration, provenance and counts (JSON-ready)."""
        return {
            "method_name": self.method_name,
            "method_hash": self.method_hash,
            "has_head_direction": self.has_head_direction,
            "params": self.params.to_dict(),
            "calibration": self.calibration.to_dict(),
            **self.stats,
        }

    def to_frame(self) -> pd.DataFrame:
        """DataFrame with columns :attr:`COLUMNS`; metadata in ``DataFrame.attrs``."""
        df = pd.DataFrame(
            {
                "frame": np.arange(self.n_frames, dtype=np.int64),
                "time_s": self.time_s,
                "x_cm": self.x_cm,
                "y_cm": self.y_cm,
                "speed_cm_s": self.speed_cm_s,
                "head_direction_deg": self.head_direction_deg,
                "angular_head_velocity_deg_s": self.angular_head_velocity_deg_s,
                "movement_direction_deg": self.movement_direction_deg,
                "interpolated": self.interpolated,
            }
        )
        df.attrs.update(self.metadata())
        return df


def _resolve_calibration(
    raw_boundary: Boundary,
    camera_view: str,
    frame_size: tuple[float, float],
    params: ProcessingParams,
    arena_width_cm: float | None,
    arena_height_cm: float | None,
    pixels_per_cm: float | None,
    source: str | None,
) -> Calibration:
    """Call arguments (session-specific) win over ``params``; a scale wins over a size."""
    if pixels_per_cm is not None:
        return calibrate(
            raw_boundary, camera_view, frame_size, pixels_per_cm=pixels_per_cm, source=source
        )
    if arena_width_cm is not None or arena_height_cm is not None:
        return calibrate(
            raw_boundary,
            camera_view,
            frame_size,
            arena_width_cm=arena_width_cm,
            arena_height_cm=arena_height_cm,
            source=source,
        )
    return calibrate(
        raw_boundary,
        camera_view,
        frame_size,
        pixels_per_cm=params.pixels_per_cm,
        arena_width_cm=params.arena_width_cm,
        arena_height_cm=params.arena_height_cm,
        source=source,
    )


def process_tracking(
    raw: RawStateVector,
    params: ProcessingParams | None = None,
    arena_width_cm: float | None = None,
    arena_height_cm: float | None = None,
    pixels_per_cm: float | None = None,
    *,
    calibration: Calibration | None = None,
    head_perpendicular: bool = True,
    source: str | None = None,
) -> ProcessedTracking:
    """Calibrate, clean, smooth and derive kinematics from a raw state vector.

    Steps: image -> arena frame (camera view, frame size); px -> cm with the origin at
    the boundary's lower-left corner; jump removal (``max_speed_cm_s``, relative to the
    last good point; the head angle of a removed frame is removed too); linear
    interpolation of gaps up to ``max_gap_s`` (head direction through its unit vector);
    NaN-aware Gaussian smoothing of position; speed and movement direction from the
    smoothed position by central differences, then smoothing of the speed; circular
    smoothing of head direction (unit vectors, renormalised) and angular head velocity
    from it.

    Parameters
    ----------
    raw
        Raw state vector.
    params
        Processing parameters (default :class:`ProcessingParams`).
    arena_width_cm, arena_height_cm, pixels_per_cm
        Session-specific calibration; override ``params``. A scale wins over an arena
        size. The choice is recorded in ``result.calibration.source``.
    calibration
        A ready calibration (e.g. :func:`~dlc_tracking.tracking.calibration.calibrate_from_arena`
        from the arena's outline); wins over the three above.
    head_perpendicular
        The method's heading is perpendicular to its body parts (two ears), not along
        them; matters only for a calibration whose x and y scales differ.
    source
        File or recording named in error messages.

    Returns
    -------
    ProcessedTracking

    Raises
    ------
    ProcessingError
        When no calibration is available or the input is inconsistent.
    """
    if not isinstance(raw, RawStateVector):
        raise ProcessingError(
            f"{_prefix(source)}process_tracking needs a RawStateVector, got "
            f"{type(raw).__name__}; build it with raw_state_vector()."
        )
    params = ProcessingParams() if params is None else params
    if not isinstance(params, ProcessingParams):
        raise ProcessingError(
            f"{_prefix(source)}params must be ProcessingParams, got {type(params).__name__}; "
            "use ProcessingParams.from_dict()."
        )
    t = raw.time_s
    cal = calibration if calibration is not None else _resolve_calibration(
        raw.boundary,
        raw.camera_view,
        raw.frame_size,
        params,
        arena_width_cm,
        arena_height_cm,
        pixels_per_cm,
        source,
    )
    x, y = cal.to_cm(raw.x_px, raw.y_px)
    missing_raw = ~(np.isfinite(x) & np.isfinite(y))
    x, y, removed, interpolated = _clean_xy(t, x, y, params)

    # head direction: drop jump frames, interpolate the unit vector, smooth circularly
    head = cal.direction_to_cm(raw.head_angle_rad, perpendicular=head_perpendicular)
    head[removed] = np.nan
    has_head = bool(np.isfinite(head).any())
    if has_head:
        uv = np.column_stack((np.cos(head), np.sin(head)))
        uv, _ = interpolate_gaps(t, uv, params.max_gap_s)
        uv = smooth_nan(uv, _sigma_samples(params.sigma_head_s, t))
        head_rad = wrap_angle_rad(np.arctan2(uv[:, 1], uv[:, 0]))
        head_rad[~_rows_finite(uv)] = np.nan
        head_deg = np.degrees(head_rad)
        head_deg[head_deg >= 360.0] = 0.0
        ahv = np.degrees(_derivative(head_rad, t, period=TWO_PI))
    else:
        head_deg = np.full(t.shape, np.nan)
        ahv = np.full(t.shape, np.nan)

    xy = smooth_nan(np.column_stack((x, y)), _sigma_samples(params.sigma_position_s, t))
    xs, ys = np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1])
    vx, vy = _derivative(xs, t), _derivative(ys, t)
    spd = smooth_nan(np.hypot(vx, vy), _sigma_samples(params.sigma_speed_s, t))
    moving = (vx != 0.0) | (vy != 0.0)
    move_dir = np.where(moving, np.degrees(wrap_angle_rad(np.arctan2(vy, vx))), np.nan)
    move_dir[move_dir >= 360.0] = 0.0

    stats = {
        "n_frames": int(t.shape[0]),
        "n_missing_raw": int(missing_raw.sum()),
        "n_jumps_removed": int(removed.sum()),
        "n_interpolated": int(interpolated.sum()),
        "n_missing": int((~np.isfinite(xs)).sum()),
        "n_head_direction_missing": int(np.isnan(head_deg).sum()),
    }
    return ProcessedTracking(
        time_s=t.copy(),
        x_cm=xs,
        y_cm=ys,
        speed_cm_s=spd,
        head_direction_deg=head_deg,
        angular_head_velocity_deg_s=ahv,
        movement_direction_deg=move_dir,
        interpolated=interpolated,
        jump_removed=removed,
        params=params,
        calibration=cal,
        method_name=raw.method_name,
        method_hash=raw.method_hash,
        has_head_direction=raw.has_head_direction,
        stats=stats,
    )


def process_body_parts(
    poses: np.ndarray,
    body_parts: Sequence[str],
    time_s: np.ndarray,
    camera_view: str,
    frame_size: Sequence[float],
    calibration: Calibration,
    params: ProcessingParams | None = None,
    likelihood_cutoff: float = DEFAULT_LIKELIHOOD_CUTOFF,
    *,
    source: str | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Processed positions of every body part (the seed's ``Tracking.DLCPart``).

    Each part gets the state vector's treatment: points below ``likelihood_cutoff``
    become missing, image -> arena frame -> cm with ``calibration`` (use the processed
    tracking's, so parts and subject share one frame), jump removal, interpolation up to
    ``max_gap_s`` and smoothing with ``sigma_position_s``.

    Parameters
    ----------
    poses, body_parts, time_s, camera_view, frame_size
        As for :func:`raw_state_vector`.
    calibration
        Calibration to use (e.g. ``ProcessedTracking.calibration``); its camera view and
        frame size must match.
    params
        Processing parameters (default :class:`ProcessingParams`).
    likelihood_cutoff
        Likelihood below which a point is missing (use the method's cutoff).

    Returns
    -------
    dict
        ``{body_part: (x_cm, y_cm)}`` in the order of ``body_parts``.

    Raises
    ------
    ProcessingError
        On bad input or a calibration made for another view or frame size.
    """
    view = check_camera_view(camera_view, source)
    size = check_frame_size(frame_size, source)
    arr, names = check_poses(poses, body_parts, source)
    t = check_time(time_s, arr.shape[0], source)
    params = ProcessingParams() if params is None else params
    if not isinstance(calibration, Calibration):
        raise ProcessingError(
            f"{_prefix(source)}calibration must be a Calibration (e.g. the processed "
            f"tracking's), got {type(calibration).__name__}."
        )
    if calibration.camera_view != view or calibration.frame_size != size:
        raise ProcessingError(
            f"{_prefix(source)}the calibration was made for camera {calibration.camera_view!r}"
            f" and frame size {calibration.frame_size}, but the body parts are for "
            f"{view!r} and {size}; use the calibration of the same recording."
        )
    cut = _check_positive("likelihood_cutoff", likelihood_cutoff, allow_none=False, allow_zero=True)
    if cut > 1:
        raise ProcessingError(f"likelihood_cutoff {cut} must be in [0, 1].")
    sigma = _sigma_samples(params.sigma_position_s, t)
    with np.errstate(invalid="ignore"):
        present = np.isfinite(arr[:, :, 0]) & np.isfinite(arr[:, :, 1]) & (arr[:, :, 2] >= cut)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for j, name in enumerate(names):
        px = np.where(present[:, j], arr[:, j, 0], np.nan)
        py = np.where(present[:, j], arr[:, j, 1], np.nan)
        x, y = calibration.to_cm(px, py)
        x, y, _, _ = _clean_xy(t, x, y, params)
        xy = smooth_nan(np.column_stack((x, y)), sigma)
        out[name] = (xy[:, 0].copy(), xy[:, 1].copy())
    return out


def body_parts_to_frame(
    parts: Mapping[str, tuple[np.ndarray, np.ndarray]], time_s: np.ndarray
) -> pd.DataFrame:
    """Long table ``frame, time_s, body_part, x_cm, y_cm`` of :func:`process_body_parts`."""
    t = np.asarray(time_s, dtype=np.float64)
    n = t.shape[0]
    frames = []
    for name, (x, y) in parts.items():
        frames.append(
            pd.DataFrame(
                {
                    "frame": np.arange(n, dtype=np.int64),
                    "time_s": t,
                    "body_part": name,
                    "x_cm": np.asarray(x, dtype=np.float64),
                    "y_cm": np.asarray(y, dtype=np.float64),
                }
            )
        )
    if not frames:
        return pd.DataFrame(
            {
                "frame": pd.Series(dtype=np.int64),
                "time_s": pd.Series(dtype=np.float64),
                "body_part": pd.Series(dtype=object),
                "x_cm": pd.Series(dtype=np.float64),
                "y_cm": pd.Series(dtype=np.float64),
            }
        )
    return pd.concat(frames, ignore_index=True)
