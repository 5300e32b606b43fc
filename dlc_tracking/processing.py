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

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter1d

from dlc_tracking.errors import ProcessingError
from dlc_tracking.methods import (
    DEFAULT_LIKELIHOOD_CUTOFF,
    TWO_PI,
    StateVectorMethod,
    check_camera_view,
    check_frame_size,
    check_poses,
    compute_state_vector,
    image_to_arena,
    short_hash,
    wrap_angle_rad,
)

#: Calibration sources recorded in :class:`Calibration`.
CALIBRATION_SOURCES: tuple[str, ...] = (
    "pixels_per_cm",
    "arena_width",
    "arena_height",
    "arena_size",
)


def _prefix(source: str | None) -> str:
    return f"{source}: " if source else ""


def check_time(time_s: Any, n_frames: int | None = None, source: str | None = None) -> np.ndarray:
    """Validate frame times: 1-D, finite, strictly increasing, one per frame.

    Raises
    ------
    ProcessingError
        When the times are not usable (the message says what is wrong).
    """
    try:
        t = np.asarray(time_s, dtype=np.float64)
    except (TypeError, ValueError):
        raise ProcessingError(f"{_prefix(source)}time_s must be numeric seconds.") from None
    if t.ndim != 1:
        raise ProcessingError(
            f"{_prefix(source)}time_s has shape {t.shape}; give one time (s) per frame."
        )
    if n_frames is not None and t.shape[0] != n_frames:
        raise ProcessingError(
            f"{_prefix(source)}time_s has {t.shape[0]} values for {n_frames} frames; the "
            "timestamps and the predictions must cover the same frames (check the "
            "timestamp file or the fps)."
        )
    if not np.all(np.isfinite(t)):
        raise ProcessingError(
            f"{_prefix(source)}time_s contains NaN or infinite values; fix the timestamp file."
        )
    if t.shape[0] > 1 and not np.all(np.diff(t) > 0):
        bad = int(np.argmax(np.diff(t) <= 0)) + 1
        raise ProcessingError(
            f"{_prefix(source)}time_s is not strictly increasing (frame {bad}: "
            f"{t[bad - 1]!r} -> {t[bad]!r}); fix the timestamp file."
        )
    return t


# --------------------------------------------------------------------------- kinematics


def _derivative(values: np.ndarray, time_s: np.ndarray, period: float | None = None) -> np.ndarray:
    """NaN-aware first derivative by central differences.

    Where both neighbours exist this equals ``np.gradient(values, time_s)`` (second-order
    formula on non-uniform times); where one neighbour is missing the one-sided difference
    is used; where the sample itself is missing the result is NaN. With ``period``,
    differences are wrapped into ``[-period/2, period/2)`` (angles).
    """
    v = np.asarray(values, dtype=np.float64)
    n = v.shape[0]
    out = np.full(n, np.nan)
    if n < 2:
        return out
    dt = np.diff(time_s)
    dv = np.diff(v)
    if period is not None:
        dv = np.mod(dv + 0.5 * period, period) - 0.5 * period
    slope = dv / dt
    fwd = np.empty(n)
    fwd[:-1] = slope
    fwd[-1] = np.nan
    bwd = np.empty(n)
    bwd[1:] = slope
    bwd[0] = np.nan
    h_f = np.empty(n)
    h_f[:-1] = dt
    h_f[-1] = np.nan
    h_b = np.empty(n)
    h_b[1:] = dt
    h_b[0] = np.nan
    central = (h_b * fwd + h_f * bwd) / (h_b + h_f)
    out = np.where(np.isnan(central), np.where(np.isnan(fwd), bwd, fwd), central)
    out[np.isnan(v)] = np.nan
    return out


def speed(x: np.ndarray, y: np.ndarray, time_s: np.ndarray) -> np.ndarray:
    """Speed by central differences, NaN-aware.

    Parameters
    ----------
    x, y
        Positions (any unit; the speed is in that unit per second), NaN where missing.
    time_s
        Frame times in seconds, strictly increasing.

    Returns
    -------
    np.ndarray
        ``hypot(dx/dt, dy/dt)``; equals ``np.gradient`` with the times where both
        neighbours exist, falls back to a one-sided difference next to a missing sample,
        NaN where the position is missing (or isolated).
    """
    t = check_time(time_s)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != t.shape or y.shape != t.shape:
        raise ProcessingError(
            f"x {x.shape}, y {y.shape} and time_s {t.shape} must have the same length."
        )
    ok = np.isfinite(x) & np.isfinite(y)  # a point is missing when either coordinate is
    if not ok.all():
        x, y = np.where(ok, x, np.nan), np.where(ok, y, np.nan)
    return np.hypot(_derivative(x, t), _derivative(y, t))


# --------------------------------------------------------------------------- boundary


@dataclass(frozen=True)
class Boundary:
    """Arena boundary in image pixels.

    Image coordinates have y pointing **down**, so ``top`` is the smaller y (the upper
    edge of the image) and ``bottom`` the larger y. ``left``/``right`` are the smaller and
    larger image x (for a camera below the arena, the image's left is the arena's right).
    """

    left: float
    right: float
    top: float
    bottom: float

    @property
    def width(self) -> float:
        """``right - left`` in pixels."""
        return self.right - self.left

    @property
    def height(self) -> float:
        """``bottom - top`` in pixels."""
        return self.bottom - self.top

    def to_dict(self) -> dict[str, float]:
        """Plain dict of the four edges."""
        return asdict(self)


def arena_boundary(
    x: np.ndarray,
    y: np.ndarray,
    *,
    lower_percentile: float = 0.5,
    upper_percentile: float = 99.5,
    source: str | None = None,
) -> Boundary:
    """Robust extent of the tracked positions (image pixels).

    Percentiles instead of min/max so that a few outliers (reflections, mislabelled
    frames) do not stretch the arena. NaN positions are ignored.

    Parameters
    ----------
    x, y
        Positions in image pixels.
    lower_percentile, upper_percentile
        Percentiles (0-100) taken as the edges; default 0.5 / 99.5.

    Returns
    -------
    Boundary
        ``left``/``right`` from x, ``top`` (smaller y) / ``bottom`` (larger y) from y.

    Raises
    ------
    ProcessingError
        When no frame has a position, or the percentiles are invalid.
    """
    if not (0.0 <= lower_percentile < upper_percentile <= 100.0):
        raise ProcessingError(
            f"percentiles ({lower_percentile}, {upper_percentile}) must satisfy "
            "0 <= lower < upper <= 100."
        )
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        raise ProcessingError(
            f"{_prefix(source)}no frame has a position, so the arena boundary cannot be "
            "estimated; check the predictions (likelihoods) or lower the method's "
            "likelihood cutoff."
        )
    qs = [lower_percentile, upper_percentile]
    left, right = np.percentile(x[ok], qs)
    top, bottom = np.percentile(y[ok], qs)
    return Boundary(float(left), float(right), float(top), float(bottom))


# --------------------------------------------------------------------------- raw


@dataclass(frozen=True, eq=False)
class RawStateVector:
    """Raw state vector of one recording (the seed's ``TrackingRaw.OpenField``).

    Attributes
    ----------
    time_s
        Frame times (s).
    x_px, y_px
        Subject position, image pixels, unflipped; NaN where unknown.
    head_angle_rad
        Head direction in the arena frame, radians ``[0, 2 pi)``; NaN where unknown.
    speed_px_s
        Speed of ``(x_px, y_px)`` by central differences (px/s).
    valid
        All body parts of the method above the likelihood cutoff.
    boundary
        Arena boundary (image pixels), see :func:`arena_boundary`.
    camera_view, frame_size
        ``"above"``/``"below"`` and ``(width, height)`` in pixels.
    method_name, method_hash
        The state-vector method and its ``param_hash``.
    has_head_direction
        Whether the method measures head direction.
    """

    time_s: np.ndarray
    x_px: np.ndarray
    y_px: np.ndarray
    head_angle_rad: np.ndarray
    speed_px_s: np.ndarray
    valid: np.ndarray
    boundary: Boundary
    camera_view: str
    frame_size: tuple[float, float]
    method_name: str
    method_hash: str
    has_head_direction: bool = True

    def __post_init__(self) -> None:
        t = check_time(self.time_s)
        n = t.shape[0]
        object.__setattr__(self, "time_s", t)
        for name in ("x_px", "y_px", "head_angle_rad", "speed_px_s"):
            arr = np.asarray(getattr(self, name), dtype=np.float64)
            if arr.shape != (n,):
                raise ProcessingError(
                    f"RawStateVector.{name} has shape {arr.shape}; expected ({n},) like time_s."
                )
            object.__setattr__(self, name, arr)
        valid = np.asarray(self.valid, dtype=bool)
        if valid.shape != (n,):
            raise ProcessingError(f"RawStateVector.valid has shape {valid.shape}; expected ({n},).")
        object.__setattr__(self, "valid", valid)
        object.__setattr__(self, "camera_view", check_camera_view(self.camera_view))
        object.__setattr__(self, "frame_size", check_frame_size(self.frame_size))

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return int(self.time_s.shape[0])

    def metadata(self) -> dict[str, Any]:
        """Provenance and summary (JSON-ready)."""
        return {
            "method_name": self.method_name,
            "method_hash": self.method_hash,
            "has_head_direction": self.has_head_direction,
            "camera_view": self.camera_view,
            "frame_size": list(self.frame_size),
            "boundary_px": self.boundary.to_dict(),
            "n_frames": self.n_frames,
            "n_valid": int(self.valid.sum()),
            "fraction_valid": float(self.valid.mean()) if self.n_frames else 0.0,
        }

    def to_frame(self) -> pd.DataFrame:
        """Columns ``frame, time_s, x_px, y_px, head_angle_rad, speed_px_s, valid``.

        The metadata (boundary, method, view) is in ``DataFrame.attrs``.
        """
        df = pd.DataFrame(
            {
                "frame": np.arange(self.n_frames, dtype=np.int64),
                "time_s": self.time_s,
                "x_px": self.x_px,
                "y_px": self.y_px,
                "head_angle_rad": self.head_angle_rad,
                "speed_px_s": self.speed_px_s,
                "valid": self.valid,
            }
        )
        df.attrs.update(self.metadata())
        return df


def raw_state_vector(
    method: StateVectorMethod,
    poses: np.ndarray,
    body_parts: Sequence[str],
    time_s: np.ndarray,
    camera_view: str,
    frame_size: Sequence[float],
    *,
    source: str | None = None,
) -> RawStateVector:
    """Apply ``method`` and add speed (px/s) and the arena boundary (px).

    Parameters
    ----------
    method
        State-vector method.
    poses
        ``(n_frames, n_parts, 3)`` image-coordinate predictions.
    body_parts
        Names of axis 1 of ``poses``.
    time_s
        Frame times (s), strictly increasing, one per frame.
    camera_view
        ``"above"`` or ``"below"``.
    frame_size
        ``(width, height)`` in pixels.
    source
        File or recording named in error messages.

    Returns
    -------
    RawStateVector

    Raises
    ------
    ProcessingError
        On bad input (see :func:`~dlc_tracking.methods.compute_state_vector`), bad
        times, or when no frame has a position.
    """
    sv = compute_state_vector(method, poses, body_parts, camera_view, frame_size, source=source)
    t = check_time(time_s, sv.n_frames, source)
    boundary = arena_boundary(sv.x_px, sv.y_px, source=source)
    return RawStateVector(
        time_s=t,
        x_px=sv.x_px,
        y_px=sv.y_px,
        head_angle_rad=sv.head_angle_rad,
        speed_px_s=speed(sv.x_px, sv.y_px, t),
        valid=sv.valid,
        boundary=boundary,
        camera_view=sv.camera_view,
        frame_size=sv.frame_size,
        method_name=sv.method_name,
        method_hash=sv.method_hash,
        has_head_direction=method.has_head_direction,
    )


# --------------------------------------------------------------------------- params


def _check_positive(name: str, value: Any, *, allow_none: bool, allow_zero: bool) -> Any:
    if value is None and allow_none:
        return None
    ok = (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(float(value))
        and (float(value) >= 0 if allow_zero else float(value) > 0)
    )
    if not ok:
        need = ">= 0" if allow_zero else "> 0"
        none = " or None" if allow_none else ""
        raise ProcessingError(
            f"processing parameter {name}={value!r} must be a finite number {need}{none}."
        )
    return float(value)


@dataclass(frozen=True)
class ProcessingParams:
    """Parameters of :func:`process_tracking` (the seed's ``TrackingParams``).

    Parameters
    ----------
    name
        Name of the parameter set (not part of ``param_hash``).
    pixels_per_cm
        Fixed calibration; None = derive it from the arena size and the boundary.
    arena_width_cm, arena_height_cm
        Arena size (cm) along the arena frame's x and y, used when ``pixels_per_cm`` is
        None: px/cm = boundary extent / arena size (BNT scales the tracked range to the
        arena size the same way). With both, the mean of the two is used.
    max_speed_cm_s
        Jump removal: a point implying a speed above this relative to the last good
        point becomes missing. 100 cm/s: above a mouse's or rat's top running speed in an
        open field (BNT uses 150 cm/s for rats), well below the speed implied by a
        mislabelled frame (a few cm in one 20-25 ms frame). None = no jump removal.
    max_gap_s
        Linear interpolation across gaps whose bracketing good samples are at most this
        far apart (s); longer gaps stay missing. 1 s as in BNT (which interpolates gaps up
        to 1 s). 0 = no interpolation.
    sigma_position_s, sigma_speed_s, sigma_head_s
        Gaussian smoothing (standard deviation, s) of position, speed and head direction
        (circular: of the unit vectors). 0 = none. Default 0.1 s each:

        - position: BNT smooths with a 0.5 s LOWESS/median window; a tricube kernel of
          half-width 0.25 s has a standard deviation of about 0.1 s. A Gaussian of
          s.d. sigma damps a movement of frequency f by exp(-(2 pi f sigma)**2 / 2): at
          0.1 s, 1 Hz movement keeps 82 % of its amplitude while frame-to-frame DLC
          jitter (near the Nyquist frequency) is removed.
        - speed: computed from the smoothed position, then smoothed again, so the
          velocity sees about sqrt(0.1**2 + 0.1**2) = 0.14 s, close to the 0.8 s LOESS
          (tricube half-width 0.4 s, s.d. about 0.15 s) of BNT and the Moser pipeline.
        - head direction: 0.1 s keeps 82 % of a 1 Hz head scan and 45 % of a 2 Hz one;
          opexebo's 0.4 s default would keep 4 % of a 1 Hz scan, flattening the angular
          head velocity that head-direction analyses bin.

        Smaller values (spyglass averages over only 0.05 s) are fine for clean data.
    """

    name: str = "default"
    pixels_per_cm: float | None = None
    arena_width_cm: float | None = None
    arena_height_cm: float | None = None
    max_speed_cm_s: float | None = 100.0
    max_gap_s: float = 1.0
    sigma_position_s: float = 0.1
    sigma_speed_s: float = 0.1
    sigma_head_s: float = 0.1

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ProcessingError(f"processing parameter set name {self.name!r} must be text.")
        spec = {
            "pixels_per_cm": (True, False),
            "arena_width_cm": (True, False),
            "arena_height_cm": (True, False),
            "max_speed_cm_s": (True, False),
            "max_gap_s": (False, True),
            "sigma_position_s": (False, True),
            "sigma_speed_s": (False, True),
            "sigma_head_s": (False, True),
        }
        for key, (allow_none, allow_zero) in spec.items():
            value = _check_positive(
                key, getattr(self, key), allow_none=allow_none, allow_zero=allow_zero
            )
            object.__setattr__(self, key, value)

    def _hashed(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "name"}

    @property
    def param_hash(self) -> str:
        """Stable 16-hex-digit hash of every parameter except ``name``."""
        return short_hash(self._hashed())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, with ``param_hash``."""
        return {"name": self.name, **self._hashed(), "param_hash": self.param_hash}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProcessingParams:
        """Inverse of :meth:`to_dict`; a stale ``param_hash`` is refused.

        Raises
        ------
        ProcessingError
            On unknown keys, bad values or a stale hash.
        """
        if not isinstance(data, Mapping):
            raise ProcessingError(
                f"processing parameters must be a mapping, got {type(data).__name__}."
            )
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - allowed - {"param_hash"})
        if unknown:
            raise ProcessingError(
                f"processing parameters {data.get('name', '<unnamed>')!r}: unknown keys "
                f"{unknown}; allowed keys are {sorted(allowed)}."
            )
        params = cls(**{k: v for k, v in data.items() if k in allowed})
        if "param_hash" in data and data["param_hash"] != params.param_hash:
            raise ProcessingError(
                f"processing parameters {params.name!r}: recorded param_hash "
                f"{data['param_hash']!r} does not match the values ({params.param_hash!r}); "
                "the set was edited: register it under a new name or drop the stale hash."
            )
        return params


# --------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class Calibration:
    """Pixel -> cm calibration and the arena-frame origin.

    ``x_cm = (X - origin_x_px) / pixels_per_cm`` and likewise for y, where ``(X, Y)`` are
    arena-frame pixels (:func:`~dlc_tracking.methods.image_to_arena`). The origin is the
    boundary's lower-left corner in the arena frame.

    Attributes
    ----------
    pixels_per_cm
        The scale used.
    source
        ``"pixels_per_cm"`` (given), ``"arena_width"``, ``"arena_height"`` or
        ``"arena_size"`` (both, mean of the two).
    origin_x_px, origin_y_px
        Arena-frame pixel coordinates of the origin.
    camera_view, frame_size
        View and ``(width, height)`` of the image frame.
    boundary
        The boundary (image pixels) that set the origin (and the scale, from arena size).
    arena_width_cm, arena_height_cm
        Arena size used (None when not used).
    pixels_per_cm_x, pixels_per_cm_y
        Scale implied by the width and by the height (None when not computed); a large
        difference means the animal did not cover the arena evenly or the size is wrong.
    """

    pixels_per_cm: float
    source: str
    origin_x_px: float
    origin_y_px: float
    camera_view: str
    frame_size: tuple[float, float]
    boundary: Boundary
    arena_width_cm: float | None = None
    arena_height_cm: float | None = None
    pixels_per_cm_x: float | None = None
    pixels_per_cm_y: float | None = None

    def to_cm(self, x_px: np.ndarray, y_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Image pixels -> arena-frame cm (origin at the boundary's lower-left corner)."""
        big_x, big_y = image_to_arena(x_px, y_px, self.camera_view, self.frame_size)
        return (
            (big_x - self.origin_x_px) / self.pixels_per_cm,
            (big_y - self.origin_y_px) / self.pixels_per_cm,
        )

    @property
    def arena_extent_cm(self) -> tuple[float, float]:
        """Boundary width and height in cm."""
        return (self.boundary.width / self.pixels_per_cm, self.boundary.height / self.pixels_per_cm)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        d = asdict(self)
        d["frame_size"] = list(self.frame_size)
        d["boundary_px"] = d.pop("boundary")
        d["boundary_extent_cm"] = list(self.arena_extent_cm)
        return d


def calibrate(
    boundary: Boundary,
    camera_view: str,
    frame_size: Sequence[float],
    *,
    pixels_per_cm: float | None = None,
    arena_width_cm: float | None = None,
    arena_height_cm: float | None = None,
    source: str | None = None,
) -> Calibration:
    """Build the calibration: scale from ``pixels_per_cm`` or from the arena size.

    Parameters
    ----------
    boundary
        Arena boundary in image pixels.
    camera_view, frame_size
        As for the state vector.
    pixels_per_cm
        Fixed scale; wins over the arena size.
    arena_width_cm, arena_height_cm
        Arena size along the arena frame's x and y; px/cm = boundary width / width
        (resp. height / height), the mean when both are given.

    Returns
    -------
    Calibration

    Raises
    ------
    ProcessingError
        When neither a scale nor an arena size is given, or the boundary has no extent.
    """
    view = check_camera_view(camera_view, source)
    size = check_frame_size(frame_size, source)
    width_px, height_px = size
    ppcm_x = ppcm_y = None
    if pixels_per_cm is not None:
        ppcm = _check_positive("pixels_per_cm", pixels_per_cm, allow_none=False, allow_zero=False)
        kind = "pixels_per_cm"
        arena_width_cm = arena_height_cm = None
    else:
        if arena_width_cm is None and arena_height_cm is None:
            raise ProcessingError(
                f"{_prefix(source)}no calibration: give pixels_per_cm, or the arena size "
                "(arena_width_cm / arena_height_cm) in session.yaml or the processing "
                "parameters."
            )
        if arena_width_cm is not None:
            w_cm = _check_positive(
                "arena_width_cm", arena_width_cm, allow_none=False, allow_zero=False
            )
            if boundary.width <= 0:
                raise ProcessingError(
                    f"{_prefix(source)}the tracked positions have no horizontal extent "
                    f"(boundary {boundary.to_dict()}); cannot calibrate by arena width: give "
                    "pixels_per_cm."
                )
            ppcm_x = boundary.width / w_cm
            arena_width_cm = w_cm
        if arena_height_cm is not None:
            h_cm = _check_positive(
                "arena_height_cm", arena_height_cm, allow_none=False, allow_zero=False
            )
            if boundary.height <= 0:
                raise ProcessingError(
                    f"{_prefix(source)}the tracked positions have no vertical extent "
                    f"(boundary {boundary.to_dict()}); cannot calibrate by arena height: "
                    "give pixels_per_cm."
                )
            ppcm_y = boundary.height / h_cm
            arena_height_cm = h_cm
        if ppcm_x is not None and ppcm_y is not None:
            ppcm, kind = 0.5 * (ppcm_x + ppcm_y), "arena_size"
        elif ppcm_x is not None:
            ppcm, kind = ppcm_x, "arena_width"
        else:
            ppcm, kind = ppcm_y, "arena_height"
    # lower-left corner in the arena frame: smallest X and smallest Y (Y = H - y_image)
    origin_x = boundary.left if view == "above" else width_px - boundary.right
    origin_y = height_px - boundary.bottom
    return Calibration(
        pixels_per_cm=float(ppcm),
        source=kind,
        origin_x_px=float(origin_x),
        origin_y_px=float(origin_y),
        camera_view=view,
        frame_size=size,
        boundary=boundary,
        arena_width_cm=arena_width_cm,
        arena_height_cm=arena_height_cm,
        pixels_per_cm_x=ppcm_x,
        pixels_per_cm_y=ppcm_y,
    )


# --------------------------------------------------------------------------- cleaning


def _jump_keep(t: np.ndarray, x: np.ndarray, y: np.ndarray, max_speed: float) -> np.ndarray:
    """Which of the (all finite) samples survive jump removal.

    Sequential rule: a sample is kept if the speed from the last kept sample to it is at
    most ``max_speed``. Run in O(n) numpy plus a loop over *segments* (maximal runs whose
    consecutive steps are all below the limit), not over frames: inside a segment, once
    one sample is kept all following ones are, so only the first acceptable sample of
    each segment is searched (scalar code for short segments, numpy for long ones). The
    anchor is the longest segment (so a recording that starts on an outlier is not
    judged against it); the rule runs forward from its end and backward from its start.
    """
    n = t.shape[0]
    keep = np.zeros(n, dtype=bool)
    if n == 0:
        return keep
    step = np.hypot(np.diff(x), np.diff(y)) / np.diff(t)
    breaks = np.flatnonzero(step > max_speed) + 1
    if breaks.size == 0:
        keep[:] = True
        return keep
    starts = np.concatenate(([0], breaks)).tolist()
    ends = np.concatenate((breaks, [n])).tolist()
    k = int(np.argmax(np.subtract(ends, starts)))
    keep[starts[k] : ends[k]] = True
    ti, xi, yi = t.item, x.item, y.item  # scalar access without numpy scalars
    hypot = math.hypot

    def first_ok(s: int, e: int, g: int, forward: bool) -> int:
        """First sample of [s, e) (walking away from the anchor) near enough to g; -1."""
        gt, gx, gy = ti(g), xi(g), yi(g)
        if e - s <= 16:  # spikes are short: scalar code beats numpy's call overhead
            for i in range(s, e) if forward else range(e - 1, s - 1, -1):
                if hypot(xi(i) - gx, yi(i) - gy) / abs(ti(i) - gt) <= max_speed:
                    return i
            return -1
        i = s if forward else e - 1  # the usual case: the segment's end of the jump is fine
        if hypot(xi(i) - gx, yi(i) - gy) / abs(ti(i) - gt) <= max_speed:
            return i
        ok = np.hypot(x[s:e] - gx, y[s:e] - gy) / np.abs(t[s:e] - gt) <= max_speed
        if not ok.any():
            return -1
        return s + int(np.argmax(ok)) if forward else e - 1 - int(np.argmax(ok[::-1]))

    g = ends[k] - 1  # forward from the anchor's end
    for s, e in zip(starts[k + 1 :], ends[k + 1 :], strict=True):
        i = first_ok(s, e, g, True)
        if i >= 0:
            keep[i:e] = True
            g = e - 1
    g = starts[k]  # backward from the anchor's start
    for s, e in zip(starts[:k][::-1], ends[:k][::-1], strict=True):
        i = first_ok(s, e, g, False)
        if i >= 0:
            keep[s : i + 1] = True
            g = s
    return keep


def remove_jumps(
    time_s: np.ndarray, x: np.ndarray, y: np.ndarray, max_speed: float | None
) -> np.ndarray:
    """Mask of samples removed as jumps (True = removed).

    A sample is removed when the speed it implies relative to the last good sample
    exceeds ``max_speed`` (same units as ``x``, ``y`` per second). NaN samples are never
    flagged. ``max_speed`` None disables the removal.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    removed = np.zeros(x.shape[0], dtype=bool)
    if max_speed is None:
        return removed
    ok = np.isfinite(x) & np.isfinite(y)
    idx = np.flatnonzero(ok)
    keep = _jump_keep(np.asarray(time_s, dtype=np.float64)[idx], x[idx], y[idx], float(max_speed))
    removed[idx[~keep]] = True
    return removed


def _rows_finite(v2: np.ndarray) -> np.ndarray:
    """Rows of an (n, k) array whose columns are all finite (fast for small k)."""
    ok = np.isfinite(v2[:, 0])
    for j in range(1, v2.shape[1]):
        ok &= np.isfinite(v2[:, j])
    return ok


def _fillable(time_s: np.ndarray, ok: np.ndarray, max_gap_s: float) -> np.ndarray:
    """Missing samples inside gaps whose bracketing good samples are <= max_gap_s apart."""
    n = ok.shape[0]
    if max_gap_s <= 0 or ok.all() or not ok.any():
        return np.zeros(n, dtype=bool)
    idx = np.arange(n)
    prev = np.maximum.accumulate(np.where(ok, idx, -1))
    nxt = np.minimum.accumulate(np.where(ok, idx, n)[::-1])[::-1]
    inside = ~ok & (prev >= 0) & (nxt < n)
    span = time_s[np.minimum(nxt, n - 1)] - time_s[np.maximum(prev, 0)]
    return inside & (span <= max_gap_s * (1 + 1e-9))


def interpolate_gaps(
    time_s: np.ndarray, values: np.ndarray, max_gap_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Linearly interpolate NaN gaps of 1-D or (n, k) ``values`` up to ``max_gap_s``.

    A gap's length is the time between the good samples that bracket it. Leading and
    trailing gaps are never filled (no extrapolation). For ``(n, k)`` input a row is good
    when all its columns are finite.

    Returns
    -------
    filled : np.ndarray
        Copy of ``values`` with the short gaps filled.
    interpolated : np.ndarray of bool
        Rows that were filled.
    """
    t = np.asarray(time_s, dtype=np.float64)
    v = np.array(values, dtype=np.float64)
    v2 = v.reshape(v.shape[0], -1)
    ok = _rows_finite(v2)
    fill = _fillable(t, ok, max_gap_s)
    if fill.any():
        tf, tk = t[fill], t[ok]
        for j in range(v2.shape[1]):
            v2[fill, j] = np.interp(tf, tk, v2[ok, j])
    return v2.reshape(v.shape), fill


def smooth_nan(values: np.ndarray, sigma_samples: float) -> np.ndarray:
    """NaN-aware Gaussian smoothing along axis 0 (normalised convolution).

    ``G*(v w) / G*w`` with ``w`` = 1 where finite, 0 where missing: missing samples carry
    no weight (nothing is pulled towards 0), edges use only the data that exist, and
    samples that were missing stay NaN. For ``(n, k)`` input, rows are missing when any
    column is.
    """
    v = np.asarray(values, dtype=np.float64)
    n = v.shape[0]
    if sigma_samples <= 0 or n == 0:
        return v.copy()
    cols = v.reshape(n, -1).T  # (k, n): filter contiguous rows
    ok = np.isfinite(cols).all(axis=0)
    all_ok = bool(ok.all())
    if all_ok:
        rows = np.ascontiguousarray(cols)
    else:
        rows = np.empty((cols.shape[0] + 1, n))
        rows[:-1] = np.where(ok, cols, 0.0)
        rows[-1] = ok
    filt = gaussian_filter1d(rows, sigma_samples, axis=-1, mode="constant", cval=0.0)
    if all_ok:
        # weights are all 1: the normaliser differs from 1 only within the kernel radius
        # of either end, where it is the same as for a short run of ones
        radius = int(4.0 * sigma_samples + 0.5)
        den = np.ones(n)
        edge = gaussian_filter1d(
            np.ones(min(n, 2 * radius + 1)), sigma_samples, mode="constant", cval=0.0
        )
        r = min(radius, edge.shape[0])
        den[:r] = edge[:r]
        den[n - r :] = edge[edge.shape[0] - r :]
        num = filt
    else:
        num, den = filt[:-1], filt[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    out[:, ~ok] = np.nan
    return out.T.reshape(v.shape).copy()


def _sigma_samples(sigma_s: float, time_s: np.ndarray) -> float:
    """Seconds -> samples using the median frame interval (frame rates are near-uniform)."""
    if sigma_s <= 0 or time_s.shape[0] < 2:
        return 0.0
    return float(sigma_s / np.median(np.diff(time_s)))


def _clean_xy(
    t: np.ndarray, x: np.ndarray, y: np.ndarray, params: ProcessingParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Jump removal, interpolation and (unsmoothed) result for positions in cm."""
    removed = remove_jumps(t, x, y, params.max_speed_cm_s)
    xy = np.column_stack((x, y))
    xy[removed] = np.nan
    xy, interpolated = interpolate_gaps(t, xy, params.max_gap_s)
    return np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1]), removed, interpolated


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
    cal = _resolve_calibration(
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
    head = raw.head_angle_rad.copy()
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
