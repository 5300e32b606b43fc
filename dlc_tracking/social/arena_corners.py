"""Unique body parts that are arena corners, as the arena outline that calibrates.

A multi-animal project often labels the arena's corners as unique body parts (DeepLabCut's
``single`` individual). Their median position over the frames where they are seen is the
arena's outline in the image: four corners give
:class:`~dlc_tracking.tracking.calibration.ArenaGeometry` ``corners_px``, two opposite
corners (top-left and bottom-right of an axis-aligned arena) give ``bounds_px``. The
result calibrates every individual with
:func:`~dlc_tracking.tracking.calibration.calibrate_from_arena`, independent of where the
animals went.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dlc_tracking.errors import ProcessingError
from dlc_tracking.tracking.calibration import ArenaGeometry

__all__ = ["arena_from_unique_parts"]


def arena_from_unique_parts(unique_poses: np.ndarray, names: Sequence[str],
                            corners: Sequence[str], width_cm: float, height_cm: float, *,
                            likelihood_cutoff: float = 0.6, max_spread_px: float = 3.0,
                            source: str = "unique body parts") -> ArenaGeometry:
    """The arena outline from corner body parts.

    Parameters
    ----------
    unique_poses : np.ndarray
        ``(n_frames, n_unique, 3)`` image-pixel predictions of the unique body parts.
    names : sequence of str
        Names of axis 1.
    corners : sequence of str
        Four corner parts (any order), or two: ``(top_left, bottom_right)`` in the image.
    width_cm, height_cm : float
        Real arena size.
    likelihood_cutoff : float
        Frames below it are ignored for a corner.
    max_spread_px : float
        A corner whose positions spread more than this (median absolute deviation, px)
        is refused: it is not a fixed point.

    Raises
    ------
    ProcessingError
        A corner missing from the parts, never seen, or moving.
    """
    names = list(names)
    if len(corners) not in (2, 4):
        raise ProcessingError(f"{source}: give 4 arena corners, or 2 (top-left and "
                              f"bottom-right), got {list(corners)}.")
    points = []
    for corner in corners:
        if corner not in names:
            raise ProcessingError(f"{source}: no unique body part {corner!r}; the model's "
                                  f"unique body parts are {names}.")
        p = unique_poses[:, names.index(corner)]
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(p[:, 0]) & np.isfinite(p[:, 1]) & (p[:, 2] >= likelihood_cutoff)
        if not ok.any():
            raise ProcessingError(f"{source}: corner {corner!r} is never seen above "
                                  f"likelihood {likelihood_cutoff}.")
        xy = p[ok, :2]
        med = np.median(xy, axis=0)
        spread = float(np.max(np.median(np.abs(xy - med), axis=0)))
        if spread > max_spread_px:
            raise ProcessingError(f"{source}: corner {corner!r} moves ({spread:.1f} px "
                                  f"median deviation > {max_spread_px}); it is not a fixed "
                                  "arena corner.")
        points.append((float(med[0]), float(med[1])))
    if len(points) == 4:
        return ArenaGeometry("rectangle", width_cm, height_cm, corners_px=tuple(points),
                             source=source)
    (x0, y0), (x1, y1) = points
    return ArenaGeometry("rectangle", width_cm, height_cm, bounds_px=(x0, y0, x1, y1),
                         source=source)
