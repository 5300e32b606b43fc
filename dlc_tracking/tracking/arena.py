"""Arena boundary in image pixels, from the tracked positions."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from dlc_tracking.errors import ProcessingError
from dlc_tracking.tracking.kinematics import _prefix

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


