"""Benchmark 4: the new-recordings sensor over large data roots.

Data roots of 1,000 and 10,000 tiny fake sessions (``session.yaml`` + a 1 KiB file named
``openfield.mp4``; the sensor never decodes videos), 100 sessions per subject, built once
per size under /tmp. For each size:

- *none new*: the second tick, with the cursor of a first tick that took every recording
  (and with every recording's dynamic partition present in the instance);
- *100 new*: 100 more sessions added, then ticks from that same cursor (each repeat sees
  the same 100 new recordings; the sensor requests at most
  ``DLC_PLATFORM_MAX_RUNS_PER_TICK`` = 20 runs and defers the other 80).

Three peers, alternated: the core ``dlc_tracking.sessions.scanning.scan`` and the real
Dagster sensor ``sensors.sessions.new_recordings_sensor`` evaluated with
``dagster.build_sensor_context`` on a ``DagsterInstance.ephemeral()`` (scan state loaded
from the file its cursor names, scan, state saved, dynamic-partition lookup, run requests),
once as a code server runs it from its second tick on (the state store remembers the last
state it loaded or saved, so an unchanged state is neither decoded nor encoded again) and
once with that memory cleared before each tick (the first tick of a new code server, which
``dagster-daemon`` starts about every minute: the state file is decoded).
Sessions are written with mtimes an hour old (an archive, not a copy in progress).
``DLC_PLATFORM_SETTLE_SECONDS`` is 0, so "settled" needs no second look (the work per
tick is the same).

A cProfile of one core scan (none new, smaller size) goes into the JSON details.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import shutil
import tempfile
import time
from pathlib import Path

from bench.common import BenchResult, alternate, median, timed

FULL_SIZES, QUICK_SIZES = (1_000, 10_000), (100, 1_000)
N_NEW = 100
SESSIONS_PER_SUBJECT = 100
TARGET_S = 1.0
SCALE_SIZE, SCALE_TARGET_S = 100_000, 2.0
"""Archive scale (``python -m bench --sensor-scale``): a tick at 100,000, none new, <= 2 s."""
SESSION_YAML = """tracking_type: openfield
start_time: '2026-01-05T10:00:00+01:00'
camera_view: above
arena: {shape: square, width_cm: 50.0, height_cm: 50.0}
assignment: {model: tiny, method: two_ears}
"""
VIDEO_BYTES = b"\0" * 1024


def make_sessions(root: Path, n: int, subject_prefix: str = "m") -> None:
    """Write ``n`` fake sessions under ``root/<subject>/<session>/``.

    Parameters
    ----------
    root : Path
        Data root.
    n : int
        Number of sessions (100 per subject).
    subject_prefix : str
        Subject folder names are ``<prefix><number>``.
    """
    # an archive: files and folders last changed an hour ago
    old = time.time() - 3600
    for i in range(n):
        folder = (root / f"{subject_prefix}{i // SESSIONS_PER_SUBJECT:04d}"
                  / f"2026-01-{1 + i % 28:02d}_s{i % SESSIONS_PER_SUBJECT:03d}")
        folder.mkdir(parents=True)
        (folder / "session.yaml").write_text(SESSION_YAML)
        (folder / "openfield.mp4").write_bytes(VIDEO_BYTES)
        for path in (folder / "session.yaml", folder / "openfield.mp4", folder):
            os.utime(path, (old, old))


def _sensor_context(instance, cursor, data_root):
    import dagster as dg

    return dg.build_sensor_context(instance=instance, cursor=cursor,
                                   resources={"data_root": data_root})


def _trials(root: Path, state: dict, cursor: str, instance, data_root):
    from dlc_tracking.sessions.scanning import ScanStateStore, scan
    from sensors.sessions import new_recordings_sensor

    def core() -> dict[str, float]:
        seconds, result = timed(lambda: scan(root, state, time.time(), 0.0, 20))
        return {"s": seconds, "to_process": len(result.to_process),
                "sessions_read": result.sessions_read}

    def sensor() -> dict[str, float]:
        ctx = _sensor_context(instance, cursor, data_root)
        seconds, result = timed(lambda: new_recordings_sensor(ctx))
        return {"s": seconds, "runs": len(result.run_requests or [])}

    def sensor_cold() -> dict[str, float]:
        ScanStateStore.forget()
        return sensor()

    return {"core scan": core, "dagster sensor": sensor,
            "dagster sensor, state file decoded": sensor_cold}


def _first_tick(root: Path, instance, data_root) -> tuple[dict, str, float]:
    """The first sensor tick over a fresh root (every recording taken): state and cursor."""
    from sensors.sessions import new_recordings_sensor, scan_state_store

    os.environ["DLC_PLATFORM_MAX_RUNS_PER_TICK"] = "1000000"
    try:
        seconds, result = timed(lambda: new_recordings_sensor(
            _sensor_context(instance, None, data_root)))
    finally:
        del os.environ["DLC_PLATFORM_MAX_RUNS_PER_TICK"]
    keys = [r.partition_key for r in result.run_requests]
    instance.add_dynamic_partitions("recordings", keys)
    state, _ = scan_state_store(_sensor_context(instance, None, data_root)).load(result.cursor)
    return state, result.cursor, seconds


def profile_scan(root: Path, state: dict, top: int = 12) -> str:
    """cProfile of one core scan: the ``top`` functions by cumulative time, as text."""
    from dlc_tracking.sessions.scanning import scan

    prof = cProfile.Profile()
    prof.runcall(scan, root, state, time.time(), 0.0, 20)
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def _measure_size(n: int, repeats: int, work: Path, profile: bool) -> tuple[dict, dict]:
    import dagster as dg

    from resources import DataRoot
    from sensors.sessions import scan_state_store

    root = work / f"root-{n}"
    t_build, _ = timed(lambda: make_sessions(root, n))
    registry = Path(__file__).resolve().parents[1] / "registry" / "registry.yaml"
    data_root = DataRoot(path=str(root), registry_path=str(registry))
    with dg.DagsterInstance.ephemeral() as instance:
        state, cursor, first_s = _first_tick(root, instance, data_root)
        none_new = alternate(_trials(root, state, cursor, instance, data_root), repeats)
        profile_text = profile_scan(root, state) if profile else None
        make_sessions(root, N_NEW, subject_prefix="new")
        with_new = alternate(_trials(root, state, cursor, instance, data_root), repeats)
        store = scan_state_store(_sensor_context(instance, None, data_root))
        state_file_bytes = store.state_path(cursor).stat().st_size
    info = {"build_s": round(t_build, 2), "first_tick_s": round(first_s, 3),
            "runs_requested_with_new": with_new["dagster sensor"]["runs"][0],
            "cursor_bytes": len(cursor),
            "state_file_bytes": state_file_bytes,
            "sessions_read_none_new": none_new["core scan"]["sessions_read"][0],
            "sessions_read_with_new": with_new["core scan"]["sessions_read"][0]}
    if profile_text:
        info["profile_core_scan_none_new"] = profile_text
    return {"none new": none_new, f"{N_NEW} new": with_new}, info


def run(repeats: int | None = None, quick: bool = False,
        sizes: tuple[int, ...] | None = None) -> BenchResult:
    """Run the sensor benchmark.

    Parameters
    ----------
    repeats : int, optional
        Ticks of each peer per case (default 5; 3 for 10,000 recordings).
    quick : bool
        100 and 1,000 sessions instead of 1,000 and 10,000.

    Returns
    -------
    BenchResult
    """
    sizes = sizes or (QUICK_SIZES if quick else FULL_SIZES)
    os.environ["DLC_PLATFORM_SETTLE_SECONDS"] = "0"
    res = BenchResult("sensor")
    work = Path(tempfile.mkdtemp(prefix="bench-sensor-"))
    try:
        for n in sizes:
            # a tick over 10,000 recordings takes seconds: 3 repeats unless told otherwise
            n_repeats = repeats or (3 if n >= 10_000 else 5)
            # one profile (at the smaller size: the cost per recording is the same)
            cases, info = _measure_size(n, n_repeats, work, profile=n == sizes[0])
            info["repeats"] = n_repeats
            res.details[f"n={n}"] = info
            for case, peers in cases.items():
                for peer, figures in peers.items():
                    big_quiet = n == sizes[-1] and case == "none new"
                    target = SCALE_TARGET_S if n >= SCALE_SIZE else TARGET_S
                    res.add(f"{peer}, {n:,} recordings, {case}", median(figures["s"]), "s",
                            "<=" if big_quiet else None, target if big_quiet else None,
                            samples=figures["s"], cpu_s=median(figures["cpu_s"]))
            res.add(f"first tick, {n:,} recordings all new", info["first_tick_s"], "s",
                    note="dagster sensor, once")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res.details.update({"sizes": list(sizes), "n_new": N_NEW, "settle_s": 0,
                        "max_runs_per_tick": 20})
    return res
