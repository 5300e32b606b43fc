"""The warehouse: a Parquet store with a DuckDB catalog of views over it.

Layout under the warehouse root::

    tables/<table>/<key>@<version>.parquet   one immutable file per partition version
                                             (key = recording id; ``all`` for the
                                             unpartitioned registry tables)
    tables/<table>/_schema@<version>.parquet zero rows: the table's schema
    warehouse.duckdb                         views (+ macros) over tables/*/*.parquet
    warehouse.catalog.json                   hash of the view definitions in the DB

``<version>`` is ``<publication time in ns, 20 digits>-<4 hex column fingerprint><4 hex
random>``: names sort by time.

Why: several Dagster runs write at once (one per recording) while analysts read, and
DuckDB admits one writing process per database file, which open readers block. So writers
only ever write Parquet files and never open the DuckDB file; its views glob the folders
at query time, so new partitions show up without touching the DB.

Files are published atomically (hidden temporary file in the same folder, fsync,
``os.replace`` onto a new name) and never changed afterwards: DuckDB reads a file's footer
and its data through separate opens, so a file replaced in place under a running query is
read half old, half new (wrong numbers, not only errors). Re-writing a partition publishes
a new version; views pick the newest version of each key, so a re-materialized recording
replaces exactly its rows. Superseded versions are deleted after :data:`GRACE_S`.

:meth:`Warehouse.ensure_catalog` opens the DB for writing only when the view definitions
changed, and leaves it alone when another process holds it. :meth:`Warehouse.query` runs
on an in-memory DuckDB whose views list the current files, and never touches the DB file.

Table schemas live in :data:`TABLES` (pyarrow types, units, descriptions);
``docs/warehouse.md`` is generated from them by :func:`tables_markdown`.
"""

from dlc_tracking.errors import WarehouseError
from dlc_tracking.tracking.summaries import COVERAGE_BIN_CM, summarize_tracking
from dlc_tracking.warehouse.arrow import insert_constant_columns
from dlc_tracking.warehouse.docs import tables_markdown, write_docs
from dlc_tracking.warehouse.store import (
    DB_NAME,
    ENV_ROOT,
    Warehouse,
    connect,
    default_root,
    query,
)
from dlc_tracking.warehouse.tables import (
    FILE_VIEWS,
    MACROS,
    REGISTRY_TABLES,
    SUMMARY_VIEWS,
    TABLES,
    Column,
    TableSpec,
)

__all__ = [
    "COVERAGE_BIN_CM",
    "DB_NAME",
    "ENV_ROOT",
    "FILE_VIEWS",
    "MACROS",
    "REGISTRY_TABLES",
    "SUMMARY_VIEWS",
    "TABLES",
    "Column",
    "TableSpec",
    "Warehouse",
    "WarehouseError",
    "connect",
    "default_root",
    "insert_constant_columns",
    "query",
    "summarize_tracking",
    "tables_markdown",
    "write_docs",
]
