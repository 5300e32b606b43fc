"""Probing videos: frame count, frame rate, size, codec, and early detection of bad files."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from dlc_tracking.errors import VideoError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".mpg", ".mpeg", ".m4v", ".h264")


@dataclass(frozen=True)
class VideoInfo:
    """What a recording's video is, as read from its container and its frames."""

    path: str
    n_frames: int
    fps: float
    width_px: int
    height_px: int
    codec: str

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps

    def to_dict(self) -> dict:
        return asdict(self) | {"duration_s": self.duration_s}


def is_video_file(path: Path) -> bool:
    """True for a visible file with a known video suffix (hidden and temp files excluded)."""
    name = path.name
    if name.startswith((".", "~")) or name.endswith((".tmp", ".part", ".partial")):
        return False
    return path.suffix.lower() in VIDEO_SUFFIXES


def probe_video(path: Path | str, *, check_last_frame: bool = True) -> VideoInfo:
    """Read a video's facts and make sure its frames can be decoded.

    Parameters
    ----------
    path
        The video file.
    check_last_frame
        Also seek to and decode the last frame the container announces, which catches
        truncated files (a copy cut short keeps its header but loses its tail).

    Raises
    ------
    VideoError
        Missing, unreadable, zero-frame or truncated video; the message names the file.
    """
    import cv2  # imported here: cv2 costs ~0.2 s and most callers never probe

    path = Path(path)
    if not path.is_file():
        raise VideoError(f"Video not found: {path}. Check the session folder and session.yaml.")
    if path.stat().st_size == 0:
        raise VideoError(f"Video {path} is empty (0 bytes): copy it again.")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise VideoError(
                f"Video {path} cannot be opened (unknown container or codec, or not a video). "
                "Re-encode it, e.g. `ffmpeg -i in -c:v libx264 -crf 18 out.mp4`."
            )
        n_frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fourcc = int(capture.get(cv2.CAP_PROP_FOURCC))
        codec = "".join(chr((fourcc >> (8 * i)) & 0xFF) for i in range(4)).strip("\x00 ") or "?"
        ok, _ = capture.read()
        if n_frames <= 0 or not ok:
            raise VideoError(
                f"Video {path} has no readable frames (frame count {n_frames}). "
                "It is empty or corrupt: copy or export it again."
            )
        if not fps or fps <= 0 or fps != fps:
            raise VideoError(
                f"Video {path} does not state its frame rate. Re-encode it with a frame rate "
                "(ffmpeg -r) or give per-frame timestamps."
            )
        if check_last_frame and n_frames > 1:
            capture.set(cv2.CAP_PROP_POS_FRAMES, n_frames - 1)
            ok, _ = capture.read()
            if not ok:
                raise VideoError(
                    f"Video {path} is truncated: its header announces {n_frames} frames but "
                    "the last one cannot be decoded. The copy is probably incomplete: copy "
                    "it again, or re-encode it."
                )
    finally:
        capture.release()
    return VideoInfo(str(path), n_frames, fps, width, height, codec)
