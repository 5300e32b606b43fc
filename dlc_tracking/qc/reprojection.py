"""One frame per camera with the triangulated 3D points reprojected over the 2D ones: the
picture that shows whether a multi-camera calibration explains the session (docs/3d.md).

The frame is the one with the most triangulated points. Each camera's panel is that frame
of its video; where the video is not there (an outputs-only take) or cannot be read, a
blank frame of the calibration's image size, and the panel's title says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlc_tracking.tracking.methods import DEFAULT_LIKELIHOOD_CUTOFF

__all__ = ["CameraPanel", "best_frame", "reprojection_panels", "reprojection_png"]

DEFAULT_SIZE = (640, 480)
"""Frame size (width, height) when neither the calibration nor a video gives one."""


@dataclass(frozen=True, eq=False)
class CameraPanel:
    """One camera's panel.

    Attributes
    ----------
    camera : str
    frame : int
    background : str
        ``"video"``, ``"absent"`` (no video file) or ``"unreadable"`` (a file OpenCV
        cannot read that frame from): the last two draw on a blank frame.
    image : np.ndarray
        ``(height, width, 3)`` uint8 RGB.
    points_2d : np.ndarray
        ``(n_parts, 3)`` the camera's ``[x_px, y_px, likelihood]`` at the frame.
    reprojected : np.ndarray
        ``(n_parts, 2)`` the 3D points projected into the camera (NaN where missing).
    error_px : np.ndarray
        ``(n_parts,)`` distance between the two (NaN where either is missing).
    """

    camera: str
    frame: int
    background: str
    image: np.ndarray
    points_2d: np.ndarray
    reprojected: np.ndarray
    error_px: np.ndarray


def best_frame(points_mm: np.ndarray) -> int:
    """The frame with the most triangulated body parts (the first of equals; 0 if none).

    Parameters
    ----------
    points_mm : np.ndarray
        ``(n_frames, n_parts, 3)``; NaN = not triangulated.
    """
    counts = np.isfinite(points_mm).all(axis=-1).sum(axis=1)
    return int(np.argmax(counts)) if counts.size else 0


def _read_frame(video: Path | None, frame: int) -> tuple[np.ndarray | None, str]:
    if video is None or not Path(video).is_file():
        return None, "absent"
    import cv2

    capture = cv2.VideoCapture(str(video))
    try:
        if not capture.isOpened():
            return None, "unreadable"
        capture.set(cv2.CAP_PROP_POS_FRAMES, int(frame))
        ok, image = capture.read()
    finally:
        capture.release()
    if not ok or image is None:
        return None, "unreadable"
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), "video"


def reprojection_panels(calibration, points_mm: np.ndarray,
                        camera_poses: Mapping[str, np.ndarray],
                        videos: Mapping[str, str | Path | None],
                        frame: int | None = None,
                        video_frames: Mapping[str, np.ndarray] | None = None
                        ) -> list[CameraPanel]:
    """Per camera: the frame, its 2D points and the 3D points reprojected.

    Parameters
    ----------
    calibration : RigCalibration
        The calibration the points were triangulated with (world frame).
    points_mm : np.ndarray
        ``(n_frames, n_parts, 3)`` world points (mm); NaN = missing.
    camera_poses : mapping
        Camera -> ``(n_frames, n_parts, 3)`` ``[x_px, y_px, likelihood]`` at the take's
        frames (synchronised).
    videos : mapping
        Camera -> its video (None or a missing file: a blank frame).
    frame : int, optional
        Take frame; default :func:`best_frame`.
    video_frames : mapping, optional
        Camera -> ``(n_frames,)`` that camera's own video frame at each take frame (-1:
        none; :class:`~dlc_tracking.multiview.sync.TakeClock` ``index``); default the
        take frame itself (cameras matched by frame index).

    Returns
    -------
    list of CameraPanel
        In the order of ``camera_poses``.
    """
    frame = best_frame(points_mm) if frame is None else int(frame)
    names = calibration.camera_names
    pts = np.asarray(points_mm[frame], dtype=np.float64)              # (n_parts, 3)
    seen = np.isfinite(pts).all(axis=-1)
    projected = np.full((len(names), pts.shape[0], 2), np.nan)
    if seen.any():
        projected[:, seen] = np.asarray(calibration.project(pts[seen])).reshape(
            len(names), int(seen.sum()), 2)
    sizes = calibration.image_sizes
    panels = []
    for cam, poses in camera_poses.items():
        own = frame if video_frames is None else int(video_frames[cam][frame])
        image, background = (_read_frame(videos.get(cam), own) if own >= 0
                             else (None, "absent"))
        if image is None:
            w, h = sizes.get(cam) or DEFAULT_SIZE
            image = np.full((int(h), int(w), 3), 255, dtype=np.uint8)
        two_d = np.asarray(poses[frame], dtype=np.float64)
        reproj = projected[names.index(cam)]
        error = np.linalg.norm(two_d[:, :2] - reproj, axis=-1)
        panels.append(CameraPanel(cam, frame, background, image, two_d, reproj, error))
    return panels


_BACKGROUND = {"video": "", "absent": "no video here: blank frame",
               "unreadable": "video unreadable: blank frame"}


def reprojection_png(calibration, points_mm: np.ndarray, body_parts: Sequence[str],
                     camera_poses: Mapping[str, np.ndarray],
                     videos: Mapping[str, str | Path | None], frame: int | None = None,
                     likelihood_cutoff: float = DEFAULT_LIKELIHOOD_CUTOFF,
                     video_frames: Mapping[str, np.ndarray] | None = None) -> bytes:
    """One panel per camera: its 2D points (circles; hollow grey below the likelihood
    cutoff, not used) and the reprojected 3D points (red crosses), joined by a line.

    Parameters are those of :func:`reprojection_panels`; ``body_parts`` names axis 1.

    Returns
    -------
    bytes
        PNG.
    """
    from dlc_tracking.qc.plots import _plt, _png

    panels = reprojection_panels(calibration, points_mm, camera_poses, videos, frame,
                                 video_frames)
    plt = _plt()
    n = len(panels)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    for ax, panel in zip(axes.ravel(), panels, strict=False):
        h, w = panel.image.shape[:2]
        ax.imshow(panel.image, extent=(0, w, h, 0))
        xy, lk = panel.points_2d[:, :2], panel.points_2d[:, 2]
        used = np.isfinite(xy).all(axis=1) & (lk >= likelihood_cutoff)
        low = np.isfinite(xy).all(axis=1) & ~used
        rp = panel.reprojected
        for j in np.flatnonzero(used & np.isfinite(rp).all(axis=1)):
            ax.plot([xy[j, 0], rp[j, 0]], [xy[j, 1], rp[j, 1]], color="yellow", lw=0.8)
        ax.scatter(xy[used, 0], xy[used, 1], s=36, facecolors="none", edgecolors="lime",
                   linewidths=1.4, label="2D (DLC)")
        ax.scatter(xy[low, 0], xy[low, 1], s=36, facecolors="none", edgecolors="0.6",
                   linewidths=1.0, label=f"2D below {likelihood_cutoff:g}")
        ax.scatter(rp[:, 0], rp[:, 1], s=30, marker="x", color="red", linewidths=1.4,
                   label="3D reprojected")
        for j, name in enumerate(body_parts):
            if np.isfinite(xy[j]).all():
                ax.annotate(name, xy[j], xytext=(4, -4), textcoords="offset points",
                            fontsize=6, color="tab:blue")
        ax.set_xlim(0, w)
        ax.set_ylim(h, 0)
        err = panel.error_px[used]
        med = f"{np.nanmedian(err):.2f} px" if np.isfinite(err).any() else "n/a"
        note = _BACKGROUND[panel.background]
        ax.set_title(f"{panel.camera}, frame {panel.frame}: median error {med}"
                     + (f"\n({note} {w}x{h})" if note else ""), fontsize=8)
        ax.tick_params(labelsize=6)
    axes.ravel()[0].legend(fontsize=6, loc="upper right")
    return _png(fig)
