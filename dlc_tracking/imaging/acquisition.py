"""One session's imaging frames from whatever the session names: ScanImage tifs, a Suite2p
folder, a frame-times file (in that order of preference for the times), each checked
against the others."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path

import numpy as np

from dlc_tracking.imaging.config import ImagingConfig, epoch_zone
from dlc_tracking.imaging.errors import ImagingError
from dlc_tracking.imaging.frame_times import read_times, require_increasing
from dlc_tracking.imaging.scanimage import acquisition_start, read_scanimage
from dlc_tracking.imaging.suite2p import read_suite2p, suite2p_frame_times

__all__ = ["ImagingFrames", "imaging_start", "load_imaging", "recording_start_from_imaging"]


@dataclass
class ImagingFrames:
    """Every saved imaging frame (all planes, acquisition order).

    Attributes
    ----------
    source : str
        Where the times come from: ``scanimage``, ``frame_times`` or ``suite2p``.
    files : list of str
        The files read (provenance).
    start : datetime.datetime or None
        Acquisition start, time zone aware (ScanImage ``epoch``); None when the source
        has none (the session's start_time is then the imaging start).
    time_s : np.ndarray
        Frame times from the acquisition start (s).
    plane : np.ndarray
        Plane of each frame from 0 (-1: saved flyback frames, excluded from the table).
    acquisition_frame : np.ndarray
        Frame index in the acquisition, from 0 (ScanImage ``frameNumbers`` - 1).
    header_frame_rate_hz : float or None
        The frame rate the acquisition declares (ScanImage header, or Suite2p ``fs`` x
        planes).
    n_planes, n_channels : int
    notes : list of str
    n_flyback : int
        Saved flyback frames per volume (plane -1).
    header_volume_rate_hz : float or None
        Volumes per second the acquisition declares (ScanImage ``scanVolumeRate``,
        Suite2p ``fs``); None for a single plane.
    """

    source: str
    files: list[str]
    start: datetime | None
    time_s: np.ndarray
    plane: np.ndarray
    acquisition_frame: np.ndarray
    header_frame_rate_hz: float | None
    n_planes: int = 1
    n_channels: int = 1
    notes: list[str] = field(default_factory=list)
    n_flyback: int = 0
    header_volume_rate_hz: float | None = None

    @property
    def n_frames(self) -> int:
        """Saved frames (all planes)."""
        return int(self.time_s.size)

    def frames_per_plane(self) -> int:
        """Frames of the plane with the most (all planes equal in a complete volume run)."""
        kept = self.plane[self.plane >= 0]
        return int(np.bincount(kept).max()) if kept.size else 0

    def imaging_frame(self) -> np.ndarray:
        """Index of each frame within its plane, from 0 (-1 for flyback frames)."""
        out = np.full(self.plane.size, -1, dtype=np.int64)
        for p in np.unique(self.plane[self.plane >= 0]):
            mask = self.plane == p
            out[mask] = np.arange(int(mask.sum()))
        return out

    def rate_check(self) -> tuple[float | None, float | None, str]:
        """(measured, declared, unit) of the rate to compare: frames per second for one
        plane; for a volume, plane 0's frames (one per volume) against the volume rate (a
        median over all planes mixes the short steps within a volume with the flyback)."""
        if self.n_planes <= 1:
            return self.measured_frame_rate_hz(), self.header_frame_rate_hz, "frame"
        times = self.time_s[self.plane == 0]
        measured = float(1.0 / np.median(np.diff(times))) if times.size >= 2 else None
        declared = self.header_volume_rate_hz
        if declared is None and self.header_frame_rate_hz:
            declared = self.header_frame_rate_hz / (self.n_planes + self.n_flyback)
        return measured, declared, "volume"

    def measured_frame_rate_hz(self) -> float | None:
        """Frames per second from the frame times (median step), None with < 2 frames."""
        if self.time_s.size < 2:
            return None
        return float(1.0 / np.median(np.diff(self.time_s)))


def _zone(config: ImagingConfig, start_time: datetime | None, where: str) -> tzinfo:
    return epoch_zone(config.timezone, start_time, where)


def imaging_start(config: ImagingConfig, session_dir: Path, start_time: datetime | None,
                  where: str) -> datetime | None:
    """The acquisition start from the first ScanImage tif's first page (time zone aware),
    None when the imaging has no ScanImage tif. Cheap: one page is read."""
    if not config.scanimage:
        return None
    epoch = acquisition_start(session_dir / config.scanimage[0])
    return epoch.replace(tzinfo=_zone(config, start_time, where))


def recording_start_from_imaging(config: ImagingConfig, session_dir: Path,
                                 where: str) -> datetime | None:
    """The recording's start (its first video frame) from the imaging, for a session
    without ``start_time``; None without ScanImage tifs.

    Without sync it is the acquisition start (``epoch``): both assumed to start together.
    With sync the video's first frame is at the first camera TTL, not at the acquisition
    start: the start is moved by what the DAQ measured between the two, so that
    ``time_s`` 0 and the recording's (and NWB's) start time are the same instant.

    Raises
    ------
    ImagingError
        Unreadable tif or sync file, no time zone.
    """
    start = imaging_start(config, session_dir, None, where)
    if start is None or config.sync is None:
        return start
    from datetime import timedelta

    from dlc_tracking.imaging.scanimage import first_frame_time
    from dlc_tracking.imaging.sync import read_sync

    sync = read_sync(config.sync, session_dir)
    first = first_frame_time(session_dir / config.scanimage[0])
    # wall clock of the first camera TTL = epoch + first frame's time - (imaging TTL of
    # the first frame - first camera TTL), both TTLs on the DAQ clock
    lead = float(sync.imaging_s[0] - sync.camera_s[0])
    return start + timedelta(seconds=first - lead)


def load_imaging(config: ImagingConfig, session_dir: Path, start_time: datetime | None,
                 where: str) -> ImagingFrames:
    """Read and cross-check the session's imaging sources.

    Parameters
    ----------
    config : ImagingConfig
        session.yaml's ``imaging:``.
    session_dir : Path
        Paths are relative to it.
    start_time : datetime or None
        session.yaml's start_time (gives the time zone when ``timezone:`` is absent).
    where : str
        session.yaml and the recording, for messages.

    Raises
    ------
    ImagingError
        Bad files (see the readers), an ops.npy whose frame count or plane count
        disagrees with the tifs or the frame-times file, frame times not increasing.
    """
    ops = read_suite2p(session_dir / config.suite2p) if config.suite2p else None
    if config.scanimage:
        si = read_scanimage([session_dir / f for f in config.scanimage])
        frames = ImagingFrames(
            source="scanimage", files=[str(f) for f in si.files],
            start=si.epoch.replace(tzinfo=_zone(config, start_time, where)),
            time_s=si.frame_times_s, plane=si.plane, acquisition_frame=si.frame_numbers - 1,
            header_frame_rate_hz=si.frame_rate_hz, n_planes=si.n_planes,
            n_channels=si.n_channels,
            notes=[f"ScanImage {si.version}: {si.n_frames} frames in {len(si.files)} file(s), "
             f"{si.n_channels} channel(s), {si.n_planes} plane(s)"
             + (f", {si.n_flyback} flyback frame(s) per volume dropped" if si.n_flyback else "")],
            n_flyback=si.n_flyback, header_volume_rate_hz=si.volume_rate_hz
            if si.n_planes > 1 else None)
    elif config.frame_times:
        path = session_dir / config.frame_times
        times = read_times(path, "imaging frame times")
        require_increasing(times, path, "imaging frame times")
        n_planes = ops.n_planes if ops is not None else 1
        index = np.arange(times.size)
        frames = ImagingFrames(source="frame_times", files=[str(path)], start=None,
                               time_s=times, plane=index % n_planes, acquisition_frame=index,
                               header_frame_rate_hz=ops.fs_hz * n_planes if ops is not None
                               else None, n_planes=n_planes,
                               n_channels=ops.n_channels if ops is not None else 1,
                               notes=[f"{times.size} frame times from {path.name}"],
                               header_volume_rate_hz=ops.fs_hz if ops is not None
                               and n_planes > 1 else None)
    else:
        times, plane = suite2p_frame_times(ops)
        frames = ImagingFrames(source="suite2p", files=[str(p) for p in ops.ops_files],
                               start=None, time_s=times, plane=plane,
                               acquisition_frame=np.arange(times.size),
                               header_frame_rate_hz=ops.fs_hz * ops.n_planes,
                               n_planes=ops.n_planes, n_channels=ops.n_channels,
                               notes=[f"frame times from Suite2p fs {ops.fs_hz:g} Hz (no ScanImage "
                                "header or frame-times file): assumed evenly spaced"],
                               header_volume_rate_hz=ops.fs_hz if ops.n_planes > 1 else None)
    if ops is not None and frames.source != "suite2p":
        _check_against_ops(frames, ops)
        frames.files += [str(p) for p in ops.ops_files]
    return frames


def _check_against_ops(frames: ImagingFrames, ops) -> None:
    """Planes and frames per plane agree. Suite2p run on tifs with saved flyback frames
    treats those as planes too: ``nplanes`` = planes + flyback frames is accepted."""
    named = "the tifs" if frames.source == "scanimage" else Path(frames.files[0]).name
    slots = frames.n_planes + frames.n_flyback
    if ops.n_planes not in (frames.n_planes, slots):
        raise ImagingError(
            f"{ops.ops_files[0]}: Suite2p ran with {ops.n_planes} plane(s) but {named} hold "
            f"{frames.n_planes}" + (f" (+{frames.n_flyback} saved flyback frame(s) per volume)"
                                    if frames.n_flyback else "")
            + "; is it the Suite2p output of this acquisition?")
    if ops.n_planes == slots and frames.n_flyback:
        ours = np.bincount(frames.acquisition_frame % slots, minlength=slots)
    else:
        ours = np.bincount(frames.plane[frames.plane >= 0], minlength=frames.n_planes)
    theirs = list(ops.frames_per_plane) or [ops.n_frames] * ops.n_planes
    if [int(n) for n in ours] != [int(n) for n in theirs]:
        raise ImagingError(
            f"{ops.ops_files[0]}: nframes per plane is {theirs} but {named} hold "
            f"{[int(n) for n in ours]} frame(s) per plane: the Suite2p output is of other (or "
            "fewer) tifs. Run Suite2p on exactly the named tifs, or name the tifs it ran on.")
