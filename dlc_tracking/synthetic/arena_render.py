"""Rendered open-field arenas as a camera above sees them, for testing ``arena propose``.

Real footage that fooled a plain brightness threshold: a bright floor against dark
walls whose tops are visible as a bright rim (the camera sees the inside of the walls
in perspective), shadows cast onto the floor along the walls, and walls that differ
little from the floor. :func:`render_arena` draws such a view with a known floor
outline, so a proposal can be scored against the truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RenderedArena", "render_arena"]


@dataclass(frozen=True)
class RenderedArena:
    """A rendered median frame and its true floor outline.

    Attributes
    ----------
    image : np.ndarray
        ``(height, width, 3)`` uint8 BGR.
    floor_corners : np.ndarray
        ``(4, 2)`` float image px of the floor's corners (top-left, top-right,
        bottom-right, bottom-left), the outer edge of the floor's edge pixels.
    """

    image: np.ndarray
    floor_corners: np.ndarray


def _quad_mask(shape: tuple[int, int], corners: np.ndarray) -> np.ndarray:
    import cv2

    mask = np.zeros(shape, np.uint8)
    # fillPoly with 8 fractional bits: the polygon edge as given, not rounded to pixels
    cv2.fillPoly(mask, [np.round(corners * 256).astype(np.int32)], 255, cv2.LINE_8, shift=8)
    return mask > 0


def render_arena(width: int = 640, height: int = 480, *, floor: tuple[float, float,
                 float, float] = (150.0, 70.0, 490.0, 410.0), floor_level: float = 200.0,
                 wall_level: float = 45.0, rim_level: float = 225.0, wall_px: float = 40.0,
                 shadow_px: float = 0.0, shadow_depth: float = 0.0, outside_level: float = 20.0,
                 noise: float = 3.0, seed: int = 0,
                 floor_corners: np.ndarray | None = None) -> RenderedArena:
    """Render a square-ish arena seen from above, slightly in perspective.

    Parameters
    ----------
    width, height : int
        Image size (px).
    floor : tuple
        ``(left, top, right, bottom)`` of the floor (px).
    floor_level, wall_level, rim_level, outside_level : float
        Grey levels of the floor, the inner wall faces, the wall tops and the room.
    wall_px : float
        How wide the inner wall faces appear around the floor (perspective).
    shadow_px, shadow_depth : float
        A shadow along the bottom and left walls: the floor darkens by ``shadow_depth``
        (grey levels) at the wall, fading over ``shadow_px``.
    noise : float
        Sensor noise (grey levels, sd).
    seed : int
        Noise seed.
    floor_corners : np.ndarray, optional
        ``(4, 2)`` floor corners (top-left, top-right, bottom-right, bottom-left) for a
        rotated or keystoned floor; overrides ``floor`` (the shadow then follows the
        bounding box).
    """
    rng = np.random.default_rng(seed)
    left, top, right, bottom = floor
    corners = np.array([[left, top], [right, top], [right, bottom], [left, bottom]], float)
    if floor_corners is not None:
        corners = np.asarray(floor_corners, float)
        left, top = corners.min(axis=0)
        right, bottom = corners.max(axis=0)
    # the wall tops are further from the camera's axis than the floor: larger outline
    outward = corners - corners.mean(axis=0)
    outward /= np.abs(outward).max(axis=1, keepdims=True)
    rim = corners + wall_px * outward
    rim_outer = rim + 6 * outward
    img = np.full((height, width), outside_level, np.float64)
    img[_quad_mask(img.shape, rim_outer)] = rim_level
    img[_quad_mask(img.shape, rim)] = wall_level
    floor_mask = _quad_mask(img.shape, corners)
    level = np.full(img.shape, float(floor_level))
    if shadow_px > 0 and shadow_depth > 0:
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
        from_bottom = np.clip((bottom - yy) / shadow_px, 0, 1)
        from_left = np.clip((xx - left) / shadow_px, 0, 1)
        level -= shadow_depth * (1 - np.minimum(from_bottom, from_left))
    img[floor_mask] = level[floor_mask]
    img += rng.normal(0, noise, img.shape)
    gray = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return RenderedArena(np.repeat(gray[..., None], 3, axis=2), corners)
