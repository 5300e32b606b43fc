"""Positions outside the calibrated arena: the sign of a wrong calibration.

An animal cannot leave the arena's floor, so state-vector positions (arena frame, cm,
origin at the floor's lower-left corner) outside it mean the outline or the scale is
off (a proposal that found a wall top instead of the floor's edge, a wrong declared
size), or that the tracked point sits above the floor (a head over the wall). The figure
for a check: the share of positions outside by more than a margin, and the worst
distance in cm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["DEFAULT_MARGIN_CM", "OutsideArena", "outside_arena"]

DEFAULT_MARGIN_CM = 1.0
"""Distance beyond the floor's edge still taken as inside (the tracked point is a
head or body centre a little above the floor, and the calibration is good to ~1 cm)."""


@dataclass(frozen=True)
class OutsideArena:
    """Positions outside the arena.

    Attributes
    ----------
    fraction : float
        Positions outside by more than the margin / positions known (0 when none known).
    n_outside : int
        How many.
    worst_cm : float
        Largest distance beyond the floor's edge (0 when none is outside).
    margin_cm : float
        The margin used.
    """

    fraction: float
    n_outside: int
    worst_cm: float
    margin_cm: float


def outside_arena(x_cm: np.ndarray, y_cm: np.ndarray, width_cm: float, height_cm: float,
                  shape: str = "rectangle", margin_cm: float = DEFAULT_MARGIN_CM
                  ) -> OutsideArena:
    """How many positions lie outside the calibrated arena, and how far the worst does.

    Parameters
    ----------
    x_cm, y_cm : np.ndarray
        ``(n_frames,)`` positions in the arena frame (cm, origin at the lower-left corner
        of the arena's bounding box, y up); NaN = unknown (not counted).
    width_cm, height_cm : float
        The arena's size.
    shape : str
        ``"circle"`` (a disc of diameter ``width_cm`` centred in the box), else a
        rectangle (``square``, ``rectangle``...).
    margin_cm : float
        Distance beyond the edge still taken as inside.

    Returns
    -------
    OutsideArena
    """
    x = np.asarray(x_cm, np.float64)
    y = np.asarray(y_cm, np.float64)
    known = np.isfinite(x) & np.isfinite(y)
    if shape == "circle":
        radius = width_cm / 2.0
        beyond = np.hypot(x - radius, y - height_cm / 2.0) - radius
    else:
        dx = np.maximum(np.maximum(-x, x - width_cm), 0.0)
        dy = np.maximum(np.maximum(-y, y - height_cm), 0.0)
        beyond = np.hypot(dx, dy)
    beyond = np.where(known, beyond, np.nan)
    with np.errstate(invalid="ignore"):
        out = known & (beyond > margin_cm)
    n_known = int(known.sum())
    worst = float(np.nanmax(beyond)) if n_known else 0.0
    return OutsideArena(fraction=round(float(out.sum() / n_known), 4) if n_known else 0.0,
                        n_outside=int(out.sum()), worst_cm=round(max(worst, 0.0), 2),
                        margin_cm=float(margin_cm))
