"""Variants of a synthetic video for inference tests: grayscale, and a corrupt frame.

- :func:`grayscale_copy`: the same frames written as a single-channel video (OpenCV and
  DeepLabCut read it back as three equal channels);
- :func:`mjpeg_with_corrupt_frame`: the frames as Motion-JPEG in AVI, one frame's JPEG
  data overwritten with zeros. Its header and last frame stay intact, so probing it
  succeeds, but decoding stops at the corrupt frame: the failure a video damaged in
  the middle shows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _frames(video: Path):
    import cv2

    capture = cv2.VideoCapture(str(video))
    try:
        fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            yield fps, frame
    finally:
        capture.release()


def grayscale_copy(video: Path, out: Path) -> Path:
    """Write ``video``'s frames as a grayscale ``.mp4`` (codec mp4v); returns ``out``."""
    import cv2

    writer = None
    for fps, frame in _frames(video):
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        if writer is None:
            h, w = grey.shape
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h),
                                     isColor=False)
        writer.write(grey)
    if writer is None:
        raise ValueError(f"{video} has no frames")
    writer.release()
    return Path(out)


def mjpeg_with_corrupt_frame(video: Path, out: Path, corrupt_frame: int) -> Path:
    """Write ``video`` as MJPEG ``.avi`` with frame ``corrupt_frame``'s data zeroed."""
    import cv2

    writer = None
    n = 0
    for fps, frame in _frames(video):
        if writer is None:
            h, w = frame.shape[:2]
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
        writer.write(frame)
        n += 1
    if writer is None or not 0 < corrupt_frame < n - 1:
        raise ValueError(f"{video}: need a frame strictly inside 0..{n - 1}")
    writer.release()
    data = bytearray(Path(out).read_bytes())
    raw = np.frombuffer(bytes(data), dtype=np.uint8)
    starts = np.flatnonzero((raw[:-1] == 0xFF) & (raw[1:] == 0xD8))  # JPEG start markers
    begin = int(starts[corrupt_frame])
    # the first half of the frame's JPEG only: the container's next chunk header stays
    end = begin + (int(starts[corrupt_frame + 1]) - begin) // 2
    data[begin:end] = bytes(end - begin)
    Path(out).write_bytes(bytes(data))
    return Path(out)
