"""Cleaning of positions: jump removal, gap interpolation, NaN-aware smoothing."""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import gaussian_filter1d

from dlc_tracking.tracking.params import ProcessingParams

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


