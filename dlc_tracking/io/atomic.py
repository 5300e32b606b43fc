"""Atomic writes of files made for users, with the permissions the umask gives.

Writers put a file under a hidden temporary name in the destination folder and rename it
when complete, so a folder watcher, a reader or a crash never sees half a file.
``tempfile.mkstemp`` creates that file with mode 0600 (private), which the rename would
keep: an export, an NWB file or a labeled video would then be unreadable by the lab's
other accounts, unlike every other file the platform writes. :func:`atomic_write` gives
the finished file the mode an ordinary ``open(path, "w")`` would (``0666 & ~umask``:
0644 under umask 022), or the mode of the file it replaces.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["atomic_write", "umask_file_mode"]

_UMASK_LOCK = threading.Lock()


def _process_umask() -> int:
    """The process umask, read without changing it where the system allows."""
    try:  # Linux: read-only, no window in which other threads see umask 0
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:  # elsewhere: set and restore at once
        umask = os.umask(0o022)
        os.umask(umask)
    return umask


def umask_file_mode() -> int:
    """Mode of a new regular file under the current umask (``0o666 & ~umask``)."""
    return 0o666 & ~_process_umask()


def atomic_write(out: str | os.PathLike, write: Callable[[Path], Any], *,
                 suffix: str | None = None) -> Path:
    """Call ``write(tmp)`` on a hidden temporary file next to ``out``, then rename it.

    Parameters
    ----------
    out : path
        The destination; its folder is created.
    write : callable
        Writes the complete file to the path it is given (the temporary file exists,
        empty, when called).
    suffix : str, optional
        End of the temporary name (default ``.tmp`` + ``out``'s suffix), for writers that
        choose a format by extension (OpenCV, netCDF).

    Returns
    -------
    pathlib.Path
        ``out``. Its mode is the replaced file's, else the umask's (0644 under umask 022),
        never mkstemp's private 0600.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{out.stem}.", dir=out.parent,
                                suffix=suffix if suffix is not None else f".tmp{out.suffix}")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        try:
            mode = out.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = umask_file_mode()
        os.chmod(tmp, mode)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out
