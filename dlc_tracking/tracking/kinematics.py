"""Frame times and speed: validation and central-difference derivatives."""

from __future__ import annotations

from typing import Any

import numpy as np

from dlc_tracking.errors import ProcessingError


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


