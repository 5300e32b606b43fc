"""ScanImage-format tifs for tests and demos, written with tifffile the way ScanImage 2016+
writes them.

Layout written (what tifffile's ScanImage reader and ScanImage's own readers use):

- BigTIFF, little endian; right after the 16-byte BigTIFF header ScanImage's block: magic
  ``117637889`` (``0x07030301``), version 3, the byte lengths of the non-varying frame
  data and of the ROI-group JSON, then both (the frame data null-terminated). tifffile
  has no option for this block, so it is written through the open writer's file handle
  before the first page (the first IFD then follows it, and tifffile records its offset
  in the header as usual); :attr:`tifffile.TiffFile.scanimage_metadata` reads it back.
- every page: ``ImageDescription`` with that frame's varying data (``frameNumbers``,
  ``acquisitionNumbers``, ``frameNumberAcquisition``, ``frameTimestamps_sec``,
  ``acqTriggerTimestamps_sec``, ``nextFileMarkerTimestamps_sec``, ``endOfAcquisition``,
  ``endOfAcquisitionMode``, ``dcOverVoltage``, ``epoch``, ``auxTrigger0-3``, ``I2CData``),
  ``Software`` with the ``SI.*`` header and ``Artist`` with the ROI JSON, as ScanImage
  writes them;
- one page per saved channel for each frame (same frameNumbers), planes cycling in a
  fast-z volume, files split every ``frames_per_file`` frames with frame numbers and
  timestamps continuing (``<stem>_00001.tif``, ``_00002.tif``...).

Pixel data are small and synthetic; only the headers matter here.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np

__all__ = ["scanimage_header", "write_scanimage_tifs"]

SCANIMAGE_MAGIC = 117637889


def _matlab(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, list | tuple):
        return "[" + ";".join(_matlab(v) for v in value) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


def scanimage_header(*, frame_rate_hz: float, n_channels: int = 1, n_planes: int = 1,
                     size: tuple[int, int] = (16, 16), frames_per_file: int = 0,
                     stem: str = "file", version: tuple[str, str] = ("2016b", "0"),
                     extra: dict | None = None) -> str:
    """The non-varying ``SI.*`` header (one ``key = value`` per line, MATLAB syntax)."""
    fields = {
        "SI.LINE_FORMAT_VERSION": 1, "SI.TIFF_FORMAT_VERSION": 3,
        "SI.VERSION_MAJOR": version[0], "SI.VERSION_MINOR": version[1],
        "SI.acqsPerLoop": 1, "SI.acqState": "grab",
        "SI.hChannels.channelSave": list(range(1, n_channels + 1)) if n_channels > 1 else 1,
        "SI.hChannels.channelsActive": list(range(1, n_channels + 1)) if n_channels > 1
        else 1,
        "SI.hFastZ.enable": n_planes > 1, "SI.hFastZ.discardFlybackFrames": True,
        "SI.hFastZ.numDiscardFlybackFrames": 0,
        "SI.hRoiManager.linesPerFrame": size[0], "SI.hRoiManager.pixelsPerLine": size[1],
        "SI.hRoiManager.scanFrameRate": float(frame_rate_hz),
        "SI.hRoiManager.scanVolumeRate": float(frame_rate_hz) / n_planes,
        "SI.hRoiManager.scanZoomFactor": 2.0,
        "SI.hScan2D.logFileStem": stem, "SI.hScan2D.logFramesPerFile": frames_per_file,
        "SI.hScan2D.logFramesPerFileLock": False,
        "SI.hStackManager.enable": n_planes > 1, "SI.hStackManager.numSlices": n_planes,
        "SI.hStackManager.framesPerSlice": 1,
        **(extra or {}),
    }
    return "\n".join(f"{k} = {_matlab(v)}" for k, v in fields.items()) + "\n"


def _description(number: int, time_s: float, epoch: datetime) -> str:
    seconds = epoch.second + epoch.microsecond / 1e6
    stamp = (f"[{epoch.year} {epoch.month:2d} {epoch.day:2d} {epoch.hour:2d} "
             f"{epoch.minute:2d} {seconds:.3f}]")
    lines = [f"frameNumbers = {number}", "acquisitionNumbers = 1",
             f"frameNumberAcquisition = {number}", f"frameTimestamps_sec = {time_s:.9f}",
             # empty unless a trigger / end mode is set, as ScanImage writes them
             "acqTriggerTimestamps_sec = ",
             "nextFileMarkerTimestamps_sec = -1.000000000", "endOfAcquisition = 0",
             "endOfAcquisitionMode = ", "dcOverVoltage = 0", f"epoch = {stamp}",
             "auxTrigger0 = []", "auxTrigger1 = []", "auxTrigger2 = []", "auxTrigger3 = []",
             "I2CData = {}"]
    return "\n".join(lines) + "\n"


def write_scanimage_tifs(folder: str | Path, stem: str, frame_times_s: Sequence[float],
                         epoch: datetime, *, frame_rate_hz: float, n_channels: int = 1,
                         n_planes: int = 1, frames_per_file: int | None = None,
                         size: tuple[int, int] = (16, 16), header_extra: dict | None = None,
                         first_frame_number: int = 1, bigtiff: bool = True) -> list[Path]:
    """Write one acquisition as ScanImage does.

    Parameters
    ----------
    folder : path
        Destination (created).
    stem : str
        Files are ``<stem>_00001.tif``, ``<stem>_00002.tif``...
    frame_times_s : sequence of float
        ``frameTimestamps_sec`` of every frame (all planes, acquisition order).
    epoch : datetime
        Acquisition start (naive local time, as ScanImage stores it).
    frame_rate_hz : float
        ``SI.hRoiManager.scanFrameRate``.
    n_channels, n_planes : int
        Saved channels (one page each per frame), planes per volume.
    frames_per_file : int, optional
        Split into files of this many frames (ScanImage's logFramesPerFile).
    size : (int, int)
        Lines, pixels per line.
    header_extra : dict, optional
        More ``SI.*`` header fields (or overrides).
    first_frame_number : int
        frameNumbers of the first frame (another acquisition's files can be faked).
    bigtiff : bool
        False: classic TIFF (ScanImage 5 / 2015, or files re-saved by other tools), with
        the same per-page descriptions and Software header but no ScanImage block.

    Returns
    -------
    list of Path
        The files, in acquisition order.
    """
    import tifffile

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    times = np.asarray(frame_times_s, dtype=np.float64)
    per_file = frames_per_file or times.size
    header = scanimage_header(frame_rate_hz=frame_rate_hz, n_channels=n_channels,
                              n_planes=n_planes, size=size, frames_per_file=per_file
                              if frames_per_file else 0, stem=stem, extra=header_extra)
    roi = json.dumps({"RoiGroups": {"imagingRoiGroup": {
        "ver": 1, "classname": "scanimage.mroi.RoiGroup", "name": "Default Imaging ROI Group",
        "rois": {"ver": 1, "classname": "scanimage.mroi.Roi", "name": "Default Imaging Roi",
                 "zs": 0, "discretePlaneMode": 0}}}}, indent=1)
    frame_data = header.encode() + b"\0"
    block = struct.pack("<IIII", SCANIMAGE_MAGIC, 3, len(frame_data), len(roi)) + \
        frame_data + roi.encode()
    rng = np.random.default_rng(0)
    paths = []
    for f, start in enumerate(range(0, times.size, per_file)):
        path = folder / f"{stem}_{f + 1:05d}.tif"
        with tifffile.TiffWriter(path, bigtiff=bigtiff, byteorder="<") as tif:
            if bigtiff:  # ScanImage's block sits between the header and first IFD
                tif._fh.write(block)
            for i in range(start, min(start + per_file, times.size)):
                description = _description(first_frame_number + i, float(times[i]), epoch)
                for _channel in range(n_channels):
                    image = rng.integers(0, 2000, size=size, dtype=np.int16)
                    tif.write(image, description=description, software=header,
                              metadata=None, contiguous=False,
                              extratags=[(315, "s", 0, roi, True)])
        paths.append(path)
    return paths
