"""The Parquet store + DuckDB catalog: round trips, atomic rewrites, views, concurrency."""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from dlc_tracking import warehouse as wh
from dlc_tracking.errors import DLCPlatformError
from dlc_tracking.warehouse import TABLES, Warehouse, WarehouseError, arrow, maintenance
from dlc_tracking.warehouse import store as store_module

PARTS = ["nose", "left_ear", "right_ear", "tail_base"]


def predictions_df(rid: str, n_frames: int = 50, model: str = "tiny", seed: int = 0,
                   categorical: bool = True) -> pd.DataFrame:
    """A predictions partition (frame-major, like the predictions asset writes it)."""
    rng = np.random.default_rng(seed)
    n = n_frames * len(PARTS)
    text = (lambda v: pd.Categorical([v] * n)) if categorical else (lambda v: [v] * n)
    df = pd.DataFrame({
        "recording_id": text(rid),
        "model_name": text(model),
        "frame": np.repeat(np.arange(n_frames), len(PARTS)),
        "time_s": np.repeat(np.arange(n_frames) / 30.0, len(PARTS)),
        "body_part": np.tile(np.array(PARTS, dtype=object), n_frames),
        "x_px": rng.uniform(0, 640, n),
        "y_px": rng.uniform(0, 480, n),
        "likelihood": rng.uniform(0, 1, n),
        "outside_frame": np.zeros(n, bool),
    })
    df.loc[3, ["x_px", "y_px", "likelihood"]] = np.nan
    return df


def recording_row(rid: str, **changes) -> pd.DataFrame:
    row = {
        "recording_id": rid, "subject": "mouse1", "session": "2024-01-31",
        "video_path": f"/data/mouse1/2024-01-31/{rid}.mp4", "video_file": f"{rid}.mp4",
        "tracking_type": "openfield",
        "start_time": pd.Timestamp("2024-01-31T10:15:00", tz="Europe/Oslo"),
        "n_frames": 100, "fps": 30.0, "width_px": 640, "height_px": 480, "duration_s": 3.33,
        "codec": "h264", "camera_view": "above", "pixels_per_cm": None,
        "arena_shape": "rectangle", "arena_width_cm": 20.0, "arena_height_cm": 10.0,
        "has_timestamps": False, "model_name": "tiny", "method_name": "two_ears",
        "session_yaml_sha": "abc123", "state_vector_status": "supported",
        "status_reason": None, "has_video": True, "source": "inference",
        "fps_source": "video", "video_facts_source": "video", "params_name": "default",
        "params_hash": "2ddbda4220e3723c", "arena_outline_source": None,
        "arena_outline_px": None, "promoted_from": None,
    }
    row.update(changes)
    return pd.DataFrame([row])


@pytest.fixture
def store(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "warehouse")


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("categorical", [True, False])
def test_write_read_partition(store: Warehouse, categorical: bool) -> None:
    df = predictions_df("rec1", categorical=categorical)
    path = store.write_partition("predictions", "rec1", df)
    assert path.parent == store.root / "tables" / "predictions"
    assert path.name.startswith("rec1@") and path.suffix == ".parquet"
    assert path == store.partition_path("predictions", "rec1")
    assert [p.name.split("@")[0] for p in sorted(path.parent.iterdir())] == ["_schema", "rec1"]
    back = store.read_partition("predictions", "rec1")
    assert list(back.columns) == TABLES["predictions"].column_names
    assert back["frame"].dtype == np.int64 and back["x_px"].dtype == np.float64
    expected = df.astype({"recording_id": object, "model_name": object, "body_part": object})
    # camera (multi-camera recordings only, docs/3d.md): left out of the file, read as NULL
    assert "camera" not in pq.read_schema(path).names
    pd.testing.assert_frame_equal(back, expected.assign(camera=None))
    assert store.partitions("predictions") == ["rec1"]
    # NaN is stored as NULL
    assert store.query("SELECT count(*) - count(x_px) AS n FROM predictions")["n"][0] == 1


def test_recordings_row_types(store: Warehouse) -> None:
    store.write_partition("recordings", "rec1", recording_row("rec1"))
    back = store.read_partition("recordings", "rec1")
    assert back["start_time"][0] == pd.Timestamp("2024-01-31T09:15:00", tz="UTC")
    assert back["width_px"].dtype == np.int32 and back["n_frames"].dtype == np.int64
    assert pd.isna(back["pixels_per_cm"][0]) and back["status_reason"][0] is None
    con = store.memory_connection()
    types = dict(con.sql("SELECT column_name, column_type FROM "
                         "(DESCRIBE recordings)").fetchall())
    assert types["start_time"] == "TIMESTAMP WITH TIME ZONE"
    assert types["has_timestamps"] == "BOOLEAN"


def test_pyarrow_table_input(store: Warehouse) -> None:
    import pyarrow as pa

    df = predictions_df("rec1")
    table = pa.Table.from_pandas(df, preserve_index=False)
    store.write_partition("predictions", "rec1", table)
    assert len(store.read_partition("predictions", "rec1")) == len(df)


def test_rewrite_replaces_exactly_its_rows(store: Warehouse) -> None:
    for i, rid in enumerate(["rec1", "rec2", "rec3"]):
        store.write_partition("predictions", rid, predictions_df(rid, 50, seed=i))
    other = store.partition_path("predictions", "rec1").read_bytes()
    store.write_partition("predictions", "rec2", predictions_df("rec2", 10, seed=9))
    counts = store.query("SELECT recording_id, count(*) AS n FROM predictions "
                         "GROUP BY ALL ORDER BY 1")
    assert counts.to_dict("list") == {"recording_id": ["rec1", "rec2", "rec3"],
                                      "n": [200, 40, 200]}
    assert store.partition_path("predictions", "rec1").read_bytes() == other
    pd.testing.assert_frame_equal(
        store.read_partition("predictions", "rec2"),
        predictions_df("rec2", 10, seed=9).astype(
            {"recording_id": object, "model_name": object}).assign(camera=None))
    assert store.delete_partition("predictions", "rec2") is True
    assert store.delete_partition("predictions", "rec2") is False
    assert store.partitions("predictions") == ["rec1", "rec3"]
    assert store.query("SELECT count(*) AS n FROM predictions")["n"][0] == 400
    with pytest.raises(WarehouseError, match="no partition 'rec2'"):
        store.read_partition("predictions", "rec2")


def test_read_table_all_partitions(store: Warehouse) -> None:
    assert len(store.read_table("predictions")) == 0
    store.write_partition("predictions", "a", predictions_df("a", 5))
    store.write_partition("predictions", "b", predictions_df("b", 7))
    assert len(store.read_table("predictions")) == 48


# ----------------------------------------------------------------------------- atomicity


def test_failed_write_leaves_old_file(store: Warehouse, monkeypatch) -> None:
    store.write_partition("predictions", "rec1", predictions_df("rec1", 50))
    before = store.partition_path("predictions", "rec1").read_bytes()
    seen = []

    def failing_replace(src, dst):
        seen.append(Path(src))
        assert Path(src).is_file() and Path(src).stat().st_size > 0  # temp fully written
        raise OSError("disk vanished")

    monkeypatch.setattr(store_module.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk vanished"):
        store.write_partition("predictions", "rec1", predictions_df("rec1", 5))
    monkeypatch.undo()
    assert seen and seen[0].parent == store.table_dir("predictions")
    assert not seen[0].name.endswith(".parquet")
    assert store.partition_path("predictions", "rec1").read_bytes() == before
    assert not seen[0].exists()                                     # cleaned up
    assert len(store.read_partition("predictions", "rec1")) == 200


def _crash_after_temp_file(root: str) -> None:
    """Child process: dies abruptly (no cleanup) once the temp file is written."""
    store = Warehouse(root)
    store_module.os.replace = lambda src, dst: os._exit(3)
    store.write_partition("predictions", "rec1", predictions_df("rec1", 5))


def test_crash_mid_write_leaves_old_file(store: Warehouse) -> None:
    store.write_partition("predictions", "rec1", predictions_df("rec1", 50))
    before = store.partition_path("predictions", "rec1").read_bytes()
    proc = mp.get_context("spawn").Process(target=_crash_after_temp_file,
                                           args=(str(store.root),))
    proc.start()
    proc.join(120)
    assert proc.exitcode == 3
    leftovers = [p for p in store.table_dir("predictions").iterdir()
                 if p.name.split("@")[0] not in ("rec1", "_schema")]
    assert len(leftovers) == 1 and leftovers[0].stat().st_size > 0   # the orphan temp file
    assert store.partition_path("predictions", "rec1").read_bytes() == before
    assert store.partitions("predictions") == ["rec1"]
    assert store.query("SELECT count(*) AS n FROM predictions")["n"][0] == 200
    store.ensure_catalog()
    with store.connect() as con:
        assert con.execute("SELECT count(*) FROM predictions").fetchall()[0][0] == 200


# ----------------------------------------------------------------------------- catalog


def test_empty_tables_queryable_through_views(store: Warehouse) -> None:
    assert store.ensure_catalog() is True
    with store.connect() as con:
        for name, spec in TABLES.items():
            assert con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0] == 0
            columns = [r[0] for r in con.sql(f"DESCRIBE {name}").fetchall()]
            assert columns == spec.column_names
        for view in wh.SUMMARY_VIEWS:
            assert con.execute(f"SELECT count(*) FROM {view}").fetchall()[0][0] == 0
        assert con.execute("SELECT count(*) FROM tracking('nobody')").fetchall()[0][0] == 0
        comment = con.execute("SELECT comment FROM duckdb_columns() WHERE table_name = "
                              "'processed_tracking' AND column_name = 'x_cm'").fetchall()[0][0]
        assert "[cm]" in comment
    assert store.query("SELECT count(*) AS n FROM processed_tracking")["n"][0] == 0


def test_connect_creates_catalog_and_is_read_only(store: Warehouse) -> None:
    con = wh.connect(store.root)
    try:
        assert store.db_path.is_file()
        with pytest.raises(duckdb.Error):
            con.execute("CREATE TABLE x (a INTEGER)")
    finally:
        con.close()


def test_ensure_catalog_is_cheap_when_unchanged(store: Warehouse) -> None:
    assert store.ensure_catalog()
    stamp = store.db_path.stat().st_mtime_ns
    time.sleep(0.02)
    store.write_partition("predictions", "rec1", predictions_df("rec1"))  # data: no change
    assert store.ensure_catalog()
    assert store.db_path.stat().st_mtime_ns == stamp
    store.write_table("models", pd.DataFrame({"model_name": ["tiny"], "shuffle": [1]}))
    assert store.ensure_catalog()                                   # new view: rebuilt
    with store.connect() as con:
        assert con.sql("SELECT model_name FROM models").fetchall() == [("tiny",)]
        assert con.execute("SELECT count(*) FROM predictions").fetchall()[0][0] == 200


def _hold_read_only(root: str, ready, release) -> None:
    con = duckdb.connect(str(Path(root) / wh.DB_NAME), read_only=True)
    ready.set()
    release.wait(60)
    con.close()


def test_ensure_catalog_leaves_a_busy_db(store: Warehouse) -> None:
    store.ensure_catalog()
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_read_only, args=(str(store.root), ready, release))
    holder.start()
    try:
        assert ready.wait(120)
        store.write_table("methods", pd.DataFrame({"method_name": ["two_ears"]}))
        assert store.ensure_catalog() is False                      # busy: left alone
        assert store.query("SELECT * FROM methods")["method_name"].tolist() == ["two_ears"]
    finally:
        release.set()
        holder.join(60)
    assert store.ensure_catalog() is True
    with store.connect() as con:
        assert con.execute("SELECT count(*) FROM methods").fetchall()[0][0] == 1


# ----------------------------------------------------------------------------- concurrency


def _writer(root: str, worker: int, n_keys: int) -> None:
    store = Warehouse(root)
    for i in range(n_keys):
        rid = f"w{worker}_r{i}"
        store.write_partition("predictions", rid, predictions_df(rid, 2000, seed=i))
        store.write_partition("recordings", rid, recording_row(rid))
        # re-materialize: must replace, not add
        store.write_partition("predictions", rid, predictions_df(rid, 1000 + i, seed=i))
    store.ensure_catalog()  # a reader holds the DB: must not fail


_CHECK_SQL = """
SELECT recording_id, count(*) AS n, sum(frame) AS frames, max(frame) AS last,
       min(x_px) AS lo, max(x_px) AS hi
FROM predictions GROUP BY recording_id
"""


def _consistent(row: tuple) -> bool:
    """Rows of one recording come from one whole version of its file."""
    rid, n, frames, last, lo, hi = row
    n_frames = n // len(PARTS)
    i = int(rid.rsplit("_r", 1)[1])
    return (n_frames in (2000, 1000 + i) and n == n_frames * len(PARTS)
            and last == n_frames - 1 and frames == len(PARTS) * n_frames * (n_frames - 1) // 2
            and 0 <= lo <= hi <= 640)


def _reader(root: str, ready, stop, results) -> None:
    con = Warehouse(root).connect(read_only=True)
    ready.set()
    queries, problems = 0, []
    while not stop.is_set():
        try:
            rows = con.execute(_CHECK_SQL).fetchall()
            con.execute("SELECT count(*) FROM recordings").fetchall()
            problems += [r for r in rows if not _consistent(r)]
        except duckdb.Error as exc:
            problems.append(repr(exc))
        queries += 1
    con.close()
    results.put((queries, problems[:5]))


def test_concurrent_writers_with_a_reader(store: Warehouse) -> None:
    """4 processes write (and re-write) partitions while another queries the DB file."""
    store.ensure_catalog()
    ctx = mp.get_context("spawn")
    ready, stop, results = ctx.Event(), ctx.Event(), ctx.Queue()
    reader = ctx.Process(target=_reader, args=(str(store.root), ready, stop, results))
    reader.start()
    assert ready.wait(120)
    n_workers, n_keys = 4, 6
    writers = [ctx.Process(target=_writer, args=(str(store.root), w, n_keys))
               for w in range(n_workers)]
    for p in writers:
        p.start()
    for p in writers:
        p.join(300)
    time.sleep(store_module.VISIBILITY_DELAY_S + 0.2)
    stop.set()
    n_queries, problems = results.get(timeout=120)
    reader.join(60)
    assert [p.exitcode for p in writers] == [0] * n_workers
    assert reader.exitcode == 0 and n_queries > 0
    assert problems == []
    keys = sorted(f"w{w}_r{i}" for w in range(n_workers) for i in range(n_keys))
    assert store.partitions("predictions") == keys
    expected = {f"w{w}_r{i}": (1000 + i) * len(PARTS)
                for w in range(n_workers) for i in range(n_keys)}
    counts = store.query("SELECT recording_id, count(*) AS n FROM predictions GROUP BY 1")
    assert dict(zip(counts["recording_id"], counts["n"], strict=True)) == expected
    with store.connect() as con:
        assert con.execute("SELECT count(*) FROM recordings").fetchall()[0][0] == len(keys)
        rows = con.execute("SELECT recording_id, count(*) FROM predictions GROUP BY 1"
                           ).fetchall()
        assert dict(rows) == expected
    assert not [p for p in store.table_dir("predictions").iterdir()
                if p.name.startswith(".")]                             # no temp files left


def test_rewrite_visibility_and_garbage(tmp_path: Path) -> None:
    store = Warehouse(tmp_path / "wh")
    store.write_partition("predictions", "rec1", predictions_df("rec1", 10))
    time.sleep(store_module.VISIBILITY_DELAY_S + 0.1)
    store.ensure_catalog()
    with store.connect() as con:
        count = "SELECT count(*) FROM predictions"
        assert con.execute(count).fetchall()[0][0] == 40
        store.write_partition("predictions", "rec1", predictions_df("rec1", 5))
        store.write_partition("predictions", "rec2", predictions_df("rec2", 1))
        assert store.query("SELECT count(*) AS n FROM predictions")["n"][0] == 24  # at once
        assert con.execute(count).fetchall()[0][0] == 44      # new key at once, rewrite later
        time.sleep(store_module.VISIBILITY_DELAY_S + 0.1)
        assert con.execute(count).fetchall()[0][0] == 24
    versions = sorted(p.name for p in store.table_dir("predictions").glob("rec1@*"))
    assert len(versions) == 2                                  # the old one within grace
    assert store.collect_garbage() == 0
    assert Warehouse(store.root, grace_s=0).collect_garbage("predictions") == 1
    assert [p.name for p in store.table_dir("predictions").glob("rec1@*")] == versions[1:]
    assert store.query("SELECT count(*) AS n FROM predictions")["n"][0] == 24


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(("change", "message"), [
    (lambda df: df.drop(columns=["likelihood"]), r"missing columns \['likelihood'\]"),
    (lambda df: df.assign(extra=1), r"unexpected columns \['extra'\]"),
    (lambda df: df.assign(x_px="left"), r"column 'x_px' cannot be stored as double"),
    (lambda df: df.assign(frame=df["frame"] + 0.5), r"column 'frame' cannot be stored"),
    (lambda df: df.assign(recording_id="rec2"), r"recording_id \['rec2'\]"),
    (lambda df: df.assign(body_part=None), r"'body_part' has 200 missing"),
    (lambda df: df.assign(body_part=7), r"column 'body_part' cannot be stored as string"),
])
def test_schema_validation_errors(store: Warehouse, change, message) -> None:
    df = change(predictions_df("rec1", categorical=False))
    with pytest.raises(WarehouseError, match=message) as info:
        store.write_partition("predictions", "rec1", df)
    assert "predictions partition 'rec1'" in str(info.value)
    assert isinstance(info.value, DLCPlatformError)
    assert store.partitions("predictions") == []


def test_conversion_fast_paths(store: Warehouse) -> None:
    """Categoricals and float columns are converted from their numpy buffers: the same
    checks and NULLs as the general path, and the Parquet encodings chosen per type."""
    df = predictions_df("rec1")
    df["body_part"] = pd.Categorical(df["body_part"])
    df.loc[5, "body_part"] = np.nan
    with pytest.raises(WarehouseError, match="'body_part' has 1 missing"):
        store.write_partition("predictions", "rec1", df)
    df = predictions_df("rec1").assign(body_part=pd.Categorical([7] * 200))
    with pytest.raises(WarehouseError, match="'body_part' cannot be stored as string"):
        store.write_partition("predictions", "rec1", df)
    df = predictions_df("rec1")
    df["x_px"] = df["x_px"].astype(np.float32)
    store.write_partition("predictions", "rec1", df)
    back = store.read_partition("predictions", "rec1")
    assert back["x_px"].dtype == np.float64 and back["x_px"].isna().sum() == 1
    np.testing.assert_array_equal(back["x_px"], df["x_px"].astype(np.float64))
    store.write_partition("recordings", "rec1", recording_row("rec1").assign(
        codec=pd.Categorical([None]), camera_view=pd.Categorical(["above"])))
    row = store.read_partition("recordings", "rec1").iloc[0]
    assert row["codec"] is None and row["camera_view"] == "above"
    meta = pq.ParquetFile(store.partition_path("predictions", "rec1")).metadata.row_group(0)
    encodings = {meta.column(i).path_in_schema: meta.column(i).encodings
                 for i in range(meta.num_columns)}
    assert "DELTA_BINARY_PACKED" in encodings["frame"]
    assert "BYTE_STREAM_SPLIT" in encodings["time_s"]
    assert "RLE_DICTIONARY" in encodings["body_part"]
    con = store.memory_connection()
    assert con.sql("SELECT max(frame), count(DISTINCT time_s), count(x_px) FROM predictions"
                   ).fetchall() == [(49, 50, 199)]


def test_other_validation_errors(store: Warehouse) -> None:
    df = predictions_df("rec1")
    for key in ("../evil", "a/b", "", ".hidden", "_schema", "a,b", "with space"):
        with pytest.raises(WarehouseError, match="invalid partition key"):
            store.write_partition("predictions", key, df)
    with pytest.raises(WarehouseError, match="unknown table 'nope'"):
        store.write_partition("nope", "rec1", df)
    with pytest.raises(WarehouseError, match="use write_partition"):
        store.write_table("predictions", df)
    with pytest.raises(WarehouseError, match="no time zone"):
        store.write_partition("recordings", "rec1", recording_row(
            "rec1", start_time=pd.Timestamp("2024-01-31T10:15:00")))
    with pytest.raises(WarehouseError, match="allowed values"):
        store.write_partition("recordings", "rec1", recording_row(
            "rec1", state_vector_status="maybe"))


def test_registry_tables_are_flexible(store: Warehouse) -> None:
    models = pd.DataFrame({"model_name": ["a", "b"], "shuffle": [1, 2],
                           "body_parts": [["nose", "tail_base"], ["nose"]]})
    store.write_table("models", models)
    pd.testing.assert_frame_equal(store.read_table("models")[["model_name", "shuffle"]],
                                  models[["model_name", "shuffle"]])
    store.write_table("models", pd.DataFrame({"model_name": ["c"], "engine": ["pytorch"]}))
    got = store.query("SELECT * FROM models")
    assert list(got.columns) == ["model_name", "engine"] and len(got) == 1
    with pytest.raises(WarehouseError, match="not been written"):
        store.read_table("pairings")


# ----------------------------------------------------------------------------- views


def test_recording_summary(store: Warehouse) -> None:
    store.write_partition("recordings", "rec1", recording_row("rec1"))
    n = 5
    x = np.array([1.0, 4.0, 4.0, np.nan, 4.0])
    y = np.array([1.0, 5.0, 5.0, np.nan, 9.0])
    df = pd.DataFrame({
        "recording_id": "rec1", "model_name": "tiny", "method_name": "two_ears",
        "params_name": "default", "params_hash": "h", "frame": np.arange(n),
        "time_s": np.arange(n) / 2.0, "x_cm": x, "y_cm": y,
        "speed_cm_s": [np.nan, 10.0, 0.0, np.nan, 8.0], "head_direction_deg": 90.0,
        "angular_head_velocity_deg_s": 0.0, "movement_direction_deg": 45.0,
        "interpolated": [False, False, False, False, True]})
    store.write_partition("processed_tracking", "rec1", df)
    row = store.query("SELECT * FROM recording_summary").iloc[0]
    assert row["subject"] == "mouse1" and row["n_frames"] == n
    assert row["duration_s"] == pytest.approx(2.0)
    assert row["distance_cm"] == pytest.approx(5.0)                  # (1,1)->(4,5); gaps skip
    assert row["mean_speed_cm_s"] == pytest.approx(6.0)
    assert row["tracked_fraction"] == pytest.approx(0.8)
    assert row["interpolated_fraction"] == pytest.approx(0.2)
    assert row["coverage"] == pytest.approx(2 / 8)                  # 20x10 cm: 4x2 bins
    track = store.query("SELECT frame FROM tracking(?)", ["rec1"])
    assert track["frame"].tolist() == list(range(n))


SUMMARY_SQL = "SELECT * FROM {} ORDER BY recording_id, model_name"


def tracking_df(rid: str, n: int, seed: int = 0, model: str = "tiny") -> pd.DataFrame:
    """processed_tracking rows with untracked (NaN) stretches, interpolated frames, NaN
    speeds and times, positions outside the arena, in shuffled frame order."""
    rng = np.random.default_rng(seed)
    x = np.cumsum(rng.normal(0, 1.5, n)) + 10
    y = np.cumsum(rng.normal(0, 1.5, n)) + 5
    x[rng.random(n) < 0.1] = np.nan
    y[rng.random(n) < 0.05] = np.nan
    x[n // 3: n // 3 + 20] = np.nan                                  # an untracked gap
    speed = rng.uniform(0, 30, n)
    speed[rng.random(n) < 0.1] = np.nan
    time_s = np.arange(n) / 30.0
    time_s[[0, n - 1]] = np.nan                                      # first/last time unknown
    order = rng.permutation(n)
    return pd.DataFrame({
        "recording_id": rid, "model_name": model, "method_name": "two_ears",
        "params_name": "default", "params_hash": "h", "frame": np.arange(n),
        "time_s": time_s, "x_cm": x, "y_cm": y, "speed_cm_s": speed,
        "head_direction_deg": 90.0, "angular_head_velocity_deg_s": 0.0,
        "movement_direction_deg": 45.0, "interpolated": rng.random(n) < 0.2,
    }).iloc[order]


def assert_summaries_equal(fast: pd.DataFrame, slow: pd.DataFrame) -> None:
    assert len(fast) == len(slow) > 0
    pd.testing.assert_frame_equal(fast, slow, check_exact=False, rtol=1e-12, atol=0)


def test_recording_summary_equals_full_scan(store: Warehouse) -> None:
    """The fast view (summaries written with the frames) gives the numbers of the old
    window-function view over every frame."""
    store.write_partition("recordings", "rec1", recording_row("rec1"))
    store.write_partition("recordings", "rec2", recording_row(
        "rec2", subject="mouse2", arena_width_cm=31.0, arena_height_cm=12.5))
    store.write_partition("recordings", "rec4", recording_row(
        "rec4", arena_width_cm=None, arena_height_cm=None))      # size unknown: no coverage
    store.write_partition("processed_tracking", "rec1", tracking_df("rec1", 500, seed=1))
    store.write_partition("processed_tracking", "rec2", tracking_df("rec2", 700, seed=2))
    store.write_processed_tracking("rec3", tracking_df("rec3", 300, seed=3),  # no recordings
                                   arena_width_cm=None, arena_height_cm=None)
    store.write_partition("processed_tracking", "rec4", tracking_df("rec4", 200, seed=4))
    both = pd.concat([tracking_df("rec5", 250, seed=5),               # two models in one
                      tracking_df("rec5", 150, seed=6, model="big")])  # partition
    store.write_partition("processed_tracking", "rec5", both)
    fast = store.query(SUMMARY_SQL.format("recording_summary"))
    slow = store.query(SUMMARY_SQL.format("recording_summary_from_frames"))
    assert_summaries_equal(fast, slow)
    assert fast.recording_id.tolist() == ["rec1", "rec2", "rec3", "rec4", "rec5", "rec5"]
    assert fast.coverage.notna().tolist() == [True, True, False, False, False, False]
    assert 0 < fast.tracked_fraction.min() < 1 and fast.interpolated_fraction.min() > 0
    store.ensure_catalog()
    with store.connect() as con:                                     # the DB file's views
        assert_summaries_equal(con.sql(SUMMARY_SQL.format("recording_summary")).df(), slow)
        assert_summaries_equal(
            con.sql(SUMMARY_SQL.format("recording_summary_from_frames")).df(), slow)


def test_rewrite_replaces_summary(store: Warehouse) -> None:
    store.write_partition("recordings", "rec1", recording_row("rec1"))
    store.write_partition("processed_tracking", "rec1", tracking_df("rec1", 300, seed=1))
    store.write_partition("processed_tracking", "rec1", tracking_df("rec1", 100, seed=2))
    fast = store.query(SUMMARY_SQL.format("recording_summary"))
    assert fast.n_frames.tolist() == [100]
    assert_summaries_equal(fast, store.query(SUMMARY_SQL.format("recording_summary_from_frames")))
    stored = store.read_partition("recording_summaries", "rec1")
    assert stored.tracking_file.tolist() == [store.partition_path("processed_tracking",
                                                                  "rec1").name]
    assert stored.coverage_bin_cm.tolist() == [wh.COVERAGE_BIN_CM]
    assert store.delete_partition("processed_tracking", "rec1")
    assert store.partitions("recording_summaries") == []
    assert store.query("SELECT count(*) AS n FROM recording_summary")["n"][0] == 0


def test_failed_summary_write_never_shows_stale_figures(store: Warehouse, monkeypatch) -> None:
    """Frames first, then the summary naming the frames file: when the second write fails,
    the recording drops out of recording_summary (no stale figures) until backfilled."""
    store.write_partition("recordings", "rec1", recording_row("rec1"))
    store.write_partition("recordings", "rec2", recording_row("rec2"))
    store.write_partition("processed_tracking", "rec1", tracking_df("rec1", 300, seed=1))
    store.write_partition("processed_tracking", "rec2", tracking_df("rec2", 300, seed=2))
    publish = Warehouse._publish

    def failing_publish(self, data, table, key):
        if table == "recording_summaries":
            raise OSError("disk full")
        return publish(self, data, table, key)

    monkeypatch.setattr(Warehouse, "_publish", failing_publish)
    with pytest.raises(OSError, match="disk full"):
        store.write_partition("processed_tracking", "rec1", tracking_df("rec1", 120, seed=3))
    monkeypatch.undo()
    slow = store.query(SUMMARY_SQL.format("recording_summary_from_frames"))
    assert slow.n_frames.tolist() == [120, 300]                      # the new frames are in
    assert store.query(SUMMARY_SQL.format("recording_summary")).recording_id.tolist() == [
        "rec2"]                                                      # the old summary is not
    assert store.missing_summaries() == ["rec1"]
    assert store.backfill_summaries() == ["rec1"]
    assert store.missing_summaries() == []
    assert_summaries_equal(store.query(SUMMARY_SQL.format("recording_summary")), slow)


def test_backfill_partitions_written_without_summaries(store: Warehouse, capsys) -> None:
    """processed_tracking partitions from before recording_summaries existed."""
    for i, rid in enumerate(["rec1", "rec2"]):
        store.write_partition("recordings", rid, recording_row(rid))
        old = arrow._to_arrow(TABLES["processed_tracking"], tracking_df(rid, 200, seed=i), rid)
        store._publish(old, "processed_tracking", rid)               # as the old version did
    assert store.query("SELECT count(*) AS n FROM recording_summary")["n"][0] == 0
    assert store.missing_summaries() == ["rec1", "rec2"]
    assert maintenance.main(["backfill-summaries", str(store.root)]) == 0
    assert "summarized 2 partition(s): rec1, rec2" in capsys.readouterr().out
    assert_summaries_equal(store.query(SUMMARY_SQL.format("recording_summary")),
                           store.query(SUMMARY_SQL.format("recording_summary_from_frames")))
    assert store.backfill_summaries() == []


def test_module_helpers_use_env(store: Warehouse, monkeypatch) -> None:
    store.write_partition("predictions", "rec1", predictions_df("rec1", 5))
    monkeypatch.setenv(wh.ENV_ROOT, str(store.root))
    assert wh.default_root() == store.root
    assert wh.query("SELECT count(*) AS n FROM predictions")["n"][0] == 20
    with wh.connect() as con:
        assert con.execute("SELECT count(*) FROM body_part_track('rec1', 'nose')"
                           ).fetchall()[0][0] == 5


def test_docs_are_generated_from_tables() -> None:
    text = wh.tables_markdown()
    for name, spec in TABLES.items():
        assert f"### `{name}`" in text
        for col in spec.columns:
            assert f"| `{col.name}` |" in text
    doc = Path(__file__).resolve().parents[1] / "docs" / "warehouse.md"
    assert doc.read_text(encoding="utf-8") == text, (
        "docs/warehouse.md is stale: run python -c 'from dlc_tracking.warehouse import "
        "write_docs; write_docs()'")


def test_hour_of_predictions_round_trips(store: Warehouse) -> None:
    """720,000 prediction rows (180,000 frames x 4 body parts), as the asset writes them.
    (Speed is measured by ``python -m bench --warehouse``, not here.)"""
    df = predictions_df("rec1", 180_000)
    store.write_partition("predictions", "rec1", df)
    store.write_partition("predictions", "rec1", df)  # a new version replaces the first
    assert pq.ParquetFile(store.partition_path("predictions", "rec1")).metadata.num_rows == len(df)
    back = store.read_partition("predictions", "rec1")
    assert len(back) == len(df)
    np.testing.assert_array_equal(back["x_px"].to_numpy(), df["x_px"].to_numpy())
