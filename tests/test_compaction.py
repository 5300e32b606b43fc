"""Compaction of finished recordings into packs: same answers from every reader (Python,
the in-memory views, the DB file from plain DuckDB, pandas on the files), rewrites and
deletes still replace exactly a recording's rows, concurrent writers and readers are safe."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from dlc_tracking.warehouse import Warehouse
from dlc_tracking.warehouse.compaction import compact, file_counts
from dlc_tracking.warehouse.packs import is_pack_key
from dlc_tracking.warehouse.store import _versions
from dlc_tracking.warehouse.tables import TABLES
from tests.test_warehouse import predictions_df, tracking_df
from tests.test_warehouse import recording_row as _recording_row

SUMMARY = ("SELECT recording_id, n_frames, distance_cm, mean_speed_cm_s FROM recording_summary "
           "ORDER BY recording_id")
KEYS = [f"rec{i:02d}" for i in range(12)]


def complete(table: str, df: pd.DataFrame) -> pd.DataFrame:
    """The test_warehouse rows with the columns added to the table since: NULL (False for
    required flags)."""
    for column in TABLES[table].columns:
        if column.name not in df.columns:
            df[column.name] = None if column.nullable else False
    return df


def recording_row(rid: str) -> pd.DataFrame:
    return complete("recordings", _recording_row(rid))


def fill(store: Warehouse, keys=KEYS, seed: int = 0) -> None:
    for i, rid in enumerate(keys):
        store.write_partition("recordings", rid, recording_row(rid))
        store.write_partition("predictions", rid,
                              complete("predictions", predictions_df(rid, 20 + i, seed=seed + i)))
        frames = tracking_df(rid, 60 + i, seed=seed + i)
        store.write_partition("processed_tracking", rid, complete("processed_tracking", frames))


def ordered(df: pd.DataFrame) -> pd.DataFrame:
    keys = [c for c in ("recording_id", "model_name", "frame", "body_part") if c in df.columns]
    return df.sort_values(keys).reset_index(drop=True)


def snapshot(store: Warehouse) -> dict[str, pd.DataFrame]:
    """Every reader's view of the data, sorted (compared before and after compaction)."""
    out = {"summary": store.query(SUMMARY)}
    for table in ("recordings", "predictions", "processed_tracking"):
        out[table] = ordered(store.read_table(table))
        out[f"query {table}"] = ordered(store.query(f"SELECT * FROM {table}"))
    out["point"] = ordered(store.read_partition("processed_tracking", "rec03"))
    out["macro"] = store.query("SELECT * FROM tracking(?)", params=["rec03"])
    return out


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], obj=name)


def db_summary(store: Warehouse) -> pd.DataFrame:
    """recording_summary from the DB file through plain DuckDB (as an analyst would)."""
    store.ensure_catalog()
    time.sleep(0.6)  # the DB views' visibility delay for new versions
    with duckdb.connect(str(store.db_path), read_only=True) as con:
        return con.sql(SUMMARY).df()


def test_compaction_keeps_every_answer_and_removes_the_small_files(tmp_path: Path) -> None:
    store = Warehouse(tmp_path / "wh", grace_s=0.0)
    fill(store)
    before = snapshot(store)
    db_before = db_summary(store)
    assert len(before["summary"]) == len(KEYS)
    counts_before = file_counts(store)

    report = compact(store, min_age_s=0, recordings_per_pack=5)
    assert report.packed["processed_tracking"] == len(KEYS)
    assert_same(before, snapshot(store))                    # sources and packs both there
    compact(store, min_age_s=0)                             # next pass: sources removed
    after = snapshot(store)
    assert_same(before, after)
    pd.testing.assert_frame_equal(db_before, db_summary(store))
    counts = file_counts(store)
    assert counts["processed_tracking"] <= 1 + 3 < counts_before["processed_tracking"]
    assert store.partitions("processed_tracking") == KEYS
    assert not store.missing_summaries()

    # Analysts without the platform: pandas on the files sees the same rows once packs'
    # overridden rows are gone (none here), and DuckDB's views from the DB file agree.
    files = sorted((store.table_dir("processed_tracking")).glob("_pack*.parquet"))
    assert files and all(is_pack_key(f.name.split("@")[0]) for f in files)
    direct = pd.concat([pd.read_parquet(f) for f in files])
    assert sorted(direct.recording_id.unique()) == KEYS


def test_rewrite_and_delete_after_compaction_replace_exactly_their_rows(tmp_path: Path) -> None:
    store = Warehouse(tmp_path / "wh", grace_s=0.0)
    fill(store)
    compact(store, min_age_s=0)
    compact(store, min_age_s=0)
    # Re-materialize rec03 with other frames: its new file wins over its packed rows.
    store.write_partition("processed_tracking", "rec03",
                          complete("processed_tracking", tracking_df("rec03", 33, seed=99)))
    store.write_partition("predictions", "rec04",
                          complete("predictions", predictions_df("rec04", 7, seed=98)))
    summary = store.query(SUMMARY).set_index("recording_id")
    assert summary.loc["rec03", "n_frames"] == 33
    assert len(summary) == len(KEYS)
    assert len(store.read_partition("processed_tracking", "rec03")) == 33
    assert store.query("SELECT count(*) AS n FROM predictions WHERE recording_id = 'rec04'"
                       ).n[0] == 7 * 4
    assert len(db_summary(store).query("recording_id == 'rec03' and n_frames == 33")) == 1
    # Packed again: the older pack is rewritten without it, the answers stay.
    expected = snapshot(store)
    compact(store, min_age_s=0)
    compact(store, min_age_s=0)
    assert_same(expected, snapshot(store))
    assert "rec03" in store.pack_index("processed_tracking")
    # Deleting a packed partition removes exactly its rows (and its summary).
    assert store.delete_partition("processed_tracking", "rec05")
    assert "rec05" not in store.partitions("processed_tracking")
    left = store.query(SUMMARY)
    assert "rec05" not in set(left.recording_id) and len(left) == len(KEYS) - 1
    assert store.query("SELECT count(*) AS n FROM processed_tracking WHERE recording_id = "
                       "'rec05'").n[0] == 0
    assert "rec05" not in set(db_summary(store).recording_id)


def test_recent_recordings_are_left_alone(tmp_path: Path) -> None:
    store = Warehouse(tmp_path / "wh")
    fill(store, KEYS[:3])
    report = compact(store, min_age_s=3600)
    assert not any(report.packed.values())
    assert not any(store.pack_index(t) for t in ("recordings", "processed_tracking"))


def _writer(root: str, stop, n: int) -> None:
    store = Warehouse(root, grace_s=0.5)
    i = 0
    while not stop.is_set() and i < n:
        rid = KEYS[i % len(KEYS)]
        df = tracking_df(rid, 60 + i % len(KEYS), seed=i % len(KEYS))
        store.write_partition("processed_tracking", rid, complete("processed_tracking", df))
        i += 1


def _reader(root: str, stop, out) -> None:
    store = Warehouse(root, grace_s=0.5)
    bad = 0
    while not stop.is_set():
        try:
            df = store.query("SELECT recording_id, count(*) AS n FROM processed_tracking "
                             "GROUP BY ALL")
        except duckdb.IOException:
            continue  # a file removed between listing and reading: retried by callers
        n = dict(zip(df.recording_id, df.n, strict=True))
        # Each recording whole, from one version: exactly its row count, no duplicates.
        bad += sum(1 for rid, count in n.items() if count != 60 + KEYS.index(rid))
        bad += len(KEYS) - len(n)
    out.put(bad)


@pytest.mark.slow
def test_compaction_with_concurrent_writers_and_readers(tmp_path: Path) -> None:
    root = str(tmp_path / "wh")
    store = Warehouse(root, grace_s=0.5)
    fill(store)
    ctx = mp.get_context("spawn")
    stop, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(root, stop, 200)),
             ctx.Process(target=_reader, args=(root, stop, out))]
    for p in procs:
        p.start()
    try:
        deadline = time.monotonic() + 20
        passes = 0
        while time.monotonic() < deadline:
            compact(store, min_age_s=0, recordings_per_pack=4)
            passes += 1
            time.sleep(0.2)
    finally:
        stop.set()
        bad = out.get(timeout=60)
        for p in procs:
            p.join(30)
    assert passes > 3
    assert bad == 0
    compact(store, min_age_s=0)
    summary = store.query(SUMMARY)
    assert summary.recording_id.tolist() == KEYS
    assert summary.n_frames.tolist() == [60 + i for i in range(len(KEYS))]


def test_frames_and_summaries_leave_their_own_files_together(tmp_path: Path) -> None:
    """A pass that finds the frames' pack past the grace time but the summaries' pack not
    (they are published milliseconds apart) removes neither own file, so the summary is
    never left naming a frames file that is gone; packed files are not packed again."""
    store = Warehouse(tmp_path / "wh", grace_s=0.5)
    fill(store)
    compact(store, min_age_s=0)
    frames_pack = min(v[-1].ns for k, v in _versions(store.table_dir("processed_tracking"))
                      .items() if is_pack_key(k))
    summaries_pack = min(v[-1].ns for k, v in _versions(
        store.table_dir("recording_summaries")).items() if is_pack_key(k))
    assert summaries_pack > frames_pack
    between = frames_pack + int(store.grace_s * 1e9)
    report = compact(store, min_age_s=0, now_ns=between)
    assert report.packed["processed_tracking"] == report.packed["recording_summaries"] == 0
    assert store.query(SUMMARY).recording_id.tolist() == KEYS
    assert set(_versions(store.table_dir("processed_tracking"))) >= set(KEYS)
    assert set(_versions(store.table_dir("recording_summaries"))) >= set(KEYS)
    time.sleep(0.6)
    compact(store, min_age_s=0)
    assert not set(_versions(store.table_dir("processed_tracking"))) & set(KEYS)
    assert not set(_versions(store.table_dir("recording_summaries"))) & set(KEYS)
    assert store.query(SUMMARY).n_frames.tolist() == [60 + i for i in range(len(KEYS))]
