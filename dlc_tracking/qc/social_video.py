"""Labeled video of a multi-animal recording: one colour per individual, its track and
subject id written beside it, the unique body parts in their own colour, identity-swap
frames marked.

Decode, draw, encode in one OpenCV pass (as :mod:`dlc_tracking.qc.labeled_video`), written
to a hidden temporary file and renamed, so nothing half written is ever seen.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from dlc_tracking.errors import VideoError
from dlc_tracking.io.atomic import atomic_write
from dlc_tracking.qc.labeled_video import FOURCC, LabeledVideo, image_direction

__all__ = ["INDIVIDUAL_COLOURS", "UNIQUE_COLOUR", "individual_colour",
           "render_multi_animal_recording", "render_social_video", "track_label"]

INDIVIDUAL_COLOURS = [(230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66),
                      (0, 114, 178), (213, 94, 0), (204, 121, 167)]
"""Okabe-Ito colours (RGB), distinguishable with colour-vision deficiencies; individual
``k`` (file order) gets ``INDIVIDUAL_COLOURS[k % 7]``."""
UNIQUE_COLOUR = (255, 255, 255)
"""Unique body parts (DeepLabCut's ``single``: arena corners, an object), RGB: white dots
with a black ring, so they read on any background and are no individual's colour."""
SWAP_COLOUR = (255, 0, 0)
"""Border and text of a frame with a flagged identity swap (RGB)."""


def individual_colour(k: int) -> tuple[int, int, int]:
    """RGB colour of the ``k``-th individual (file order)."""
    return INDIVIDUAL_COLOURS[k % len(INDIVIDUAL_COLOURS)]


def track_label(individual: str, subject: str | None) -> str:
    """The text written beside a track: ``mus1 M12``, or ``mus3 ?`` for an anonymous one."""
    return f"{individual} {subject or '?'}"


def _bgr(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    return (int(rgb[2]), int(rgb[1]), int(rgb[0]))


def render_social_video(video_path: str | os.PathLike, out_path: str | os.PathLike,
                        poses: np.ndarray, individuals: Sequence[str],
                        subjects: Mapping[str, str | None] | None = None,
                        swap_frames: Sequence[int] = (), likelihood_cutoff: float = 0.6,
                        radius: int | None = None, *,
                        unique_poses: np.ndarray | None = None,
                        unique_body_parts: Sequence[str] = (),
                        position_px: np.ndarray | None = None,
                        head_angle_rad: np.ndarray | None = None, camera_view: str = "above",
                        n_thumbnails: int = 5,
                        progress: Callable[[int, int, float], None] | None = None,
                        progress_interval_s: float = 5.0, recording_id: str = ""
                        ) -> LabeledVideo:
    """Draw every individual in its colour, with its label, and write a new video.

    Per frame and individual: its body parts as dots (hidden below the cutoff), its
    state-vector position as a cross with the head direction as an arrow, and
    :func:`track_label` beside the position (beside its body parts when there is none),
    all in :func:`individual_colour`. Unique body parts are :data:`UNIQUE_COLOUR` dots with
    their names.

    Parameters
    ----------
    video_path, out_path : path
        Source video and the ``.mp4`` to write (atomically).
    poses : np.ndarray
        ``(n_frames, n_individuals, n_parts, 3)`` ``[x_px, y_px, likelihood]`` (image
        frame, NaN = missing).
    individuals : sequence of str
        Names of axis 1.
    subjects : mapping, optional
        individual -> subject id (None or absent: anonymous).
    swap_frames : sequence of int
        Frames with a flagged identity swap: a red border and "identity swap".
    likelihood_cutoff : float
        Body parts (and unique ones) below this likelihood are not drawn.
    radius : int, optional
        Dot radius in pixels (default: the single-animal video's, 1/80 of the shorter side).
    unique_poses : np.ndarray, optional
        ``(n_frames, n_unique, 3)`` the unique body parts.
    unique_body_parts : sequence of str
        Names of ``unique_poses``' axis 1.
    position_px : np.ndarray, optional
        ``(n_frames, n_individuals, 2)`` state-vector positions in image pixels.
    head_angle_rad : np.ndarray, optional
        ``(n_frames, n_individuals)`` head angles in the arena frame.
    camera_view : str
        ``"above"`` or ``"below"``, to turn arena angles into image directions.
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
        The video is missing or unreadable, or has fewer frames than the poses.
    """
    import cv2

    video_path, out = Path(video_path), Path(out_path)
    poses = np.asarray(poses, np.float64)
    if poses.ndim != 4 or poses.shape[1] != len(individuals) or poses.shape[3] != 3:
        raise ValueError(f"poses must be (n_frames, {len(individuals)} individuals, n_parts, "
                         f"3), got {poses.shape}")
    where = f"{video_path} (recording {recording_id})" if recording_id else str(video_path)
    if not video_path.is_file():
        raise VideoError(
            f"{where}: the video is not there, so no labeled video can be drawn. Copy the "
            "video back to that path (the NWB/movement/maDLC h5 exports do not need it).")
    cap = cv2.VideoCapture(str(video_path))
    if not cap.isOpened():
        raise VideoError(f"{where}: OpenCV cannot open the video; check the file.")
    n = poses.shape[0]
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    radius = radius or max(2, round(min(width, height) / 80))
    arrow = max(10, round(min(width, height) / 8))
    subjects = dict(subjects or {})
    labels = [track_label(ind, subjects.get(ind)) for ind in individuals]
    colours = [_bgr(individual_colour(k)) for k in range(len(individuals))]
    unique = np.zeros((n, 0, 3)) if unique_poses is None else np.asarray(unique_poses, float)
    unique_labels = list(unique_body_parts)  # few: the whole name reads better
    if head_angle_rad is not None:
        dx, dy = image_direction(np.asarray(head_angle_rad, np.float64), camera_view)
    swaps = {int(f) for f in swap_frames}
    keep = set(np.linspace(0, n - 1, n_thumbnails).round().astype(int)) if n else set()
    white, black, red = _bgr(UNIQUE_COLOUR), (0, 0, 0), _bgr(SWAP_COLOUR)
    font = cv2.FONT_HERSHEY_SIMPLEX
    thumbs: list[np.ndarray] = []
    timing = {"start": time.perf_counter()}

    def seen(p: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.isfinite(p[:, :2]).all(axis=1) & (np.nan_to_num(p[:, 2]) >= likelihood_cutoff)

    def draw_frame(frame: np.ndarray, i: int) -> None:
        for k in range(len(individuals)):
            p = poses[i, k]
            ok = seen(p)
            for x, y in p[ok, :2]:
                cv2.circle(frame, (int(round(x)), int(round(y))), radius, colours[k], -1,
                           cv2.LINE_AA)
            anchor = None
            if position_px is not None and np.isfinite(position_px[i, k]).all():
                px, py = (int(round(v)) for v in position_px[i, k])
                cv2.drawMarker(frame, (px, py), colours[k], cv2.MARKER_CROSS, 2 * radius, 1)
                if head_angle_rad is not None and np.isfinite(dx[i, k]):
                    tip = (int(round(px + arrow * dx[i, k])), int(round(py + arrow * dy[i, k])))
                    cv2.arrowedLine(frame, (px, py), tip, colours[k], 1, cv2.LINE_AA,
                                    tipLength=0.3)
                anchor = (px, py)
            elif ok.any():
                x, y = p[ok, :2].mean(axis=0)
                anchor = (int(round(x)), int(round(y)))
            if anchor is not None:
                # beside the track, past the body's half-length so the dots stay visible
                cv2.putText(frame, labels[k], (anchor[0] + arrow // 2, anchor[1] - arrow // 2),
                            font, 0.4, colours[k], 1, cv2.LINE_AA)
        u = unique[i]
        for j in np.flatnonzero(seen(u)):
            centre = (int(round(u[j, 0])), int(round(u[j, 1])))
            cv2.circle(frame, centre, radius + 1, black, -1, cv2.LINE_AA)
            cv2.circle(frame, centre, radius, white, -1, cv2.LINE_AA)
            cv2.putText(frame, unique_labels[j], (centre[0] + radius + 2, centre[1]), font,
                        0.3, white, 1, cv2.LINE_AA)
        if i in swaps:
            cv2.rectangle(frame, (0, 0), (width - 1, height - 1), red, 3)
            cv2.putText(frame, "identity swap", (6, 16), font, 0.5, red, 1, cv2.LINE_AA)

    def write(tmp: Path) -> None:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*FOURCC), fps,
                                 (width, height))
        done, last = 0, timing["start"]
        try:
            while done < n:
                ok, frame = cap.read()
                if not ok:
                    break
                draw_frame(frame, done)
                writer.write(frame)
                if done in keep:
                    thumbs.append(frame.copy())
                done += 1
                now = time.perf_counter()
                if progress is not None and now - last >= progress_interval_s:
                    progress(done, n, done / (now - timing["start"]))
                    last = now
        finally:
            writer.release()
        if done != n:
            raise VideoError(f"{where}: the video has {done} readable frames but the "
                             f"predictions have {n}; the video was cut or replaced. Restore "
                             "the original video, or process the recording again.")

    try:
        # OpenCV picks the container by the extension: the temporary name keeps it.
        atomic_write(out, write, suffix=out.suffix or ".mp4")
    finally:
        cap.release()
    seconds = time.perf_counter() - timing["start"]
    if progress is not None:
        progress(n, n, n / seconds if seconds else float("nan"))
    return LabeledVideo(out, n, seconds, thumbs)


def render_multi_animal_recording(rec, out_path: str | os.PathLike, store, registry=None, *,
                                  progress: Callable[[int, int, float], None] | None = None,
                                  progress_interval_s: float = 5.0
                                  ) -> tuple[LabeledVideo, float]:
    """The labeled video of a multi-animal recording read from the warehouse
    (``dlc-platform export --format labeled-video`` and the ``labeled_videos`` asset).

    Parameters
    ----------
    rec : dlc_tracking.io.stored_multi_animal.StoredMultiAnimal
        The recording (raw maDLC poses, individuals, subjects, unique body parts).
    out_path : path
        The ``.mp4`` to write.
    store : dlc_tracking.warehouse.Warehouse
        Its warehouse: ``individual_state_vectors`` (positions, head angles) and the
        ``identity_events`` swaps.
    registry : dlc_tracking.registry.registry_file.Registry, optional
        For the method's likelihood cutoff (0.6 without it).

    Returns
    -------
    tuple[LabeledVideo, float]
        The result and the likelihood cutoff used.

    Raises
    ------
    VideoError
        No video path, the video is not there, or it has fewer frames.
    """
    rid = rec.recording_id
    p = rec.predictions
    n = rec.n_frames
    position = angle = None
    cutoff = 0.6
    if store.partition_path("individual_state_vectors", rid) is not None:
        raw = store.read_partition("individual_state_vectors", rid)
        raw["individual"] = raw["individual"].astype(str)
        position = np.full((n, len(p.individuals), 2), np.nan)
        angle = np.full((n, len(p.individuals)), np.nan)
        for k, ind in enumerate(p.individuals):
            rows = raw[raw["individual"] == ind]
            frames = rows["frame"].to_numpy(np.int64)
            inside = (frames >= 0) & (frames < n)
            position[frames[inside], k] = rows[["x_px", "y_px"]].to_numpy(np.float64)[inside]
            angle[frames[inside], k] = rows["head_angle_rad"].to_numpy(np.float64)[inside]
        method = str(raw["method_name"].iloc[0]) if len(raw) else ""
        if registry is not None and method in registry.methods:
            cutoff = registry.method(method).likelihood_cutoff
    swaps: list[int] = []
    if store.partition_path("identity_events", rid) is not None:
        events = store.read_partition("identity_events", rid)
        swaps = events.loc[events["event"] == "identity_swap", "frame"].astype(int).tolist()
    if rec.video_path is None:
        raise VideoError(f"recording {rid}: no video path is recorded, so no labeled video "
                         "can be drawn.")
    result = render_social_video(
        rec.video_path, out_path, p.poses, p.individuals, rec.subjects, swaps, cutoff,
        unique_poses=p.unique_poses, unique_body_parts=p.unique_body_parts,
        position_px=position, head_angle_rad=angle,
        camera_view=str(rec.info.get("camera_view") or "above"), progress=progress,
        progress_interval_s=progress_interval_s, recording_id=rid)
    return result, cutoff
