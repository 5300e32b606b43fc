"""Synthetic open-field videos with exact, sub-pixel ground truth.

A mouse-like shape (body, head, two ears, a tail) walks a smooth random path inside a
square arena. The simulation (:func:`simulate_openfield`) is pure numpy and returns a
:class:`GroundTruth`; :func:`render_video` draws it with anti-aliasing so that a model
trained on the video can be accurate to a pixel or better; :func:`make_session` writes a
whole session folder (``session.yaml``, ``openfield.mp4``, ``openfield.groundtruth.csv``)
the way an experimenter would drop it on disk.

Coordinates follow ``docs/conventions.md``: keypoints are image coordinates (origin at
the top-left pixel centre, x right, y down); the arena frame has y up; with the camera
``below`` the arena the image is mirrored left/right (``x_img = W - X``) and the animal's
left ear is still labelled ``left_ear``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import yaml

from dlc_tracking.errors import SessionError, VideoError

BODY_PARTS: list[str] = ["nose", "left_ear", "right_ear", "tail_base"]
CAMERA_VIEWS: tuple[str, ...] = ("above", "below")
VIDEO_NAME = "openfield.mp4"
GROUND_TRUTH_NAME = "openfield.groundtruth.csv"
SESSION_FILE = "session.yaml"
DEFAULT_START_TIME = "2026-01-05T10:00:00+01:00"

# Layout of the frame: the arena floor is a square of side min(W, H) - 2 * margin,
# centred in the frame, surrounded by a dark wall band.
_ARENA_MARGIN_FRAC = 0.06
_WALL_FRAC = 0.03

# Body geometry in units of the body length (nose to tail base), body coordinates
# (u forward, v to the animal's left), origin at the body centre.
_BODY_LENGTH_FRAC = 0.2  # body length / arena side
_NOSE_U = 0.52
_EAR_U = 0.20
_EAR_V = 0.17
_EAR_R = 0.085
_TAIL_BASE_U = -0.46
_BODY_C_U, _BODY_A, _BODY_B = -0.12, 0.36, 0.21
_HEAD_C_U, _HEAD_A, _HEAD_B = 0.30, 0.22, 0.15
_TAIL_LEN = 0.75

# Colours (BGR), high contrast: light floor, dark walls, dark animal, pink ears.
_COL_OUTSIDE = (90, 90, 90)
_COL_WALL = (25, 25, 25)
_COL_FLOOR = (215, 215, 215)
_COL_BODY = (55, 55, 60)
_COL_HEAD = (70, 70, 75)
_COL_EAR = (150, 140, 225)
_COL_EAR_RIM = (35, 35, 40)
_COL_NOSE = (120, 110, 210)
_COL_TAIL = (120, 120, 165)
_COL_OCCLUDER = (150, 150, 150)

_SHIFT = 6  # sub-pixel bits for cv2 drawing: 1/64 px


@dataclass
class GroundTruth:
    """Exact ground truth of one synthetic open-field recording.

    Attributes
    ----------
    body_parts : list of str
        Canonical body-part names, the order of axis 1 of ``keypoints``.
    keypoints : np.ndarray
        ``(n_frames, n_parts, 2)`` float64, image coordinates ``[x_px, y_px]`` for
        ``camera_view`` (always defined, also when the part is hidden).
    visible : np.ndarray
        ``(n_frames, n_parts)`` bool; False where an occluder hides the part.
    time_s : np.ndarray
        ``(n_frames,)`` seconds from the recording start (``frame / fps``).
    head_direction_deg : np.ndarray
        ``(n_frames,)`` head direction in the arena frame (y up), degrees in [0, 360),
        counter-clockwise from +x; equals ``atan2(yL - yR, xL - xR) - 90`` of the ears.
    head_xy_px : np.ndarray
        ``(n_frames, 2)`` ear midpoint in image coordinates.
    head_speed_px_s : np.ndarray
        ``(n_frames,)`` speed of ``head_xy_px`` (central differences), px/s.
    camera_view : str
        ``"above"`` or ``"below"``.
    width, height : int
        Frame size in pixels.
    fps : float
        Frame rate.
    arena_px : tuple of float
        Arena floor in image coordinates ``(x_min, y_min, x_max, y_max)``.
    occluders : np.ndarray
        ``(n_frames, 3)`` occluder disc ``[x_px, y_px, radius_px]`` per frame, NaN where
        there is none.
    tail_phase : np.ndarray
        ``(n_frames,)`` phase of the tail wiggle (rendering only).
    """

    body_parts: list[str]
    keypoints: np.ndarray
    visible: np.ndarray
    time_s: np.ndarray
    head_direction_deg: np.ndarray
    head_xy_px: np.ndarray
    head_speed_px_s: np.ndarray
    camera_view: str
    width: int
    height: int
    fps: float
    arena_px: tuple[float, float, float, float] = (np.nan, np.nan, np.nan, np.nan)
    occluders: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    tail_phase: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return int(self.keypoints.shape[0])

    @property
    def arena_side_px(self) -> float:
        """Side of the square arena floor in pixels."""
        x0, _, x1, _ = self.arena_px
        return float(x1 - x0)

    def poses(self) -> np.ndarray:
        """Ground truth as a ``poses`` array (conventions): ``[x, y, 1.0]``, NaN if hidden.

        Returns
        -------
        np.ndarray
            ``(n_frames, n_parts, 3)`` float64.
        """
        out = np.concatenate([self.keypoints, np.ones(self.keypoints.shape[:2] + (1,))], axis=2)
        out[~self.visible] = np.nan
        return out


# --------------------------------------------------------------------------------------
# Geometry helpers (pure)
# --------------------------------------------------------------------------------------


def arena_layout(width: int, height: int) -> tuple[float, float, float, float]:
    """Arena floor square in image coordinates for a frame size.

    Parameters
    ----------
    width, height : int
        Frame size in pixels.

    Returns
    -------
    tuple of float
        ``(x_min, y_min, x_max, y_max)``; the square is centred in the frame.
    """
    side = float(min(width, height)) * (1.0 - 2.0 * _ARENA_MARGIN_FRAC)
    side = float(np.floor(side))
    x0 = (width - side) / 2.0
    y0 = (height - side) / 2.0
    return (x0, y0, x0 + side, y0 + side)


def arena_to_image(xy: np.ndarray, width: int, height: int, camera_view: str) -> np.ndarray:
    """Convert arena-frame coordinates (y up) to image coordinates.

    Parameters
    ----------
    xy : np.ndarray
        ``(..., 2)`` arena coordinates ``[X, Y]``.
    width, height : int
        Frame size.
    camera_view : str
        ``"above"`` (``x = X``) or ``"below"`` (mirrored: ``x = W - X``); ``y = H - Y``.

    Returns
    -------
    np.ndarray
        ``(..., 2)`` image coordinates.
    """
    _check_view(camera_view)
    xy = np.asarray(xy, dtype=float)
    out = np.empty_like(xy)
    out[..., 0] = xy[..., 0] if camera_view == "above" else width - xy[..., 0]
    out[..., 1] = height - xy[..., 1]
    return out


def image_to_arena(xy: np.ndarray, width: int, height: int, camera_view: str) -> np.ndarray:
    """Convert image coordinates to arena-frame coordinates (inverse of arena_to_image).

    Parameters
    ----------
    xy : np.ndarray
        ``(..., 2)`` image coordinates.
    width, height : int
        Frame size.
    camera_view : str
        ``"above"`` or ``"below"``.

    Returns
    -------
    np.ndarray
        ``(..., 2)`` arena coordinates (y up).
    """
    # The mapping is an involution.
    return arena_to_image(xy, width, height, camera_view)


def head_direction_from_ears_deg(
    left_ear_xy: np.ndarray,
    right_ear_xy: np.ndarray,
    width: int,
    height: int,
    camera_view: str,
) -> np.ndarray:
    """Two-ears head direction in the arena frame, degrees in [0, 360).

    Parameters
    ----------
    left_ear_xy, right_ear_xy : np.ndarray
        ``(..., 2)`` image coordinates of the animal's left and right ear.
    width, height : int
        Frame size.
    camera_view : str
        ``"above"`` or ``"below"``.

    Returns
    -------
    np.ndarray
        ``atan2(yL - yR, xL - xR) - 90 deg`` in the arena frame, mod 360.
    """
    left = image_to_arena(left_ear_xy, width, height, camera_view)
    right = image_to_arena(right_ear_xy, width, height, camera_view)
    d = left - right
    return np.mod(np.degrees(np.arctan2(d[..., 1], d[..., 0])) - 90.0, 360.0)


def _check_view(camera_view: str) -> None:
    if camera_view not in CAMERA_VIEWS:
        raise ValueError(f"camera_view must be one of {CAMERA_VIEWS}, got {camera_view!r}")


def _smooth_noise(rng: np.random.Generator, n: int, tau_frames: float) -> np.ndarray:
    """Unit-variance Ornstein-Uhlenbeck noise with correlation time ``tau_frames``."""
    a = float(np.exp(-1.0 / max(tau_frames, 1e-6)))
    s = float(np.sqrt(1.0 - a * a))
    eps = rng.standard_normal(n)
    out = np.empty(n)
    x = rng.standard_normal()
    for i in range(n):
        x = a * x + s * eps[i]
        out[i] = x
    return out


def _wrap_pi(a: np.ndarray | float) -> np.ndarray | float:
    return (np.asarray(a) + np.pi) % (2.0 * np.pi) - np.pi


def simulate_path(
    n_frames: int,
    fps: float,
    arena_xy: tuple[float, float, float, float],
    body_length: float,
    rng: np.random.Generator,
    mean_speed_px_s: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Smooth random walk of the body centre in the arena frame, with wall avoidance.

    Parameters
    ----------
    n_frames : int
        Number of frames.
    fps : float
        Frame rate.
    arena_xy : tuple of float
        Arena floor ``(X_min, Y_min, X_max, Y_max)`` in arena coordinates.
    body_length : float
        Nose to tail-base distance in pixels (keeps the animal clear of the walls).
    rng : np.random.Generator
        Random source.
    mean_speed_px_s : float, optional
        Mean speed; default a quarter of the arena side per second.

    Returns
    -------
    centre : np.ndarray
        ``(n_frames, 2)`` body centre (arena frame).
    heading : np.ndarray
        ``(n_frames,)`` heading in radians (arena frame), the direction of motion.
    """
    x0, y0, x1, y1 = arena_xy
    side = min(x1 - x0, y1 - y0)
    if mean_speed_px_s is None:
        mean_speed_px_s = 0.25 * side
    dt = 1.0 / fps
    pad = 0.62 * body_length
    lo = np.array([x0 + pad, y0 + pad])
    hi = np.array([x1 - pad, y1 - pad])
    centre_of_arena = np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0])

    speed_noise = _smooth_noise(rng, n_frames, tau_frames=1.0 * fps)
    turn_noise = _smooth_noise(rng, n_frames, tau_frames=0.4 * fps)
    speed = mean_speed_px_s * np.clip(1.0 + 0.6 * speed_noise, 0.15, 2.5)
    turn_rate = np.radians(140.0) * turn_noise  # rad/s

    pos = np.empty((n_frames, 2))
    heading = np.empty(n_frames)
    pos[0] = lo + rng.uniform(0.15, 0.85, size=2) * (hi - lo)
    heading[0] = rng.uniform(0.0, 2.0 * np.pi)
    lookahead = 0.25 * side
    for i in range(1, n_frames):
        th = heading[i - 1]
        f = np.array([np.cos(th), np.sin(th)])
        ahead = pos[i - 1] + lookahead * f
        # How far the look-ahead point leaves the safe box (0 = inside).
        over = np.maximum(lo - ahead, 0.0) + np.maximum(ahead - hi, 0.0)
        urgency = min(float(np.hypot(*over)) / (0.5 * side), 1.0)
        to_centre = centre_of_arena - pos[i - 1]
        desired = np.arctan2(to_centre[1], to_centre[0])
        err = float(_wrap_pi(desired - th))
        omega = (1.0 - urgency) * turn_rate[i] + urgency * 6.0 * err
        heading[i] = th + omega * dt
        step = speed[i] * dt * np.array([np.cos(heading[i]), np.sin(heading[i])])
        pos[i] = np.clip(pos[i - 1] + step, lo, hi)
    return pos, np.mod(heading, 2.0 * np.pi)


def _body_frame(heading: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.stack([np.cos(heading), np.sin(heading)], axis=-1)
    left = np.stack([-np.sin(heading), np.cos(heading)], axis=-1)
    return f, left


def keypoints_arena(centre: np.ndarray, heading: np.ndarray, body_length: float) -> np.ndarray:
    """Keypoints in the arena frame from body centre and heading.

    Parameters
    ----------
    centre : np.ndarray
        ``(n, 2)`` body centre.
    heading : np.ndarray
        ``(n,)`` radians.
    body_length : float
        Nose to tail-base distance, pixels.

    Returns
    -------
    np.ndarray
        ``(n, 4, 2)`` in the order of :data:`BODY_PARTS`.
    """
    f, left = _body_frame(heading)
    L = body_length / (_NOSE_U - _TAIL_BASE_U)
    nose = centre + _NOSE_U * L * f
    lear = centre + _EAR_U * L * f + _EAR_V * L * left
    rear = centre + _EAR_U * L * f - _EAR_V * L * left
    tail = centre + _TAIL_BASE_U * L * f
    return np.stack([nose, lear, rear, tail], axis=1)


def _occlusion_plan(
    rng: np.random.Generator, n_frames: int, fraction: float, fps: float
) -> list[tuple[int, int, int]]:
    """Episodes ``(start, stop, part_index)`` covering about ``fraction`` of the frames."""
    if fraction <= 0.0 or n_frames == 0:
        return []
    target = int(round(min(fraction, 1.0) * n_frames))
    covered = np.zeros(n_frames, dtype=bool)
    episodes: list[tuple[int, int, int]] = []
    max_len = max(1, int(round(0.5 * fps)))
    guard = 0
    while covered.sum() < target and guard < 10 * n_frames:
        guard += 1
        length = int(rng.integers(1, max_len + 1))
        length = min(length, target - int(covered.sum()))
        start = int(rng.integers(0, n_frames - length + 1))
        if covered[start : start + length].any():
            continue
        covered[start : start + length] = True
        episodes.append((start, start + length, int(rng.integers(0, len(BODY_PARTS)))))
    return episodes


def simulate_openfield(
    n_frames: int = 300,
    fps: float = 30.0,
    width: int = 200,
    height: int = 150,
    seed: int = 0,
    camera_view: str = "above",
    occlusion: float = 0.0,
    mean_speed_px_s: float | None = None,
) -> GroundTruth:
    """Simulate an open-field recording (trajectory and keypoints, no pixels).

    Parameters
    ----------
    n_frames : int
        Number of frames.
    fps : float
        Frame rate.
    width, height : int
        Frame size in pixels.
    seed : int
        Random seed; the result is a pure function of all parameters.
    camera_view : str
        ``"above"`` or ``"below"`` (image mirrored left/right).
    occlusion : float
        Fraction of frames in which an occluder disc hides one body part (episodes of
        up to half a second); the hidden keypoints are marked not visible.
    mean_speed_px_s : float, optional
        Mean walking speed; default a quarter of the arena side per second.

    Returns
    -------
    GroundTruth
        Keypoints in image coordinates for ``camera_view``.
    """
    _check_view(camera_view)
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    rng = np.random.default_rng(seed)
    ax0, ay0, ax1, ay1 = arena_layout(width, height)
    # Arena-frame box of the floor (y up); the layout is symmetric under both flips.
    arena_xy = (ax0, height - ay1, ax1, height - ay0)
    side = ax1 - ax0
    body_length = _BODY_LENGTH_FRAC * side
    centre, heading = simulate_path(n_frames, fps, arena_xy, body_length, rng, mean_speed_px_s)
    kp_arena = keypoints_arena(centre, heading, body_length)
    kp = arena_to_image(kp_arena, width, height, camera_view)

    visible = np.ones((n_frames, len(BODY_PARTS)), dtype=bool)
    occluders = np.full((n_frames, 3), np.nan)
    radius = 0.11 * body_length
    for start, stop, part in _occlusion_plan(rng, n_frames, occlusion, fps):
        occluders[start:stop, :2] = kp[start:stop, part]
        occluders[start:stop, 2] = radius
    has_occ = ~np.isnan(occluders[:, 0])
    dist = np.linalg.norm(kp - occluders[:, None, :2], axis=2)
    visible[has_occ] = dist[has_occ] > occluders[has_occ, 2:3]

    head_xy = 0.5 * (kp[:, 1] + kp[:, 2])
    time_s = np.arange(n_frames, dtype=float) / fps
    speed = _speed(head_xy, time_s)
    tail_phase = np.cumsum(np.full(n_frames, 2.0 * np.pi * 1.5 / fps)) + rng.uniform(0, 2 * np.pi)
    return GroundTruth(
        body_parts=list(BODY_PARTS),
        keypoints=kp,
        visible=visible,
        time_s=time_s,
        head_direction_deg=np.mod(np.degrees(heading), 360.0),
        head_xy_px=head_xy,
        head_speed_px_s=speed,
        camera_view=camera_view,
        width=int(width),
        height=int(height),
        fps=float(fps),
        arena_px=(ax0, ay0, ax1, ay1),
        occluders=occluders,
        tail_phase=tail_phase,
    )


def _speed(xy: np.ndarray, time_s: np.ndarray) -> np.ndarray:
    """Speed of a 2-D trajectory by central differences (px/s)."""
    if len(time_s) < 2:
        return np.zeros(len(time_s))
    vx = np.gradient(xy[:, 0], time_s)
    vy = np.gradient(xy[:, 1], time_s)
    return np.hypot(vx, vy)


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------


def _to_fixed(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points) * (1 << _SHIFT)).astype(np.int32)


def _fill(img: np.ndarray, points: np.ndarray, colour: tuple[int, int, int]) -> None:
    cv2.fillPoly(img, [_to_fixed(points)], colour, lineType=cv2.LINE_AA, shift=_SHIFT)


def _ellipse_points(
    centre: np.ndarray, f: np.ndarray, left: np.ndarray, a: float, b: float, n: int = 40
) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    return centre + np.outer(a * np.cos(t), f) + np.outer(b * np.sin(t), left)


def _head_points(
    centre: np.ndarray, f: np.ndarray, left: np.ndarray, a: float, b: float, tip: float
) -> np.ndarray:
    """Egg-shaped head whose front tapers to the nose at ``centre + tip * f``."""
    t = np.linspace(0.0, 2.0 * np.pi, 48, endpoint=False)
    c = np.cos(t)
    u = np.where(c > 0, tip * c, a * c)
    v = b * np.sin(t) * np.where(c > 0, 1.0 - 0.55 * c**2, 1.0)
    return centre + np.outer(u, f) + np.outer(v, left)


def render_frame(gt: GroundTruth, i: int) -> np.ndarray:
    """Draw frame ``i`` of a ground truth (BGR uint8, no noise).

    Parameters
    ----------
    gt : GroundTruth
        The simulation.
    i : int
        Frame index.

    Returns
    -------
    np.ndarray
        ``(height, width, 3)`` uint8.
    """
    w, h = gt.width, gt.height
    img = np.empty((h, w, 3), dtype=np.uint8)
    img[:] = _COL_OUTSIDE
    x0, y0, x1, y1 = gt.arena_px
    wall = _WALL_FRAC * (x1 - x0)
    _fill(img, _rect(x0 - wall, y0 - wall, x1 + wall, y1 + wall), _COL_WALL)
    _fill(img, _rect(x0, y0, x1, y1), _COL_FLOOR)

    kp = gt.keypoints[i]
    nose, lear, rear, tail = kp
    ear_mid = 0.5 * (lear + rear)
    # Body frame in image coordinates, from the keypoints themselves (works for both
    # views: "left" is the direction of the animal's left ear).
    f = nose - tail
    body_len = float(np.linalg.norm(f))
    f = f / body_len
    left = lear - rear
    left = left / float(np.linalg.norm(left))
    L = body_len / (_NOSE_U - _TAIL_BASE_U)
    centre = tail - _TAIL_BASE_U * L * f

    # Tail: a wiggling tapered curve behind the tail base.
    s = np.linspace(0.0, _TAIL_LEN * L, 16)
    wig = 0.12 * L * np.sin(2.2 * s / L + gt.tail_phase[i]) * (s / (_TAIL_LEN * L))
    tail_pts = tail + np.outer(-s, f) + np.outer(wig, left)
    for k in range(len(s) - 1):
        thick = max(1, int(round(0.09 * L * (1.0 - 0.7 * k / len(s)))))
        p = _to_fixed(tail_pts[k : k + 2])
        cv2.line(img, tuple(p[0]), tuple(p[1]), _COL_TAIL, thick, cv2.LINE_AA, _SHIFT)

    _fill(
        img,
        _ellipse_points(centre + _BODY_C_U * L * f, f, left, _BODY_A * L, _BODY_B * L),
        _COL_BODY,
    )
    head_c = centre + _HEAD_C_U * L * f
    _fill(
        img,
        _head_points(head_c, f, left, _HEAD_A * L, _HEAD_B * L, (_NOSE_U - _HEAD_C_U) * L),
        _COL_HEAD,
    )
    _fill(img, _ellipse_points(nose - 0.035 * L * f, f, left, 0.045 * L, 0.045 * L, 16), _COL_NOSE)
    for ear in (lear, rear):
        _fill(
            img,
            _ellipse_points(ear, f, left, 1.25 * _EAR_R * L, 1.25 * _EAR_R * L, 24),
            _COL_EAR_RIM,
        )
        _fill(img, _ellipse_points(ear, f, left, _EAR_R * L, _EAR_R * L, 24), _COL_EAR)
    # A small dark mark between the ears makes the head orientation unambiguous.
    _fill(img, _ellipse_points(ear_mid - 0.06 * L * f, f, left, 0.05 * L, 0.05 * L, 12), _COL_BODY)

    if gt.occluders.shape[0] == gt.n_frames and not np.isnan(gt.occluders[i, 0]):
        ox, oy, r = gt.occluders[i]
        _fill(
            img,
            _ellipse_points(
                np.array([ox, oy]), np.array([1.0, 0.0]), np.array([0.0, 1.0]), r + 0.5, r + 0.5, 32
            ),
            _COL_OCCLUDER,
        )
    return img


def _rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=float)


def render_video(
    ground_truth: GroundTruth, path: str | Path, noise: float = 0.0, seed: int = 0
) -> Path:
    """Write the rendered recording as an MP4 (codec ``mp4v``) readable by cv2 and DLC.

    Parameters
    ----------
    ground_truth : GroundTruth
        The simulation to draw.
    path : str or Path
        Output file; must end in ``.mp4`` (the container is chosen from the suffix).
    noise : float
        Standard deviation of Gaussian pixel noise (grey levels) added to every frame.
    seed : int
        Seed of the pixel noise.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    VideoError
        If OpenCV cannot open a writer for ``path``.
    """
    path = Path(path)
    gt = ground_truth
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(gt.fps), (gt.width, gt.height)
    )
    if not writer.isOpened():
        raise VideoError(
            f"Cannot write video {path}: OpenCV has no mp4v writer for it; use a path "
            "ending in .mp4 in a writable folder."
        )
    rng = np.random.default_rng(seed)
    try:
        for i in range(gt.n_frames):
            img = render_frame(gt, i)
            if noise > 0:
                noisy = img.astype(np.float32) + rng.normal(0.0, noise, img.shape[:2])[..., None]
                img = np.clip(np.round(noisy), 0, 255).astype(np.uint8)
            writer.write(img)
    finally:
        writer.release()
    return path


# --------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------


def ground_truth_table(ground_truth: GroundTruth) -> pd.DataFrame:
    """Long table of a ground truth: frame, time_s, body_part, x_px, y_px, visible.

    Parameters
    ----------
    ground_truth : GroundTruth
        The simulation.

    Returns
    -------
    pd.DataFrame
        One row per frame and body part, frame-major.
    """
    gt = ground_truth
    n, p = gt.keypoints.shape[:2]
    return pd.DataFrame(
        {
            "frame": np.repeat(np.arange(n), p),
            "time_s": np.repeat(gt.time_s, p),
            "body_part": np.tile(np.array(gt.body_parts, dtype=object), n),
            "x_px": gt.keypoints[:, :, 0].ravel(),
            "y_px": gt.keypoints[:, :, 1].ravel(),
            "visible": gt.visible.ravel(),
        }
    )


def write_ground_truth(ground_truth: GroundTruth, path_csv: str | Path) -> Path:
    """Write the ground truth as a long CSV (atomically: temp file + rename).

    Parameters
    ----------
    ground_truth : GroundTruth
        The simulation.
    path_csv : str or Path
        Output CSV with columns frame, time_s, body_part, x_px, y_px, visible.

    Returns
    -------
    Path
        ``path_csv``.
    """
    path_csv = Path(path_csv)
    tmp = path_csv.with_name(f".{path_csv.name}.tmp-{os.getpid()}")
    ground_truth_table(ground_truth).to_csv(tmp, index=False, float_format="%.10g")
    os.replace(tmp, path_csv)
    return path_csv


def read_ground_truth(
    path: str | Path,
    camera_view: str | None = None,
    width: int | None = None,
    height: int | None = None,
) -> GroundTruth:
    """Read a ground-truth CSV written by :func:`write_ground_truth`.

    Head direction, head position and head speed are recomputed from the ears. The CSV
    does not hold the camera view nor the frame size: when not given they are taken from
    the ``session.yaml`` and the video (``<name>.mp4`` for ``<name>.groundtruth.csv``)
    next to the CSV when present, else ``"above"`` and the extent of the keypoints.

    Parameters
    ----------
    path : str or Path
        The CSV.
    camera_view : str, optional
        ``"above"`` or ``"below"``.
    width, height : int, optional
        Frame size.

    Returns
    -------
    GroundTruth
        With ``occluders`` all NaN and ``arena_px`` from the frame size.

    Raises
    ------
    SessionError
        If the file is missing or lacks a column.
    """
    path = Path(path)
    if not path.is_file():
        raise SessionError(f"Ground-truth file {path} does not exist; create it with make_session.")
    df = pd.read_csv(path)
    need = ["frame", "time_s", "body_part", "x_px", "y_px", "visible"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise SessionError(f"Ground-truth file {path} lacks columns {missing}; expected {need}.")
    if camera_view is None:
        camera_view = "above"
        session_yaml = path.parent / SESSION_FILE
        if session_yaml.is_file():
            meta = yaml.safe_load(session_yaml.read_text()) or {}
            camera_view = str(meta.get("camera_view", "above"))
    stem = path.name.split(".groundtruth")[0]
    video = path.parent / f"{stem}.mp4"
    if (width is None or height is None) and video.is_file():
        cap = cv2.VideoCapture(str(video))
        width = width or int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = height or int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        cap.release()
    parts = list(dict.fromkeys(df["body_part"].tolist()))
    frames = np.sort(df["frame"].unique())
    n = len(frames)
    table = df.set_index(["frame", "body_part"])
    idx = pd.MultiIndex.from_product([frames, parts])
    table = table.reindex(idx)
    kp = table[["x_px", "y_px"]].to_numpy(float).reshape(n, len(parts), 2)
    visible = table["visible"].astype(str).str.lower().isin(["true", "1"]).to_numpy()
    visible = visible.reshape(n, len(parts))
    time_s = table["time_s"].to_numpy(float).reshape(n, len(parts))[:, 0]
    if width is None:
        width = int(np.ceil(np.nanmax(kp[..., 0]))) + 1
    if height is None:
        height = int(np.ceil(np.nanmax(kp[..., 1]))) + 1
    fps = float((n - 1) / (time_s[-1] - time_s[0])) if n > 1 else float("nan")
    li, ri = parts.index("left_ear"), parts.index("right_ear")
    head_xy = 0.5 * (kp[:, li] + kp[:, ri])
    return GroundTruth(
        body_parts=parts,
        keypoints=kp,
        visible=visible,
        time_s=time_s,
        head_direction_deg=head_direction_from_ears_deg(
            kp[:, li], kp[:, ri], width, height, camera_view
        ),
        head_xy_px=head_xy,
        head_speed_px_s=_speed(head_xy, time_s),
        camera_view=camera_view,
        width=int(width),
        height=int(height),
        fps=fps,
        arena_px=arena_layout(int(width), int(height)),
        occluders=np.full((n, 3), np.nan),
        tail_phase=np.zeros(n),
    )


def session_metadata(
    ground_truth: GroundTruth,
    *,
    start_time: str = DEFAULT_START_TIME,
    arena_cm: float = 50.0,
    assignment: dict[str, str] | None = None,
) -> dict:
    """Content of ``session.yaml`` for a synthetic recording.

    Parameters
    ----------
    ground_truth : GroundTruth
        The simulation (gives camera view and the arena size in pixels).
    start_time : str
        ISO 8601 start timestamp with offset.
    arena_cm : float
        Side of the square arena in cm.
    assignment : dict, optional
        ``{"model": ..., "method": ...}``.

    Returns
    -------
    dict
        Keys tracking_type, start_time, camera_view, arena, pixels_per_cm and,
        when given, assignment.
    """
    meta: dict = {
        "tracking_type": "openfield",
        "start_time": str(start_time),
        "camera_view": ground_truth.camera_view,
        "arena": {"shape": "square", "width_cm": float(arena_cm), "height_cm": float(arena_cm)},
        "pixels_per_cm": float(ground_truth.arena_side_px / float(arena_cm)),
    }
    if assignment is not None:
        if set(assignment) != {"model", "method"}:
            raise ValueError(
                f"assignment must have exactly the keys 'model' and 'method', got {assignment}"
            )
        meta["assignment"] = {
            "model": str(assignment["model"]),
            "method": str(assignment["method"]),
        }
    return meta


def make_session(
    data_root: str | Path,
    subject: str,
    session: str,
    *,
    n_frames: int = 300,
    fps: float = 30.0,
    width: int = 200,
    height: int = 150,
    seed: int = 0,
    camera_view: str = "above",
    noise: float = 0.0,
    occlusion: float = 0.0,
    start_time: str = DEFAULT_START_TIME,
    arena_cm: float = 50.0,
    assignment: dict[str, str] | None = None,
) -> Path:
    """Write a synthetic session folder ``<data_root>/<subject>/<session>/``.

    The folder holds ``session.yaml``, ``openfield.groundtruth.csv`` and, written last
    under a hidden temporary name (``.openfield.tmp-<pid>.mp4``) and renamed when
    complete, ``openfield.mp4``.

    Parameters
    ----------
    data_root : str or Path
        Root of the data tree.
    subject, session : str
        Folder names.
    n_frames, fps, width, height, seed, camera_view, occlusion
        Passed to :func:`simulate_openfield`.
    noise : float
        Pixel noise sigma passed to :func:`render_video` (seeded by ``seed``).
    start_time : str
        ISO 8601 start timestamp written to session.yaml.
    arena_cm : float
        Side of the arena in cm (sets ``pixels_per_cm``).
    assignment : dict, optional
        ``{"model": ..., "method": ...}`` written to session.yaml when given.

    Returns
    -------
    Path
        The session folder.
    """
    gt = simulate_openfield(
        n_frames=n_frames,
        fps=fps,
        width=width,
        height=height,
        seed=seed,
        camera_view=camera_view,
        occlusion=occlusion,
    )
    meta = session_metadata(gt, start_time=start_time, arena_cm=arena_cm, assignment=assignment)
    folder = Path(data_root) / subject / session
    folder.mkdir(parents=True, exist_ok=True)
    tmp_yaml = folder / f".{SESSION_FILE}.tmp-{os.getpid()}"
    tmp_yaml.write_text(yaml.safe_dump(meta, sort_keys=False, default_flow_style=None))
    os.replace(tmp_yaml, folder / SESSION_FILE)
    write_ground_truth(gt, folder / GROUND_TRUTH_NAME)
    tmp_video = folder / f".openfield.tmp-{os.getpid()}.mp4"
    try:
        render_video(gt, tmp_video, noise=noise, seed=seed)
        os.replace(tmp_video, folder / VIDEO_NAME)
    finally:
        tmp_video.unlink(missing_ok=True)
    return folder
