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

__all__ = ["ResampledTracking", "circular_interp_deg", "resample_3d", "resample_tracking"]


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


# Large temporaries cost page faults on every call (glibc returns freed blocks of this size
# to the system), so the work below reuses its arrays in place where it can.


def _bracket(t: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Left and right neighbour indices and the fraction for each query time.

    One ``np.interp`` of the frame indices gives both (it walks sorted queries in one pass,
    faster than a binary search per query)."""
    frac = np.interp(q, t, np.arange(t.size, dtype=np.float64))
    left = frac.astype(np.int64)
    np.minimum(left, t.size - 2, out=left)
    frac -= left
    return left, left + 1, frac


def _lerp(values: np.ndarray, left: np.ndarray, right: np.ndarray,
          frac: np.ndarray) -> np.ndarray:
    a = values[left]
    out = values[right]
    out -= a
    out *= frac
    out += a
    return out


def _wrap(values: np.ndarray, scratch: np.ndarray, centred: bool) -> None:
    """In place: into [-180, 180) (``centred``) or [0, 360); rint/floor instead of
    np.remainder (same result, several times faster)."""
    np.divide(values, 360.0, out=scratch)
    (np.rint if centred else np.floor)(scratch, out=scratch)
    scratch *= 360.0
    values -= scratch


def circular_interp_deg(a_deg: np.ndarray, b_deg: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """Angles between ``a`` and ``b`` at ``frac`` along the shorter arc, in [0, 360)."""
    delta = np.subtract(b_deg, a_deg)
    scratch = np.empty_like(delta)
    _wrap(delta, scratch, centred=True)
    delta *= frac
    delta += a_deg
    _wrap(delta, scratch, centred=False)
    return delta


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
        Every value is NaN where ``valid`` is False (outside the video, in a tracking gap,
        the nearest frame too far). ``valid`` needs position, and head direction when the
        tracking has any (a method without head direction: its column is NaN throughout and
        does not count).
    """
    t = np.asarray(time_s, dtype=np.float64)
    q = np.asarray(query_s, dtype=np.float64)
    left, right, frac = _bracket(t, q)
    nearest = np.where(frac > 0.5, right, left)
    distance = t[nearest]
    distance -= q
    np.abs(distance, out=distance)
    ok = (q >= t[0]) & (q <= t[-1]) & (distance <= max_distance_s)
    out = {}
    # Gathers at the bracket found once: cheaper than one np.interp (a search) per column.
    # A NaN neighbour (a tracking gap) gives NaN.
    for name, values in (("x_cm", x_cm), ("y_cm", y_cm), ("speed_cm_s", speed_cm_s),
                         ("angular_head_velocity_deg_s", angular_head_velocity_deg_s)):
        out[name] = _lerp(np.asarray(values, np.float64), left, right, frac)
    hd = np.asarray(head_direction_deg, np.float64)
    out["head_direction_deg"] = circular_interp_deg(hd[left], hd[right], frac)
    valid = ok & np.isfinite(out["x_cm"]) & np.isfinite(out["y_cm"])
    if np.isfinite(hd).any():  # a method with head direction: valid needs it too
        valid &= np.isfinite(out["head_direction_deg"])
    invalid = np.flatnonzero(~valid)  # usually a few frames (ends, gaps): index, not mask
    if invalid.size:
        for values in out.values():
            values[invalid] = np.nan
    return ResampledTracking(nearest_frame=nearest, valid=valid, **out)


def resample_3d(time_s: np.ndarray, z_cm: np.ndarray, pitch_deg: np.ndarray,
                roll_deg: np.ndarray, query_s: np.ndarray, valid: np.ndarray
                ) -> dict[str, np.ndarray]:
    """A multi-camera take's height and head pitch / roll at ``query_s``.

    Linear interpolation for height and pitch (pitch lies in [-90, 90], no wrap), along
    the shorter arc for roll (in [-180, 180)); NaN where ``valid`` is False (as
    :func:`resample_tracking` decided) or a neighbouring frame lacks the value.

    Parameters
    ----------
    time_s : np.ndarray
        ``(n,)`` frame times, strictly increasing.
    z_cm, pitch_deg, roll_deg : np.ndarray
        ``(n,)`` processed tracking's 3D columns (NaN in gaps).
    query_s : np.ndarray
        ``(m,)`` imaging frame times.
    valid : np.ndarray
        ``(m,)`` bool, :attr:`ResampledTracking.valid`.

    Returns
    -------
    dict
        ``z_cm``, ``pitch_deg``, ``roll_deg``: ``(m,)`` each.
    """
    t = np.asarray(time_s, dtype=np.float64)
    left, right, frac = _bracket(t, np.asarray(query_s, dtype=np.float64))
    out = {"z_cm": _lerp(np.asarray(z_cm, np.float64), left, right, frac),
           "pitch_deg": _lerp(np.asarray(pitch_deg, np.float64), left, right, frac)}
    roll = np.asarray(roll_deg, np.float64)
    wrapped = circular_interp_deg(roll[left], roll[right], frac)
    scratch = np.empty_like(wrapped)
    _wrap(wrapped, scratch, centred=True)
    out["roll_deg"] = wrapped
    for values in out.values():
        values[~np.asarray(valid, dtype=bool)] = np.nan
    return out
