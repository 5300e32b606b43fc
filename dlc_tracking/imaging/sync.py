"""Sync signals: camera-frame and imaging-frame TTL times recorded on one DAQ clock, and
the video's frame times they give.

Accepted inputs (see docs/imaging.md):

- one CSV with the columns ``signal,time_s`` (``signal`` is ``camera`` or ``imaging``; one
  row per TTL rising edge, seconds on the DAQ clock);
- two files of times (CSV or NPY, :mod:`dlc_tracking.imaging.frame_times`), one per signal;
- an NWB file with two ``TimeSeries`` (their ``timestamps``, or ``starting_time`` + rate).

A camera that drops frames still sends their TTLs: more camera TTLs than video frames.
The dropped frames are then located from the video's own per-frame timestamps when it has
them; without them they cannot be, and the frames keep the first TTLs (a warning gives
the count). Frames are never stretched over the TTLs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlc_tracking.imaging.config import SyncConfig
from dlc_tracking.imaging.errors import ImagingError
from dlc_tracking.imaging.frame_times import read_times, require_increasing

__all__ = ["CameraTimes", "SyncSignals", "camera_frame_times", "frame_slots", "read_sync_csv",
           "read_sync_files", "read_sync_nwb"]

SIGNALS = ("camera", "imaging")


@dataclass(frozen=True)
class SyncSignals:
    """TTL times (s, DAQ clock) of the camera frames and the imaging frames."""

    camera_s: np.ndarray
    imaging_s: np.ndarray
    source: str


def _checked(camera: np.ndarray, imaging: np.ndarray, source: str) -> SyncSignals:
    for name, values in zip(SIGNALS, (camera, imaging), strict=True):
        if values.size < 2:
            raise ImagingError(f"{source}: {values.size} {name} TTL(s); a sync file needs one "
                               f"TTL per {name} frame.")
        require_increasing(values, source, f"{name} TTL times")
    return SyncSignals(camera, imaging, source)


def read_sync_csv(path: str | Path) -> SyncSignals:
    """A CSV of ``signal,time_s`` rows (signal ``camera`` or ``imaging``).

    Raises
    ------
    ImagingError
        Missing file or columns, another signal name, a signal with fewer than 2 TTLs,
        times not increasing.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ImagingError(f"{path}: sync file not found; fix `imaging: sync:` in "
                           "session.yaml or copy it in.")
    try:
        df = pd.read_csv(path, skipinitialspace=True)
    except (OSError, ValueError) as exc:
        raise ImagingError(f"{path} cannot be read as a CSV ({exc}).") from exc
    if not {"signal", "time_s"} <= set(df.columns):
        raise ImagingError(f"{path}: a sync CSV has the columns signal,time_s (signal: camera "
                           f"or imaging); found {list(df.columns)}.")
    names = set(df["signal"].astype(str).str.strip())
    if names - set(SIGNALS):
        raise ImagingError(f"{path}: signal must be 'camera' or 'imaging'; found "
                           f"{sorted(names - set(SIGNALS))}.")
    try:
        times = pd.to_numeric(df["time_s"], errors="raise").to_numpy(np.float64)
    except ValueError as exc:
        raise ImagingError(f"{path}: time_s must be seconds ({exc}).") from exc
    signal = df["signal"].astype(str).str.strip().to_numpy()
    return _checked(times[signal == "camera"], times[signal == "imaging"], str(path))


def read_sync_files(camera: str | Path, imaging: str | Path) -> SyncSignals:
    """One file of TTL times (CSV or NPY, seconds) per signal."""
    cam = read_times(camera, "camera TTL times")
    img = read_times(imaging, "imaging TTL times")
    return _checked(cam, img, f"{camera} / {imaging}")


def read_sync_nwb(path: str | Path, camera: str, imaging: str) -> SyncSignals:
    """Two ``TimeSeries`` of an NWB file (acquisition, or any processing module), by name:
    their ``timestamps`` (or ``starting_time`` + ``rate`` with one sample per TTL).

    Raises
    ------
    ImagingError
        Missing file or series, a file that is not NWB / HDF5.
    """
    path = Path(path)
    if not path.is_file():
        raise ImagingError(f"{path}: sync NWB file not found.")
    try:
        return _read_nwb_series(path, camera, imaging)
    except ImagingError:
        raise
    except Exception as exc:  # noqa: BLE001 - h5py / pynwb raise many kinds on a bad file
        raise ImagingError(f"{path} cannot be read as an NWB (HDF5) file ({exc!r}); is it "
                           "complete, and an NWB file? Fix `imaging: sync: nwb:` in "
                           "session.yaml or copy the file again.") from exc


def _read_nwb_series(path: Path, camera: str, imaging: str) -> SyncSignals:
    from pynwb import NWBHDF5IO

    out = {}
    with NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        found = {obj.name: obj for obj in nwb.objects.values()
                 if obj.neurodata_type in ("TimeSeries",) or hasattr(obj, "timestamps")}
        for key, name in (("camera", camera), ("imaging", imaging)):
            series = found.get(name)
            if series is None or not hasattr(series, "timestamps"):
                raise ImagingError(f"{path}: no TimeSeries named {name!r} (the {key} TTLs); "
                                   f"it holds {sorted(found)}.")
            if series.timestamps is not None:
                out[key] = np.asarray(series.timestamps[:], np.float64)
            else:
                n = len(series.data)
                out[key] = float(series.starting_time) + np.arange(n) / float(series.rate)
    return _checked(out["camera"], out["imaging"], str(path))


@dataclass(frozen=True)
class CameraTimes:
    """The video frames' times on the DAQ clock.

    Attributes
    ----------
    time_s : np.ndarray
        ``(n_video_frames,)`` DAQ time of each video frame.
    n_ttl : int
        Camera TTLs.
    dropped : int
        Video frames missing between the first and last saved frame (their TTLs have no
        frame). Without the camera's timestamps, every TTL beyond the frame count.
    located : bool
        The dropped frames were located from the video's timestamps (else the frames
        took the first TTLs).
    note : str
        What was done, in words (goes into provenance).
    trailing : int
        TTLs after the video's last frame (the DAQ kept recording after the video file
        was closed): not dropped frames, reported in ``note``.
    """

    time_s: np.ndarray
    n_ttl: int
    dropped: int
    located: bool
    note: str
    trailing: int = 0


def frame_slots(video_timestamps_s: np.ndarray) -> np.ndarray:
    """The TTL slot of each video frame from the camera's own timestamps, gap by gap.

    Each gap between consecutive timestamps is rounded to a whole number of the camera's
    own period (its median step), so clock drift between the camera and the DAQ never
    accumulates over the recording: only one gap at a time is measured.

    Parameters
    ----------
    video_timestamps_s : np.ndarray
        ``(n_frames,)`` the camera's per-frame timestamps (its own clock).

    Returns
    -------
    np.ndarray
        ``(n_frames,)`` int, 0 for the first frame, strictly increasing.
    """
    steps = np.diff(np.asarray(video_timestamps_s, np.float64))
    if steps.size == 0:
        return np.zeros(1, np.int64)
    period = float(np.median(steps))
    slots = np.maximum(np.rint(steps / period), 1).astype(np.int64) if period > 0 else \
        np.ones(steps.size, np.int64)
    return np.r_[0, np.cumsum(slots)]


def camera_frame_times(camera_ttl_s: np.ndarray, n_frames: int,
                       video_timestamps_s: np.ndarray | None, source: str) -> CameraTimes:
    """Assign the camera TTLs to the video's frames.

    With the camera's own per-frame timestamps the gaps between them locate the dropped
    frames (one gap at a time, :func:`frame_slots`); TTLs after the last frame are
    trailing TTLs (the DAQ recorded past the video), reported apart from dropped frames.

    Parameters
    ----------
    camera_ttl_s : np.ndarray
        Camera TTL times (DAQ clock).
    n_frames : int
        Frames in the video.
    video_timestamps_s : np.ndarray or None
        The camera's own per-frame timestamps (the session's timestamps file), used to
        locate dropped frames.
    source : str
        The sync file (for messages).

    Raises
    ------
    ImagingError
        Fewer TTLs than video frames (the DAQ missed the camera, or another camera's
        line was recorded).
    """
    n_ttl = int(camera_ttl_s.size)
    if n_ttl < n_frames:
        raise ImagingError(
            f"{source}: {n_ttl} camera TTLs for {n_frames} video frames: the DAQ recorded "
            "fewer frames than the video holds (is it the right camera's line, or did the "
            "DAQ stop before the camera?). Fix the sync file or remove `sync:` to align by "
            "start time and frame rate.")
    if video_timestamps_s is not None and video_timestamps_s.size == n_frames and n_frames:
        index = frame_slots(video_timestamps_s)
        if index[-1] < n_ttl:
            dropped = int(index[-1] + 1 - n_frames)
            trailing = int(n_ttl - 1 - index[-1])
            parts = []
            if dropped:
                parts.append(f"{dropped} dropped frame(s) located from the video's "
                             "timestamps file (its gaps matched to the TTLs)")
            if trailing:
                parts.append(f"{trailing} camera TTL(s) after the video's last frame "
                             "ignored (the DAQ recorded past the video; not dropped frames)")
            return CameraTimes(camera_ttl_s[index], n_ttl, dropped, True,
                               "; ".join(parts) or "one camera TTL per frame", trailing)
    if n_ttl == n_frames:
        return CameraTimes(camera_ttl_s.copy(), n_ttl, 0, True, "one camera TTL per frame")
    dropped = n_ttl - n_frames
    return CameraTimes(camera_ttl_s[:n_frames].copy(), n_ttl, dropped, False,
                       f"{dropped} camera TTL(s) more than video frames could not be located "
                       "(no usable per-frame timestamps; dropped frames or TTLs after the "
                       "video stopped): video frames take the first TTLs, so frames after a "
                       f"drop may be up to {dropped} frame(s) early")


def read_sync(config: SyncConfig, session_dir: Path) -> SyncSignals:
    """The TTLs named by session.yaml's ``imaging: sync:``."""
    if config.file is not None:
        return read_sync_csv(session_dir / config.file)
    if config.nwb is not None:
        return read_sync_nwb(session_dir / config.nwb, config.camera, config.imaging)
    return read_sync_files(session_dir / config.camera, session_dir / config.imaging)
