"""Synchronising the cameras of one take: by frame index, or by frame times on one clock.

- Frame index: every camera recorded the same number of frames (hardware-triggered
  cameras); checked, never assumed.
- Frame times: one time per frame per camera on a shared clock (camera TTLs recorded by a
  DAQ, or per-frame timestamps), read with the platform's one reader of times files
  (:func:`dlc_tracking.io.times_files.read_times_file`). Each frame of the reference
  camera is matched to the nearest frame of every other camera within half a frame; a
  camera with no frame that close leaves that frame missing for that camera (never
  stretched or interpolated).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlc_tracking.multiview.errors import MultiviewError

__all__ = ["TakeClock", "align_by_times", "check_frame_counts", "read_camera_times",
           "synchronise_take", "take_frames"]


def check_frame_counts(counts: Mapping[str, int], source: str) -> int:
    """The common frame count of cameras synchronised by frame index.

    Raises
    ------
    MultiviewError
        Counts differ: names each camera's count and what to do.
    """
    values = {c: int(n) for c, n in counts.items()}
    if len(set(values.values())) != 1:
        raise MultiviewError(
            f"{source}: the cameras recorded different numbers of frames {values} and the "
            "session gives no frame times; frames cannot be matched by index. Give each "
            "camera's frame times on one clock (session.yaml `cameras:` -> "
            "`{camera: {file: ..., timestamps: ...}}`), or trim the videos to the same frames.")
    return next(iter(values.values()))


def read_camera_times(paths: Mapping[str, str | Path]) -> dict[str, np.ndarray]:
    """Per-camera frame times (s, one clock) from CSV / NPY files, checked increasing.

    Raises
    ------
    MultiviewError
        A missing or unreadable file, not one column of finite seconds, not increasing.
    """
    from dlc_tracking.io.times_files import read_times_file

    out = {}
    for cam, path in paths.items():
        what = f"{path}: frame times of camera {cam!r}"
        if not Path(path).is_file():
            raise MultiviewError(f"{what}: file not found; fix its name in session.yaml "
                                 "`cameras:` or copy it in.")
        try:
            times = np.asarray(read_times_file(path), dtype=np.float64)
        except (OSError, ValueError) as exc:
            raise MultiviewError(f"{what} cannot be read ({exc}); write one time in seconds "
                                 "per line (CSV) or a 1-D .npy array.") from None
        if times.ndim != 1 or times.size < 2 or not np.isfinite(times).all():
            raise MultiviewError(f"{what}: need one finite time per frame (a 1-D column), "
                                 f"got shape {times.shape}.")
        step = np.diff(times)
        if (step <= 0).any():
            row = int(np.flatnonzero(step <= 0)[0]) + 1
            raise MultiviewError(f"{what}: times do not increase at row {row} "
                                 f"({times[row - 1]!r} -> {times[row]!r}); all on one clock?")
        out[cam] = times
    return out


def align_by_times(times: Mapping[str, np.ndarray], n_frames: Mapping[str, int],
                   reference: str | None = None, tolerance_s: float | None = None,
                   source: str = "recording") -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Match every camera's frames to the reference camera's frames.

    Parameters
    ----------
    times : mapping
        Camera -> ``(n_frames_c,)`` frame times (s) on one clock.
    n_frames : mapping
        Camera -> frames in its video / predictions (must equal its number of times).
    reference : str, optional
        Camera whose frames define the take's frames (default the first).
    tolerance_s : float, optional
        Largest time difference for a match (default half the reference frame interval).

    Returns
    -------
    time_s : np.ndarray
        ``(n,)`` the reference frames' times.
    index : dict
        Camera -> ``(n,)`` int64 frame index of that camera for each take frame, -1 where
        none is within tolerance.
    """
    cams = list(times)
    ref = reference or cams[0]
    if ref not in times:
        raise MultiviewError(f"{source}: reference camera {ref!r} has no frame times.")
    for cam in cams:
        if len(times[cam]) != int(n_frames[cam]):
            raise MultiviewError(
                f"{source}: camera {cam!r} has {len(times[cam])} frame times for "
                f"{n_frames[cam]} frames; give exactly one time per recorded frame.")
    t_ref = np.asarray(times[ref], dtype=np.float64)
    if tolerance_s is None:
        tolerance_s = 0.5 * float(np.median(np.diff(t_ref))) if t_ref.size > 1 else np.inf
    index = {}
    for cam in cams:
        t = np.asarray(times[cam], dtype=np.float64)
        j = np.clip(np.searchsorted(t, t_ref), 1, max(len(t) - 1, 1))
        lo = np.clip(j - 1, 0, len(t) - 1)
        hi = np.clip(j, 0, len(t) - 1)
        pick = np.where(np.abs(t[lo] - t_ref) <= np.abs(t[hi] - t_ref), lo, hi)
        pick = np.where(np.abs(t[pick] - t_ref) <= tolerance_s, pick, -1)
        index[cam] = pick.astype(np.int64)
    return t_ref, index


def take_frames(poses: np.ndarray, index: np.ndarray) -> np.ndarray:
    """A camera's poses ``(n_frames_c, n_parts, 3)`` at the take's frames (NaN for -1)."""
    poses = np.asarray(poses, dtype=np.float64)
    out = np.full((index.shape[0],) + poses.shape[1:], np.nan)
    ok = index >= 0
    out[ok] = poses[index[ok]]
    return out


@dataclass(frozen=True)
class TakeClock:
    """How the cameras of one take were matched, and the take's frame times.

    Attributes
    ----------
    method : str
        ``frame_index`` (equal frame counts) or ``frame_times`` (every camera's times).
    reference : str
        The camera whose frames are the take's frames (the session's first camera).
    time_s : np.ndarray
        ``(n,)`` take frame times (s): the reference camera's times on the common clock,
        else ``frame / fps``.
    index : dict
        Camera -> ``(n,)`` int64 frame of that camera at each take frame (-1: none within
        half a frame).
    camera_times : dict
        Camera -> ``(n_frames_c,)`` its own frames' times (s) on the take's clock.
    fps : float
        Frame rate (session ``fps:`` / the video, else from the reference camera's times).
    """

    method: str
    reference: str
    time_s: np.ndarray
    index: dict[str, np.ndarray]
    camera_times: dict[str, np.ndarray]
    fps: float

    @property
    def n_frames(self) -> int:
        return int(self.time_s.shape[0])

    def matched_fraction(self) -> dict[str, float]:
        """Camera -> share of the take's frames it has a frame for."""
        return {c: float(np.mean(i >= 0)) if i.size else 0.0 for c, i in self.index.items()}


def synchronise_take(counts: Mapping[str, int], times_files: Mapping[str, str | Path | None],
                     fps: float | None, source: str) -> TakeClock:
    """Match the cameras of a take: by frame times when every camera has a times file,
    else by frame index (equal counts, checked).

    Parameters
    ----------
    counts : mapping
        Camera -> frames in its 2D predictions, in the session's camera order (the first
        is the reference).
    times_files : mapping
        Camera -> its frame-times file (session.yaml ``cameras: {cam: {timestamps: ...}}``)
        or None.
    fps : float or None
        The take's frame rate; None: from the reference camera's times (frame times only).
    source : str
        session.yaml and recording, for messages.

    Raises
    ------
    MultiviewError
        Times for some cameras only; different counts without times (naming each count);
        a times file unreadable or not one time per frame; no frame rate.
    """
    cams = list(counts)
    ref = cams[0]
    given = {c: times_files.get(c) for c in cams}
    with_times = [c for c in cams if given[c]]
    if with_times and len(with_times) != len(cams):
        raise MultiviewError(
            f"{source}: frame times are given for cameras {with_times} but not for "
            f"{[c for c in cams if not given[c]]}; give every camera's `timestamps:` (on one "
            "clock) in session.yaml `cameras:`, or none to match the cameras by frame index.")
    if with_times:
        times = read_camera_times({c: given[c] for c in cams})
        time_s, index = align_by_times(times, counts, reference=ref, source=source)
        if fps is None:
            fps = 1.0 / float(np.median(np.diff(time_s)))
        return TakeClock("frame_times", ref, time_s, index, times, float(fps))
    n = check_frame_counts(counts, source)
    if fps is None or not fps > 0:
        raise MultiviewError(f"{source}: no frame rate for the take's frame times; add `fps:` "
                             "to session.yaml (or give each camera's `timestamps:`).")
    time_s = np.arange(n, dtype=np.float64) / float(fps)
    frames = np.arange(n, dtype=np.int64)
    return TakeClock("frame_index", ref, time_s, {c: frames for c in cams},
                     {c: time_s for c in cams}, float(fps))
