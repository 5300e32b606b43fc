"""Labeled video: the recording's video with the pose and state vector drawn on it.

Drawn per frame: each body part as a dot coloured by its likelihood (viridis, cutoff ->
yellow at 1; hidden below the cutoff), the state-vector position as a white cross, and
the head direction as an arrow from it. Rendered with OpenCV (decode, draw, encode in one
pass); ``bench/exports.py`` measures it against DeepLabCut's ``create_labeled_video``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlc_tracking.errors import VideoError
from dlc_tracking.io.atomic import atomic_write

__all__ = ["LabeledVideo", "image_direction", "render_labeled_video", "render_recording",
           "thumbnail_strip"]

FOURCC = "mp4v"


@dataclass
class LabeledVideo:
    """Result of :func:`render_labeled_video`.

    Attributes
    ----------
    path : pathlib.Path
        The video written.
    n_frames : int
        Frames written.
    seconds : float
        Wall time of the render.
    thumbnails : list[np.ndarray]
        A few labeled frames (BGR), evenly spread, for a thumbnail strip.
    """

    path: Path
    n_frames: int
    seconds: float
    thumbnails: list[np.ndarray] = field(default_factory=list)

    @property
    def frames_per_s(self) -> float:
        """Render speed."""
        return self.n_frames / self.seconds if self.seconds > 0 else float("nan")


def image_direction(angle_rad: np.ndarray, camera_view: str) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors in the image (x right, y down) of arena-frame angles.

    The arena frame has y up; seen from above it is the image with y flipped, seen from
    below (mirrored image) it is the image turned by 180 degrees (``docs/conventions.md``).

    Parameters
    ----------
    angle_rad : np.ndarray
        Angles counter-clockwise from the arena frame's +x.
    camera_view : str
        ``"above"`` or ``"below"``.

    Returns
    -------
    tuple[np.ndarray, np.ndarray]
        ``(dx, dy)`` in image pixels per unit length.
    """
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return (c, -s) if camera_view == "above" else (-c, s)


def _colour_table():
    import cv2

    lut = cv2.applyColorMap(np.arange(256, dtype=np.uint8).reshape(-1, 1), cv2.COLORMAP_VIRIDIS)
    return lut.reshape(256, 3)


def render_labeled_video(video_path: str | os.PathLike, out_path: str | os.PathLike,
                         poses: np.ndarray, body_parts: list[str], *,
                         position_px: np.ndarray | None = None,
                         head_angle_rad: np.ndarray | None = None, camera_view: str = "above",
                         cutoff: float = 0.6, n_thumbnails: int = 5,
                         progress: Callable[[int, int, float], None] | None = None,
                         progress_interval_s: float = 5.0, recording_id: str = "") -> LabeledVideo:
    """Draw the pose and state vector on every frame and write a new video (atomically).

    Parameters
    ----------
    video_path : path
        The recording's video.
    out_path : path
        Output ``.mp4`` (written to a temp file in the same folder, then renamed).
    poses : np.ndarray
        ``(n_frames, n_parts, 3)`` ``[x_px, y_px, likelihood]``; NaN = missing.
    body_parts : list[str]
        Names of axis 1 (the first letters are written next to the dots).
    position_px : np.ndarray, optional
        ``(n_frames, 2)`` state-vector position in image pixels.
    head_angle_rad : np.ndarray, optional
        Head angle in the arena frame (radians), drawn as an arrow from the position.
    camera_view : str
        ``"above"`` or ``"below"``, to turn arena angles into image directions.
    cutoff : float
        Body parts below this likelihood are not drawn.
    n_thumbnails : int
        Labeled frames kept for the thumbnail strip.
    progress : callable, optional
        ``progress(frames_done, n_frames, frames_per_s)``, every ``progress_interval_s``
        and at the end.
    recording_id : str
        For messages.

    Returns
    -------
    LabeledVideo

    Raises
    ------
    VideoError
        The video is missing or unreadable, or its frame count differs from the poses'.
    """
    import cv2

    video_path, out = Path(video_path), Path(out_path)
    where = f"{video_path} (recording {recording_id})" if recording_id else str(video_path)
    if not video_path.is_file():
        raise VideoError(
            f"{where}: the video is not there, so no labeled video can be drawn. Recordings "
            "ingested from DLC outputs made elsewhere often lack it: copy the video back "
            "to that path (the NWB/movement/CSV exports do not need it).")
    cap = cv2.VideoCapture(str(video_path))
    if not cap.isOpened():
        raise VideoError(f"{where}: OpenCV cannot open the video; check the file.")
    n = poses.shape[0]
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    result: dict = {}

    def draw(tmp: Path) -> None:
        result.update(_draw(cap, tmp, poses, body_parts, fps, width, height, cutoff,
                            position_px, head_angle_rad, camera_view, n_thumbnails,
                            progress, progress_interval_s, where))

    try:
        # OpenCV picks the container by the extension: the temporary name keeps it.
        atomic_write(out, draw, suffix=out.suffix or ".mp4")
    finally:
        cap.release()
    if progress is not None:
        seconds = result["seconds"]
        progress(n, n, n / seconds if seconds else float("nan"))
    return LabeledVideo(out, n, result["seconds"], result["thumbs"])


def _draw(cap, tmp: Path, poses, body_parts, fps, width, height, cutoff, position_px,
          head_angle_rad, camera_view, n_thumbnails, progress, progress_interval_s,
          where) -> dict:
    """Draw every frame into ``tmp``; refuses a video shorter than the predictions."""
    import cv2

    n = poses.shape[0]
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*FOURCC), fps, (width, height))
    lut = _colour_table()
    radius = max(2, round(min(width, height) / 80))
    arrow = max(10, round(min(width, height) / 8))
    labels = [name[:2] for name in body_parts]
    if head_angle_rad is not None:
        dx, dy = image_direction(np.asarray(head_angle_rad, np.float64), camera_view)
    keep = set(np.linspace(0, n - 1, n_thumbnails).round().astype(int)) if n else set()
    thumbs: list[np.ndarray] = []
    start = last = time.perf_counter()
    done = 0
    try:
        while done < n:
            ok, frame = cap.read()
            if not ok:
                break
            pts = poses[done]
            for j in range(pts.shape[0]):
                x, y, lk = pts[j]
                if not (np.isfinite(x) and np.isfinite(y) and lk >= cutoff):
                    continue
                level = int(round(255 * (lk - cutoff) / max(1e-9, 1 - cutoff)))
                colour = tuple(int(c) for c in lut[min(255, max(0, level))])
                centre = (int(round(x)), int(round(y)))
                cv2.circle(frame, centre, radius, colour, -1, cv2.LINE_AA)
                cv2.putText(frame, labels[j], (centre[0] + radius + 1, centre[1]),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.3, colour, 1, cv2.LINE_AA)
            if position_px is not None and np.isfinite(position_px[done]).all():
                px, py = (int(round(v)) for v in position_px[done])
                cv2.drawMarker(frame, (px, py), (255, 255, 255), cv2.MARKER_CROSS, 2 * radius, 1)
                if head_angle_rad is not None and np.isfinite(dx[done]):
                    tip = (int(round(px + arrow * dx[done])), int(round(py + arrow * dy[done])))
                    cv2.arrowedLine(frame, (px, py), tip, (0, 0, 255), 1, cv2.LINE_AA,
                                    tipLength=0.3)
            writer.write(frame)
            if done in keep:
                thumbs.append(frame.copy())
            done += 1
            now = time.perf_counter()
            if progress is not None and now - last >= progress_interval_s:
                progress(done, n, done / (now - start))
                last = now
    finally:
        writer.release()
    if done != n:
        raise VideoError(f"{where}: the video has {done} readable frames but the predictions "
                         f"have {n}; the video was cut or replaced. Restore the original "
                         "video, or process the recording again.")
    return {"seconds": time.perf_counter() - start, "thumbs": thumbs}


def render_recording(rec, out_path: str | os.PathLike, store, registry=None, *,
                     progress: Callable[[int, int, float], None] | None = None,
                     progress_interval_s: float = 5.0) -> tuple[LabeledVideo, float]:
    """The labeled video of a recording read from the warehouse (the ``labeled_videos``
    asset and ``dlc-platform export --format labeled-video`` both call it).

    Parameters
    ----------
    rec : dlc_tracking.io.stored_recording.StoredRecording
        The recording.
    out_path : path
        The ``.mp4`` to write.
    store : dlc_tracking.warehouse.Warehouse
        Its warehouse (for the state vector: position and head direction).
    registry : dlc_tracking.registry.registry_file.Registry, optional
        For the method's likelihood cutoff (0.6 without it).

    Returns
    -------
    tuple[LabeledVideo, float]
        The result and the likelihood cutoff used.

    Raises
    ------
    VideoError
        No video path, the video is not there, or its frame count differs.
    """
    rid = rec.recording_id
    position = angle = None
    cutoff = 0.6
    if store.partition_path("raw_state_vectors", rid) is not None:
        raw = store.read_partition("raw_state_vectors", rid).sort_values("frame")
        position = raw[["x_px", "y_px"]].to_numpy(np.float64)
        angle = raw["head_angle_rad"].to_numpy(np.float64)
        method = str(raw["method_name"].iloc[0])
        if registry is not None and method in registry.methods:
            cutoff = registry.method(method).likelihood_cutoff
    if rec.video_path is None:
        raise VideoError(f"recording {rid}: no video path is recorded, so no labeled video "
                         "can be drawn.")
    result = render_labeled_video(
        rec.video_path, out_path, rec.poses, rec.body_parts, position_px=position,
        head_angle_rad=angle, camera_view=str(rec.info.get("camera_view") or "above"),
        cutoff=cutoff, progress=progress, progress_interval_s=progress_interval_s,
        recording_id=rid)
    return result, cutoff


def thumbnail_strip(frames: list[np.ndarray], height: int = 120) -> bytes:
    """Frames side by side (scaled to ``height``) as one PNG.

    Raises
    ------
    ValueError
        When there are no frames.
    """
    import cv2

    if not frames:
        raise ValueError("thumbnail_strip: no frames")
    scaled = [cv2.resize(f, (max(1, round(f.shape[1] * height / f.shape[0])), height),
                         interpolation=cv2.INTER_AREA) for f in frames]
    ok, png = cv2.imencode(".png", cv2.hconcat(scaled))
    if not ok:
        raise ValueError("thumbnail_strip: PNG encoding failed")
    return png.tobytes()
