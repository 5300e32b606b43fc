"""Occupancy: time spent per square spatial bin, the denominator of rate maps.

Analysts combining tracking with neural data divide spike (or event) counts per bin by
the time spent in the bin; this module gives that time, from processed tracking in the
arena frame (cm).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = ["frame_durations", "occupancy_grid", "occupancy_table"]


def frame_durations(time_s: np.ndarray) -> np.ndarray:
    """Time each frame stands for: until the next frame; the last frame the median step.

    Parameters
    ----------
    time_s : np.ndarray
        Frame times (s), increasing.

    Returns
    -------
    np.ndarray
        float64 durations (s), same shape; NaN where a frame time is missing.

    Examples
    --------
    >>> frame_durations(np.array([0.0, 0.02, 0.04]))
    array([0.02, 0.02, 0.02])
    """
    t = np.asarray(time_s, dtype=np.float64)
    if t.size == 0:
        return t.copy()
    if t.size == 1:
        return np.array([np.nan])
    step = np.diff(t)
    last = np.nanmedian(step) if np.isfinite(step).any() else np.nan
    return np.append(step, last)


def occupancy_grid(x_cm: np.ndarray, y_cm: np.ndarray, time_s: np.ndarray, bin_cm: float,
                   arena_width_cm: float | None = None,
                   arena_height_cm: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Seconds and frames per bin on the arena's grid.

    Parameters
    ----------
    x_cm, y_cm : np.ndarray
        Positions in the arena frame (cm, origin at the arena's lower-left corner);
        NaN = not tracked (contributes no time).
    time_s : np.ndarray
        Frame times (s).
    bin_cm : float
        Side of the square bins (``ProcessingParams.occupancy_bin_cm``).
    arena_width_cm, arena_height_cm : float, optional
        Arena size: the grid is ``ceil(width / bin) x ceil(height / bin)`` and positions
        outside the arena count in the nearest edge bin (as the coverage figure). Unknown:
        the grid spans 0 to the largest tracked position.

    Returns
    -------
    tuple[np.ndarray, np.ndarray]
        ``(seconds, frames)``, each ``(n_x_bins, n_y_bins)``: index ``[i, j]`` is the bin
        ``[i * bin, (i + 1) * bin) x [j * bin, (j + 1) * bin)``.
    """
    if not (bin_cm > 0):
        raise ValueError(f"occupancy bin size must be > 0 cm, got {bin_cm!r}")
    x, y = np.asarray(x_cm, np.float64), np.asarray(y_cm, np.float64)
    dt = frame_durations(time_s)
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(dt)

    def n_bins(size: float | None, values: np.ndarray) -> int:
        if size and size > 0:
            return max(1, math.ceil(size / bin_cm))
        top = float(values[ok].max()) if ok.any() else 0.0
        return max(1, math.floor(max(top, 0.0) / bin_cm) + 1)

    nx, ny = n_bins(arena_width_cm, x), n_bins(arena_height_cm, y)
    ix = np.clip(np.floor(x[ok] / bin_cm), 0, nx - 1).astype(np.int64)
    iy = np.clip(np.floor(y[ok] / bin_cm), 0, ny - 1).astype(np.int64)
    flat = ix * ny + iy
    seconds = np.bincount(flat, weights=dt[ok], minlength=nx * ny).reshape(nx, ny)
    frames = np.bincount(flat, minlength=nx * ny).reshape(nx, ny)
    return seconds, frames


def occupancy_table(x_cm: np.ndarray, y_cm: np.ndarray, time_s: np.ndarray, bin_cm: float,
                    arena_width_cm: float | None = None,
                    arena_height_cm: float | None = None) -> pd.DataFrame:
    """Occupancy as rows: one per bin of the grid (unvisited bins included, 0 s).

    Parameters
    ----------
    x_cm, y_cm, time_s, bin_cm, arena_width_cm, arena_height_cm
        As :func:`occupancy_grid`.

    Returns
    -------
    pandas.DataFrame
        ``bin_cm, x_bin, y_bin, x_min_cm, y_min_cm, occupancy_s, n_frames``; the sum of
        ``occupancy_s`` is the tracked time.
    """
    seconds, frames = occupancy_grid(x_cm, y_cm, time_s, bin_cm, arena_width_cm,
                                     arena_height_cm)
    nx, ny = seconds.shape
    ix, iy = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    return pd.DataFrame({
        "bin_cm": np.full(nx * ny, float(bin_cm)),
        "x_bin": ix.ravel().astype(np.int32), "y_bin": iy.ravel().astype(np.int32),
        "x_min_cm": ix.ravel() * float(bin_cm), "y_min_cm": iy.ravel() * float(bin_cm),
        "occupancy_s": seconds.ravel(), "n_frames": frames.ravel().astype(np.int64),
    })
