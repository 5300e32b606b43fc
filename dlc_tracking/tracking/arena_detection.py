"""A proposal for the arena's outline, found in the video (not in the tracking).

The median of frames spread over the video removes the animal; the floor's outline is
then found from its edges (the first clear brightness step outward from the centre, a
line fitted per side), and is a *proposal*: written next to a picture of it for the user
to confirm (rename the file to ``calibration.yaml``), never used silently.
:func:`shape_warning` says when the outline contradicts the declared arena shape.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlc_tracking.errors import VideoError


def median_frame(video: Path, n_frames: int = 25) -> np.ndarray:
    """Per-pixel median (BGR, uint8) of ``n_frames`` frames spread over the video."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    try:
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if not cap.isOpened() or total <= 0:
            raise VideoError(f"{video}: cannot be read to propose the arena outline; check "
                             "the file, or measure the corners by hand (docs/sessions.md).")
        frames = []
        for index in np.linspace(0, total - 1, min(n_frames, total)).astype(int):
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(index))
            ok, frame = cap.read()
            if ok:
                frames.append(frame)
    finally:
        cap.release()
    if not frames:
        raise VideoError(f"{video}: no frame could be decoded to propose the arena outline.")
    return np.median(np.stack(frames), axis=0).astype(np.uint8)


EDGE_NOISE_FACTOR = 6.0
"""A floor edge is a brightness step whose gradient exceeds this many times the gradient
noise of the floor (robust spread in the image's centre), and at least
:data:`MIN_EDGE_STEP`; shadows fade too slowly to reach it, the floor's edge and the wall
tops do."""
MIN_EDGE_STEP = 6.0
"""Smallest gradient (grey levels per px, after a 1 px blur) taken as an edge: video
compression smooths the floor's noise away but leaves block steps of a few grey levels,
which a shadow's slope can push over a noise-based threshold."""
MIN_EDGE_POINTS = 12
"""Edge points a side needs before a line is fitted through them."""
SHAPE_TOLERANCE = 0.15
"""Relative difference between the outline's side ratio and the declared shape's still
accepted (perspective and lens distortion stretch an outline a little)."""


def _first_edge(profile: np.ndarray, threshold: float) -> float | None:
    """Sub-pixel position (index units, between samples) of the first brightness step
    along ``profile`` whose gradient magnitude exceeds ``threshold``: the local maximum
    of that step, refined by a parabola."""
    grad = np.abs(np.diff(profile))
    above = np.flatnonzero(grad > threshold)
    if above.size == 0:
        return None
    i = int(above[0])
    while i + 1 < grad.size and grad[i + 1] >= grad[i]:  # climb to the step's peak
        i += 1
    offset = 0.0
    if 0 < i < grad.size - 1:
        a, b, c = grad[i - 1], grad[i], grad[i + 1]
        denom = a - 2 * b + c
        offset = 0.5 * (a - c) / denom if denom else 0.0
    return i + 0.5 + float(np.clip(offset, -0.5, 0.5))


def _fit_line(along: np.ndarray, across: np.ndarray) -> tuple[float, float]:
    """``across = slope * along + intercept`` through edge points: a Theil-Sen start
    (median of pairwise slopes; up to ~30 % stray points, e.g. where a scan line stopped
    at something on the floor, do not move it), then least squares on the points within
    3 robust spreads (at least 1.5 px) of it."""
    i, j = np.triu_indices(along.size, k=1)
    run = along[j] - along[i]
    ok = run != 0
    slope = float(np.median((across[j] - across[i])[ok] / run[ok])) if ok.any() else 0.0
    intercept = float(np.median(across - slope * along))
    for _ in range(3):
        residual = np.abs(across - (slope * along + intercept))
        keep = residual <= max(3.0 * 1.4826 * float(np.median(residual)), 1.5)
        if keep.sum() < MIN_EDGE_POINTS // 2:
            break
        slope, intercept = (float(v) for v in np.polyfit(along[keep], across[keep], 1))
    return slope, intercept


def _scan_side(gray: np.ndarray, centre: tuple[float, float], side: str,
               span: tuple[float, float], threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Edge points of one side: for each line across ``span`` (columns for top/bottom,
    rows for left/right), the first step outward from the centre.

    Returns (along, across) in image px: along = x for top/bottom (y for left/right),
    across = the edge's y (x)."""
    h, w = gray.shape
    cx, cy = centre
    along, across = [], []
    for pos in np.arange(int(np.ceil(span[0])), int(span[1]) + 1, 2):
        if side in ("top", "bottom"):
            if not 0 <= pos < w:
                continue
            start = int(round(cy))
            line = gray[start::-1, pos] if side == "top" else gray[start:, pos]
        else:
            if not 0 <= pos < h:
                continue
            start = int(round(cx))
            line = gray[pos, start::-1] if side == "left" else gray[pos, start:]
        found = _first_edge(line, threshold)
        if found is None:
            continue
        along.append(float(pos))
        across.append(start - found if side in ("top", "left") else start + found)
    return np.asarray(along), np.asarray(across)


def propose_corners(frame: np.ndarray) -> tuple[np.ndarray, float]:
    """Four corners (image px, float) of the arena floor, and its share of the image (a
    small share means the proposal is doubtful).

    The floor is found from its edges, not from a brightness threshold: lines scanned
    outward from the image's centre stop at the first brightness step clearly above the
    floor's own noise (:data:`EDGE_NOISE_FACTOR`). That step is the floor's edge whether
    the walls are darker or brighter than the floor, barely different from it, or topped
    by a bright rim further out; a shadow on the floor fades too slowly to count. A line
    is fitted through each side's edge points (stray points dropped) and the corners are
    where the lines meet: top-left, top-right, bottom-right, bottom-left.

    Raises
    ------
    VideoError
        A side without enough edge points (no floor edge visible).
    """
    import cv2

    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
    gray = cv2.GaussianBlur(gray.astype(np.float64), (0, 0), 1.0)
    h, w = gray.shape
    core = gray[int(0.4 * h):int(0.6 * h), int(0.4 * w):int(0.6 * w)]
    noise = np.concatenate([np.diff(core, axis=0).ravel(), np.diff(core, axis=1).ravel()])
    threshold = max(EDGE_NOISE_FACTOR * 1.4826 * float(np.median(np.abs(noise))),
                    MIN_EDGE_STEP)
    centre = (w / 2.0, h / 2.0)
    extent = {"left": 0.0, "right": w - 1.0, "top": 0.0, "bottom": h - 1.0}
    for _ in range(2):  # rough extent on the central row and column, then re-centre
        row, col = int(round(centre[1])), int(round(centre[0]))
        for side, line, start, sign in (
                ("left", gray[row, col::-1], col, -1), ("right", gray[row, col:], col, 1),
                ("top", gray[row::-1, col], row, -1), ("bottom", gray[row:, col], row, 1)):
            found = _first_edge(line, threshold)
            if found is not None:
                extent[side] = start + sign * found
        centre = ((extent["left"] + extent["right"]) / 2, (extent["top"] + extent["bottom"]) / 2)
    lines = {}
    for side in ("top", "bottom", "left", "right"):
        lo, hi = ((extent["left"], extent["right"]) if side in ("top", "bottom")
                  else (extent["top"], extent["bottom"]))
        margin = 0.2 * (hi - lo)  # away from the corners, where the walls meet
        along, across = _scan_side(gray, centre, side, (lo + margin, hi - margin), threshold)
        if along.size < MIN_EDGE_POINTS:
            raise VideoError(
                f"no floor edge found on the {side} side of the video's median frame "
                f"({along.size} edge points); the proposal needs the floor's four edges in "
                "view. Measure the corners by hand (docs/sessions.md).")
        lines[side] = _fit_line(along, across)

    def meet(horizontal: str, vertical: str) -> list[float]:
        a, b = lines[horizontal]  # y = a x + b
        c, d = lines[vertical]    # x = c y + d
        y = (a * d + b) / (1 - a * c)
        return [c * y + d, y]

    corners = np.array([meet("top", "left"), meet("top", "right"),
                        meet("bottom", "right"), meet("bottom", "left")], dtype=np.float64)
    area = 0.5 * abs(float(np.dot(corners[:, 0], np.roll(corners[:, 1], 1))
                           - np.dot(corners[:, 1], np.roll(corners[:, 0], 1))))
    return corners, float(area / (h * w))


def outline_side_ratio(corners: np.ndarray) -> float:
    """Long side / short side of a four-corner outline (means of opposite sides)."""
    c = np.asarray(corners, np.float64)
    sides = np.hypot(*(np.roll(c, -1, axis=0) - c).T)
    a, b = (sides[0] + sides[2]) / 2, (sides[1] + sides[3]) / 2
    return float(max(a, b) / max(min(a, b), 1e-9))


def shape_warning(corners: np.ndarray, shape: str | None, width_cm: float | None = None,
                  height_cm: float | None = None, tolerance: float = SHAPE_TOLERANCE
                  ) -> str | None:
    """A warning when the outline's side ratio contradicts the declared arena, else None.

    Parameters
    ----------
    corners : np.ndarray
        ``(4, 2)`` outline corners in order around the outline.
    shape : str or None
        The declared ``arena.shape`` (``square``, ``rectangle``, ``circle``...).
    width_cm, height_cm : float, optional
        The declared size; a rectangle's ratio is checked against it.
    """
    ratio = outline_side_ratio(corners)
    if shape in ("square", "circle"):
        expected = 1.0
    elif width_cm and height_cm:
        expected = max(width_cm, height_cm) / min(width_cm, height_cm)
    else:
        return None
    if abs(ratio / expected - 1) <= tolerance:
        return None
    declared = (f"a {shape}" if expected == 1.0
                else f"a {width_cm:g} x {height_cm:g} cm {shape or 'arena'}")
    return (f"the proposed outline is {ratio:.2f}:1 but the arena is declared as {declared} "
            f"({expected:.2f}:1): the proposal has probably found something else than the "
            "floor's edge (a wall top, a shadow), or the declared shape is wrong. Check the "
            "picture before accepting it.")


def proposal_png(frame: np.ndarray, corners: np.ndarray) -> bytes:
    """The median frame with the proposed outline and numbered corners drawn (PNG)."""
    import cv2

    img = frame.copy() if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    pts = np.round(corners).astype(np.int32)
    cv2.polylines(img, [pts], True, (0, 0, 255), 1, cv2.LINE_AA)
    for i, (x, y) in enumerate(pts):
        cv2.circle(img, (int(x), int(y)), 3, (0, 200, 255), -1, cv2.LINE_AA)
        cv2.putText(img, str(i + 1), (int(x) + 4, int(y) - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 200, 255), 1, cv2.LINE_AA)
    ok, buf = cv2.imencode(".png", img)
    if not ok:  # pragma: no cover - OpenCV always encodes a BGR uint8 image
        raise VideoError("could not encode the arena proposal picture")
    return buf.tobytes()
