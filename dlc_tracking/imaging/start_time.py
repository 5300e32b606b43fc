"""A recording's start from its imaging tifs (as the seed pipeline's
``do_DLC_prediction(video_filepaths, model_name, tif_filepaths)`` did), compared with a
declared start time."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from dlc_tracking.imaging.config import epoch_zone
from dlc_tracking.imaging.errors import ImagingError
from dlc_tracking.imaging.scanimage import acquisition_start, require_same_acquisition

__all__ = ["MISMATCH_TOLERANCE_S", "start_from_tifs", "start_mismatch"]

MISMATCH_TOLERANCE_S = 1.0
"""A declared start more than this far from the tifs' is reported."""


def start_mismatch(declared: datetime, imaging: datetime, where: str,
                   tolerance_s: float = MISMATCH_TOLERANCE_S) -> str | None:
    """A warning naming both values when they differ by more than ``tolerance_s``."""
    gap = (imaging - declared).total_seconds()
    if abs(gap) <= tolerance_s:
        return None
    return (f"{where}: the declared start time {declared.isoformat()} and the imaging "
            f"acquisition start {imaging.isoformat()} differ by {gap:+.3f} s; the declared "
            "one is used. Check the start time, the time zone and both computers' clocks.")


def start_from_tifs(tifs: list[str | Path], timezone: str | None,
                    declared: datetime | None = None,
                    tolerance_s: float = MISMATCH_TOLERANCE_S) -> tuple[datetime, list[str]]:
    """The acquisition start of the first tif, time zone aware, and warnings.

    Parameters
    ----------
    tifs : list of path
        The imaging tifs (ScanImage) in acquisition order; all must share the start.
    timezone : str or None
        The microscope computer's time zone (IANA name or +HH:MM); None: ``declared``'s.
    declared : datetime, optional
        A start time given elsewhere (``--start-time``, session.yaml): compared.
    tolerance_s : float
        A larger difference is a warning (the session's ``max_clock_offset_s``).

    Returns
    -------
    (datetime, list of str)
        The start to use (``declared`` when given, else the tifs') and warnings.

    Raises
    ------
    ImagingError
        Not ScanImage (no epoch), tifs of different acquisitions, no time zone known.
    """
    if not tifs:
        raise ImagingError("no tif given.")
    starts = [acquisition_start(p) for p in tifs]
    for path, start in zip(tifs[1:], starts[1:], strict=True):
        require_same_acquisition(path, start, tifs[0], starts[0])
    zone = epoch_zone(timezone, declared, f"{tifs[0]} (epoch {starts[0].isoformat()})")
    imaging = starts[0].replace(tzinfo=zone)
    if declared is None:
        return imaging, []
    warning = start_mismatch(declared, imaging, str(tifs[0]), tolerance_s)
    return declared, [warning] if warning else []
