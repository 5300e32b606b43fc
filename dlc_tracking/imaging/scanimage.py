"""ScanImage tifs: acquisition start (``epoch``), per-frame times, frame rate, channels and
planes, read with tifffile (its ScanImage support), never by parsing TIFF by hand.

What ScanImage (2016 and later) writes, and what is read here:

- every page's ``ImageDescription`` holds that frame's varying data, one ``key = value``
  per line: ``frameNumbers`` (1-based, counts the acquisition's frames), ``frameTimestamps_sec``
  (seconds since the acquisition start), ``epoch`` (the acquisition start as
  ``[year month day hour minute seconds]`` on the microscope computer's clock, no time
  zone), ``acqTriggerTimestamps_sec``, ``auxTrigger0``...; read with
  :func:`tifffile.matlabstr2py` (what tifffile's ScanImage reader uses);
- the non-varying header (``SI.hRoiManager.scanFrameRate``, ``SI.hChannels.channelSave``,
  ``SI.hStackManager.numSlices``, ``SI.hFastZ.*``...) in the file's ScanImage block after the
  BigTIFF header (:attr:`tifffile.TiffFile.scanimage_metadata` ``["FrameData"]``), and in
  every page's ``Software`` tag.

Channels: ScanImage writes one page per saved channel for each frame (same
``frameNumbers``); the frame's time is taken once. Planes (fast-z volumes): the saved
frames cycle through ``numSlices`` planes (plus ``numDiscardFlybackFrames`` flyback frames
when those are saved, which are then dropped); each plane's frames keep their own
``frameTimestamps_sec``, so a volume's planes have one time per plane.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from dlc_tracking.imaging.errors import ImagingError

__all__ = ["ScanImageAcquisition", "acquisition_start", "first_frame_time", "read_scanimage",
           "require_same_acquisition"]


@dataclass
class ScanImageAcquisition:
    """The frames of one ScanImage acquisition, stitched over its files.

    Attributes
    ----------
    files : list of Path
        The tifs, in acquisition order.
    epoch : datetime.datetime
        Acquisition start on the microscope computer's clock (naive: ScanImage stores no
        time zone).
    frame_times_s : np.ndarray
        ``(n_frames,)`` ``frameTimestamps_sec`` of every saved frame (all planes, each
        frame once however many channels), seconds from the acquisition start.
    frame_numbers : np.ndarray
        ``(n_frames,)`` ScanImage's ``frameNumbers`` (1-based).
    plane : np.ndarray
        ``(n_frames,)`` plane of each frame, from 0 (-1: a saved flyback frame).
    frame_rate_hz : float or None
        ``SI.hRoiManager.scanFrameRate`` (frames, not volumes, per second).
    n_channels, n_planes, n_flyback : int
        Saved channels, planes per volume, flyback frames saved per volume.
    version : str
        ScanImage version from the header (``SI.VERSION_MAJOR``.``SI.VERSION_MINOR``).
    pages_per_file : list of int
    volume_rate_hz : float or None
        ``SI.hRoiManager.scanVolumeRate`` (volumes per second; a volume's frames include
        its flyback frames, saved or not).
    """

    files: list[Path]
    epoch: datetime
    frame_times_s: np.ndarray
    frame_numbers: np.ndarray
    plane: np.ndarray
    frame_rate_hz: float | None
    n_channels: int
    n_planes: int
    n_flyback: int
    version: str
    pages_per_file: list[int] = field(default_factory=list)
    volume_rate_hz: float | None = None

    @property
    def n_frames(self) -> int:
        """Saved frames (all planes)."""
        return int(self.frame_times_s.size)


def _open(path: Path):
    import tifffile

    try:
        # is_scanimage=False: tifffile would otherwise turn the pages of a classic
        # (non-BigTIFF) ScanImage file into virtual TiffFrames, which have no description;
        # every page's own IFD is needed here. ScanImage is recognised by _require_scanimage.
        return tifffile.TiffFile(path, is_scanimage=False)
    except FileNotFoundError as exc:
        raise ImagingError(f"{path}: ScanImage tif not found; fix the name under `imaging:` "
                           "in session.yaml or copy the file in.") from exc
    except (OSError, ValueError, tifffile.TiffFileError) as exc:
        raise ImagingError(f"{path} cannot be read as a TIFF file ({exc}); is it complete? "
                           "Copy it again from the microscope computer.") from exc


def _not_scanimage(path: Path, why: str) -> ImagingError:
    return ImagingError(
        f"{path} is not a ScanImage tif ({why}): the imaging start and frame times come from "
        "ScanImage's per-frame header (`epoch`, `frameTimestamps_sec`). Name the raw ScanImage "
        "files under `imaging: scanimage:`, or give the frame times as a file "
        "(`imaging: frame_times:`) with the session's start_time. See docs/imaging.md.")


def _require_scanimage(path: Path, tif) -> None:
    if not tif.pages.first.is_scanimage:
        raise _not_scanimage(path, "no ScanImage header: its Software tag does not start "
                             "with 'SI.'")


_FRAME_KEYS = ("frameNumbers ", "frameNumbers=", "frameTimestamps_sec")


def _description(path: Path, page, only_frame_keys: bool = False) -> dict:
    """The page's description parsed by tifffile; ``only_frame_keys``: just the lines of
    frameNumbers and frameTimestamps_sec (half the read time of a long acquisition goes to
    parsing the ~15 keys of every page otherwise)."""
    import tifffile

    text = page.description or ""
    if only_frame_keys:
        text = "\n".join(line for line in text.splitlines() if line.startswith(_FRAME_KEYS))
    try:
        data = tifffile.matlabstr2py(text)
    except Exception as exc:  # noqa: BLE001 - tifffile's parser raises various errors
        raise _not_scanimage(path, f"page {page.index}'s description cannot be parsed: "
                             f"{exc}") from exc
    if not isinstance(data, dict):
        raise _not_scanimage(path, f"page {page.index} has no key = value description")
    return data


def _epoch(path: Path, data: dict) -> datetime:
    value = data.get("epoch")
    if not isinstance(value, list) or len(value) != 6:
        raise _not_scanimage(path, "no `epoch` in the frame description")
    try:
        year, month, day, hour, minute = (int(v) for v in value[:5])
        return datetime(year, month, day, hour, minute) + timedelta(seconds=float(value[5]))
    except (TypeError, ValueError) as exc:
        raise _not_scanimage(path, f"`epoch = {value}` is not a date") from exc


def _header(tif) -> dict:
    """The non-varying ``SI.*`` header: the ScanImage block, else the Software tag."""
    import tifffile

    try:  # the ScanImage block after a BigTIFF header (2016 and later)
        frame_data = tifffile.read_scanimage_metadata(tif.filehandle)[0]
    except (TypeError, ValueError):
        frame_data = None
    if isinstance(frame_data, dict) and frame_data:
        return frame_data
    software = tif.pages.first.software or ""
    try:
        parsed = tifffile.matlabstr2py(software)
    except Exception:  # noqa: BLE001 - a header that does not parse is treated as missing
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _count(value, default: int) -> int:
    """Length of a MATLAB vector such as ``channelSave = [1;2]`` (or one number)."""
    if value is None or value == "":
        return default
    if isinstance(value, list):
        flat = np.asarray(value, dtype=object).ravel()
        return max(1, len(flat))
    return 1


def _positive(value) -> float | None:
    """A positive number from the header, else None."""
    return float(value) if isinstance(value, int | float) and value > 0 else None


def _layout(path: Path, header: dict) -> tuple[int, int, int, float | None, str]:
    """(channels, planes, saved flyback frames, frame rate, version) from the header.

    A fast-z volume is ``SI.hFastZ.enable`` (ScanImage before 2020) or
    ``SI.hStackManager.stackMode = 'fast'`` (2020 and later); its planes are
    ``actualNumSlices`` where the header has it (2020+), else ``numSlices``.
    ``SI.hStackManager.enable`` alone is a slow stack (the stage moves between slices):
    not a time series of planes, refused.
    """
    n_channels = _count(header.get("SI.hChannels.channelSave"), 1)
    mode = str(header.get("SI.hStackManager.stackMode", "") or "").lower()
    fast_z = bool(header.get("SI.hFastZ.enable", False)) or mode == "fast"
    slices = header.get("SI.hStackManager.actualNumSlices")
    if not isinstance(slices, int | float) or slices < 1:
        slices = header.get("SI.hStackManager.numSlices", 1)
    slices = int(slices) if isinstance(slices, int | float) and slices >= 1 else 1
    stack = bool(header.get("SI.hStackManager.enable", False))
    per_slice = header.get("SI.hStackManager.framesPerSlice", 1)
    per_slice = int(per_slice) if isinstance(per_slice, int | float) and per_slice >= 1 else 1
    if stack and not fast_z and (slices > 1 or per_slice > 1):
        raise ImagingError(
            f"{path} is a slow z-stack ({slices} slice(s), {per_slice} frame(s) per slice; "
            "SI.hStackManager.enable without fast z): its frames are taken slice after "
            "slice, not a time series of planes, so they cannot be aligned with the video. "
            "Name the tifs of a time-series (or fast-z volume) acquisition.")
    n_planes = slices if fast_z else 1
    n_flyback = 0
    if fast_z and n_planes > 1 and not bool(header.get("SI.hFastZ.discardFlybackFrames", True)):
        n_flyback = int(header.get("SI.hFastZ.numDiscardFlybackFrames", 0) or 0)
    rate = _positive(header.get("SI.hRoiManager.scanFrameRate"))
    version = ".".join(str(header[k]) for k in ("SI.VERSION_MAJOR", "SI.VERSION_MINOR")
                       if k in header) or "unknown"
    return n_channels, max(n_planes, 1), n_flyback, rate, version


def acquisition_start(path: str | Path) -> datetime:
    """The acquisition start (``epoch`` of the first page), naive local time.

    Reads the first page only (milliseconds, whatever the file's size).

    Raises
    ------
    ImagingError
        The file is missing, not a TIFF, or not written by ScanImage (no ``epoch``).
    """
    path = Path(path)
    with _open(path) as tif:
        _require_scanimage(path, tif)
        return _epoch(path, _description(path, tif.pages.first))


def first_frame_time(path: str | Path) -> float:
    """``frameTimestamps_sec`` of the file's first page (s from the acquisition start).

    Raises
    ------
    ImagingError
        Not a ScanImage tif.
    """
    path = Path(path)
    with _open(path) as tif:
        _require_scanimage(path, tif)
        data = _description(path, tif.pages.first)
    value = data.get("frameTimestamps_sec")
    if not isinstance(value, int | float):
        raise _not_scanimage(path, "page 0 has no numeric frameTimestamps_sec")
    return float(value)


def _read_file(path: Path) -> tuple[datetime, dict, np.ndarray, np.ndarray]:
    with _open(path) as tif:
        _require_scanimage(path, tif)
        header = _header(tif)
        numbers, times, epoch = [], [], None
        for page in tif.pages:
            # the first page in full (epoch, and proof of ScanImage's format), then the keys
            data = _description(path, page, only_frame_keys=epoch is not None)
            if epoch is None:
                epoch = _epoch(path, data)
            try:
                numbers.append(int(data["frameNumbers"]))
                times.append(float(data["frameTimestamps_sec"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise _not_scanimage(path, f"page {page.index} has no numeric frameNumbers / "
                                     "frameTimestamps_sec") from exc
    if epoch is None:
        raise ImagingError(f"{path} holds no image: copy it again from the microscope computer.")
    return epoch, header, np.asarray(numbers, np.int64), np.asarray(times, np.float64)


def read_scanimage(paths: list[str | Path]) -> ScanImageAcquisition:
    """Read the frames of one acquisition from its tifs (in acquisition order).

    Parameters
    ----------
    paths : list of path
        ScanImage tifs of one acquisition, in the order ScanImage wrote them
        (``..._00001.tif``, ``..._00002.tif``...).

    Returns
    -------
    ScanImageAcquisition

    Raises
    ------
    ImagingError
        A file is missing or not ScanImage; the files come from different acquisitions
        (their ``epoch`` differs); they are out of order or one is missing (frame numbers
        do not continue, or the first file does not start at frame 1); pages of a frame do
        not match the saved channels; frame times do not increase (each error names the
        file of the bad frame).
    """
    if not paths:
        raise ImagingError("no ScanImage tif named under `imaging: scanimage:`.")
    files = [Path(p) for p in paths]
    epoch, header, numbers, times, file_of = _read_files(files)
    n_channels, n_planes, n_flyback, rate, version = _layout(files[0], header)
    pages = [int(n) for n in np.bincount(file_of, minlength=len(files))]
    numbers, times, file_of = _one_page_per_frame(files, numbers, times, file_of, n_channels)
    _require_order(files, numbers, times, file_of)
    # Planes from ScanImage's own frame count, not the saved-frame index: the cycle of
    # planes (and saved flyback frames) starts at frameNumbers 1.
    slot = (numbers - 1) % (n_planes + n_flyback)
    plane = np.where(slot < n_planes, slot, -1)
    return ScanImageAcquisition(
        files=files, epoch=epoch, frame_times_s=times, frame_numbers=numbers, plane=plane,
        frame_rate_hz=rate, n_channels=n_channels, n_planes=n_planes, n_flyback=n_flyback,
        version=version, pages_per_file=pages,
        volume_rate_hz=_positive(header.get("SI.hRoiManager.scanVolumeRate")))


def require_same_acquisition(path: str | Path, epoch: datetime, first: str | Path,
                             first_epoch: datetime) -> None:
    """Refuse a tif whose acquisition start differs from the first tif's.

    Raises
    ------
    ImagingError
        Naming both files and starts.
    """
    if abs((epoch - first_epoch).total_seconds()) > 1e-3:
        raise ImagingError(
            f"{path} belongs to another acquisition (started {epoch.isoformat()}) than "
            f"{first} (started {first_epoch.isoformat()}): name the tifs of one acquisition "
            "only (under `imaging: scanimage:`, or --tif).")


def _read_files(files: list[Path]):
    """Every page's frame number and time over the files, with the file of each page."""
    epoch, header = None, {}
    all_numbers, all_times, file_of = [], [], []
    for k, path in enumerate(files):
        file_epoch, file_header, numbers, times = _read_file(path)
        if epoch is None:
            epoch, header = file_epoch, file_header
        else:
            require_same_acquisition(path, file_epoch, files[0], epoch)
        if all_numbers and numbers.size and numbers[0] != all_numbers[-1][-1] + 1 \
                and numbers[0] != all_numbers[-1][-1]:
            raise ImagingError(
                f"{path} starts at frame {numbers[0]} but the file before it "
                f"({files[k - 1].name}) ends at frame {all_numbers[-1][-1]}: "
                "the tifs are named out of acquisition order, or one is missing. List them "
                "in the order ScanImage wrote them (_00001, _00002, ...).")
        all_numbers.append(numbers)
        all_times.append(times)
        file_of.append(np.full(numbers.size, k, np.int64))
    numbers = np.concatenate(all_numbers)
    if numbers[0] != 1:
        raise ImagingError(
            f"{files[0]} starts at ScanImage frame {numbers[0]}, not 1: the acquisition's "
            "first file is missing (or listed later). Name all its tifs under "
            "`imaging: scanimage:`, from _00001, in the order ScanImage wrote them.")
    return epoch, header, numbers, np.concatenate(all_times), np.concatenate(file_of)


def _one_page_per_frame(files, numbers, times, file_of, n_channels: int):
    """One page per saved channel and frame: keep each frame once."""
    starts = np.flatnonzero(np.r_[True, numbers[1:] != numbers[:-1]])
    per_frame = np.diff(np.r_[starts, numbers.size])
    if n_channels > 1 and not np.all(per_frame == n_channels):
        bad = int(np.flatnonzero(per_frame != n_channels)[0])
        raise ImagingError(
            f"{files[file_of[starts[bad]]]}: the header saves {n_channels} channels but frame "
            f"{numbers[starts[bad]]} has {per_frame[bad]} page(s): the files are incomplete "
            "or not of one acquisition.")
    return numbers[starts], times[starts], file_of[starts]


def _require_order(files, numbers, times, file_of) -> None:
    """Frame numbers and times increase; an error names the file of the offending frame."""
    if np.any(np.diff(numbers) <= 0):
        i = int(np.flatnonzero(np.diff(numbers) <= 0)[0])
        raise ImagingError(
            f"{files[file_of[i + 1]]}: ScanImage frame numbers go from {numbers[i]} back to "
            f"{numbers[i + 1]}: the tifs are out of acquisition order or of two acquisitions.")
    if np.any(np.diff(times) <= 0):
        i = int(np.flatnonzero(np.diff(times) <= 0)[0])
        raise ImagingError(
            f"{files[file_of[i + 1]]}: frameTimestamps_sec does not increase at frame "
            f"{numbers[i + 1]} ({times[i]:.6f} s then {times[i + 1]:.6f} s); the files are "
            "damaged or mixed.")
