"""A recording's whole life on disk and in the warehouse: an empty video that will never
settle, a session folder deleted from disk, and removing a recording's rows and files.

- :func:`empty_videos`: a video of 0 bytes that has stayed so past the settle time is an
  error ("empty video"), not a copy still in progress: the sensor would otherwise wait for
  it forever and ``status`` would say nothing.
- :func:`gone_from_disk`: recordings the warehouse or the instance knows whose session
  folder is no longer under the data root.
- :func:`remove_recording`: every warehouse row of a recording (all partitioned tables,
  and the kept versions ``<recording>__<model>`` of the model_* tables), its NWB file and
  its labeled video. The Dagster partition is the caller's (the CLI) to delete.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

__all__ = ["EMPTY_VIDEO", "GONE_FROM_DISK", "Removal", "empty_videos", "gone_from_disk",
           "recording_files_for_users", "remove_recording"]

EMPTY_VIDEO = "empty video"
"""The status of a recording whose video stays 0 bytes past the settle time."""
GONE_FROM_DISK = "gone from disk"
"""The status of a recording whose session folder is no longer under the data root."""


def empty_videos(recordings, settle_s: float, now_s: float | None = None) -> dict[str, str]:
    """Recordings whose video is 0 bytes and has not changed for ``settle_s`` seconds.

    Parameters
    ----------
    recordings : iterable of dlc_tracking.sessions.layout.Recording
        Recordings found on disk.
    settle_s : float
        The sensor's settle time (``DLC_PLATFORM_SETTLE_SECONDS``).
    now_s : float, optional
        Now (epoch seconds); default the clock.

    Returns
    -------
    dict[str, str]
        recording id -> the message for ``status`` (the file, since when, what to do).
    """
    now_s = time.time() if now_s is None else now_s
    found = {}
    for rec in recordings:
        if not rec.has_video:
            continue
        try:
            st = os.stat(rec.video_path)
        except OSError:
            continue
        if st.st_size == 0 and now_s - st.st_mtime >= settle_s:
            since = datetime.fromtimestamp(st.st_mtime).strftime("%Y-%m-%d %H:%M")
            found[rec.recording_id] = (
                f"{EMPTY_VIDEO}: {rec.video_path} is 0 bytes (unchanged since {since}, longer "
                f"than the settle time of {settle_s:g} s), so it is not a copy in progress. "
                "Copy the video again (the sensor then processes it), or remove the file "
                "(with DLC outputs in its dlc_<video stem>/ folder the recording is ingested "
                "without it).")
    return found


def gone_from_disk(known: list[str], on_disk: list[str]) -> list[str]:
    """Known recording ids (warehouse or instance) whose session is not on disk any more."""
    present = set(on_disk)
    return sorted(rid for rid in set(known) if rid not in present)


def recording_files_for_users(warehouse_root: Path, recording_id: str) -> list[Path]:
    """The files the platform wrote for a recording outside the tables: its NWB file and
    its labeled video (the nwb_files and labeled_videos assets' paths)."""
    root = Path(warehouse_root)
    return [root / "nwb" / f"{recording_id}.nwb",
            root / "labeled_videos" / f"{recording_id}.mp4"]


@dataclass
class Removal:
    """What :func:`remove_recording` removed (or would remove, on a dry run).

    Attributes
    ----------
    partitions : dict[str, list[str]]
        table -> partition keys (the recording id, or ``<id>__<model>`` versions).
    files : list[pathlib.Path]
        NWB file and labeled video.
    """

    partitions: dict[str, list[str]] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    @property
    def n_partitions(self) -> int:
        return sum(len(v) for v in self.partitions.values())

    def describe(self) -> str:
        tables = ", ".join(f"{t} ({len(k)})" if len(k) > 1 else t
                           for t, k in sorted(self.partitions.items())) or "no table rows"
        files = ", ".join(str(f) for f in self.files) or "no files"
        return f"rows of {tables}; files: {files}"


def remove_recording(store, recording_id: str, *, dry_run: bool = False) -> Removal:
    """Remove a recording's rows from every warehouse table, its NWB file and labeled video.

    Parameters
    ----------
    store : dlc_tracking.warehouse.Warehouse
        The warehouse.
    recording_id : str
        The recording.
    dry_run : bool
        Only say what would be removed.

    Returns
    -------
    Removal
        What was (or would be) removed.
    """
    from dlc_tracking.warehouse import TABLES

    removal = Removal()
    version_prefix = f"{recording_id}__"
    for name, spec in sorted(TABLES.items()):
        if not spec.partitioned:
            continue
        keys = [k for k in store.partitions(name)
                if k == recording_id or (k.startswith(version_prefix)
                                         and "__" not in k[len(version_prefix):])]
        if keys:
            removal.partitions[name] = keys
    removal.files = [f for f in recording_files_for_users(store.root, recording_id)
                     if f.exists()]
    if dry_run:
        return removal
    for table, keys in removal.partitions.items():
        for key in keys:
            store.delete_partition(table, key)
    for path in removal.files:
        path.unlink(missing_ok=True)
    return removal
