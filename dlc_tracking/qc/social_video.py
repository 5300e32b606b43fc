"""Labeled video of a multi-animal recording: one colour per individual, its subject id
written beside it, identity-swap frames marked.

Decode, draw, encode in one OpenCV pass (as :mod:`dlc_tracking.qc.labeled_video`). The
output is written to a hidden temporary file and renamed, so nothing half written is
ever seen.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from dlc_tracking.errors import VideoError

__all__ = ["INDIVIDUAL_COLOURS", "render_social_video"]

INDIVIDUAL_COLOURS = [(230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66),
                      (0, 114, 178), (213, 94, 0), (204, 121, 167)]
"""Okabe-Ito colours (RGB), distinguishable with colour-vision deficiencies."""


def render_social_video(video_path: str | os.PathLike, out_path: str | os.PathLike,
                        poses: np.ndarray, individuals: Sequence[str],
                        subjects: Mapping[str, str | None] | None = None,
                        swap_frames: Sequence[int] = (), likelihood_cutoff: float = 0.6,
                        radius: int = 3) -> Path:
    """Draw every individual's body parts in its colour, with its label.

    Parameters
    ----------
    video_path, out_path : path
        Source video and the ``.mp4`` to write.
    poses : np.ndarray
        ``(n_frames, n_individuals, n_parts, 3)`` image pixels.
    individuals : sequence of str
        Names of axis 1.
    subjects : mapping, optional
        individual -> subject id; the label reads ``mus1 M12`` (or ``mus1 ?`` when
        anonymous).
    swap_frames : sequence of int
        Frames with a flagged identity swap: a red frame border and "identity swap".

    Raises
    ------
    VideoError
        The video cannot be read or written.
    """
    import cv2

    cap = cv2.VideoCapture(str(video_path))
    if not cap.isOpened():
        raise VideoError(f"{video_path}: cannot open the video for the labeled video.")
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    out_path = Path(out_path)
    fd, tmp = tempfile.mkstemp(prefix=f".{out_path.stem}.", suffix=".mp4", dir=out_path.parent)
    os.close(fd)
    writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    subjects = dict(subjects or {})
    swaps = set(int(f) for f in swap_frames)
    labels = [f"{ind} {subjects.get(ind) or '?'}" for ind in individuals]
    colours = [tuple(int(c) for c in INDIVIDUAL_COLOURS[k % len(INDIVIDUAL_COLOURS)][::-1])
               for k in range(len(individuals))]  # BGR
    try:
        i = 0
        while i < len(poses):
            ok, frame = cap.read()
            if not ok:
                break
            for k in range(len(individuals)):
                p = poses[i, k]
                with np.errstate(invalid="ignore"):
                    seen = np.isfinite(p[:, 0]) & (np.nan_to_num(p[:, 2]) >= likelihood_cutoff)
                for x, y in p[seen, :2]:
                    cv2.circle(frame, (int(round(x)), int(round(y))), radius, colours[k], -1,
                               cv2.LINE_AA)
                if seen.any():
                    x, y = p[seen, :2].mean(axis=0)
                    cv2.putText(frame, labels[k], (int(x) + 6, int(y) - 6),
                                cv2.FONT_HERSHEY_SIMPLEX, 0.4, colours[k], 1, cv2.LINE_AA)
            if i in swaps:
                cv2.rectangle(frame, (0, 0), (w - 1, h - 1), (0, 0, 255), 3)
                cv2.putText(frame, "identity swap", (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                            (0, 0, 255), 1, cv2.LINE_AA)
            writer.write(frame)
            i += 1
        writer.release()
        cap.release()
        if i == 0:
            raise VideoError(f"{video_path}: no frame could be read.")
        os.replace(tmp, out_path)
    except BaseException:
        writer.release()
        cap.release()
        Path(tmp).unlink(missing_ok=True)
        raise
    return out_path
