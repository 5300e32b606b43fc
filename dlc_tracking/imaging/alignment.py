"""Processed tracking resampled at imaging frame times.

Linear interpolation between the two video frames around each imaging time for position,
speed and angular velocity; circular interpolation for head direction (along the shorter
arc, so 350 deg -> 10 deg passes through 0, never back through 180). An imaging frame is
``valid`` only when both neighbouring video frames have the value (not a tracking gap),
the nearest video frame is within ``max_distance_s``, and the time lies within the video.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ResampledTracking", "circular_interp_deg", "resample_tracking"]


@dataclass
class ResampledTracking:
    """Tracking at each query time (NaN where not valid)."""

    x_cm: np.ndarray
    y_cm: np.ndarray
    speed_cm_s: np.ndarray
    head_direction_deg: np.ndarray
    angular_head_velocity_deg_s: np.ndarray
    nearest_frame: np.ndarray
    valid: np.ndarray


def _bracket(t: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Left neighbour index, right neighbour index and fraction for each query time."""
    right = np.searchsorted(t, q, side="right")
    np.clip(right, 1, t.size - 1, out=right)
    left = right - 1
    span = t[right] - t[left]
    frac = (q - t[left]) / span
    return left, right, frac


def _lerp(values: np.ndarray, left: np.ndarray, right: np.ndarray,
          frac: np.ndarray) -> np.ndarray:
    a = values[left]
    return a + frac * (values[right] - a)


def circular_interp_deg(a_deg: np.ndarray, b_deg: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """Angles between ``a`` and ``b`` at ``frac`` along the shorter arc, in [0, 360)."""
    delta = np.remainder(b_deg - a_deg + 180.0, 360.0) - 180.0
    return np.remainder(a_deg + frac * delta, 360.0)


def resample_tracking(time_s: np.ndarray, x_cm: np.ndarray, y_cm: np.ndarray,
                      speed_cm_s: np.ndarray, head_direction_deg: np.ndarray,
                      angular_head_velocity_deg_s: np.ndarray, query_s: np.ndarray,
                      max_distance_s: float) -> ResampledTracking:
    """Tracking sampled at ``query_s``.

    Parameters
    ----------
    time_s : np.ndarray
        ``(n,)`` video frame times, strictly increasing, on the same clock as ``query_s``.
    x_cm, y_cm, speed_cm_s, head_direction_deg, angular_head_velocity_deg_s : np.ndarray
        ``(n,)`` processed tracking (NaN in gaps); head direction in [0, 360).
    query_s : np.ndarray
        ``(m,)`` imaging frame times.
    max_distance_s : float
        An imaging frame whose nearest video frame is farther than this is not valid.

    Returns
    -------
    ResampledTracking
        Values are NaN where ``valid`` is False (outside the video, in a gap, too far), and
        also where only that one value is missing (e.g. head direction alone).
    """
    t = np.asarray(time_s, dtype=np.float64)
    q = np.asarray(query_s, dtype=np.float64)
    left, right, frac = _bracket(t, q)
    nearest = np.where(frac <= 0.5, left, right)
    inside = (q >= t[0]) & (q <= t[-1])
    close = np.abs(t[nearest] - q) <= max_distance_s
    out = {}
    for name, values in (("x_cm", x_cm), ("y_cm", y_cm), ("speed_cm_s", speed_cm_s),
                         ("angular_head_velocity_deg_s", angular_head_velocity_deg_s)):
        out[name] = _lerp(np.asarray(values, np.float64), left, right, frac)
    hd = np.asarray(head_direction_deg, np.float64)
    out["head_direction_deg"] = circular_interp_deg(hd[left], hd[right], frac)
    valid = inside & close & np.isfinite(out["x_cm"]) & np.isfinite(out["y_cm"])
    for values in out.values():
        values[~(inside & close)] = np.nan
    return ResampledTracking(nearest_frame=nearest.astype(np.int64), valid=valid, **out)
