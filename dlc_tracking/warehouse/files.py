"""Durable, atomic file writes (fsync, rename) and SQL text quoting."""


import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

# ----------------------------------------------------------------------------- files

VISIBILITY_DELAY_S = 0.5
"""A new version of an existing partition shows in the DB file's views this long after
it was published (new partitions show at once); covers the time between a query's start
and its listing of the files."""
_VERSIONED = re.compile(r"^(?P<key>[A-Za-z0-9_][A-Za-z0-9_.-]*)@(?P<ns>[0-9]{20})-"
                        r"(?P<tag>[0-9a-f]{8})\.parquet$")



def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    """Make a rename durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write_bytes(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text or "different configuration" in text


def _sql_str(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class FileVersion:
    """One immutable Parquet file of a table: ``<key>@<ns>-<tag>.parquet``.

    Attributes
    ----------
    file : str
        The file's path.
    key : str
        Partition key, ``all`` (unpartitioned table) or ``_schema``.
    ns : int
        Publication time (ns since the epoch), taken just before the rename.
    columns : str
        Fingerprint of the column names (4 hex), the first half of the file's tag.
    """

    file: str
    key: str
    ns: int
    columns: str = ""

    @property
    def path(self) -> Path:
        """The file as a Path."""
        return Path(self.file)


def _versions(folder: Path, key: str | None = None) -> dict[str, list[FileVersion]]:
    """Published files of a table folder (of one key, if given), per key, oldest first."""
    found: dict[str, list[FileVersion]] = {}
    prefix = f"{key}@" if key is not None else ""
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return found
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        match = _VERSIONED.match(entry.name)
        if match:
            found.setdefault(match["key"], []).append(FileVersion(
                entry.path, match["key"], int(match["ns"]), match["tag"][:4]))
    for versions in found.values():
        versions.sort(key=lambda v: v.file)
    return found
