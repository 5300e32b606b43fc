"""Pixel -> cm calibration and the arena-frame origin."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from dlc_tracking.errors import ProcessingError
from dlc_tracking.tracking.arena import Boundary
from dlc_tracking.tracking.kinematics import _prefix
from dlc_tracking.tracking.methods import (
    check_camera_view,
    check_frame_size,
    image_to_arena,
)
from dlc_tracking.tracking.params import _check_positive

# --------------------------------------------------------------------------- calibration

#: Calibration sources recorded in :class:`Calibration`.
CALIBRATION_SOURCES: tuple[str, ...] = (
    "pixels_per_cm",
    "arena_width",
    "arena_height",
    "arena_size",
)


@dataclass(frozen=True)
class Calibration:
    """Pixel -> cm calibration and the arena-frame origin.

    ``x_cm = (X - origin_x_px) / pixels_per_cm`` and likewise for y, where ``(X, Y)`` are
    arena-frame pixels (:func:`~dlc_tracking.tracking.methods.image_to_arena`). The origin is the
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


