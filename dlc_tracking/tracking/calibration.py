"""Pixel -> cm calibration and the arena-frame origin."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
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

#: Calibration sources recorded in :class:`Calibration`. The first three come from the
#: arena's own geometry in the image (independent of where the animal went); the last
#: three scale the *tracked extent* to the arena size (a flagged fallback).
CALIBRATION_SOURCES: tuple[str, ...] = (
    "arena_corners",
    "arena_bounds",
    "arena_circle",
    "pixels_per_cm",
    "arena_width",
    "arena_height",
    "arena_size",
)
ARENA_GEOMETRY_SOURCES = CALIBRATION_SOURCES[:3]
TRACKED_EXTENT_SOURCES = CALIBRATION_SOURCES[4:]


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
    rotation_deg: float = 0.0
    per_axis: bool = False
    geometry_from: str | None = None
    fit_residual_cm: float | None = None

    @property
    def scales(self) -> tuple[float, float]:
        """(px/cm along x, px/cm along y) used by :meth:`to_cm`."""
        if self.per_axis and self.pixels_per_cm_x and self.pixels_per_cm_y:
            return float(self.pixels_per_cm_x), float(self.pixels_per_cm_y)
        return self.pixels_per_cm, self.pixels_per_cm

    @property
    def from_tracked_extent(self) -> bool:
        """True when the scale came from where the animal went (the flagged fallback)."""
        return self.source in TRACKED_EXTENT_SOURCES

    @property
    def anisotropy(self) -> float | None:
        """``|px/cm x / px/cm y - 1|``, None when only one scale is known."""
        if not self.pixels_per_cm_x or not self.pixels_per_cm_y:
            return None
        return abs(self.pixels_per_cm_x / self.pixels_per_cm_y - 1.0)

    def to_cm(self, x_px: np.ndarray, y_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Image pixels -> arena-frame cm (origin at the arena's lower-left corner)."""
        big_x, big_y = image_to_arena(x_px, y_px, self.camera_view, self.frame_size)
        dx, dy = big_x - self.origin_x_px, big_y - self.origin_y_px
        if self.rotation_deg:
            c, s = np.cos(np.radians(self.rotation_deg)), np.sin(np.radians(self.rotation_deg))
            dx, dy = c * dx + s * dy, -s * dx + c * dy
        sx, sy = self.scales
        return dx / sx, dy / sy

    def direction_to_cm(self, angle_rad: np.ndarray, *, perpendicular: bool) -> np.ndarray:
        """An arena-frame pixel direction (radians) as a direction in the cm frame.

        A rotation turns every direction alike; unequal x/y scales do not. A heading
        measured *along* body parts (nose - tail base) maps like the body-part vector;
        one measured *perpendicular* to them (two ears) is re-derived from the mapped
        ear line, so it stays perpendicular to it in cm.
        """
        angle = np.asarray(angle_rad, dtype=np.float64) - np.radians(self.rotation_deg)
        sx, sy = self.scales
        if sx == sy:
            return np.mod(angle, 2 * np.pi)
        if perpendicular:
            sx, sy = sy, sx
        return np.mod(np.arctan2(np.sin(angle) / sy, np.cos(angle) / sx), 2 * np.pi)

    @property
    def arena_extent_cm(self) -> tuple[float, float]:
        """Boundary width and height in cm."""
        sx, sy = self.scales
        return (self.boundary.width / sx, self.boundary.height / sy)

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
    if kind == "pixels_per_cm":
        # A known scale needs no tracking: the origin is the image's own lower-left corner
        # (arena frame), so every model and session of this camera shares the same cm.
        origin_x = origin_y = 0.0
    else:
        # the tracked extent's lower-left corner in the arena frame: smallest X and Y
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




# --------------------------------------------------------------------------- arena geometry


@dataclass(frozen=True)
class ArenaGeometry:
    """The arena as seen in the image, with its real size: what calibrates a recording.

    Exactly one of ``corners_px`` (four image points, any order), ``bounds_px``
    (``left, top, right, bottom`` of an axis-aligned rectangle; image y grows downwards)
    or ``center_px`` + ``radius_px`` (a circle) is given. ``source`` says where it came
    from (session.yaml, a rig of the registry, ``<subject>/calibration.yaml``).
    """

    shape: str
    width_cm: float
    height_cm: float
    corners_px: tuple[tuple[float, float], ...] | None = None
    bounds_px: tuple[float, float, float, float] | None = None
    center_px: tuple[float, float] | None = None
    radius_px: float | None = None
    source: str = ""


def _inside_frame(points: np.ndarray, size: tuple[float, float], where: str, what: str) -> None:
    w, h = size
    bad = [(float(x), float(y)) for x, y in points
           if not (-0.5 <= x <= w - 0.5 and -0.5 <= y <= h - 0.5)]
    if bad:
        raise ProcessingError(
            f"{where}: arena {what} {bad} lie outside the {w:g}x{h:g} px video frame; measure "
            "them on a frame of this camera (x from 0 to width-1, y from 0 to height-1, "
            "top-left origin) and fix them.")


def _order_corners(points: np.ndarray, where: str) -> np.ndarray:
    """Corners as lower-left, lower-right, upper-right, upper-left in the arena frame."""
    centre = points.mean(axis=0)
    angles = np.arctan2(points[:, 1] - centre[1], points[:, 0] - centre[0])
    ccw = points[np.argsort(angles)]
    start = int(np.argmin(ccw.sum(axis=1)))  # lower-left: smallest X + Y
    ccw = np.roll(ccw, -start, axis=0)
    edges = np.roll(ccw, -1, axis=0) - ccw
    cross = edges[:, 0] * np.roll(edges, -1, axis=0)[:, 1] - edges[:, 1] * np.roll(
        edges, -1, axis=0)[:, 0]
    if not (np.all(cross > 0) or np.all(cross < 0)):
        raise ProcessingError(
            f"{where}: the arena corners {points.tolist()} do not form a convex "
            "quadrilateral (two corners swapped, or a corner on the wrong side); give the "
            "four corners of the arena floor.")
    return ccw


def calibrate_from_arena(geometry: ArenaGeometry, camera_view: str, frame_size: Sequence[float],
                         *, source: str | None = None) -> Calibration:
    """Calibration from the arena's own outline in the image (not from the tracking).

    Corners give the arena's rotation, px/cm along each of its sides and its lower-left
    corner as the origin; a rectangle's bounds give px/cm per axis; a circle gives one
    scale (diameter / ``width_cm``) and the lower-left corner of its bounding square.

    Raises
    ------
    ProcessingError
        Corners outside the frame or not convex, no or several outlines given.
    """
    where = source or geometry.source or "arena"
    view = check_camera_view(camera_view, source)
    size = check_frame_size(frame_size, source)
    given = [g is not None for g in (geometry.corners_px, geometry.bounds_px, geometry.center_px)]
    if sum(given) != 1:
        raise ProcessingError(
            f"{where}: give exactly one arena outline in pixels (corners_px, bounds_px, or "
            "center_px with radius_px).")
    w_cm, h_cm = float(geometry.width_cm), float(geometry.height_cm)
    rotation, residual = 0.0, None
    if geometry.corners_px is not None:
        img = np.asarray(geometry.corners_px, dtype=np.float64)
        if img.shape != (4, 2):
            raise ProcessingError(f"{where}: corners_px must be four [x, y] points, got "
                                  f"{img.tolist()}.")
        _inside_frame(img, size, where, "corners")
        big = np.column_stack(image_to_arena(img[:, 0], img[:, 1], view, size))
        ll, lr, ur, ul = _order_corners(big, where)
        bottom, top, left, right = lr - ll, ur - ul, ul - ll, ur - lr
        rotation = float(np.degrees(np.arctan2(bottom[1] + top[1], bottom[0] + top[0])))
        ppcm_x = 0.5 * (np.hypot(*bottom) + np.hypot(*top)) / w_cm
        ppcm_y = 0.5 * (np.hypot(*left) + np.hypot(*right)) / h_cm
        cal_kind = "arena_corners"
        c, s = np.cos(np.radians(rotation)), np.sin(np.radians(rotation))
        target = np.array([[0, 0], [w_cm, 0], [w_cm, h_cm], [0, h_cm]], dtype=np.float64)
        # origin: mean over the corners of (corner - R S target), so errors spread evenly
        rs = np.array([[c * ppcm_x, -s * ppcm_y], [s * ppcm_x, c * ppcm_y]])
        origin = (np.array([ll, lr, ur, ul]) - target @ rs.T).mean(axis=0)
        box = Boundary(float(img[:, 0].min()), float(img[:, 0].max()),
                       float(img[:, 1].min()), float(img[:, 1].max()))
    elif geometry.bounds_px is not None:
        left_px, top_px, right_px, bottom_px = (float(v) for v in geometry.bounds_px)
        if not (left_px < right_px and top_px < bottom_px):
            raise ProcessingError(
                f"{where}: bounds_px {list(geometry.bounds_px)} must be [left, top, right, "
                "bottom] with left < right and top < bottom (image y grows downwards).")
        _inside_frame(np.array([[left_px, top_px], [right_px, bottom_px]]), size, where,
                      "bounds")
        box = Boundary(left_px, right_px, top_px, bottom_px)
        ppcm_x, ppcm_y = box.width / w_cm, box.height / h_cm
        cal_kind = "arena_bounds"
        origin = np.array([box.left if view == "above" else size[0] - box.right,
                           size[1] - box.bottom])
    else:
        cx, cy = (float(v) for v in geometry.center_px)
        r = float(geometry.radius_px or 0)
        if r <= 0:
            raise ProcessingError(f"{where}: radius_px must be a positive number of pixels.")
        box = Boundary(cx - r, cx + r, cy - r, cy + r)
        _inside_frame(np.array([[box.left, box.top], [box.right, box.bottom]]), size, where,
                      "circle (centre +- radius)")
        ppcm_x = ppcm_y = 2 * r / w_cm
        cal_kind = "arena_circle"
        origin = np.array([box.left if view == "above" else size[0] - box.right,
                           size[1] - box.bottom])
    cal = Calibration(
        pixels_per_cm=float(0.5 * (ppcm_x + ppcm_y)), source=cal_kind,
        origin_x_px=float(origin[0]), origin_y_px=float(origin[1]), camera_view=view,
        frame_size=size, boundary=box, arena_width_cm=w_cm, arena_height_cm=h_cm,
        pixels_per_cm_x=float(ppcm_x), pixels_per_cm_y=float(ppcm_y), rotation_deg=rotation,
        per_axis=True, geometry_from=geometry.source or None)
    if geometry.corners_px is not None:
        img = np.asarray(geometry.corners_px, dtype=np.float64)
        xs, ys = cal.to_cm(img[:, 0], img[:, 1])
        expected = np.array([[0, 0], [w_cm, 0], [w_cm, h_cm], [0, h_cm]])
        # distance of each mapped corner to the nearest true corner: perspective or a
        # mis-measured corner shows here (a rectangle maps with residual 0)
        dist = np.hypot(xs[:, None] - expected[None, :, 0], ys[:, None] - expected[None, :, 1])
        residual = float(dist.min(axis=1).max())
        cal = replace(cal, fit_residual_cm=round(residual, 4))
    return cal
