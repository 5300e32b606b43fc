"""The comparison picture: one frame of a recording with both versions' points."""

from __future__ import annotations

from pathlib import Path

import numpy as np

OLD_BGR = (40, 40, 230)   # red circles: the old version
NEW_BGR = (40, 200, 40)   # green crosses: the new version


def disagreement_frame(old: np.ndarray, new: np.ndarray) -> int:
    """The frame where the two versions' points are furthest apart on average (the
    first frame when they never both have a point)."""
    d = np.hypot(*(old[..., :2] - new[..., :2]).transpose(2, 0, 1))
    mean = np.where(np.isnan(d), -1.0, d).max(1)
    return int(np.argmax(mean)) if mean.size else 0


def comparison_png(video: Path, frame: int, old: np.ndarray, new: np.ndarray,
                   body_parts: list[str], old_name: str, new_name: str,
                   scale: int = 3) -> bytes:
    """PNG of ``frame`` with the old version's points (red circles) and the new one's
    (green crosses), enlarged ``scale`` times, names in the corner.

    Parameters
    ----------
    old, new : np.ndarray
        ``(n_parts, 3)`` x, y, likelihood of that frame.
    """
    import cv2

    capture = cv2.VideoCapture(str(video))
    try:
        capture.set(cv2.CAP_PROP_POS_FRAMES, int(frame))
        ok, image = capture.read()
    finally:
        capture.release()
    if not ok:
        raise ValueError(f"{video}: frame {frame} cannot be read")
    image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    r = 3 * scale
    for j, _part in enumerate(body_parts):
        if not np.isnan(old[j, :2]).any():
            cv2.circle(image, (int(old[j, 0] * scale), int(old[j, 1] * scale)), r, OLD_BGR, 2)
        if not np.isnan(new[j, :2]).any():
            x, y = int(new[j, 0] * scale), int(new[j, 1] * scale)
            cv2.line(image, (x - r, y - r), (x + r, y + r), NEW_BGR, 2)
            cv2.line(image, (x - r, y + r), (x + r, y - r), NEW_BGR, 2)
    for i, (text, colour) in enumerate(((f"o {old_name}", OLD_BGR),
                                        (f"x {new_name}", NEW_BGR),
                                        (f"frame {frame}", (255, 255, 255)))):
        cv2.putText(image, text, (6, 16 + 16 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1,
                    cv2.LINE_AA)
    ok, buf = cv2.imencode(".png", image)
    return buf.tobytes()
