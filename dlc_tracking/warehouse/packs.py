"""Packs: many recordings' rows of one table in one Parquet file (archive scale).

A pack is a versioned key of its table folder like any partition,
``tables/<table>/_pack<ns>x<i>@<version>.parquet``, holding the rows of up to a few
thousand finished recordings, sorted by recording id, with row-group statistics on the
recording id (a point query reads one row group). Its footer lists the per-recording files
it was made from (``dlc_platform.pack_sources``: one ``<recording id>\\t<file name>`` per
line). Written by :mod:`dlc_tracking.warehouse.compaction` (and rewritten here without
the recordings a delete takes out); read by the store and by the views in
``warehouse.duckdb``, which follow three rules:

1. a recording that has its own current file reads that file: a re-materialized
   recording replaces exactly its rows, compacted or not;
2. a recording is in at most one current pack (compaction rewrites an older pack without
   the recordings it packs again);
3. a packed recording's ``processed_tracking_files.tracking_file`` is its pack's key, and
   the ``recording_summaries`` pack rows name that key, so ``recording_summary`` keeps them.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dlc_tracking.warehouse.files import VISIBILITY_DELAY_S, _fsync_dir, _fsync_file, _versions
from dlc_tracking.warehouse.tables import TABLES

PACK_PREFIX = "_pack"
SOURCES_KEY = b"dlc_platform.pack_sources"
SQL_PACK_FILE = r"/_pack[0-9x]+@[0-9]{20}-[0-9a-f]{8}\.parquet$"
"""Regular expression matching a pack file's path (DuckDB's regexp_matches)."""
_PACK_KEY = re.compile(r"^_pack[0-9]{20}x[0-9]{3}$")


def is_pack_key(key: str) -> bool:
    """Whether a table folder key is a pack (not a recording, ``all`` or ``_schema``)."""
    return bool(_PACK_KEY.match(key))


def pack_key(ns: int, index: int) -> str:
    """The key of the ``index``-th pack made by the compaction pass of time ``ns``."""
    return f"{PACK_PREFIX}{ns:020d}x{index:03d}"


def encode_sources(sources: dict[str, str]) -> bytes:
    """Footer value listing ``recording id -> source file name``."""
    return "\n".join(f"{k}\t{v}" for k, v in sorted(sources.items())).encode()


@functools.lru_cache(maxsize=8192)
def pack_sources(path: str) -> dict[str, str]:
    """``recording id -> file name it was packed from`` of a pack file.

    Cached by path: a published file never changes, and its name is never reused.
    """
    metadata = pq.read_schema(path).metadata or {}
    text = metadata.get(SOURCES_KEY, b"").decode()
    return dict(line.split("\t", 1) for line in text.splitlines() if "\t" in line)


# ------------------------------------------------- writing packs (compaction, deletes)

LOCK_FILE = ".compaction.lock"
ROW_GROUP_ROWS = 64 * 1024
"""Row groups of packs: a point query reads the few whose recording-id range holds it."""


@contextlib.contextmanager
def compaction_lock(store) -> Iterator[None]:
    """One compaction (or packed delete) at a time per warehouse (``flock``)."""
    store.tables_dir.mkdir(parents=True, exist_ok=True)
    with open(store.tables_dir / LOCK_FILE, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _publish_pack(store, table: str, key: str, data: pa.Table,
                  sources: dict[str, str]) -> Path:
    """Publish a pack version: sorted, row-group statistics on the recording id, footer
    listing its sources; temporary file, fsync, rename (as every warehouse file)."""
    folder = store.table_dir(table)
    column = TABLES[table].partition_column
    order = [(column, "ascending")] + [(c, "ascending") for c in ("model_name", "frame")
                                        if c in data.column_names]
    plain = pa.schema([f.with_type(f.type.value_type) if pa.types.is_dictionary(f.type) else f
                       for f in data.schema], metadata=data.schema.metadata)
    data = data.cast(plain)  # sort_by takes no dictionaries; written dictionary-encoded anyway
    if data.num_rows:
        data = data.sort_by(order)
    data = data.replace_schema_metadata({**(data.schema.metadata or {}),
                                         SOURCES_KEY: encode_sources(sources)})
    names = "\x00".join(data.column_names).encode()
    tag = hashlib.sha1(names, usedforsecurity=False).hexdigest()[:4] + uuid.uuid4().hex[:4]
    tmp = folder / f".{key}.{os.getpid()}.{tag}.tmp"
    stats = [f.name for f in data.schema if not pa.types.is_floating(f.type)]
    try:
        pq.write_table(data, str(tmp), compression="zstd", compression_level=1,
                       row_group_size=ROW_GROUP_ROWS, write_statistics=stats,
                       use_dictionary=True)
        _fsync_file(tmp)
        path = folder / f"{key}@{time.time_ns():020d}-{tag}.parquet"
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(folder)
    return path


def _rewrite_without(store, table: str, keys: set[str]) -> int:
    """Rewrite every current pack holding any of ``keys`` without them; count rewritten."""
    column = TABLES[table].partition_column
    count = 0
    for key, versions in _versions(store.table_dir(table)).items():
        if not is_pack_key(key):
            continue
        current = versions[-1]
        sources = pack_sources(current.file)
        drop = keys & sources.keys()
        if not drop:
            continue
        data = pq.read_table(current.path)
        keep = pc.invert(pc.is_in(data.column(column), pa.array(sorted(drop), pa.string())))
        _publish_pack(store, table, key, data.filter(keep),
                      {k: v for k, v in sources.items() if k not in drop})
        count += 1
    return count


def remove_from_packs(store, table: str, keys: Sequence[str]) -> bool:
    """Take recordings out of their packs (``Warehouse.delete_partition`` of a packed one).

    Waits the catalog's visibility delay afterwards, so the DB views no longer pick the
    old pack version once the caller deletes the recordings' own files.
    """
    with compaction_lock(store):
        count = _rewrite_without(store, table, set(keys))
    if count:
        time.sleep(VISIBILITY_DELAY_S + 0.1)
    return bool(count)
