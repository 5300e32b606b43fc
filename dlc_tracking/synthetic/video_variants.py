"""Variants of a synthetic video for inference tests: grayscale, corrupt, on a canvas.

- :func:`grayscale_copy`: the same frames written as a single-channel video (OpenCV and
  DeepLabCut read it back as three equal channels);
- :func:`mjpeg_with_corrupt_frame`: the frames as Motion-JPEG in AVI, one frame's JPEG
  data overwritten with zeros. Its header and last frame stay intact, so probing it
  succeeds, but decoding stops at the corrupt frame: the failure a video damaged in
  the middle shows;
- :func:`openfield_on_canvas`: an open-field scene at its own scale on a larger (or
  shifted) frame, the animal optionally leaving the frame, vanishing for a while, or
  joined by a second animal (dynamic cropping's cases).
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


def openfield_on_canvas(ground_truth, path: Path, canvas: tuple[int, int],
                        offset: tuple[int, int], noise: float = 2.0, seed: int = 0,
                        hidden: tuple[int, int] | None = None, second=None,
                        second_offset: tuple[int, int] = (0, 0),
                        second_from: int = 0) -> tuple[Path, np.ndarray, np.ndarray]:
    """An open-field scene drawn at its own size, placed on a larger (or shifted) canvas.

    The animal keeps the size a model was trained at (the tiny model: 200 x 150 scenes)
    while the frame grows, which is where cropping pays; an ``offset`` that pushes the
    scene past the canvas makes the animal touch and cross the frame's border.

    Parameters
    ----------
    ground_truth : GroundTruth
        The scene (``simulate_openfield``).
    path : Path
        Output ``.mp4`` (codec mp4v, as ``render_video``).
    canvas : (width, height)
        Frame size of the video.
    offset : (x, y)
        Where the scene's top-left pixel lands on the canvas (may be negative).
    noise, seed : pixel noise as ``render_video``.
    hidden : (start, stop), optional
        Frames in which the animal is not drawn (it has left the arena).
    second : GroundTruth, optional
        A second scene (another animal) drawn at ``second_offset`` from frame
        ``second_from`` on.

    Returns
    -------
    path : Path
    keypoints : ndarray, shape (frames, parts, 2)
        Ground truth in canvas pixels.
    visible : ndarray of bool, shape (frames, parts)
        The part is drawn and inside the canvas.
    """
    import copy

    import cv2

    from dlc_tracking.synthetic.openfield import render_frame

    gt = ground_truth
    if hidden is not None:  # the animal far outside the scene: nothing of it is drawn
        gt = copy.deepcopy(gt)
        gt.keypoints[hidden[0]:hidden[1]] += 10_000.0
    width, height = canvas
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(gt.fps),
                             (width, height))
    rng = np.random.default_rng(seed)
    outside = render_frame(gt, 0)[0, 0].copy()  # the scene's surround colour
    try:
        for i in range(gt.n_frames):
            img = np.empty((height, width, 3), np.uint8)
            img[:] = outside
            _paste(img, render_frame(gt, i), offset)
            if second is not None and i >= second_from:
                _paste(img, render_frame(second, i), second_offset)
            if noise > 0:
                noisy = img.astype(np.float32) + rng.normal(0.0, noise, img.shape[:2])[..., None]
                img = np.clip(np.round(noisy), 0, 255).astype(np.uint8)
            writer.write(img)
    finally:
        writer.release()
    kp = ground_truth.keypoints + np.asarray(offset, dtype=float)
    visible = ground_truth.visible.copy()
    visible &= (kp[..., 0] >= 0) & (kp[..., 0] < width) & (kp[..., 1] >= 0) & (kp[..., 1] < height)
    if hidden is not None:
        visible[hidden[0]:hidden[1]] = False
    return Path(path), kp, visible


def _paste(img: np.ndarray, scene: np.ndarray, offset: tuple[int, int]) -> None:
    """Copy ``scene`` onto ``img`` at ``offset`` (x, y), clipped to ``img``."""
    ox, oy = offset
    h, w = scene.shape[:2]
    x0, y0 = max(ox, 0), max(oy, 0)
    x1, y1 = min(ox + w, img.shape[1]), min(oy + h, img.shape[0])
    if x1 > x0 and y1 > y0:
        img[y0:y1, x0:x1] = scene[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
