"""Plain files of times in seconds (imaging frame times, TTL times): CSV or NPY.

CSV: one number per line (seconds); an optional header line; with several columns, the
column named ``time_s`` (else the first). NPY: a 1-D float array (``np.save``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlc_tracking.imaging.errors import ImagingError

__all__ = ["read_times", "require_increasing"]


def _read_csv(path: Path) -> np.ndarray:
    import pandas as pd

    first = path.read_text().lstrip().splitlines()[:1]
    header = bool(first) and not _is_number(first[0].split(",")[0].strip())
    df = pd.read_csv(path, header=0 if header else None, skipinitialspace=True)
    column = "time_s" if header and "time_s" in df.columns else df.columns[0]
    return pd.to_numeric(df[column], errors="raise").to_numpy(np.float64)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


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
    try:
        if path.suffix.lower() == ".npy":
            values = np.load(path, allow_pickle=False)
        elif path.suffix.lower() in (".csv", ".txt"):
            values = _read_csv(path)
        else:
            raise ImagingError(f"{path}: {what} must be a .csv (one time in seconds per line) "
                               "or a .npy file (a 1-D array of seconds).")
        values = np.asarray(values, dtype=np.float64)
    except ImagingError:
        raise
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
