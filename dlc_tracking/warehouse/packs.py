"""Packs: many recordings' rows of one table in one Parquet file (archive scale).

A pack is a versioned key of its table folder like any partition,
``tables/<table>/_pack<ns>x<i>@<version>.parquet``, holding the rows of up to a few
thousand finished recordings, sorted by recording id, with row-group statistics on the
recording id (a point query reads one row group). Its footer lists the per-recording files
it was made from (``dlc_platform.pack_sources``: one ``<recording id>\\t<file name>`` per
line). Written by :mod:`dlc_tracking.warehouse.compaction`; read by the store and by the
views in ``warehouse.duckdb``, which follow three rules:

1. a recording that has its own current file reads that file: a re-materialized
   recording replaces exactly its rows, compacted or not;
2. a recording is in at most one current pack (compaction rewrites an older pack without
   the recordings it packs again);
3. a packed recording's ``processed_tracking_files.tracking_file`` is its pack's key, and
   the ``recording_summaries`` pack rows name that key, so ``recording_summary`` keeps them.
"""

from __future__ import annotations

import functools
import re

import pyarrow.parquet as pq

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
