"""The Parquet store with its DuckDB catalog: partition files, versions, views, queries."""


import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dlc_tracking.errors import WarehouseError
from dlc_tracking.tracking.summaries import summarize_tracking
from dlc_tracking.warehouse.arrow import (
    _KEY,
    _TABLE,
    _check_key,
    _check_partition_values,
    _check_table_name,
    _conform,
    _free_arrow,
    _is_text,
    _to_arrow,
)
from dlc_tracking.warehouse.files import (
    VISIBILITY_DELAY_S,
    _atomic_write_bytes,
    _fsync_dir,
    _fsync_file,
    _is_lock_error,
    _sql_str,
    _versions,
)
from dlc_tracking.warehouse.packs import (
    SQL_PACK_FILE,
    is_pack_key,
    pack_sources,
    remove_from_packs,
)
from dlc_tracking.warehouse.tables import (
    FILE_VIEW_DESCRIPTION,
    FILE_VIEWS,
    MACROS,
    SUMMARY_VIEWS,
    TABLES,
    TableSpec,
    _with_dependencies,
)

ENV_ROOT = "DLC_PLATFORM_WAREHOUSE"
"""Environment variable holding the warehouse root (default ``demo/warehouse``)."""
DEFAULT_ROOT = "demo/warehouse"
DB_NAME = "warehouse.duckdb"
CATALOG_FILE = "warehouse.catalog.json"
SCHEMA_KEY = "_schema"
"""Key of a table's zero-row schema file."""
ALL_KEY = "all"
"""Key of an unpartitioned table's file."""
CATALOG_VERSION = 2
"""Bump when the catalog SQL changes shape, so existing DB files are rebuilt."""
GRACE_S = 60.0
"""Superseded versions are deleted once their successor is this old."""

_SQL_KEY = r"([A-Za-z0-9_][A-Za-z0-9_.-]*)@[0-9]{20}-[0-9a-f]{8}\.parquet$"
_SQL_NS = r"@([0-9]{20})-[0-9a-f]{8}\.parquet$"
_SQL_NAME = r"[^/\\]+$"
_FILE_COLUMN = "_warehouse_file"
_LOCK_WAIT_S = 10.0
_QUERY_ATTEMPTS = 4
_TEMP_MAX_AGE_NS = 3600 * 10**9
_COMPRESSED_FLOATS = frozenset({"time_s"})  # regular, repeated per body part: compresses
_LAST_TABLE_COLLECT: dict[str, float] = {}  # table folder -> time.monotonic() of its last GC


# ----------------------------------------------------------------------------- summaries


_SUMMARY_GROUP = ("model_name", "method_name", "params_name")


def _tracking_summaries(data: pa.Table, key: str, tracking_file: str,
                        arena_width_cm: float | None, arena_height_cm: float | None,
                        ) -> pd.DataFrame:
    """``recording_summaries`` rows of a validated processed_tracking partition."""
    def numpy(name: str, rows: np.ndarray | None) -> np.ndarray:
        column = data.column(name)
        if column.null_count and pa.types.is_boolean(column.type):
            column = pc.fill_null(column, False)
        values = column.to_numpy()  # NULL -> NaN in float columns
        return values if rows is None else values[rows]

    ids = {c: data.column(c) for c in (*_SUMMARY_GROUP, "params_hash")}
    constant = all(len(pc.unique(ids[c])) <= 1 for c in _SUMMARY_GROUP)
    if constant or data.num_rows == 0:
        groups: list[np.ndarray | None] = [None]
    else:
        frame = pd.DataFrame({c: ids[c].to_pandas() for c in _SUMMARY_GROUP})
        groups = list(frame.groupby(list(_SUMMARY_GROUP), sort=True, observed=True)
                      .indices.values())
    rows = []
    for index in groups:
        first = 0 if index is None else int(index[0])
        rows.append({
            "recording_id": key,
            **{c: ids[c][first].as_py() if data.num_rows else "" for c in ids},
            "tracking_file": tracking_file,
            **summarize_tracking(*(numpy(c, index) for c in (
                "frame", "time_s", "x_cm", "y_cm", "speed_cm_s", "interpolated")),
                arena_width_cm=arena_width_cm, arena_height_cm=arena_height_cm),
        })
    return pd.DataFrame(rows, columns=TABLES["recording_summaries"].column_names)


# ----------------------------------------------------------------------------- the store


def default_root() -> Path:
    """Warehouse root from ``$DLC_PLATFORM_WAREHOUSE``, else ``demo/warehouse``."""
    return Path(os.environ.get(ENV_ROOT) or DEFAULT_ROOT).absolute()


class Warehouse:
    """Parquet tables under ``root/tables`` and a DuckDB catalog ``root/warehouse.duckdb``.

    Parameters
    ----------
    root : pathlib.Path
        Warehouse folder (created on first write).
    compression : str, default "snappy"
        Parquet codec of text, integer, boolean, timestamp and ``time_s`` columns
        ("snappy", "lz4", "zstd", "none").
    float_compression : str, default "none"
        Codec of the other floating-point columns (positions, likelihoods, speeds...).
        Their low bits are noise: snappy saves < 0.1 % on them and zstd ~7 %, while
        compressing them costs 10-25 % of the write time.
    compression_level : int, optional
        Codec level (e.g. 1 for zstd).
    grace_s : float, default 60
        Superseded file versions are deleted once their successor is this old.
    """

    def __init__(self, root: str | os.PathLike[str], compression: str = "snappy",
                 float_compression: str = "none", compression_level: int | None = None,
                 grace_s: float = GRACE_S) -> None:
        self.root = Path(root).absolute()
        self.compression = compression
        self.float_compression = float_compression
        self.compression_level = compression_level
        self.grace_s = grace_s
        self._schema_checked: set[str] = set()

    def __repr__(self) -> str:
        return f"Warehouse({str(self.root)!r})"

    # ---------------------------------------------------------------- paths

    @property
    def tables_dir(self) -> Path:
        """``root/tables``."""
        return self.root / "tables"

    @property
    def db_path(self) -> Path:
        """``root/warehouse.duckdb``."""
        return self.root / DB_NAME

    def table_dir(self, table: str) -> Path:
        """Folder of one table."""
        _check_table_name(table)
        return self.tables_dir / table

    def partition_path(self, table: str, key: str) -> Path | None:
        """The current file of a partition (``<key>@<version>.parquet``), None if absent."""
        _check_key(key, table)
        versions = _versions(self.table_dir(table), key).get(key)
        return versions[-1].path if versions else None

    # ---------------------------------------------------------------- partitions

    def write_partition(self, table: str, key: str, df: pd.DataFrame | pa.Table) -> Path:
        """Write (or replace) one partition of a partitioned table, atomically.

        Parameters
        ----------
        table : str
            A partitioned table of :data:`TABLES`.
        key : str
            Partition key (recording id): letters, digits, ``_ . -``, starting with a
            letter or digit.
        df : pandas.DataFrame or pyarrow.Table
            Exactly the table's columns (any order); values are cast to the stored types,
            NaN becomes NULL. Every row's ``recording_id`` must equal ``key``.

        Returns
        -------
        pathlib.Path
            The new file. Earlier versions stay readable until ``grace_s`` has passed.

        Raises
        ------
        WarehouseError
            Unknown table, bad key, missing/extra columns, values that do not fit.
        """
        if table == "processed_tracking":
            return self.write_processed_tracking(key, df)[0]
        data = self._partition_arrow(table, key, df)
        self._ensure_schema_file(TABLES[table])
        return self._publish(data, table, key)

    def _partition_arrow(self, table: str, key: str, df: pd.DataFrame | pa.Table) -> pa.Table:
        """A partition validated and converted (see :meth:`write_partition`)."""
        spec = self._spec(table)
        if not spec.partitioned:
            raise WarehouseError(f"table {table!r} is not partitioned; use write_table().")
        _check_key(key, table)
        where = f"{table} partition {key!r}"
        data = _to_arrow(spec, df, where)
        if spec.partition_column is not None:
            _check_partition_values(data.column(spec.partition_column), key, where,
                                    spec.partition_column)
        return data

    def write_processed_tracking(self, key: str, df: pd.DataFrame | pa.Table,
                                 arena_width_cm: float | None | str = "recordings",
                                 arena_height_cm: float | None | str = "recordings",
                                 ) -> tuple[Path, Path]:
        """Write a ``processed_tracking`` partition and its ``recording_summaries`` row(s).

        The summary (:func:`summarize_tracking`, one row per model x method x parameter
        set) is computed from the validated frames before anything is published. Then the
        frames are published, then the summary, stamped with the frames' file name
        (``tracking_file``). ``recording_summary`` shows a summary only while that file is
        the partition's current one, so it never shows figures of other frames: if the
        second write fails (or a reader comes between the two), the recording is left out
        of ``recording_summary`` (not shown with stale figures) until
        :meth:`backfill_summaries` or a new write; ``recording_summary_from_frames`` and
        :meth:`missing_summaries` still see it.

        Parameters
        ----------
        key : str
            Recording id.
        df : pandas.DataFrame or pyarrow.Table
            The partition (see :meth:`write_partition`).
        arena_width_cm, arena_height_cm : float or None, default "recordings"
            Arena size for ``coverage``; by default the recording's ``recordings`` row
            (None when it has none, as in ``recording_summary_from_frames``).

        Returns
        -------
        tuple of pathlib.Path
            The frames file and the summary file.
        """
        data = self._partition_arrow("processed_tracking", key, df)
        if isinstance(arena_width_cm, str) or isinstance(arena_height_cm, str):
            width, height = self._arena_size(key)
            arena_width_cm = width if isinstance(arena_width_cm, str) else arena_width_cm
            arena_height_cm = height if isinstance(arena_height_cm, str) else arena_height_cm
        placeholder = "-"
        summary = self._partition_arrow(
            "recording_summaries", key,
            _tracking_summaries(data, key, placeholder, arena_width_cm, arena_height_cm))
        for spec in (TABLES["processed_tracking"], TABLES["recording_summaries"]):
            self._ensure_schema_file(spec)
        path = self._publish(data, "processed_tracking", key)
        index = summary.schema.get_field_index("tracking_file")
        summary = summary.set_column(
            index, pa.field("tracking_file", pa.string(), nullable=False),
            pa.array([path.name] * summary.num_rows, pa.string()))
        return path, self._publish(summary, "recording_summaries", key)

    def _arena_size(self, key: str) -> tuple[float | None, float | None]:
        """The arena width and height of a recording's ``recordings`` row (None if absent)."""
        path = self.partition_path("recordings", key)
        if path is None:
            return None, None
        row = pq.read_table(path, columns=["arena_width_cm", "arena_height_cm"]).to_pylist()
        return (row[0]["arena_width_cm"], row[0]["arena_height_cm"]) if row else (None, None)

    def missing_summaries(self) -> list[str]:
        """``processed_tracking`` partitions whose current file has no summary.

        Written before summaries existed, or whose summary write failed: they are absent
        from ``recording_summary`` until :meth:`backfill_summaries`.
        """
        frames = _versions(self.table_dir("processed_tracking"))
        summaries = _versions(self.table_dir("recording_summaries"))
        missing = []
        for key, versions in sorted(frames.items()):
            if key == SCHEMA_KEY or is_pack_key(key):
                continue  # a packed recording's summary is packed with it (packs.py)
            current = summaries.get(key)
            named = set()
            if current:
                try:
                    named = set(pq.read_table(current[-1].path, columns=["tracking_file"])
                                .column(0).to_pylist())
                except (OSError, KeyError, pa.ArrowException):
                    named = set()  # unreadable, or deleted since listed: write it again
            if versions[-1].path.name not in named:
                missing.append(key)
        return missing

    def backfill_summaries(self, keys: Sequence[str] | None = None) -> list[str]:
        """Write the summary of each ``processed_tracking`` partition that has none.

        One-shot after an upgrade (partitions written before ``recording_summaries``
        existed), or after a failed summary write. Reads each partition's current file
        and the arena size of its ``recordings`` row. Also available as ``python -m
        dlc_tracking.warehouse backfill-summaries [ROOT]``.

        Parameters
        ----------
        keys : sequence of str, optional
            Only these partitions (default: :meth:`missing_summaries`).

        Returns
        -------
        list of str
            The partitions summarized.
        """
        done = []
        for key in (self.missing_summaries() if keys is None else keys):
            path = self.partition_path("processed_tracking", key)
            if path is None:
                continue
            data = _conform(pq.read_table(path), TABLES["processed_tracking"])
            summary = _tracking_summaries(data, key, path.name, *self._arena_size(key))
            self._ensure_schema_file(TABLES["recording_summaries"])
            self._publish(self._partition_arrow("recording_summaries", key, summary),
                          "recording_summaries", key)
            done.append(key)
        return done

    def read_partition(self, table: str, key: str) -> pd.DataFrame:
        """Read the current version of one partition (the table's columns and types).

        Raises
        ------
        WarehouseError
            The partition does not exist.
        """
        spec = self._spec(table)
        path = self.partition_path(table, key)
        if path is None and key in self.pack_index(table):
            return _conform(self._packed_rows(table, key), spec).to_pandas()
        if path is None:
            raise WarehouseError(
                f"{self.table_dir(table)}: no partition {key!r} in table {table!r}; "
                f"materialize it first ({len(self.partitions(table))} partitions present).")
        return _conform(pq.read_table(path), spec).to_pandas()

    def delete_partition(self, table: str, key: str) -> bool:
        """Remove every version of one partition; True when it existed.

        Deleting a ``processed_tracking`` partition deletes its ``recording_summaries`` too.
        """
        _check_key(key, table)
        if table == "processed_tracking":
            self.delete_partition("recording_summaries", key)
        folder = self.table_dir(table)
        packed = False
        if key in self.pack_index(table):
            # Out of its pack first (its own file still hides the pack's rows meanwhile).
            packed = remove_from_packs(self, table, [key])
        versions = _versions(folder, key).get(key, [])
        for version in versions:
            version.path.unlink(missing_ok=True)
        if versions:
            _fsync_dir(folder)
        return bool(versions) or packed

    def partitions(self, table: str) -> list[str]:
        """Partition keys present for a table, sorted."""
        partitioned = table in TABLES and TABLES[table].partitioned
        keys = set(_versions(self.table_dir(table))) | set(self.pack_index(table))
        return sorted(k for k in keys if _KEY.match(k) and (partitioned or k != ALL_KEY))

    # ---------------------------------------------------------------- packs

    def pack_index(self, table: str) -> dict[str, Path]:
        """Packed recordings of a table: ``recording id -> current pack file``.

        Only recordings without a file of their own (which would win, see ``packs.py``).
        """
        for attempt in range(3):
            versions = _versions(self.table_dir(table))
            index: dict[str, Path] = {}
            try:
                for key in sorted(k for k in versions if is_pack_key(k)):
                    current = versions[key][-1]
                    for rid in pack_sources(current.file):
                        if rid not in versions:
                            index[rid] = current.path
                return index
            except FileNotFoundError:  # replaced by a newer version since listed: again
                if attempt == 2:
                    raise
        return {}  # pragma: no cover

    def _packed_rows(self, table: str, key: str) -> pa.Table:
        """The rows of one packed recording (its pack's row groups for that id)."""
        spec = self._spec(table)
        column = spec.partition_column or "recording_id"
        return pq.read_table(self.pack_index(table)[key], filters=[(column, "=", key)])

    # ---------------------------------------------------------------- whole tables

    def write_table(self, name: str, df: pd.DataFrame | pa.Table) -> Path:
        """Write (replace) an unpartitioned table (key ``all``).

        Tables of :data:`TABLES` are validated and cast like partitions; any other name
        (e.g. the registry tables) takes the DataFrame's own columns and types.
        """
        _check_table_name(name)
        where = f"table {name!r}"
        if name in TABLES:
            spec = TABLES[name]
            if spec.partitioned:
                raise WarehouseError(f"table {name!r} is partitioned by "
                                     f"{spec.partition_column}; use write_partition().")
            data = _to_arrow(spec, df, where)
            self._ensure_schema_file(spec)
            return self._publish(data, name, ALL_KEY)
        data = _free_arrow(df, where)
        schema = pa.schema([f.with_nullable(True) for f in data.schema])
        current = _versions(self.table_dir(name), SCHEMA_KEY).get(SCHEMA_KEY)
        if not current or not pq.read_schema(current[-1].path).equals(schema):
            self._publish(schema.empty_table(), name, SCHEMA_KEY)
        return self._publish(data, name, ALL_KEY)

    def read_table(self, name: str) -> pd.DataFrame:
        """A whole table as a DataFrame (all partitions, for partitioned tables).

        Raises
        ------
        WarehouseError
            A table that is neither in :data:`TABLES` nor written yet.
        """
        spec = TABLES.get(name)
        current = {k: v[-1].path for k, v in _versions(self.table_dir(name)).items()}
        if spec is not None and spec.partitioned:
            own = {k for k in current if k != SCHEMA_KEY and not is_pack_key(k)}
            parts = [_conform(pq.read_table(current[k]), spec) for k in sorted(own)]
            column = spec.partition_column or "recording_id"
            for key in sorted(k for k in current if is_pack_key(k)):
                packed = pq.read_table(current[key])
                keep = pc.invert(pc.is_in(packed.column(column),
                                          pa.array(sorted(own), pa.string())))
                parts.append(_conform(packed.filter(keep), spec))
            return (pa.concat_tables(parts) if parts else spec.schema.empty_table()).to_pandas()
        path = current.get(ALL_KEY)
        if path is not None:
            data = pq.read_table(path)
            return (_conform(data, spec) if spec else data).to_pandas()
        if spec is not None:
            return spec.schema.empty_table().to_pandas()
        if SCHEMA_KEY in current:
            return pq.read_table(current[SCHEMA_KEY]).to_pandas()
        raise WarehouseError(f"{self.table_dir(name)}: table {name!r} has not been written "
                             "yet; materialize the registry assets first.")

    def tables(self) -> list[str]:
        """Tables that have a view: every table of :data:`TABLES` plus written others."""
        names = set(TABLES)
        if self.tables_dir.is_dir():
            for d in self.tables_dir.iterdir():
                if d.is_dir() and _TABLE.match(d.name) and _versions(d, SCHEMA_KEY):
                    names.add(d.name)
        return sorted(names)

    def collect_garbage(self, table: str | None = None) -> int:
        """Delete superseded versions (successor older than ``grace_s``) and stale temp files.

        Returns
        -------
        int
            Number of files deleted.
        """
        names = [table] if table is not None else self.tables()
        return sum(self._collect(self.table_dir(name)) for name in names)

    # ---------------------------------------------------------------- catalog

    def catalog_sql(self) -> list[str]:
        """Statements defining the catalog in ``warehouse.duckdb``.

        Each view globs its table folder at query time and keeps, per key, the newest
        version published at least ``VISIBILITY_DELAY_S`` before the query began (the
        oldest when none is that old). A version published while a query binds is never
        chosen, so a query sees each partition whole, from one file, and never a file
        that changed under it.
        """
        delay_ns = int(VISIBILITY_DELAY_S * 1e9)

        def current(glob: str) -> str:  # (key, file): the file each key reads now
            return (f"SELECT key, coalesce(max(file) FILTER (WHERE ns <= "
                    f"epoch_ns(current_timestamp) - {delay_ns}), min(file)) AS file FROM ("
                    f"SELECT file, regexp_extract(file, {_sql_str(_SQL_KEY)}, 1) AS key, "
                    f"CAST(regexp_extract(file, {_sql_str(_SQL_NS)}, 1) AS HUGEINT) AS ns "
                    f"FROM glob({glob}) WHERE regexp_matches(file, {_sql_str(_SQL_NS)})"
                    ") GROUP BY key")

        pack = _sql_str(SQL_PACK_FILE)

        def own_keys(glob: str) -> str:  # recordings with a file of their own: packs yield
            return (f"SELECT key FROM ({current(glob)}) WHERE NOT starts_with(key, '_') "
                    f"AND key <> {_sql_str(ALL_KEY)}")

        statements = []
        for name in self.tables():
            glob = _sql_str(str(self.tables_dir / name / "*.parquet"))
            spec = TABLES.get(name)
            packed = ""
            if spec is not None and spec.partitioned and spec.partition_column:
                packed = (f" AND (NOT regexp_matches({_FILE_COLUMN}, {pack}) OR "
                          f'"{spec.partition_column}" NOT IN ({own_keys(glob)}))')
            statements.append(
                f'CREATE OR REPLACE VIEW "{name}" AS SELECT * EXCLUDE ({_FILE_COLUMN}) '
                f"FROM read_parquet({glob}, union_by_name = true, "
                f"filename = '{_FILE_COLUMN}') "
                f"WHERE {_FILE_COLUMN} IN (SELECT file FROM ({current(glob)})){packed}")
        for view, table in FILE_VIEWS.items():
            glob = _sql_str(str(self.tables_dir / table / "*.parquet"))
            # `_*.parquet` (the schema file and the packs) is never an empty glob.
            underscored = _sql_str(str(self.tables_dir / table / "_*.parquet"))
            statements.append(
                f'CREATE OR REPLACE VIEW "{view}" AS SELECT key AS recording_id, '
                f"regexp_extract(file, {_sql_str(_SQL_NAME)}) AS tracking_file "
                f"FROM ({current(glob)}) WHERE key <> {_sql_str(SCHEMA_KEY)} "
                f"AND NOT regexp_matches(file, {pack}) UNION ALL "
                f"SELECT DISTINCT recording_id, regexp_extract({_FILE_COLUMN}, "
                f"{_sql_str(_SQL_KEY)}, 1) AS tracking_file FROM read_parquet({underscored}, "
                f"union_by_name = true, filename = '{_FILE_COLUMN}') "
                f"WHERE {_FILE_COLUMN} IN (SELECT file FROM ({current(glob)})) "
                f"AND regexp_matches({_FILE_COLUMN}, {pack}) "
                f"AND recording_id NOT IN ({own_keys(glob)})")
        statements.extend(self._derived_sql())
        return statements

    def snapshot_sql(self, names: set[str] | None = None) -> list[str]:
        """Statements defining the same catalog over the files current right now.

        Used by :meth:`memory_connection`: the views list the current file of every key,
        so they see a write the moment it returns.

        Parameters
        ----------
        names : set of str, optional
            Only these tables, summary views and macros (and what they depend on).
        """
        wanted = None if names is None else _with_dependencies(names)
        statements = []
        for name in self.tables():
            if wanted is not None and name not in wanted:
                continue
            current = sorted((v[-1] for v in _versions(self.table_dir(name)).values()),
                             key=lambda v: (v.key != SCHEMA_KEY, v.key))
            listed = ", ".join(_sql_str(v.file) for v in current)
            # Files of one column layout (the usual case) need no union by name, which
            # would read every footer once more when the view is made.
            union = len({v.columns for v in current}) > 1
            spec = TABLES.get(name)
            if any(is_pack_key(v.key) for v in current) and spec and spec.partition_column:
                own = ", ".join(_sql_str(v.key) for v in current
                                if not v.key.startswith("_") and v.key != ALL_KEY)
                hide = (f' OR "{spec.partition_column}" NOT IN ({own})' if own else
                        " OR true")
                statements.append(
                    f'CREATE OR REPLACE VIEW "{name}" AS SELECT * EXCLUDE ({_FILE_COLUMN}) '
                    f"FROM read_parquet([{listed}], union_by_name = {str(union).lower()}, "
                    f"filename = '{_FILE_COLUMN}') WHERE (NOT regexp_matches("
                    f"{_FILE_COLUMN}, {_sql_str(SQL_PACK_FILE)}){hide})")
                continue
            statements.append(f'CREATE OR REPLACE VIEW "{name}" AS SELECT * FROM '
                              f"read_parquet([{listed}], union_by_name = {str(union).lower()})")
        for view, table in FILE_VIEWS.items():
            if wanted is not None and view not in wanted:
                continue
            versions = _versions(self.table_dir(table))
            current_files = {k: v[-1].path.name for k, v in versions.items()
                             if k != SCHEMA_KEY and not is_pack_key(k)}
            rows = ", ".join(f"({_sql_str(k)}, {_sql_str(v)})"
                             for k, v in sorted(current_files.items()))
            source = (f"(VALUES {rows}) AS t(recording_id, tracking_file)" if rows else
                      "(SELECT NULL::VARCHAR AS recording_id, NULL::VARCHAR AS tracking_file "
                      "WHERE false)")
            packs = [v[-1].file for k, v in versions.items() if is_pack_key(k)]
            if packs:  # packed recordings (rule 3 of packs.py): read from the packs, not listed
                own = (f" WHERE recording_id NOT IN "
                       f"({', '.join(_sql_str(k) for k in sorted(current_files))})"
                       if current_files else "")
                source = (f"(SELECT * FROM {source} UNION ALL SELECT DISTINCT recording_id, "
                          f"regexp_extract({_FILE_COLUMN}, {_sql_str(_SQL_KEY)}, 1) FROM "
                          f"read_parquet([{', '.join(_sql_str(f) for f in packs)}], "
                          f"filename = '{_FILE_COLUMN}'){own})")
            statements.append(f'CREATE OR REPLACE VIEW "{view}" AS SELECT * FROM {source}')
        statements.extend(self._derived_sql(wanted))
        return statements

    @staticmethod
    def _derived_sql(wanted: set[str] | None = None) -> list[str]:
        statements = [f'CREATE OR REPLACE VIEW "{name}" AS {select.strip()}'
                      for name, (_, select) in SUMMARY_VIEWS.items()
                      if wanted is None or name in wanted]
        return statements + [sql for name, (_, sql) in MACROS.items()
                             if wanted is None or name in wanted]

    def ensure_catalog(self) -> bool:
        """Create or update the views in ``warehouse.duckdb`` when their definitions changed.

        Also writes missing or outdated ``_schema`` files and collects garbage. Cheap when
        nothing changed (compares a hash kept in ``warehouse.catalog.json``). Opens the DB
        for writing only to change it; when another process holds the file (an analyst's
        read-only connection, another writer), leaves it: the views glob the folders at
        query time, so they stay correct unless a new table appeared.

        Returns
        -------
        bool
            True when the DB file holds the current definitions, False when it was busy.
        """
        self.tables_dir.mkdir(parents=True, exist_ok=True)
        for spec in TABLES.values():
            self._ensure_schema_file(spec, check_content=True)
        self.collect_garbage()
        statements = self.catalog_sql()
        digest = hashlib.sha256(
            json.dumps([CATALOG_VERSION, statements]).encode()).hexdigest()
        if self.db_path.is_file() and self._stored_digest() == digest:
            return True
        try:
            con = duckdb.connect(str(self.db_path))
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            if _is_lock_error(exc):
                return False
            raise
        try:
            con.execute("BEGIN TRANSACTION")
            wanted = set(self.tables()) | set(SUMMARY_VIEWS) | set(FILE_VIEWS)
            views = con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal "
                                "AND schema_name = 'main'").fetchall()
            for (view,) in views:
                if view not in wanted:
                    con.execute(f'DROP VIEW IF EXISTS "{view}"')
            for statement in statements:
                con.execute(statement)
            self._comment_columns(con)
            con.execute("CREATE OR REPLACE TABLE _catalog AS SELECT ? AS digest, "
                        "? AS version, now() AS updated_at", [digest, CATALOG_VERSION])
            con.execute("COMMIT")
            con.execute("CHECKPOINT")
        finally:
            con.close()
        _atomic_write_bytes(self.root / CATALOG_FILE, json.dumps(
            {"version": CATALOG_VERSION, "digest": digest, "db": DB_NAME,
             "views": sorted(set(self.tables()) | set(SUMMARY_VIEWS) | set(FILE_VIEWS)),
             "macros": sorted(MACROS)}, indent=2).encode())
        return True

    def _stored_digest(self) -> str | None:
        try:
            return json.loads((self.root / CATALOG_FILE).read_text()).get("digest")
        except (OSError, ValueError, AttributeError):
            return None

    @staticmethod
    def _comment_columns(con: duckdb.DuckDBPyConnection) -> None:
        """Table and column descriptions as DuckDB comments (see ``duckdb_columns()``)."""
        for spec in TABLES.values():
            con.execute(f'COMMENT ON VIEW "{spec.name}" IS {_sql_str(spec.description)}')
            for col in spec.columns:
                text = col.description + (f" [{col.unit}]" if col.unit else "")
                con.execute(f'COMMENT ON COLUMN "{spec.name}"."{col.name}" IS {_sql_str(text)}')
        for name, (description, _) in SUMMARY_VIEWS.items():
            con.execute(f'COMMENT ON VIEW "{name}" IS {_sql_str(description)}')
        for name in FILE_VIEWS:
            con.execute(f'COMMENT ON VIEW "{name}" IS {_sql_str(FILE_VIEW_DESCRIPTION)}')

    def connect(self, read_only: bool = True) -> duckdb.DuckDBPyConnection:
        """Open ``warehouse.duckdb`` (read-only by default), creating the catalog first.

        A read-only connection never blocks writers of the Parquet files; while it is open,
        :meth:`ensure_catalog` leaves the DB alone. Waits up to 10 s while another process
        updates the catalog.

        Raises
        ------
        WarehouseError
            The DB stays locked by another process.
        """
        self.ensure_catalog()
        deadline = time.monotonic() + _LOCK_WAIT_S
        while True:
            try:
                return duckdb.connect(str(self.db_path), read_only=read_only)
            except (duckdb.IOException, duckdb.ConnectionException) as exc:
                if not _is_lock_error(exc) or time.monotonic() > deadline:
                    raise WarehouseError(
                        f"{self.db_path}: cannot open the warehouse DB ({exc}). Close the "
                        "process holding it for writing, or use query(), which does not "
                        "open the file.") from exc
                time.sleep(0.1)

    def memory_connection(self, names: set[str] | None = None) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with the catalog's views over the current files.

        Never opens ``warehouse.duckdb``, so it neither blocks nor waits for anyone. Its
        views list the files current when it was made: make a new one to see later writes.

        Parameters
        ----------
        names : set of str, optional
            Create only these views/macros (and their dependencies); default all.
        """
        self.tables_dir.mkdir(parents=True, exist_ok=True)
        for spec in TABLES.values():
            self._ensure_schema_file(spec)
        con = duckdb.connect(":memory:")
        for statement in self.snapshot_sql(names):
            con.execute(statement)
        return con

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None,
              ) -> pd.DataFrame:
        """Run SQL over the warehouse views and return a DataFrame.

        Runs on an in-memory DuckDB over the files current at the call (see
        :meth:`memory_connection`): sees every write that returned before it, and is safe
        while pipelines write and analysts hold the DB file. Retried a few times when a
        partition is deleted under it.
        """
        known = set(self.tables()) | set(SUMMARY_VIEWS) | set(MACROS) | set(FILE_VIEWS)
        words = {w.lower() for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", sql)}
        for attempt in range(_QUERY_ATTEMPTS):
            con = self.memory_connection(known & words)
            try:
                result = con.execute(sql, params) if params is not None else con.sql(sql)
                return result.df()
            except duckdb.CatalogException as exc:
                raise _not_yet_written(exc, words) from exc
            except duckdb.IOException as exc:  # a file deleted since it was listed
                if attempt == _QUERY_ATTEMPTS - 1 or "No such file" not in str(exc):
                    raise
                time.sleep(0.05 * (attempt + 1))
            finally:
                con.close()
        raise AssertionError("unreachable")  # pragma: no cover

    # ---------------------------------------------------------------- internals

    def _spec(self, table: str) -> TableSpec:
        _check_table_name(table)
        spec = TABLES.get(table)
        if spec is None:
            raise WarehouseError(f"unknown table {table!r}; partitioned tables are "
                                 f"{sorted(t for t, s in TABLES.items() if s.partitioned)}.")
        return spec

    def _ensure_schema_file(self, spec: TableSpec, check_content: bool = False) -> None:
        """Publish the ``_schema`` file when missing (or, if asked, outdated)."""
        if spec.name in self._schema_checked and not check_content:
            return
        current = _versions(self.table_dir(spec.name), SCHEMA_KEY).get(SCHEMA_KEY)
        if not current or (check_content
                           and not pq.read_schema(current[-1].path).equals(spec.schema)):
            self._publish(spec.schema.empty_table(), spec.name, SCHEMA_KEY)
        self._schema_checked.add(spec.name)

    def _publish(self, data: pa.Table, table: str, key: str) -> Path:
        """Write a new immutable version of ``key``: temp file, fsync, rename, fsync dir.

        Files are never changed once published (DuckDB reads a file's footer and its data
        through separate opens, so a file replaced in place can be read half old, half
        new). Superseded versions are deleted after ``grace_s``.
        """
        folder = self.table_dir(table)
        folder.mkdir(parents=True, exist_ok=True)
        names = "\x00".join(data.column_names).encode()
        tag = hashlib.sha1(names, usedforsecurity=False).hexdigest()[:4] + uuid.uuid4().hex[:4]
        tmp = folder / f".{key}.{os.getpid()}.{tag}.tmp"
        text = [f.name for f in data.schema if _is_text(f.type)]
        # Row-group statistics where they are cheap and prune well (frame ranges, flags);
        # on text they cost more than they save (one file per recording already).
        stats = [f.name for f in data.schema
                 if not (pa.types.is_floating(f.type) or _is_text(f.type))]
        compression = {f.name: (self.float_compression if pa.types.is_floating(f.type)
                                and f.name not in _COMPRESSED_FLOATS else self.compression)
                       for f in data.schema}
        # Integers (frame numbers: steps of 0 or 1) delta-encoded: 50x smaller than plain
        # and no slower; regular floats (time_s) byte-stream-split, which their codec then
        # shrinks 5x more, twice as fast as on plain values. The other floats stay plain
        # and uncompressed: their low bits are noise.
        encoding = {f.name: "DELTA_BINARY_PACKED" for f in data.schema
                    if pa.types.is_integer(f.type)}
        encoding.update({f.name: "BYTE_STREAM_SPLIT" for f in data.schema
                         if f.name in _COMPRESSED_FLOATS and pa.types.is_floating(f.type)})
        try:
            pq.write_table(data, str(tmp), compression=compression or self.compression,
                           compression_level=self.compression_level,
                           use_dictionary=text or False, write_statistics=stats or False,
                           column_encoding=encoding or None)
            _fsync_file(tmp)
            path = folder / f"{key}@{time.time_ns():020d}-{tag}.parquet"
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(folder)
        # This key at every write; the whole table now and then (a cheap listing).
        last = _LAST_TABLE_COLLECT.get(str(folder), 0.0)
        full = time.monotonic() - last > self.grace_s / 2
        if full:
            _LAST_TABLE_COLLECT[str(folder)] = time.monotonic()
        self._collect(folder, None if full else key)
        return path

    def _collect(self, folder: Path, key: str | None = None) -> int:
        """Garbage of one table folder, or of one key (see :meth:`collect_garbage`)."""
        now = time.time_ns()
        grace_ns = int(self.grace_s * 1e9)
        removed = 0
        for versions in _versions(folder, key).values():
            for old, successor in zip(versions, versions[1:], strict=False):
                if now - successor.ns >= grace_ns:
                    old.path.unlink(missing_ok=True)
                    removed += 1
        if key is not None:
            return removed
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return removed
        for entry in entries:
            if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                try:
                    if now - entry.stat().st_mtime_ns > _TEMP_MAX_AGE_NS:
                        os.unlink(entry.path)
                        removed += 1
                except FileNotFoundError:
                    pass
        return removed


# ----------------------------------------------------------------------------- helpers


def connect(root: str | os.PathLike[str] | None = None, read_only: bool = True,
            ) -> duckdb.DuckDBPyConnection:
    """Open the warehouse DB (read-only by default); root defaults to :func:`default_root`."""
    return Warehouse(Path(root) if root is not None else default_root()).connect(read_only)


def _not_yet_written(exc: Exception, words: set[str]) -> Exception:
    """A clear message for a known table that has no data yet (its asset never ran)."""
    from dlc_tracking.warehouse.tables import REGISTRY_TABLES

    missing = sorted(w for w in words if w in REGISTRY_TABLES or w in TABLES)
    if "does not exist" not in str(exc) or not missing:
        return exc
    registry = [w for w in missing if w in REGISTRY_TABLES]
    if registry:
        return WarehouseError(
            f"table {registry[0]!r} has no data yet: the registry tables appear once the "
            "registry assets are materialized (the registry sensor does it within a minute of "
            "`dagster dev` starting, or materialize the 'registry' group in the UI).")
    return WarehouseError(
        f"table {missing[0]!r} has no data yet: it appears once a recording has been "
        "processed (see `dlc-platform status`).")


def query(sql: str, root: str | os.PathLike[str] | None = None,
          params: Sequence[Any] | dict[str, Any] | None = None) -> pd.DataFrame:
    """Run SQL over the warehouse views; root defaults to :func:`default_root`.

    Examples
    --------
    >>> from dlc_tracking.warehouse import query
    >>> query("SELECT * FROM recording_summary")  # doctest: +SKIP
    """
    return Warehouse(Path(root) if root is not None else default_root()).query(sql, params)


