"""Compaction: finished recordings' small per-recording files merged into packs.

Each recording adds one small file to every table; a query opens every file of the tables
it reads, so the summary query grows ~1 ms per recording (seconds at a few thousand).
Compaction merges the current files of recordings that have not been written for
``min_age_s`` (finished) into packs of ``recordings_per_pack`` recordings (see
:mod:`dlc_tracking.warehouse.packs` for the format and the rules readers follow), so an
archive of 100,000 recordings is read from a few dozen files per table.

Safe while pipelines write and analysts read:

- nothing is changed in place: packs are published like partitions (temporary file,
  fsync, rename) as new versions; the files they were made from are deleted only on a
  later pass, once the pack is older than the warehouse's ``grace_s`` (a query that
  listed them has long finished);
- a recording written while a pass runs keeps its new file, which wins over its packed
  rows; the next pass packs it again and rewrites the older pack without it;
- a recording's ``processed_tracking`` and ``recording_summaries`` files are packed and
  removed together (the summary names its frames file: one without the other would hide
  the recording from ``recording_summary``);
- one pass at a time per warehouse (a lock file), and deleting a packed partition takes
  the same lock.

Run it from the ``warehouse_compaction_job`` job (schedule ``warehouse_compaction_hourly``), or
``python -m dlc_tracking.warehouse.compaction [ROOT]``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from dlc_tracking.warehouse.arrow import _conform
from dlc_tracking.warehouse.files import _fsync_dir, _versions
from dlc_tracking.warehouse.packs import (
    _publish_pack,
    _rewrite_without,
    compaction_lock,
    is_pack_key,
    pack_key,
    pack_sources,
    remove_from_packs,
)
from dlc_tracking.warehouse.store import Warehouse
from dlc_tracking.warehouse.tables import TABLES

log = logging.getLogger(__name__)

MIN_AGE_S = 600.0
"""A recording whose newest file in a table is younger than this is left alone."""
RECORDINGS_PER_PACK = 2000
_PAIRED = ("processed_tracking", "recording_summaries")


@dataclass
class CompactionReport:
    """What one pass did.

    Attributes
    ----------
    packed : dict
        Table -> recordings packed in this pass.
    rewritten : dict
        Table -> older packs rewritten without recordings packed again.
    removed_files : int
        Per-recording files deleted (packed by an earlier pass, past the grace time).
    seconds : float
        Wall time of the pass.
    """

    packed: dict[str, int] = field(default_factory=dict)
    rewritten: dict[str, int] = field(default_factory=dict)
    removed_files: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        """One line for logs."""
        packed = ", ".join(f"{t} {n}" for t, n in self.packed.items() if n) or "nothing"
        return (f"packed {packed}; {sum(self.rewritten.values())} older pack(s) rewritten; "
                f"{self.removed_files} packed file(s) removed; {self.seconds:.1f} s")


def _partitioned_tables(store: Warehouse, tables: Sequence[str] | None) -> list[str]:
    names = tables or [t for t in store.tables() if t in TABLES and TABLES[t].partitioned]
    return [t for t in names if TABLES[t].partition_column]


def _current_packs(versions: dict[str, list]) -> dict[str, tuple[str, int]]:
    """Packed recordings of a folder listing: id -> (file it was packed from, pack ns)."""
    out = {}
    for key, pack_versions in versions.items():
        if is_pack_key(key):
            current = pack_versions[-1]
            for rid, name in pack_sources(current.file).items():
                out[rid] = (name, current.ns)
    return out


def _finished(store: Warehouse, table: str, min_age_s: float, now_ns: int
              ) -> tuple[dict[str, Path], set[str]]:
    """Recordings whose current own file is older than ``min_age_s``: id -> file, and the
    ids among them whose file is already in a current pack (waiting for
    :func:`remove_packed_sources`: packing it again each pass would only churn)."""
    versions = _versions(store.table_dir(table))
    packed = _current_packs(versions)
    out, done = {}, set()
    for key, own in versions.items():
        if key.startswith("_") or not own:
            continue
        current = own[-1]
        if now_ns - current.ns >= min_age_s * 1e9:
            out[key] = current.path
            if packed.get(key, ("",))[0] == current.path.name:
                done.add(key)
    return out, done


def _consistent_pairs(frames: dict[str, Path], summaries: dict[str, Path]) -> set[str]:
    """Recordings whose current summary names their current frames file (packed together)."""
    keys = set()
    for key in frames.keys() & summaries.keys():
        try:
            named = set(pq.read_table(summaries[key], columns=["tracking_file"])
                        .column(0).to_pylist())
        except (OSError, pa.ArrowException):
            continue
        if frames[key].name in named:
            keys.add(key)
    return keys


def _read_sources(table: str, files: dict[str, Path], key: str) -> pa.Table:
    """The rows of ``files`` (recording id -> file) for pack ``key``; drops from ``files``
    the recordings whose file was removed meanwhile (a newer version superseded it: that
    version, the recording's own file, is what readers read)."""
    spec = TABLES[table]
    parts = []
    for rid in sorted(files):
        try:
            parts.append(_conform(pq.read_table(files[rid]), spec))
        except FileNotFoundError:
            del files[rid]
    data = pa.concat_tables(parts) if parts else spec.schema.empty_table()
    if table == "recording_summaries":  # rule 3 of packs.py: name the frames' pack
        index = data.schema.get_field_index("tracking_file")
        data = data.set_column(index, data.schema.field(index),
                               pa.array([key] * data.num_rows, pa.string()))
    return data


def _removable(versions: dict[str, list], now_ns: int, grace_ns: float) -> dict[str, list]:
    """Own files of a folder listing that a current pack older than the grace time was
    made from: id -> every version of that id (a newer file, written since, stays)."""
    out = {}
    for rid, (name, pack_ns) in _current_packs(versions).items():
        own = versions.get(rid, [])
        if own and own[-1].path.name == name and now_ns - pack_ns >= grace_ns:
            out[rid] = own
    return out


def remove_packed_sources(store: Warehouse, tables: Sequence[str] | None = None,
                          now_ns: int | None = None) -> int:
    """Delete own files that a current pack, older than ``grace_s``, was made from.

    ``processed_tracking`` and ``recording_summaries`` go together: a recording's own
    files leave both tables in the same pass or neither does. A summary names its frames
    file; if only one of the two left, the summary's own row would name a file that is no
    longer current (or its packed row a pack the frames are not read from) and
    ``recording_summary`` would hide the recording for good.
    """
    now_ns = time.time_ns() if now_ns is None else now_ns
    grace_ns = store.grace_s * 1e9
    names = _partitioned_tables(store, tables)
    listing = {t: _versions(store.table_dir(t)) for t in names}
    removable = {t: _removable(listing[t], now_ns, grace_ns) for t in names}
    if all(t in names for t in _PAIRED):
        for table, other in (_PAIRED, _PAIRED[::-1]):
            removable[table] = {rid: own for rid, own in removable[table].items()
                                if rid in removable[other] or not listing[other].get(rid)}
    removed = 0
    # Summaries first: for the moment between the two deletions the recording is left
    # out of recording_summary, as between the two writes of a new materialization.
    for table in sorted(names, key=lambda t: t != _PAIRED[1]):
        folder = store.table_dir(table)
        count = 0
        for key, pack_versions in listing[table].items():
            if is_pack_key(key) and not pack_sources(pack_versions[-1].file) and \
                    now_ns - pack_versions[-1].ns >= grace_ns:
                for version in pack_versions:  # emptied by rewrites: nothing reads it
                    version.path.unlink(missing_ok=True)
                    count += 1
        for own in removable[table].values():
            for version in own:
                version.path.unlink(missing_ok=True)
                count += 1
        if count:
            _fsync_dir(folder)
        removed += count
    return removed


def compact(store: Warehouse, tables: Sequence[str] | None = None,
            min_age_s: float = MIN_AGE_S, recordings_per_pack: int = RECORDINGS_PER_PACK,
            now_ns: int | None = None) -> CompactionReport:
    """One compaction pass over the partitioned tables (see the module docstring).

    Parameters
    ----------
    store : Warehouse
        The warehouse.
    tables : sequence of str, optional
        Only these partitioned tables (default: all).
    min_age_s : float, default 600
        Leave recordings written more recently than this (still being processed).
    recordings_per_pack : int, default 2000
        Recordings per pack file.
    now_ns : int, optional
        The time to judge ages by (tests); default now.

    Returns
    -------
    CompactionReport
    """
    started = time.monotonic()
    now_ns = time.time_ns() if now_ns is None else now_ns
    report = CompactionReport()
    names = _partitioned_tables(store, tables)
    with compaction_lock(store):
        report.removed_files = remove_packed_sources(store, names, now_ns)
        listed = {t: _finished(store, t, min_age_s, now_ns) for t in names}
        done = {t: listed[t][1] for t in names}
        if all(t in names for t in _PAIRED):
            # A pair is packed again unless both halves are already in packs (one half
            # packed alone, e.g. its file vanished while read, must not block the other).
            both = _consistent_pairs(*(listed[t][0] for t in _PAIRED))
            packed_pair = set.intersection(*(done[t] for t in _PAIRED))
            for t in _PAIRED:
                done[t] = packed_pair | (set(listed[t][0]) - both)
        finished = {t: {k: v for k, v in listed[t][0].items() if k not in done[t]}
                    for t in names}
        # The same recordings go to the same pack key in every table (rule 3).
        all_keys = sorted(set().union(*(f.keys() for f in finished.values())))
        groups = [all_keys[i:i + recordings_per_pack]
                  for i in range(0, len(all_keys), recordings_per_pack)]
        pass_ns = time.time_ns()
        for table in names:
            chosen = finished[table]
            report.packed[table] = len(chosen)
            if not chosen:
                continue
            report.rewritten[table] = _rewrite_without(store, table, set(chosen))
            for index, group in enumerate(groups):
                files = {k: chosen[k] for k in group if k in chosen}
                if not files:
                    continue
                key = pack_key(pass_ns, index)
                data = _read_sources(table, files, key)
                if files:
                    _publish_pack(store, table, key, data,
                                  {k: p.name for k, p in files.items()})
            log.info("%s: packed %d recording(s)", table, len(chosen))
    report.seconds = time.monotonic() - started
    return report


def file_counts(store: Warehouse) -> dict[str, int]:
    """Parquet files per table folder (all versions, schema file included)."""
    return {t: sum(1 for n in os.listdir(store.table_dir(t)) if n.endswith(".parquet"))
            for t in store.tables() if store.table_dir(t).is_dir()}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dlc_tracking.warehouse.compaction [ROOT] [--min-age-s S]``."""
    import argparse

    from dlc_tracking.warehouse.store import default_root

    parser = argparse.ArgumentParser(prog="python -m dlc_tracking.warehouse.compaction",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("root", nargs="?", help="warehouse root (default "
                        "$DLC_PLATFORM_WAREHOUSE or demo/warehouse)")
    parser.add_argument("--min-age-s", type=float, default=MIN_AGE_S)
    args = parser.parse_args(argv)
    store = Warehouse(Path(args.root) if args.root else default_root())
    report = compact(store, min_age_s=args.min_age_s)
    print(f"{store.root}: {report.summary()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["CompactionReport", "compact", "compaction_lock", "file_counts",
           "remove_from_packs", "remove_packed_sources"]
