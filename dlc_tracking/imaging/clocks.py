"""Video frames and imaging frames on one clock: the recording's (seconds from its first
video frame).

With sync TTLs both come from the DAQ: video frame k is at its camera TTL, imaging frame j
at its imaging TTL. Without sync, the video frames are at the session's frame times (its
timestamps file, else frame / fps) from start_time, and the imaging frames at the
acquisition start + their own times: the clocks of the two computers are assumed to
agree, and that assumption is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from dlc_tracking.imaging.acquisition import ImagingFrames
from dlc_tracking.imaging.errors import ImagingError
from dlc_tracking.imaging.sync import CameraTimes, SyncSignals, camera_frame_times

__all__ = ["ClockAlignment", "align_clocks"]


@dataclass
class ClockAlignment:
    """Both frame series on the recording clock, and how they got there.

    Attributes
    ----------
    video_time_s, imaging_time_s : np.ndarray
        Seconds from the first video frame.
    clock : str
        ``sync`` (DAQ TTLs) or ``start_time`` (start times + frame times).
    offset_s : float
        Imaging start minus recording start (s) as used.
    header_offset_s : float or None
        The same from the start times (session start_time vs the ScanImage epoch), when
        both are known.
    assumption : str
        What the alignment assumes, in words (provenance).
    camera : CameraTimes or None
        Camera TTL assignment (sync only): dropped frames.
    imaging_ttls : int or None
        Imaging TTLs (sync only).
    """

    video_time_s: np.ndarray
    imaging_time_s: np.ndarray
    clock: str
    offset_s: float
    header_offset_s: float | None
    assumption: str
    camera: CameraTimes | None = None
    imaging_ttls: int | None = None


def align_clocks(frames: ImagingFrames, video_time_s: np.ndarray,
                 recording_start: datetime, sync: SyncSignals | None,
                 video_timestamps_s: np.ndarray | None, has_timestamps: bool
                 ) -> ClockAlignment:
    """Put the video and imaging frames on the recording clock.

    Parameters
    ----------
    frames : ImagingFrames
        The imaging frames (times from the acquisition start).
    video_time_s : np.ndarray
        The recording's frame times (timestamps file, else frame / fps).
    recording_start : datetime
        The recording's start (session start_time, or the imaging start when it came
        from there).
    sync : SyncSignals or None
    video_timestamps_s : np.ndarray or None
        The camera's per-frame timestamps (locate dropped frames with sync).
    has_timestamps : bool
        Whether ``video_time_s`` came from a timestamps file (for the assumption text).

    Raises
    ------
    ImagingError
        Fewer camera TTLs than video frames, fewer imaging TTLs than imaging frames.
    """
    header_offset = None
    if frames.start is not None:
        header_offset = (frames.start - recording_start).total_seconds()
    if sync is None:
        offset = header_offset if header_offset is not None else 0.0
        video_clock = ("the timestamps file" if has_timestamps else "frame / fps")
        start_from = ("the ScanImage epoch" if frames.start is not None
                      else "the session's start_time (the imaging has no start of its own)")
        assumption = (f"no sync: video frames at start_time + {video_clock}; imaging frames "
                      f"at {start_from} + their {frames.source} times; offset {offset:.3f} s; "
                      "both computers' clocks assumed to agree")
        return ClockAlignment(video_time_s=np.asarray(video_time_s, np.float64).copy(),
                              imaging_time_s=offset + frames.time_s, clock="start_time",
                              offset_s=offset, header_offset_s=header_offset,
                              assumption=assumption)
    video_time_s = np.asarray(video_time_s, np.float64)
    _check_camera_period(sync, video_time_s)
    camera = camera_frame_times(sync.camera_s, int(video_time_s.size),
                                video_timestamps_s, sync.source)
    # Imaging TTLs by acquisition frame: a volume's discarded flyback frames still send
    # theirs, so the saved frames are not the first n TTLs.
    acq = np.asarray(frames.acquisition_frame, np.int64)
    needed = int(acq.max()) + 1 if acq.size else 0
    if sync.imaging_s.size < needed:
        raise ImagingError(
            f"{sync.source}: {sync.imaging_s.size} imaging TTLs for {needed} acquisition "
            "frames: the DAQ recorded fewer imaging frames than the acquisition saved (wrong "
            "line, or the DAQ stopped first). Fix the sync file or remove `sync:`.")
    ttl = sync.imaging_s[acq]
    _check_imaging_intervals(sync.source, ttl, frames)
    t0 = camera.time_s[0]
    imaging = ttl - t0
    extra = int(sync.imaging_s.size - needed)
    assumption = (f"sync ({sync.source}): video frames at their camera TTLs ({camera.note}); "
                  f"imaging frames at their imaging TTLs (by acquisition frame)"
                  + (f" ({extra} TTL(s) after the last saved frame ignored)" if extra else ""))
    return ClockAlignment(video_time_s=camera.time_s - t0, imaging_time_s=imaging,
                          clock="sync", offset_s=float(imaging[0] - frames.time_s[0]),
                          header_offset_s=header_offset, assumption=assumption,
                          camera=camera, imaging_ttls=int(sync.imaging_s.size))


# A TTL stream whose intervals differ from the frames' by more than this fraction of a frame
# is not the frames' (a wrong DAQ line, an analog trace read as TTLs).
MAX_INTERVAL_MISMATCH = 0.25


def _check_camera_period(sync: SyncSignals, video_time_s: np.ndarray) -> None:
    if video_time_s.size < 2:
        return
    frame = float(np.median(np.diff(video_time_s)))
    ttl = float(np.median(np.diff(sync.camera_s)))
    if abs(ttl - frame) > MAX_INTERVAL_MISMATCH * frame:
        raise ImagingError(
            f"{sync.source}: the camera TTLs come every {ttl * 1e3:.3f} ms but the video's "
            f"frames every {frame * 1e3:.3f} ms ({1 / frame:.3f} frames/s): these are not "
            "this camera's frame TTLs (a wrong DAQ line, or an analog trace read as TTLs). "
            "Fix the sync file (or its `camera:` name) or remove `sync:`.")


def _check_imaging_intervals(source: str, ttl: np.ndarray, frames: ImagingFrames) -> None:
    if ttl.size < 2:
        return
    step_frames = np.diff(frames.time_s)
    step_ttl = np.diff(ttl)
    period = float(np.median(step_frames))
    bad = np.abs(step_ttl - step_frames) > MAX_INTERVAL_MISMATCH * period
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ImagingError(
            f"{source}: the imaging TTLs do not follow the imaging frames: between saved "
            f"frames {i} and {i + 1} the TTLs are {step_ttl[i] * 1e3:.3f} ms apart but the "
            f"frame times ({frames.source}) {step_frames[i] * 1e3:.3f} ms "
            f"({int(bad.sum())} interval(s) differ by more than {MAX_INTERVAL_MISMATCH:g} "
            "frame): a wrong DAQ line, an analog trace read as TTLs, or TTLs missing. Fix "
            "the sync file (or its `imaging:` name) or remove `sync:`.")
