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

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dlc_tracking.errors import DLCPlatformError
from dlc_tracking.summaries import COVERAGE_BIN_CM, summarize_tracking

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
    "query",
    "summarize_tracking",
    "tables_markdown",
    "write_docs",
]

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
VISIBILITY_DELAY_S = 0.5
"""A new version of an existing partition shows in the DB file's views this long after
it was published (new partitions show at once); covers the time between a query's start
and its listing of the files."""
GRACE_S = 60.0
"""Superseded versions are deleted once their successor is this old."""

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_TABLE = re.compile(r"^[a-z][a-z0-9_]*$")
_VERSIONED = re.compile(r"^(?P<key>[A-Za-z0-9_][A-Za-z0-9_.-]*)@(?P<ns>[0-9]{20})-"
                        r"(?P<tag>[0-9a-f]{8})\.parquet$")
_SQL_KEY = r"([A-Za-z0-9_][A-Za-z0-9_.-]*)@[0-9]{20}-[0-9a-f]{8}\.parquet$"
_SQL_NS = r"@([0-9]{20})-[0-9a-f]{8}\.parquet$"
_SQL_NAME = r"[^/\\]+$"
_FILE_COLUMN = "_warehouse_file"
_LOCK_WAIT_S = 10.0
_QUERY_ATTEMPTS = 4
_TEMP_MAX_AGE_NS = 3600 * 10**9
_COMPRESSED_FLOATS = frozenset({"time_s"})  # regular, repeated per body part: compresses
_LAST_TABLE_COLLECT: dict[str, float] = {}  # table folder -> time.monotonic() of its last GC


class WarehouseError(DLCPlatformError):
    """A table, partition or DataFrame does not fit the warehouse."""


# ----------------------------------------------------------------------------- schemas


@dataclass(frozen=True)
class Column:
    """One column of a warehouse table.

    Attributes
    ----------
    name : str
        Column name (carries its unit: ``x_cm``, ``time_s``...).
    type : pyarrow.DataType
        Stored type.
    description : str
        What the column holds (goes into ``docs/warehouse.md``).
    unit : str
        Unit, "" when none.
    nullable : bool
        Whether NULL is allowed (NaN in float columns is stored as NULL).
    allowed : tuple[str, ...] or None
        The only values allowed, for categorical text columns.
    """

    name: str
    type: pa.DataType
    description: str
    unit: str = ""
    nullable: bool = True
    allowed: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TableSpec:
    """A warehouse table: columns in order, and whether it is partitioned by recording.

    Attributes
    ----------
    name : str
        Table (and view) name.
    description : str
        What one row is.
    columns : tuple[Column, ...]
        Columns in stored order.
    partitioned : bool
        One Parquet file per partition key (the ``partition_column`` value).
    partition_column : str or None
        Column whose value every row of a partition must equal the partition key.
    """

    name: str
    description: str
    columns: tuple[Column, ...]
    partitioned: bool = True
    partition_column: str | None = "recording_id"

    @property
    def schema(self) -> pa.Schema:
        """The pyarrow schema (all fields nullable except declared NOT NULL ones)."""
        return pa.schema([pa.field(c.name, c.type, nullable=c.nullable)
                          for c in self.columns])

    @property
    def column_names(self) -> list[str]:
        """Column names in stored order."""
        return [c.name for c in self.columns]


_STR, _F64, _I64, _I32, _BOOL = pa.string(), pa.float64(), pa.int64(), pa.int32(), pa.bool_()
_TS = pa.timestamp("us", tz="UTC")


def _c(name: str, type_: pa.DataType, description: str, unit: str = "",
       nullable: bool = True, allowed: tuple[str, ...] | None = None) -> Column:
    return Column(name, type_, description, unit, nullable, allowed)


_RID = _c("recording_id", _STR, "Recording id `<subject>__<session>__<video stem>` "
          "(the Dagster partition key).", nullable=False)
_MODEL = _c("model_name", _STR, "Registered DLC model (registry name).", nullable=False)
_METHOD = _c("method_name", _STR, "State-vector method (registry name).", nullable=False)
_PARAMS_NAME = _c("params_name", _STR, "Processing parameter set (registry name).",
                  nullable=False)
_PARAMS_HASH = _c("params_hash", _STR, "Hash of the processing parameters (provenance).",
                  nullable=False)
_FRAME = _c("frame", _I64, "Video frame number, from 0.", nullable=False)
_TIME = _c("time_s", _F64, "Frame time from the recording start (timestamp file, or "
           "frame / fps).", "s")
_PART = _c("body_part", _STR, "Canonical body-part name (snake_case).", nullable=False)

TABLES: dict[str, TableSpec] = {t.name: t for t in [
    TableSpec("recordings", "One row per recording (a video of a session): video facts, "
              "session metadata, and its model + method assignment (the seed's RecordingDLC).",
              (_RID,
               _c("subject", _STR, "Subject (animal) id, from the session folder.", nullable=False),
               _c("session", _STR, "Session folder name.", nullable=False),
               _c("video_path", _STR, "Absolute path of the video file."),
               _c("video_file", _STR, "Video file name."),
               _c("tracking_type", _STR, "Kind of recording (openfield, wheel, ...)."),
               _c("start_time", _TS, "Recording start (time zone aware, stored as UTC)."),
               _c("n_frames", _I64, "Frames in the video.", "frames"),
               _c("fps", _F64, "Frame rate.", "Hz"),
               _c("width_px", _I32, "Frame width.", "px"),
               _c("height_px", _I32, "Frame height.", "px"),
               _c("duration_s", _F64, "Video duration.", "s"),
               _c("codec", _STR, "Video codec (FourCC / ffprobe name)."),
               _c("camera_view", _STR, "Camera position: 'above' the arena or 'below' it "
                  "(mirrored image)."),
               _c("pixels_per_cm", _F64, "Calibration from session.yaml; NULL when "
                  "calibrated from the arena size.", "px/cm"),
               _c("arena_shape", _STR, "Arena shape (rectangle, circle, ...)."),
               _c("arena_width_cm", _F64, "Arena width (x).", "cm"),
               _c("arena_height_cm", _F64, "Arena height (y, depth in the image).", "cm"),
               _c("has_timestamps", _BOOL, "Frame times come from a per-frame timestamp file."),
               _c("model_name", _STR, "Assigned DLC model (registry name); NULL when none "
                  "applies."),
               _c("method_name", _STR, "State-vector method (registry name); NULL when "
                  "skipped."),
               _c("session_yaml_sha", _STR, "SHA-256 of session.yaml (provenance)."),
               _c("state_vector_status", _STR, "'supported': state vectors are computed; "
                  "'skipped': predictions only (see status_reason).",
                  allowed=("supported", "skipped")),
               _c("status_reason", _STR, "Why the state vector is skipped; NULL when "
                  "supported."))),
    TableSpec("predictions", "Raw DLC predictions, one row per frame x body part (the seed's "
              "TrackingRaw.DLCPart). Image coordinates: origin top-left, y down.",
              (_RID, _MODEL, _FRAME, _TIME, _PART,
               _c("x_px", _F64, "x in the image (right); NULL = missing.", "px"),
               _c("y_px", _F64, "y in the image (down); NULL = missing.", "px"),
               _c("likelihood", _F64, "DLC likelihood in [0, 1]; NULL = missing."))),
    TableSpec("raw_state_vectors", "One subject state vector per frame (the seed's "
              "TrackingRaw.OpenField): position in image pixels (unflipped), head angle in "
              "the arena frame.",
              (_RID, _MODEL, _METHOD,
               _c("method_hash", _STR, "Hash of the method's parameters (provenance).",
                  nullable=False),
               _FRAME, _TIME,
               _c("x_px", _F64, "Position x in the image.", "px"),
               _c("y_px", _F64, "Position y in the image (down).", "px"),
               _c("head_angle_rad", _F64, "Head angle, arena frame, counter-clockwise from "
                  "+x, in [0, 2pi).", "rad"),
               _c("speed_px_s", _F64, "Speed of the position.", "px/s"),
               _c("valid", _BOOL, "All body parts the method needs were present."))),
    TableSpec("arena_boundaries", "Arena boundary in the image per recording x model x method "
              "(the seed's TrackingRaw.OpenField boundaries).",
              (_RID, _MODEL, _METHOD,
               _c("left_px", _F64, "Left boundary (image x).", "px"),
               _c("right_px", _F64, "Right boundary (image x).", "px"),
               _c("top_px", _F64, "Top boundary (image y).", "px"),
               _c("bottom_px", _F64, "Bottom boundary (image y).", "px"))),
    TableSpec("processed_tracking", "Processed tracking per frame (the seed's "
              "Tracking.OpenField): arena frame (x right, y up, origin at the boundary's "
              "lower-left corner), cm; jumps removed, short gaps interpolated, smoothed.",
              (_RID, _MODEL, _METHOD,
               _PARAMS_NAME, _PARAMS_HASH,
               _FRAME, _TIME,
               _c("x_cm", _F64, "Position x, arena frame.", "cm"),
               _c("y_cm", _F64, "Position y, arena frame (up).", "cm"),
               _c("speed_cm_s", _F64, "Speed.", "cm/s"),
               _c("head_direction_deg", _F64, "Head direction, counter-clockwise from +x, "
                  "[0, 360).", "deg"),
               _c("angular_head_velocity_deg_s", _F64, "Angular head velocity "
                  "(counter-clockwise positive).", "deg/s"),
               _c("movement_direction_deg", _F64, "Direction of movement, counter-clockwise "
                  "from +x, [0, 360).", "deg"),
               _c("interpolated", _BOOL, "Position was interpolated over a gap."))),
    TableSpec("recording_summaries", "One row per processed_tracking partition x model x "
              "method x parameter set: the figures of the recording_summary view, computed "
              "by summarize_tracking() from the frames when the partition is written.",
              (_RID, _MODEL, _METHOD,
               _PARAMS_NAME, _PARAMS_HASH,
               _c("tracking_file", _STR, "Name of the processed_tracking file (version) "
                  "these figures summarize; recording_summary shows the row only while that "
                  "file is the partition's current one.", nullable=False),
               _c("n_frames", _I64, "Frames (rows of processed_tracking).", "frames",
                  nullable=False),
               _c("duration_s", _F64, "Last minus first frame time.", "s"),
               _c("distance_cm", _F64, "Sum of the steps between consecutive frames where "
                  "both are tracked (gaps contribute nothing).", "cm"),
               _c("mean_speed_cm_s", _F64, "Mean of speed_cm_s over the frames that have "
                  "one.", "cm/s"),
               _c("tracked_fraction", _F64, "Share of frames with a position."),
               _c("interpolated_fraction", _F64, "Share of frames whose position was "
                  "interpolated."),
               _c("coverage_bin_cm", _F64, "Side of the square coverage bins.", "cm"),
               _c("arena_width_cm", _F64, "Arena width the coverage was computed with (the "
                  "recording's arena_width_cm at the time).", "cm"),
               _c("arena_height_cm", _F64, "Arena height the coverage was computed with.",
                  "cm"),
               _c("visited_bins", _I64, "Coverage bins holding at least one tracked frame "
                  "(positions outside the arena count in the nearest edge bin)."),
               _c("arena_bins", _I64, "Coverage bins of the arena: ceil(width / bin) x "
                  "ceil(height / bin); NULL when the arena size is unknown."),
               _c("coverage", _F64, "visited_bins / arena_bins; NULL when the arena size is "
                  "unknown."))),
    TableSpec("processed_body_parts", "Processed per-body-part positions (the seed's "
              "Tracking.DLCPart), arena frame, cm.",
              (_RID, _MODEL, _FRAME, _TIME, _PART,
               _c("x_cm", _F64, "x, arena frame.", "cm"),
               _c("y_cm", _F64, "y, arena frame (up).", "cm"))),
    TableSpec("skipped_recordings", "Recordings (or steps of them) deliberately not processed, "
              "with the reason.",
              (_RID,
               _c("asset", _STR, "The asset (step) that skipped the recording.",
                  nullable=False),
               _c("reason", _STR, "Why, in words.", nullable=False))),
]}
"""Strict tables: columns are validated and cast on write."""

REGISTRY_TABLES: dict[str, str] = {
    "models": "Registered DLC models (the seed's DLCModel): identity (task, date, iteration, "
              "shuffle, trainingsetindex, snapshotindex, engine), scorer, body parts.",
    "body_parts": "Canonical body-part vocabulary (the seed's TrackedBodyPart).",
    "tracking_types": "Kinds of recording and whether state vectors are supported.",
    "methods": "State-vector methods (the seed's DLCTrackingProcessingMethod): body parts "
               "needed, parameters, parameter hash.",
    "pairings": "Valid model x method pairings (the seed's DLCProcessingMethod).",
}
"""Unpartitioned tables whose columns the registry assets define (flexible schema)."""

_SUMMARY_COLUMNS = ("r.subject, r.session, s.recording_id, s.model_name, s.method_name, "
                    "s.params_name, s.n_frames, s.duration_s, s.distance_cm, "
                    "s.mean_speed_cm_s, s.tracked_fraction, s.interpolated_fraction, "
                    "s.coverage")

SUMMARY_VIEWS: dict[str, tuple[str, str]] = {
    "recording_summary": (
        "Per recording x model x method x parameter set: frames, duration_s, distance_cm "
        "(sum of steps between consecutive tracked frames), mean_speed_cm_s, "
        "tracked_fraction, interpolated_fraction, and coverage (share of the arena's "
        f"{COVERAGE_BIN_CM:g} cm x {COVERAGE_BIN_CM:g} cm bins visited); with subject and "
        "session. Reads the one-row-per-partition recording_summaries (milliseconds), "
        "keeping the rows that summarize the current processed_tracking file; a partition "
        "without one (written before summaries existed, or whose summary write failed) is "
        "left out until `python -m dlc_tracking.warehouse backfill-summaries` (or a "
        "re-materialization) writes it. Same numbers as recording_summary_from_frames.",
        f"""
SELECT {_SUMMARY_COLUMNS}
FROM recording_summaries s
JOIN processed_tracking_files f
    ON f.recording_id = s.recording_id AND f.tracking_file = s.tracking_file
LEFT JOIN recordings r ON r.recording_id = s.recording_id
WHERE s.n_frames > 0
"""),
    "recording_summary_from_frames": (
        "recording_summary recomputed from every frame of processed_tracking (a window "
        "function over all rows: seconds per 10 million frames). For checking the fast "
        "view, and for partitions that have no current summary yet. Coverage uses the "
        "arena size in recordings now (recording_summary: the one at processing time).",
        f"""
WITH steps AS (
    SELECT *,
        x_cm - lag(x_cm) OVER w AS dx_cm,
        y_cm - lag(y_cm) OVER w AS dy_cm
    FROM processed_tracking
    WINDOW w AS (PARTITION BY recording_id, model_name, method_name, params_name
                 ORDER BY frame)
), per AS (
    SELECT s.recording_id, s.model_name, s.method_name, s.params_name,
        count(*) AS n_frames,
        max(s.time_s) - min(s.time_s) AS duration_s,
        coalesce(sum(sqrt(s.dx_cm * s.dx_cm + s.dy_cm * s.dy_cm)), 0) AS distance_cm,
        avg(s.speed_cm_s) AS mean_speed_cm_s,
        avg(CASE WHEN s.x_cm IS NOT NULL AND s.y_cm IS NOT NULL THEN 1.0 ELSE 0.0 END)
            AS tracked_fraction,
        avg(CASE WHEN s.interpolated THEN 1.0 ELSE 0.0 END) AS interpolated_fraction,
        count(DISTINCT CASE WHEN s.x_cm IS NOT NULL AND s.y_cm IS NOT NULL
            AND r.arena_width_cm > 0 AND r.arena_height_cm > 0 THEN
            greatest(0, least(floor(s.x_cm / {COVERAGE_BIN_CM!r}),
                              ceil(r.arena_width_cm / {COVERAGE_BIN_CM!r}) - 1))::BIGINT
            * 1000000
            + greatest(0, least(floor(s.y_cm / {COVERAGE_BIN_CM!r}),
                                ceil(r.arena_height_cm / {COVERAGE_BIN_CM!r}) - 1))::BIGINT
            END) AS visited_bins,
        any_value(ceil(r.arena_width_cm / {COVERAGE_BIN_CM!r})
                  * ceil(r.arena_height_cm / {COVERAGE_BIN_CM!r})) AS arena_bins
    FROM steps s LEFT JOIN recordings r ON r.recording_id = s.recording_id
    GROUP BY s.recording_id, s.model_name, s.method_name, s.params_name
)
SELECT r.subject, r.session, p.recording_id, p.model_name, p.method_name, p.params_name,
    p.n_frames, p.duration_s, p.distance_cm, p.mean_speed_cm_s, p.tracked_fraction,
    p.interpolated_fraction,
    CAST(p.visited_bins AS DOUBLE) / nullif(p.arena_bins, 0) AS coverage
FROM per p LEFT JOIN recordings r ON r.recording_id = p.recording_id
"""),
    "prediction_quality": (
        "Per recording x model x body part, from predictions: frames, missing_fraction, "
        "mean_likelihood, low_likelihood_fraction (likelihood < 0.9 or missing).",
        """
SELECT recording_id, model_name, body_part,
    count(*) AS n_frames,
    avg(CASE WHEN x_px IS NULL OR y_px IS NULL THEN 1.0 ELSE 0.0 END) AS missing_fraction,
    avg(likelihood) AS mean_likelihood,
    avg(CASE WHEN likelihood IS NULL OR likelihood < 0.9 THEN 1.0 ELSE 0.0 END)
        AS low_likelihood_fraction
FROM predictions
GROUP BY recording_id, model_name, body_part
"""),
}
"""Views derived from the tables: name -> (description, SELECT)."""

MACROS: dict[str, tuple[str, str]] = {
    "tracking": (
        "`tracking(rec)`: processed tracking of one recording, ordered by frame.",
        "CREATE OR REPLACE MACRO tracking(rec) AS TABLE "
        "SELECT * FROM processed_tracking WHERE recording_id = rec ORDER BY model_name, "
        "method_name, params_name, frame"),
    "body_part_track": (
        "`body_part_track(rec, part)`: raw predictions of one body part of one recording, "
        "ordered by frame.",
        "CREATE OR REPLACE MACRO body_part_track(rec, part) AS TABLE "
        "SELECT * FROM predictions WHERE recording_id = rec AND body_part = part "
        "ORDER BY model_name, frame"),
}
"""Table macros: name -> (description, CREATE statement)."""

FILE_VIEWS: dict[str, str] = {"processed_tracking_files": "processed_tracking"}
"""Views listing the current file of each partition of a table: view -> table."""
FILE_VIEW_DESCRIPTION = ("The file each processed_tracking partition reads now "
                         "(recording_id, tracking_file); recording_summary keeps the summaries "
                         "of these files.")

_DEPENDS: dict[str, tuple[str, ...]] = {
    "recording_summary": ("recording_summaries", "processed_tracking_files", "recordings"),
    "recording_summary_from_frames": ("processed_tracking", "recordings"),
    "prediction_quality": ("predictions",),
    "tracking": ("processed_tracking",),
    "body_part_track": ("predictions",),
}


def _with_dependencies(names: set[str]) -> set[str]:
    """Names plus the tables their summary views and macros read."""
    return set(names).union(*(_DEPENDS.get(n, ()) for n in names))


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
            if key == SCHEMA_KEY:
                continue
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
        versions = _versions(folder, key).get(key, [])
        for version in versions:
            version.path.unlink(missing_ok=True)
        if versions:
            _fsync_dir(folder)
        return bool(versions)

    def partitions(self, table: str) -> list[str]:
        """Partition keys present for a table, sorted."""
        partitioned = table in TABLES and TABLES[table].partitioned
        keys = _versions(self.table_dir(table))
        return sorted(k for k in keys if _KEY.match(k) and (partitioned or k != ALL_KEY))

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
            parts = [_conform(pq.read_table(current[k]), spec) for k in sorted(current)
                     if k != SCHEMA_KEY]
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

        statements = []
        for name in self.tables():
            glob = _sql_str(str(self.tables_dir / name / "*.parquet"))
            statements.append(
                f'CREATE OR REPLACE VIEW "{name}" AS SELECT * EXCLUDE ({_FILE_COLUMN}) '
                f"FROM read_parquet({glob}, union_by_name = true, "
                f"filename = '{_FILE_COLUMN}') "
                f"WHERE {_FILE_COLUMN} IN (SELECT file FROM ({current(glob)}))")
        for view, table in FILE_VIEWS.items():
            glob = _sql_str(str(self.tables_dir / table / "*.parquet"))
            statements.append(
                f'CREATE OR REPLACE VIEW "{view}" AS SELECT key AS recording_id, '
                f"regexp_extract(file, {_sql_str(_SQL_NAME)}) AS tracking_file "
                f"FROM ({current(glob)}) WHERE key <> {_sql_str(SCHEMA_KEY)}")
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
            statements.append(f'CREATE OR REPLACE VIEW "{name}" AS SELECT * FROM '
                              f"read_parquet([{listed}], union_by_name = {str(union).lower()})")
        for view, table in FILE_VIEWS.items():
            if wanted is not None and view not in wanted:
                continue
            rows = ", ".join(f"({_sql_str(k)}, {_sql_str(v[-1].path.name)})"
                             for k, v in sorted(_versions(self.table_dir(table)).items())
                             if k != SCHEMA_KEY)
            source = (f"(VALUES {rows}) AS t(recording_id, tracking_file)" if rows else
                      "(SELECT NULL::VARCHAR AS recording_id, NULL::VARCHAR AS tracking_file "
                      "WHERE false)")
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


# ----------------------------------------------------------------------------- conversion


def insert_constant_columns(df: pd.DataFrame, columns: Sequence[tuple[str, str]]) -> None:
    """Insert text columns holding one value each at the front of ``df``, in order.

    They are categoricals with one category, so a partition write stores them as a
    one-entry dictionary without comparing every row (an hour of frames is 180,000 rows).
    """
    codes = np.zeros(len(df), dtype=np.int8)
    for i, (name, value) in enumerate(columns):
        df.insert(i, name, pd.Categorical.from_codes(codes, categories=[value]))


def _check_table_name(name: str) -> None:
    if not isinstance(name, str) or not _TABLE.match(name):
        raise WarehouseError(f"invalid table name {name!r}: use lower-case letters, digits "
                             "and '_', starting with a letter.")


def _check_key(key: str, table: str) -> None:
    if not isinstance(key, str) or not _KEY.match(key):
        raise WarehouseError(
            f"invalid partition key {key!r} for table {table!r}: use letters, digits, '_', "
            "'.' and '-', starting with a letter or digit (no '/', spaces or commas).")


def _is_text(t: pa.DataType) -> bool:
    return (pa.types.is_string(t) or pa.types.is_large_string(t)
            or (pa.types.is_dictionary(t) and _is_text(t.value_type)))


def _to_arrow(spec: TableSpec, df: pd.DataFrame | pa.Table, where: str) -> pa.Table:
    """Validate columns against ``spec`` and cast them; NaN becomes NULL.

    Columns without NULLs are stored as required (Parquet REQUIRED), which writes faster;
    readers see the table's schema either way.
    """
    if isinstance(df, pa.Table):
        names = df.column_names
    elif isinstance(df, pd.DataFrame):
        names = [str(c) for c in df.columns]
    else:
        raise WarehouseError(f"{where}: expected a pandas DataFrame or pyarrow Table, got "
                             f"{type(df).__name__}.")
    duplicated = sorted({n for n in names if names.count(n) > 1})
    missing = [c for c in spec.column_names if c not in names]
    extra = [c for c in names if c not in spec.column_names]
    if duplicated or missing or extra:
        detail = "; ".join(f"{label} {cols}" for label, cols in (
            ("missing columns", missing), ("unexpected columns", extra),
            ("duplicated columns", duplicated)) if cols)
        raise WarehouseError(f"{where}: columns do not match the table schema: {detail}. "
                             f"Expected exactly {spec.column_names}.")
    arrays, fields = [], []
    for col in spec.columns:
        values = df.column(col.name) if isinstance(df, pa.Table) else df[col.name]
        try:
            arr = _column_array(values, col.type)
        except (pa.ArrowException, ValueError, TypeError, OverflowError) as exc:
            raise WarehouseError(
                f"{where}: column {col.name!r} cannot be stored as {col.type}: {exc}") from exc
        if arr.null_count and not col.nullable:
            raise WarehouseError(f"{where}: column {col.name!r} has {arr.null_count} missing "
                                 "value(s) but may not be NULL.")
        if col.allowed is not None:
            _check_allowed(arr, col, where)
        arrays.append(arr)
        fields.append(pa.field(col.name, arr.type, nullable=arr.null_count > 0))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _column_array(values: pd.Series | pa.ChunkedArray, target: pa.DataType) -> pa.Array:
    """One column as an Array of ``target`` (text may stay dictionary-encoded)."""
    if isinstance(values, pa.ChunkedArray):
        arr = values.combine_chunks()
    elif isinstance(values.dtype, pd.CategoricalDtype):
        arr = _from_categorical(values)
    elif pa.types.is_string(target) and values.dtype == object:
        arr = _text_from_objects(values.to_numpy())
    elif values.dtype.kind == "f" and isinstance(values.dtype, np.dtype):
        arr = _from_floats(values.to_numpy())
    else:
        arr = pa.array(values, from_pandas=True)  # NaN -> NULL
    if isinstance(values, pa.ChunkedArray) and pa.types.is_floating(arr.type):
        arr = _nan_to_null(arr)
    if pa.types.is_dictionary(arr.type) and not pa.types.is_dictionary(target):
        if _is_text(arr.type) and pa.types.is_string(target):
            return arr  # stays dictionary-encoded: Parquet stores it as such anyway
        arr = arr.dictionary_decode()
    if pa.types.is_timestamp(target):
        return _timestamps(arr, target)
    if arr.type != target and not pa.types.is_null(arr.type) and not _castable(arr.type, target):
        raise TypeError(f"got {arr.type} values; give the column {target} values")
    if arr.type != target:
        if pa.types.is_null(arr.type):
            return pa.nulls(len(arr), target)
        arr = arr.cast(target)
        if pa.types.is_floating(target):
            arr = _nan_to_null(arr)
    return arr


def _castable(source: pa.DataType, target: pa.DataType) -> bool:
    """Casts done silently: between numbers (checked for loss) and between text types."""
    numeric = (pa.types.is_integer, pa.types.is_floating)
    if any(f(target) for f in numeric):
        return any(f(source) for f in numeric)
    if _is_text(target):
        return _is_text(source)
    return False


def _nan_to_null(arr: pa.Array) -> pa.Array:
    """NaN -> NULL in a float array (a no-op without NaN)."""
    values = arr.to_numpy(zero_copy_only=False)
    nan = np.isnan(values)
    if not nan.any():
        return arr
    if arr.null_count:
        nan |= arr.is_null().to_numpy(zero_copy_only=False)
    return pa.array(values, type=arr.type, mask=nan)


def _from_floats(values: np.ndarray) -> pa.Array:
    """A float array over the numpy buffer (no copy without NaN); NaN -> NULL."""
    nan = np.isnan(values)
    return pa.array(values, mask=nan) if nan.any() else pa.array(values)


def _from_categorical(values: pd.Series) -> pa.Array:
    """A pandas Categorical as a DictionaryArray over its codes (no copy); -1 -> NULL."""
    codes = np.ascontiguousarray(values.array.codes)
    if len(values.cat.categories) == 0:
        return pa.nulls(len(codes))  # all missing
    dictionary = pa.array(values.cat.categories.to_numpy(), from_pandas=True)
    if len(codes) and not -1 <= codes.min() <= codes.max() < len(dictionary):
        raise ValueError("categorical codes out of range")
    if len(codes) and codes.min() < 0:
        indices = pa.array(codes, mask=codes < 0)
    else:  # the codes' buffer as it is (pa.array copies small integer types)
        indices = pa.Array.from_buffers(pa.from_numpy_dtype(codes.dtype), len(codes),
                                        [None, pa.py_buffer(codes)])
    return pa.DictionaryArray.from_arrays(indices, dictionary, safe=False)  # checked above


def _smallest_indices(codes: np.ndarray, n_values: int) -> np.ndarray:
    """Dictionary indices in the smallest integer type (Parquet encodes int8 ones faster)."""
    for dtype in (np.int8, np.int16, np.int32):
        if n_values <= np.iinfo(dtype).max:
            return codes.astype(dtype, copy=False)
    raise ValueError(f"{n_values} distinct values: too many for a dictionary")


def _text_from_objects(values: np.ndarray) -> pa.Array:
    """Text column from an object array; constant or low-cardinality -> dictionary."""
    n = len(values)
    if n == 0:
        return pa.array([], type=pa.string())
    first = values[0]
    if isinstance(first, str) and bool((values == first).all()):
        zeros = np.zeros(n, dtype=np.int8)
        return pa.DictionaryArray.from_arrays(
            pa.Array.from_buffers(pa.int8(), n, [None, pa.py_buffer(zeros)]),
            pa.array([first], type=pa.string()), safe=False)
    if n >= 1000:
        codes, uniques = pd.factorize(values)
        if len(uniques) * 4 <= n:
            if not all(isinstance(u, str) for u in uniques):
                bad = next(u for u in uniques if not isinstance(u, str))
                raise TypeError(f"expected text, found {type(bad).__name__} {bad!r}")
            indices = pa.array(_smallest_indices(codes, len(uniques)), mask=codes < 0)
            return pa.DictionaryArray.from_arrays(indices, pa.array(uniques, type=pa.string()))
    return pa.array(values, type=pa.string(), from_pandas=True)


def _timestamps(arr: pa.Array, target: pa.TimestampType) -> pa.Array:
    """Time-zone-aware timestamps converted to ``target`` (UTC); naive ones refused."""
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), target)
    if not pa.types.is_timestamp(arr.type):
        raise TypeError(f"expected time-zone-aware timestamps, got {arr.type}; convert with "
                        "pandas.to_datetime(..., utc=True)")
    if arr.type.tz is None:
        raise TypeError("timestamps have no time zone; attach one (e.g. "
                        "Series.dt.tz_localize('Europe/Oslo')) so the instant is unambiguous")
    return arr.cast(target, safe=False)


def _check_allowed(arr: pa.Array, col: Column, where: str) -> None:
    plain = arr.dictionary_decode() if pa.types.is_dictionary(arr.type) else arr
    bad = pc.filter(plain, pc.invert(pc.is_in(plain, pa.array(col.allowed))))
    bad = bad.drop_null()
    if len(bad):
        raise WarehouseError(f"{where}: column {col.name!r} holds {bad[0].as_py()!r}; allowed "
                             f"values are {list(col.allowed)}.")


def _check_partition_values(arr: pa.ChunkedArray | pa.Array, key: str, where: str,
                            column: str) -> None:
    """Every row of a partition must carry the partition key."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type) and len(arr.dictionary) == 1:
        values = set(arr.dictionary.to_pylist()) if len(arr) > arr.null_count else set()
    elif pa.types.is_dictionary(arr.type):
        used = pc.unique(arr.indices).drop_null()
        values = set(arr.dictionary.take(used).to_pylist())
    else:
        values = set(pc.unique(arr).to_pylist())
    values.discard(None)
    if values - {key}:
        shown = sorted(values - {key})[:3]
        raise WarehouseError(f"{where}: rows have {column} {shown}; every row of partition "
                             f"{key!r} must have {column} = {key!r}.")


def _free_arrow(df: pd.DataFrame | pa.Table, where: str) -> pa.Table:
    """Any DataFrame as an Arrow table (flexible tables)."""
    if isinstance(df, pa.Table):
        return df
    if not isinstance(df, pd.DataFrame):
        raise WarehouseError(f"{where}: expected a pandas DataFrame, got {type(df).__name__}.")
    bad = [c for c in df.columns if not isinstance(c, str) or not c]
    if bad:
        raise WarehouseError(f"{where}: column names must be non-empty strings, got {bad}.")
    try:
        return pa.Table.from_pandas(df, preserve_index=False)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise WarehouseError(f"{where}: cannot store the DataFrame ({exc}); give each column "
                             "one type.") from exc


def _conform(data: pa.Table, spec: TableSpec | None) -> pa.Table:
    """A table read from a file, in the spec's columns and types (dictionaries decoded)."""
    if spec is None:
        return data
    arrays = []
    for col in spec.columns:
        if col.name in data.column_names:
            arr = data.column(col.name)
            if arr.type != col.type:
                arr = arr.cast(col.type)
        else:  # a file from before the column existed
            arr = pa.chunked_array([pa.nulls(data.num_rows, col.type)])
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, schema=spec.schema)


# ----------------------------------------------------------------------------- files


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


# ----------------------------------------------------------------------------- helpers


def connect(root: str | os.PathLike[str] | None = None, read_only: bool = True,
            ) -> duckdb.DuckDBPyConnection:
    """Open the warehouse DB (read-only by default); root defaults to :func:`default_root`."""
    return Warehouse(Path(root) if root is not None else default_root()).connect(read_only)


def query(sql: str, root: str | os.PathLike[str] | None = None,
          params: Sequence[Any] | dict[str, Any] | None = None) -> pd.DataFrame:
    """Run SQL over the warehouse views; root defaults to :func:`default_root`.

    Examples
    --------
    >>> from dlc_tracking.warehouse import query
    >>> query("SELECT * FROM recording_summary")  # doctest: +SKIP
    """
    return Warehouse(Path(root) if root is not None else default_root()).query(sql, params)


# ----------------------------------------------------------------------------- docs


def _type_name(t: pa.DataType) -> str:
    names = {pa.string(): "VARCHAR", pa.float64(): "DOUBLE", pa.int64(): "BIGINT",
             pa.int32(): "INTEGER", pa.bool_(): "BOOLEAN"}
    if pa.types.is_timestamp(t):
        return "TIMESTAMP WITH TIME ZONE" if t.tz else "TIMESTAMP"
    return names.get(t, str(t))


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def tables_markdown() -> str:
    """``docs/warehouse.md``: layout, tables, columns (type, unit, NULL, description), usage."""
    lines = [
        "# The warehouse",
        "",
        "<!-- Generated by dlc_tracking.warehouse.write_docs() from TABLES; do not edit. -->",
        "",
        "Analysts query DuckDB; pipelines write Parquet. Under the warehouse root "
        f"(`${ENV_ROOT}`, default `{DEFAULT_ROOT}`):",
        "",
        "```",
        "tables/<table>/<recording_id>@<version>.parquet   one file per recording (partitioned)",
        "tables/<table>/all@<version>.parquet              registry tables",
        "tables/<table>/_schema@<version>.parquet          zero rows: the table's schema",
        f"{DB_NAME:<48}  views and macros over tables/<table>/*.parquet",
        f"{CATALOG_FILE:<48}  hash of the view definitions in the DB",
        "```",
        "",
        "Each recording's rows live in their own file, published atomically (temporary "
        "file, fsync, rename) and never changed afterwards, so several runs write at once "
        "and readers never block writers. Re-materializing a recording publishes a new "
        "version of its file; the views read the newest version of each recording, so it "
        "replaces exactly that recording's rows (in `warehouse.duckdb` "
        f"{VISIBILITY_DELAY_S:g} s after the write; at once through `query()`). Superseded "
        f"versions are deleted {GRACE_S:g} s later. The views list the files at query "
        "time: new recordings appear without touching the DB file.",
        "",
        "## Querying",
        "",
        "Python (runs on an in-memory DuckDB with the same views; never locks the file):",
        "",
        "```python",
        "from dlc_tracking.warehouse import query, connect",
        "",
        "summary = query(\"SELECT * FROM recording_summary ORDER BY subject, session\")",
        "track = query(\"SELECT * FROM tracking(?)\", params=[\"mouse1__2024-01-31__openfield\"])",
        "",
        "con = connect()            # read-only connection to warehouse.duckdb",
        "con.sql(\"SELECT body_part, avg(likelihood) FROM predictions GROUP BY ALL\").df()",
        "```",
        "",
        "DuckDB CLI (read-only, so pipelines can keep updating the catalog):",
        "",
        "```sh",
        f"duckdb -readonly {DEFAULT_ROOT}/{DB_NAME} \\",
        "  \"SELECT recording_id, distance_cm, mean_speed_cm_s FROM recording_summary\"",
        "```",
        "",
        "Use a DuckDB CLI of the same version as the Python package (`duckdb` in "
        "`.venv`), which wrote the file. Column descriptions are stored as DuckDB "
        "comments: `SELECT table_name, column_name, comment FROM duckdb_columns()`.",
        "",
        "A query on `warehouse.duckdb` that is running at the moment a partition is "
        "deleted, or an old version of it is cleaned up, can fail with \"Cannot open "
        "file\": run it again. Results are never mixed from two versions of a file.",
        "",
        "Conventions: columns carry their units; image coordinates (`*_px`) have the origin "
        "top-left and y down; the arena frame (`*_cm`) has x right, y up, origin at the "
        "arena boundary's lower-left corner; angles are counter-clockwise from +x, radians "
        "in intermediate tables (`head_angle_rad`, [0, 2pi)), degrees in user-facing ones "
        "([0, 360)). Missing values are NULL.",
        "",
        "## Tables",
        "",
    ]
    for spec in TABLES.values():
        kind = (f"partitioned by `{spec.partition_column}`, one file per recording"
                if spec.partitioned else "unpartitioned")
        lines += [f"### `{spec.name}`", "", f"{spec.description} ({kind})", "",
                  "| column | type | unit | NULL | description |",
                  "|---|---|---|---|---|"]
        for col in spec.columns:
            desc = col.description
            if col.allowed:
                desc += " One of " + ", ".join(f"`{a}`" for a in col.allowed) + "."
            lines.append(f"| `{col.name}` | {_type_name(col.type)} | {col.unit or ''} | "
                         f"{'yes' if col.nullable else 'no'} | {_md_cell(desc)} |")
        lines.append("")
    lines += ["## Registry tables", "",
              "Unpartitioned, written by the registry assets from the registry file; their "
              "columns follow the registry (see `DESCRIBE <table>`).", "",
              "| table | holds |", "|---|---|"]
    lines += [f"| `{name}` | {_md_cell(text)} |" for name, text in REGISTRY_TABLES.items()]
    lines += ["", "## Summary views and macros", "", "| name | what |", "|---|---|"]
    lines += [f"| `{name}` | {_md_cell(text)} |" for name, (text, _) in SUMMARY_VIEWS.items()]
    lines += [f"| `{name}` | {_md_cell(FILE_VIEW_DESCRIPTION)} |" for name in FILE_VIEWS]
    lines += [f"| `{name}` (table macro) | {_md_cell(text)} |"
              for name, (text, _) in MACROS.items()]
    lines += [
        "",
        "## Tracking summaries",
        "",
        "Writing a `processed_tracking` partition (`Warehouse.write_partition` or "
        "`write_processed_tracking`, as the `processed_tracking` asset does) also writes its "
        "`recording_summaries` row, computed by `summarize_tracking()` from the same frames: "
        "first the frames, then the summary, which names the frames file it summarizes "
        "(`tracking_file`). `recording_summary` reads these rows (milliseconds for any "
        "number of recordings) and shows a row only while its `tracking_file` is the "
        "partition's current file: a summary never describes other frames than "
        "`processed_tracking` holds. A partition whose summary is missing (written before "
        "summaries existed, or its summary write failed) is left out of "
        "`recording_summary` until it is backfilled, once:",
        "",
        "```sh",
        ".venv/bin/python -m dlc_tracking.warehouse backfill-summaries   # [ROOT]",
        "```",
        "",
        "(`Warehouse.missing_summaries()` lists them; re-materializing the recording also "
        "writes it). `recording_summary_from_frames` gives the same figures by scanning "
        "every frame (seconds per 10 million frames): for checking. One difference: "
        "`coverage` uses the arena size at processing time, the full scan the one in "
        "`recordings` now.",
        "",
    ]
    return "\n".join(lines)


def write_docs(path: str | os.PathLike[str] | None = None) -> Path:
    """Write :func:`tables_markdown` to ``docs/warehouse.md`` (or ``path``)."""
    default = Path(__file__).parents[1] / "docs" / "warehouse.md"
    target = Path(path) if path is not None else default
    target.write_text(tables_markdown(), encoding="utf-8")
    return target


def _main(argv: Sequence[str] | None = None) -> int:
    """``python -m dlc_tracking.warehouse backfill-summaries [ROOT]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m dlc_tracking.warehouse",
                                     description="Warehouse maintenance.")
    sub = parser.add_subparsers(dest="command", required=True)
    backfill = sub.add_parser("backfill-summaries", help="write the recording_summaries "
                              "row of every processed_tracking partition that has none")
    backfill.add_argument("root", nargs="?", help=f"warehouse root (default ${ENV_ROOT} or "
                          f"{DEFAULT_ROOT})")
    args = parser.parse_args(argv)
    store = Warehouse(Path(args.root) if args.root else default_root())
    done = store.backfill_summaries()
    print(f"{store.root}: summarized {len(done)} partition(s)"
          + (f": {', '.join(done)}" if done else " (none missing)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
