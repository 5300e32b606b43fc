"""Benchmark 3: the warehouse (Parquet partitions + DuckDB views).

- write: one ``predictions`` partition of a 1 h, 50 Hz recording (180,000 frames x 4 body
  parts = 720,000 rows) through ``Warehouse.write_partition`` with the long DataFrame of
  :func:`dlc_tracking.tracking.predictions.to_long`, as the ``dlc_predictions`` asset does; a new
  partition each repeat (atomic write: temporary file, fsync, rename);
- summary: the ``recording_summary`` view (distance, mean speed, coverage per recording)
  over 100 recordings of ``processed_tracking`` (100 x 180,000 rows), through
  ``Warehouse.query`` (in-memory DuckDB with the views) and through the read-only
  ``warehouse.duckdb`` connection, alternately. The view reads ``recording_summaries``,
  written with each partition; the full scan that recomputes the same figures from every
  frame (``recording_summary_from_frames``, the view's former definition) is timed once,
  for reference, and its figures compared with the view's;
- point query: the processed tracking of one recording (``tracking(rec)`` macro) into a
  DataFrame, alternately with ``Warehouse.read_partition``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from bench import data
from bench.common import BenchResult, alternate, median, peak_rss_mib, repeat, timed, timed_cpu
from dlc_tracking.synthetic.openfield import arena_layout
from dlc_tracking.tracking.methods import BUILTIN_METHODS
from dlc_tracking.tracking.params import ProcessingParams
from dlc_tracking.tracking.predictions import to_long
from dlc_tracking.tracking.processed import process_tracking
from dlc_tracking.tracking.raw_state import raw_state_vector
from dlc_tracking.warehouse import Warehouse

FPS = 50.0
FULL_FRAMES, QUICK_FRAMES = 180_000, 18_000
FULL_RECORDINGS, QUICK_RECORDINGS = 100, 10
WRITE_TARGET_ROWS_S = 10e6
SUMMARY_TARGET_S = 1.0
ARENA_CM = 50.0
MODEL = "tiny"
SUMMARY_COLUMNS = ("subject, session, recording_id, n_frames, distance_cm, mean_speed_cm_s, "
                   "coverage")
SUMMARY_SQL = f"SELECT {SUMMARY_COLUMNS} FROM recording_summary ORDER BY recording_id"
FULL_SCAN_SQL = (f"SELECT {SUMMARY_COLUMNS} FROM recording_summary_from_frames "
                 "ORDER BY recording_id")


def _rid(i: int) -> str:
    return f"m{i:03d}__s1__openfield"


def _recording_row(rid: str, n_frames: int, ppcm: float) -> dict:
    """A ``recordings`` row like the ``recordings`` asset writes."""
    subject, session, stem = rid.split("__")
    return {
        "recording_id": rid, "subject": subject, "session": session,
        "video_path": f"/data/{subject}/{session}/{stem}.mp4", "video_file": f"{stem}.mp4",
        "tracking_type": "openfield",
        "start_time": pd.Timestamp("2026-01-05T10:00:00+01:00"), "n_frames": n_frames,
        "fps": FPS, "width_px": data.WIDTH, "height_px": data.HEIGHT,
        "duration_s": n_frames / FPS, "codec": "mp4v", "camera_view": "above",
        "pixels_per_cm": ppcm, "arena_shape": "square", "arena_width_cm": ARENA_CM,
        "arena_height_cm": ARENA_CM, "has_timestamps": False, "model_name": MODEL,
        "method_name": "two_ears", "session_yaml_sha": "0" * 16,
        "state_vector_status": "supported", "status_reason": None,
    }


def _processed_frame(poses, body_parts, time_s, ppcm: float) -> pd.DataFrame:
    """``processed_tracking`` rows of one recording (recording_id filled in per copy)."""
    method = BUILTIN_METHODS["two_ears"]
    params = ProcessingParams()
    raw = raw_state_vector(method, poses, body_parts, time_s, "above",
                           (data.WIDTH, data.HEIGHT))
    df = process_tracking(raw, params, pixels_per_cm=ppcm).to_frame()
    for i, (col, value) in enumerate([("recording_id", ""), ("model_name", MODEL),
                                      ("method_name", method.name),
                                      ("params_name", params.name),
                                      ("params_hash", params.param_hash)]):
        df.insert(i, col, value)
    return df


def _write_trials(wh: Warehouse, frames: list[pd.DataFrame], keys: list[str]):
    state = {"i": 0}

    def write() -> dict[str, float]:
        i = state["i"]
        state["i"] += 1
        seconds, cpu, _ = timed_cpu(
            lambda: wh.write_partition("predictions", keys[i], frames[i]))
        return {"s": seconds, "cpu_s": cpu}

    return write


def _fill_tracking(wh: Warehouse, n_recordings: int, processed: pd.DataFrame,
                   n_frames: int, ppcm: float) -> list[float]:
    """Write ``n_recordings`` recordings rows and processed_tracking partitions (each with
    its recording_summaries row, as the asset writes them)."""
    seconds = []
    for i in range(n_recordings):
        rid = _rid(i)
        wh.write_partition("recordings", rid, _complete(
            "recordings", pd.DataFrame([_recording_row(rid, n_frames, ppcm)])))
        df = processed.assign(recording_id=rid, x_cm=processed["x_cm"] + 0.01 * i)
        t, _ = timed(lambda df=df, rid=rid: wh.write_processed_tracking(rid, df, ARENA_CM,
                                                                        ARENA_CM))
        seconds.append(t)
    return seconds


def _query_trials(wh: Warehouse, rid: str):
    def summary_query() -> dict[str, float]:
        seconds, df = timed(lambda: wh.query(SUMMARY_SQL))
        return {"s": seconds, "rows": len(df)}

    def summary_connect() -> dict[str, float]:
        def go():
            con = wh.connect(read_only=True)
            try:
                return con.sql(SUMMARY_SQL).df()
            finally:
                con.close()

        seconds, df = timed(go)
        return {"s": seconds, "rows": len(df)}

    def point_macro() -> dict[str, float]:
        seconds, df = timed(lambda: wh.query("SELECT * FROM tracking(?)", params=[rid]))
        return {"s": seconds, "rows": len(df)}

    def point_partition() -> dict[str, float]:
        seconds, df = timed(lambda: wh.read_partition("processed_tracking", rid))
        return {"s": seconds, "rows": len(df)}

    return ({"query": summary_query, "connect": summary_connect},
            {"macro": point_macro, "partition": point_partition})


def _full_scan(wh: Warehouse) -> tuple[float, float, pd.DataFrame, pd.DataFrame]:
    """The full-scan recompute, once, and the fast view's figures to compare with it."""
    seconds, cpu, slow = timed_cpu(lambda: wh.query(FULL_SCAN_SQL))
    return seconds, cpu, slow, wh.query(SUMMARY_SQL)


def _report(res: BenchResult, writes: dict, to_long_s: list[float], fill_s: list[float],
            summary: dict, point: dict, n_rows: int, n_frames: int,
            full_scan: tuple[float, float, pd.DataFrame, pd.DataFrame]) -> None:
    write_s = median(writes["s"])
    res.add("predictions partition write", n_rows / write_s, "rows/s", ">=", WRITE_TARGET_ROWS_S,
            note=f"{n_rows:,} rows in {write_s * 1000:.0f} ms",
            samples=[n_rows / s for s in writes["s"]], cpu_s=median(writes["cpu_s"]))
    res.add("  to_long (DataFrame build, before the write)", median(to_long_s), "s",
            samples=to_long_s)
    fill = median(fill_s)
    res.add("processed_tracking partition write (+ its summary row)", n_frames / fill, "rows/s",
            note=f"median of {len(fill_s)} partitions", samples=[n_frames / s for s in fill_s])
    q, c = summary["query"]["s"], summary["connect"]["s"]
    res.add("recording_summary, Warehouse.query()", median(q), "s", "<=", SUMMARY_TARGET_S,
            note=f"{int(summary['query']['rows'][0])} recordings", samples=q,
            cpu_s=median(summary["query"]["cpu_s"]))
    res.add("recording_summary, read-only warehouse.duckdb", median(c), "s", "<=",
            SUMMARY_TARGET_S, samples=c, cpu_s=median(summary["connect"]["cpu_s"]))
    full_s, full_cpu, slow, fast = full_scan
    numbers = ["n_frames", "distance_cm", "mean_speed_cm_s", "coverage"]
    rel = ((fast[numbers] - slow[numbers]).abs() / slow[numbers].abs().clip(lower=1e-300)
           ).to_numpy().max()
    res.add("  full-scan recompute (recording_summary_from_frames, once, reference)", full_s,
            "s", note=f"same figures: max relative difference {rel:.1e}", cpu_s=full_cpu)
    m, p = point["macro"]["s"], point["partition"]["s"]
    res.add("point query tracking(rec) -> DataFrame", median(m), "s",
            note=f"{int(point['macro']['rows'][0]):,} rows", samples=m,
            cpu_s=median(point["macro"]["cpu_s"]))
    res.add("  read_partition (same rows)", median(p), "s", samples=p,
            cpu_s=median(point["partition"]["cpu_s"]))


def run(repeats: int | None = None, quick: bool = False) -> BenchResult:
    """Run the warehouse benchmark.

    Parameters
    ----------
    repeats : int, optional
        Measurements of each figure (default 5; the full-scan recompute runs once).
    quick : bool
        6-minute recordings and 10 of them instead of 1 hour and 100.

    Returns
    -------
    BenchResult
    """
    repeats = repeats or 5
    n_frames = QUICK_FRAMES if quick else FULL_FRAMES
    n_recordings = QUICK_RECORDINGS if quick else FULL_RECORDINGS
    x0, _, x1, _ = arena_layout(data.WIDTH, data.HEIGHT)
    ppcm = (x1 - x0) / ARENA_CM
    poses, parts, time_s = data.recording_poses(n_frames, FPS, seed=3)
    root = Path(tempfile.mkdtemp(prefix="bench-warehouse-"))
    try:
        wh = Warehouse(root)
        keys = [f"w{i:03d}__s1__openfield" for i in range(repeats)]
        longs = [timed(lambda k=k: to_long(k, MODEL, poses, parts, time_s)) for k in keys]
        frames, to_long_s = [df for _, df in longs], [t for t, _ in longs]
        wh.write_partition("predictions", "warmup__s1__openfield", frames[0].assign(
            recording_id="warmup__s1__openfield"))
        writes = repeat(_write_trials(wh, frames, keys), repeats)
        rss = {"the predictions writes": peak_rss_mib()}
        del frames, longs
        processed = _processed_frame(poses, parts, time_s, ppcm)
        t_fill, fill_s = timed(lambda: _fill_tracking(wh, n_recordings, processed, n_frames,
                                                      ppcm))
        wh.ensure_catalog()
        summary_trials, point_trials = _query_trials(wh, _rid(n_recordings // 2))
        summary = alternate(summary_trials, repeats)
        point = alternate(point_trials, repeats)
        rss["the fill, summary and point queries"] = peak_rss_mib()
        full_scan = _full_scan(wh)  # last: its DuckDB window over 18 M rows is the peak
        rss["the full-scan recompute"] = peak_rss_mib()
        res = BenchResult("warehouse")
        _report(res, writes, to_long_s, fill_s, summary, point, n_frames * len(parts),
                n_frames, full_scan)
        for after, mib in rss.items():
            res.add(f"peak RSS of the process after {after}", mib, "MiB",
                    note="high-water mark, inputs included")
        res.details = {"n_frames": n_frames, "n_body_parts": len(parts),
                       "predictions_rows": n_frames * len(parts),
                       "n_recordings": n_recordings,
                       "processed_rows_total": n_frames * n_recordings,
                       "fill_seconds": round(t_fill, 2), "repeats": repeats,
                       "root": str(root), "summary_sql": SUMMARY_SQL,
                       "full_scan_sql": FULL_SCAN_SQL,
                       "predictions_file_mib": round(
                           (wh.partition_path("predictions", keys[0]).stat().st_size) / 2**20, 2)}
        return res
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ----------------------------------------------------------------------------- archive scale

SCALE_SIZES, QUICK_SCALE_SIZES = (1_000, 10_000, 100_000), (200, 1_000)
SCALE_FRAMES = 100
SCALE_SUMMARY_TARGET_S, SCALE_POINT_TARGET_S = 0.3, 0.1
DIRECT_PACK_ABOVE = 10_000
"""Sizes above this are written as packs directly (see :func:`_fill_packed`)."""


def _complete(table: str, df: pd.DataFrame) -> pd.DataFrame:
    """Columns of the table the rows above lack: NULL (False where required)."""
    from dlc_tracking.warehouse import TABLES

    for column in TABLES[table].columns:
        if column.name not in df.columns:
            df[column.name] = None if column.nullable else False
    return df


def _fill_small(wh: Warehouse, start: int, stop: int, processed: pd.DataFrame) -> None:
    """Recordings ``start..stop-1``: a recordings row and a small processed_tracking
    partition (+ its summary row) each, through the store's own writes."""
    processed = _complete("processed_tracking", processed)
    for i in range(start, stop):
        rid = f"m{i // 100:05d}__s{i % 100:02d}__openfield"
        row = _recording_row(rid, SCALE_FRAMES, 10.0)
        wh.write_partition("recordings", rid, _complete("recordings", pd.DataFrame([row])))
        df = processed.assign(recording_id=rid)
        wh.write_processed_tracking(rid, df, ARENA_CM, ARENA_CM)


def _fill_packed(wh: Warehouse, start: int, stop: int, processed: pd.DataFrame) -> None:
    """Recordings ``start..stop-1`` written directly as the packs compaction makes of them
    (2,000 recordings per pack, through the compactor's own writer), for sizes where
    writing one file per recording first would take hours on this machine."""
    import pyarrow as pa

    from dlc_tracking.warehouse import TABLES
    from dlc_tracking.warehouse.arrow import _to_arrow
    from dlc_tracking.warehouse.compaction import RECORDINGS_PER_PACK, _publish_pack
    from dlc_tracking.warehouse.packs import pack_key
    from dlc_tracking.warehouse.store import _tracking_summaries

    processed = _complete("processed_tracking", processed)
    frames = _to_arrow(TABLES["processed_tracking"], processed.assign(recording_id="x"), "bench")
    summary = _complete("recording_summaries", _tracking_summaries(
        frames, "x", "-", ARENA_CM, ARENA_CM))
    row = _complete("recordings", pd.DataFrame([_recording_row("x__s__openfield",
                                                              SCALE_FRAMES, 10.0)]))
    ns = time.time_ns()
    for index, first in enumerate(range(start, stop, RECORDINGS_PER_PACK)):
        rids = [f"m{i // 100:05d}__s{i % 100:02d}__openfield"
                for i in range(first, min(stop, first + RECORDINGS_PER_PACK))]
        key = pack_key(ns, index)
        sources = {rid: f"{rid}@{ns:020d}-00000000.parquet" for rid in rids}
        parts = {"recordings": row, "processed_tracking": processed,
                 "recording_summaries": summary.assign(tracking_file=key)}
        for table, one in parts.items():
            many = pd.concat([one] * len(rids), ignore_index=True)
            many["recording_id"] = pd.Series(rids).repeat(len(one)).to_numpy()
            if table == "recordings":
                many["subject"] = [r.split("__")[0] for r in rids]
                many["session"] = [r.split("__")[1] for r in rids]
            data = _to_arrow(TABLES[table], many, "bench")
            wh.table_dir(table).mkdir(parents=True, exist_ok=True)
            _publish_pack(wh, table, key, pa.Table.from_batches(data.to_batches(),
                                                                data.schema), sources)


def _scale_queries(wh: Warehouse, rid: str, repeats: int) -> dict[str, list[float]]:
    """Summary and point query, through query() and the read-only DB file, alternated."""
    def db(sql: str, params=None):
        con = wh.connect(read_only=True)
        try:
            return (con.execute(sql, params) if params else con.sql(sql)).df()
        finally:
            con.close()

    trials = {
        "summary, query()": lambda: {"s": timed(lambda: wh.query(SUMMARY_SQL))[0]},
        "summary, warehouse.duckdb": lambda: {"s": timed(lambda: db(SUMMARY_SQL))[0]},
        "point, query()": lambda: {"s": timed(lambda: wh.query(
            "SELECT * FROM tracking(?)", params=[rid]))[0]},
        "point, warehouse.duckdb": lambda: {"s": timed(lambda: db(
            "SELECT * FROM tracking(?)", [rid]))[0]},
    }
    return {name: figures["s"] for name, figures in alternate(trials, repeats).items()}


def run_scale(repeats: int | None = None, quick: bool = False,
              sizes: tuple[int, ...] | None = None) -> BenchResult:
    """Archive scale: summary and point queries at 1,000 / 10,000 / 100,000 recordings,
    before and after compaction (``dlc_tracking.warehouse.compaction``).

    Each recording has a ``recordings`` row, 100 ``processed_tracking`` frames and its
    ``recording_summaries`` row, written through the store (one file per recording and
    table, then compacted), except above 10,000 recordings, where the rows beyond 10,000
    are written directly as the packs compaction would make (one file per recording
    first would take ~1.5 h here); the uncompacted figures are measured up to 10,000.
    """
    from dlc_tracking.warehouse.compaction import compact, file_counts

    repeats = repeats or 5
    sizes = sizes or (QUICK_SCALE_SIZES if quick else SCALE_SIZES)
    x0, _, x1, _ = arena_layout(data.WIDTH, data.HEIGHT)
    poses, parts, time_s = data.recording_poses(SCALE_FRAMES, FPS, seed=5)
    processed = _processed_frame(poses, parts, time_s, (x1 - x0) / ARENA_CM)
    res = BenchResult("warehouse_scale")
    root = Path(tempfile.mkdtemp(prefix="bench-warehouse-scale-"))
    try:
        wh = Warehouse(root)  # writers as the assets run them
        # compaction without waiting for the grace time (no other reader here), so that
        # its second pass removes the packed files at once
        maintenance = Warehouse(root, grace_s=0.0)
        done = 0
        for n in sizes:
            direct = n > DIRECT_PACK_ABOVE
            fill = _fill_packed if direct else _fill_small
            fill_s, _ = timed(lambda n=n, done=done, fill=fill: fill(wh, done, n, processed))
            done = n
            wh.ensure_catalog()
            rid = f"m{(n // 2) // 100:05d}__s{(n // 2) % 100:02d}__openfield"
            if not direct:
                for name, samples in _scale_queries(wh, rid, repeats).items():
                    res.add(f"{name}, {n:,} recordings, not compacted", median(samples), "s",
                            samples=samples)
            first, _ = timed(lambda: compact(maintenance, min_age_s=0))
            second, _ = timed(lambda: compact(maintenance, min_age_s=0))  # removes packed files
            wh.ensure_catalog()
            for name, samples in _scale_queries(wh, rid, repeats).items():
                target = SCALE_SUMMARY_TARGET_S if name.startswith("summary") else \
                    SCALE_POINT_TARGET_S
                gate = n == 10_000
                res.add(f"{name}, {n:,} recordings, compacted", median(samples), "s",
                        "<=" if gate else None, target if gate else None, samples=samples)
            if not direct:
                res.add(f"compaction pass, {n:,} recordings", first + second, "s",
                        note="pack + remove the packed files (2 passes)")
            res.details[f"n={n}"] = {"fill_s": round(fill_s, 1), "filled_as_packs": direct,
                                     "files_after": file_counts(wh),
                                     "summary_rows": len(wh.query(SUMMARY_SQL))}
        res.details.update({"sizes": list(sizes), "frames_per_recording": SCALE_FRAMES,
                            "repeats": repeats})
        return res
    finally:
        shutil.rmtree(root, ignore_errors=True)
