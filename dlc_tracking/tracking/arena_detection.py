"""A proposal for the arena's outline, found in the video (not in the tracking).

The median of frames spread over the video removes the animal; the arena floor is then
the largest bright (or dark) region, and its outline, reduced to four corners, is a
*proposal*: written next to a picture of it for the user to confirm (rename the file to
``calibration.yaml``), never used silently.
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


def propose_corners(frame: np.ndarray) -> tuple[np.ndarray, float]:
    """Four corners (image px, float) of the largest uniform region, and its share of the
    image (a small share means the proposal is doubtful).

    Raises
    ------
    VideoError
        No region to propose.
    """
    import cv2

    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
    gray = cv2.GaussianBlur(gray, (5, 5), 0)
    _, bright = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    best = None
    for mask in (bright, 255 - bright):  # a light floor on dark walls, or the reverse
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for contour in contours:
            area = cv2.contourArea(contour)
            touches = cv2.boundingRect(contour)
            whole = (touches[2] >= gray.shape[1] - 2 and touches[3] >= gray.shape[0] - 2)
            if not whole and (best is None or area > best[0]):
                best = (area, contour)
    if best is None:
        raise VideoError("no uniform region found in the video's median frame to propose an "
                         "arena outline; measure the corners by hand (docs/sessions.md).")
    area, contour = best
    hull = cv2.convexHull(contour)
    approx = cv2.approxPolyDP(hull, 0.02 * cv2.arcLength(hull, True), True)
    if len(approx) == 4:
        corners = approx.reshape(4, 2).astype(np.float64)
    else:  # not a clean quadrilateral: the smallest rotated rectangle around it
        corners = cv2.boxPoints(cv2.minAreaRect(hull)).astype(np.float64)
    # contour pixels are the region's outermost pixel centres; the floor's edge lies half
    # a pixel beyond them
    centre = corners.mean(axis=0)
    corners += 0.5 * np.sign(corners - centre)
    return corners, float(area / (gray.shape[0] * gray.shape[1]))


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
