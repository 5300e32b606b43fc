"""Files of times in seconds, one per line: the one reader of per-frame timestamp files
(session ``timestamps``), imaging frame times and TTL times.

CSV/TXT: one number per line (seconds); an optional header line; with several columns, the
column named ``time_s`` (else the first). NPY: a 1-D float array (``np.save``). The callers
turn ``ValueError``/``OSError`` into their own errors naming the recording and what to do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def is_number(text: str) -> bool:
    """True when ``text`` parses as a float (a data row rather than a header)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_times_file(path: str | Path) -> np.ndarray:
    """Times in seconds from a CSV/TXT (one per line) or NPY file, as float64.

    Parameters
    ----------
    path : str or Path
        ``.csv`` / ``.txt`` or ``.npy``.

    Returns
    -------
    numpy.ndarray
        The values as read, shape (n,) for a single column (not checked here: callers check
        the shape, finiteness and order with their own messages).

    Raises
    ------
    ValueError
        An unknown suffix, or content that is not numbers.
    OSError
        An unreadable file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return np.asarray(np.load(path, allow_pickle=False), dtype=np.float64)
    if suffix not in (".csv", ".txt"):
        raise ValueError(f"unknown suffix {path.suffix!r} (expected .csv, .txt or .npy)")
    import pandas as pd

    first = path.read_text().lstrip().splitlines()[:1]
    header = bool(first) and not is_number(first[0].split(",")[0].strip())
    df = pd.read_csv(path, header=0 if header else None, skipinitialspace=True)
    column = "time_s" if header and "time_s" in df.columns else df.columns[0]
    return pd.to_numeric(df[column], errors="raise").to_numpy(np.float64)
