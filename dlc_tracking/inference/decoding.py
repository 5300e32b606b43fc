"""Decoding a video into batches of RGB frames in a thread, ahead of the network.

One decoder thread reads frames with OpenCV (as DeepLabCut does: BGR frames, converted to
RGB, ``cropping`` applied as DLC's ``VideoReader`` applies it) straight into preallocated
``uint8`` batch buffers of shape ``(batch, height, width, 3)``. Ready batches wait in a
bounded queue; the consumer hands each buffer back once the network has read it. So at
most ``queue_batches + 2`` batches of frames exist at any time, whatever the video's
length, and the network never waits on the decoder unless decoding is the bottleneck.

A video that stops delivering frames before the count its header announces (a file cut
short, a corrupt frame the decoder cannot read) raises :class:`VideoError` naming the
file and the frame number; nothing is returned for the partial video.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlc_tracking.errors import VideoError

_DONE = object()


@dataclass(frozen=True)
class Crop:
    """A DLC ``cropping`` box in pixels: ``frame[y1:y2, x1:x2]``."""

    x1: int
    x2: int
    y1: int
    y2: int


def dlc_crop(box: tuple[int, int, int, int], width: int, height: int) -> Crop:
    """The pixel box DLC's ``VideoReader`` crops for ``cropping: [x1, x2, y1, y2]``.

    DLC stores the box relative to the frame size, clipped to 1, and converts it back with
    ``int(size * relative)``; the same round trip here gives the same pixels.
    """
    x1, x2, y1, y2 = box
    if x2 <= x1 or y2 <= y1:
        raise VideoError(f"cropping {list(box)} is empty: expected x1 < x2 and y1 < y2.")
    rel = [min(v, 1) for v in (x1 / width, x2 / width, y1 / height, y2 / height)]
    return Crop(int(width * rel[0]), int(width * rel[1]), int(height * rel[2]),
                int(height * rel[3]))


class FrameBatches:
    """Batches of RGB frames of one video, decoded in a background thread.

    Parameters
    ----------
    video : Path
        The video file.
    n_frames : int
        Frames the video's header announces; fewer decoded frames is an error.
    batch_size : int
        Frames per batch (the last batch may be shorter).
    width, height : int
        Frame size before cropping.
    crop : Crop, optional
        DLC's cropping box.
    queue_batches : int
        Ready batches kept ahead of the consumer.
    allocate : callable, optional
        ``allocate(shape) -> ndarray`` for the batch buffers (e.g. pinned memory on CUDA);
        default ``np.empty(shape, np.uint8)``.

    Iterating yields ``(first_frame_index, frames)`` with ``frames`` a view into a
    buffer that is reused once the next batch is requested.
    """

    def __init__(self, video: Path, n_frames: int, batch_size: int, width: int, height: int,
                 crop: Crop | None = None, queue_batches: int = 3,
                 allocate: Callable[[tuple[int, ...]], np.ndarray] | None = None):
        self.video = Path(video)
        self.n_frames = n_frames
        self.batch_size = batch_size
        self.crop = crop
        self.frame_width = (crop.x2 - crop.x1) if crop else width
        self.frame_height = (crop.y2 - crop.y1) if crop else height
        self.frames_decoded = 0
        self.decode_s = 0.0  # seconds the decoder thread spent decoding + converting
        allocate = allocate or (lambda shape: np.empty(shape, dtype=np.uint8))
        shape = (batch_size, self.frame_height, self.frame_width, 3)
        self._free: queue.Queue = queue.Queue()
        for _ in range(queue_batches + 2):
            self._free.put(allocate(shape))
        self._ready: queue.Queue = queue.Queue(maxsize=queue_batches)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        self._thread = threading.Thread(target=self._decode, name="dlc-decoder", daemon=True)
        self._thread.start()
        held = None
        try:
            while True:
                item = self._ready.get()
                if held is not None:
                    self._free.put(held)
                    held = None
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                start, n, buffer = item
                held = buffer
                yield start, buffer[:n]
        finally:
            self.close()

    def close(self) -> None:
        """Stop the decoder thread (also on an error in the consumer)."""
        self._stop.set()
        while self._thread is not None and self._thread.is_alive():
            try:  # unblock a decoder waiting for room in the ready queue
                item = self._ready.get(timeout=0.05)
                if isinstance(item, tuple):
                    self._free.put(item[2])
            except queue.Empty:
                pass
        self._thread = None

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _decode(self) -> None:
        import time

        import cv2

        capture = cv2.VideoCapture(str(self.video))
        try:
            if not capture.isOpened():
                raise VideoError(f"Video {self.video} cannot be opened for decoding.")
            index, eof = 0, False
            bgr = None
            while not eof and not self._stop.is_set():
                buffer = self._free.get()
                n = 0
                t0 = time.perf_counter()
                while n < self.batch_size:
                    ok, bgr = capture.read(bgr)
                    if not ok or bgr is None:
                        eof = True
                        break
                    self._convert(bgr, buffer[n], index)
                    n += 1
                    index += 1
                self.decode_s += time.perf_counter() - t0
                self.frames_decoded = index
                if eof and index < self.n_frames:
                    raise VideoError(
                        f"Video {self.video}: decoding stopped at frame {index} of "
                        f"{self.n_frames} (the file ends early or frame {index} is corrupt). "
                        "No predictions were written. Copy the video again or re-encode it "
                        "(e.g. `ffmpeg -i in.mp4 -c:v libx264 -crf 18 out.mp4`), then run "
                        "the recording again."
                    )
                if n and not self._put((index - n, n, buffer)):
                    return
                if not n:
                    self._free.put(buffer)
            self._put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(exc)
        finally:
            capture.release()

    def _convert(self, bgr: np.ndarray, out: np.ndarray, index: int) -> None:
        import cv2

        if bgr.ndim == 2:  # a decoder that returns grey frames: DLC's reader gives RGB
            bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
        if self.crop is not None:
            c = self.crop
            bgr = bgr[c.y1:c.y2, c.x1:c.x2]
        if bgr.shape[:2] != out.shape[:2]:
            raise VideoError(
                f"Video {self.video}: frame {index} is {bgr.shape[1]}x{bgr.shape[0]} px, "
                f"expected {out.shape[1]}x{out.shape[0]} (the frame size changes mid-video). "
                "Re-encode the video at one frame size and run the recording again."
            )
        cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=out)
