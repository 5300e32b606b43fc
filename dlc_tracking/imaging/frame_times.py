"""Imaging frame times and TTL times from plain files (CSV or NPY, read by
:func:`dlc_tracking.io.times_files.read_times_file`), checked with imaging's messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlc_tracking.imaging.errors import ImagingError
from dlc_tracking.io.times_files import read_times_file

__all__ = ["read_times", "require_increasing"]


def read_times(path: str | Path, what: str = "frame times") -> np.ndarray:
    """Times in seconds from a CSV or NPY file.

    Raises
    ------
    ImagingError
        Missing file, unknown suffix, unreadable or non-numeric content, an empty file.
    """
    path = Path(path)
    if not path.is_file():
        raise ImagingError(f"{path}: {what} file not found; fix its name in session.yaml "
                           "(`imaging:`) or copy it in.")
    if path.suffix.lower() not in (".npy", ".csv", ".txt"):
        raise ImagingError(f"{path}: {what} must be a .csv (one time in seconds per line) "
                           "or a .npy file (a 1-D array of seconds).")
    try:
        values = read_times_file(path)
    except (OSError, ValueError, TypeError) as exc:
        raise ImagingError(f"{path} cannot be read as {what} in seconds ({exc}): write one "
                           "number per line (CSV, optional header) or a 1-D .npy array.") from exc
    if values.ndim != 1:
        raise ImagingError(f"{path}: {what} must be one column (a 1-D array), got shape "
                           f"{values.shape}.")
    if values.size == 0:
        raise ImagingError(f"{path} holds no {what}.")
    if not np.all(np.isfinite(values)):
        raise ImagingError(f"{path}: {what} hold a missing or infinite value at row "
                           f"{int(np.flatnonzero(~np.isfinite(values))[0])}.")
    return values


def require_increasing(times: np.ndarray, path: str | Path, what: str = "frame times") -> None:
    """Raise when the times do not increase strictly, naming the first bad row.

    Raises
    ------
    ImagingError
    """
    step = np.diff(times)
    if np.any(step <= 0):
        i = int(np.flatnonzero(step <= 0)[0])
        raise ImagingError(
            f"{path}: {what} are not increasing: row {i + 1} is {times[i + 1]:.6f} s after "
            f"{times[i]:.6f} s at row {i}. Times must be seconds in acquisition order "
            "(is a column of another clock, or a sorted-by-something-else export, in the file?).")
