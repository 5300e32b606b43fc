"""Benchmark 5: orchestration overhead of the per-recording job.

The ``process_recording`` job (``recordings -> dlc_predictions -> raw_state_vectors ->
processed_tracking``) with *ingested* predictions (the ground truth of a synthetic session
written as DLC outputs of the registered model (:func:`bench.model.bench_model`: the tiny
model, or the speed model on a fresh set-up; only its registry entry matters here) into
``dlc_openfield/``; no inference, and DeepLabCut is not imported in this process), run through a
real Dagster instance (``dagster.instance_for_test``: SQLite run and event storage in a
temporary DAGSTER_HOME) with ``job.execute_in_process``, i.e. the in-process executor:
one run, four steps, their asset checks and materialization events.

Its peer, alternated with it in the same process: the same four asset functions called
in order as plain Python calls (Dagster's direct invocation with
``dagster.build_asset_context(partition_key=...)``: the same bodies, the same warehouse
reads and writes, checks and QC plots, but no run, no event log, no executor, no step
processes). The ratio of the two wall times is the orchestration overhead.

Backfill: 20 recordings (20 partitions of one backfill). A Dagster backfill launches one
run per partition; here the 20 runs are executed in process one after the other on the
same instance (``execute_in_process`` per partition key), against 20 plain pipelines. The
default run launcher would also start a fresh Python process per run and load the code
location there; that cost is measured separately (``import dlc_assets.definitions`` in a
new interpreter).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import BenchResult, alternate, median, timed, timed_cpu
from bench.model import BenchModel, bench_model

ROOT = Path(__file__).resolve().parents[1]
FULL_FRAMES, QUICK_FRAMES = 1_800, 300  # 1 minute at 30 fps
FPS = 30.0
FULL_BATCH, QUICK_BATCH = 20, 3
ASSIGNMENT = {"model": "tiny", "method": "two_ears"}


def _setup_registry(work: Path, bm: BenchModel):
    """A registry copy with the benchmark model registered (paired with two_ears).

    ``add_model`` derives the scorer with DeepLabCut's own helper, which imports all of
    DeepLabCut and PyTorch (~15-30 s, ~1 GB) although the job with ingested predictions
    never runs DLC. It runs in a child process, so that neither the import time nor its
    memory lands in this benchmark's process. Returns the registry path and the entry.
    """
    from dlc_tracking.registry.registry_file import load_registry

    registry = work / "registry.yaml"
    shutil.copy(ROOT / "registry" / "registry.yaml", registry)
    code = ("import sys; from pathlib import Path; "
            "from dlc_tracking.registry.editing import add_model; "
            "add_model(Path(sys.argv[1]), 'tiny', Path(sys.argv[2]), pair_with=['two_ears'])")
    done = subprocess.run([sys.executable, "-c", code, str(registry), str(bm.config)],
                          cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"registering {bm.config} in {registry} failed:\n"
                           f"{done.stderr[-3000:]}")
    return registry, load_registry(registry).model("tiny")


def _session_with_outputs(data_root: Path, model, n_frames: int) -> Path:
    """A synthetic session whose ground truth is written as the model's DLC outputs."""
    from dlc_tracking.io.dlc_files import output_names, write_predictions
    from dlc_tracking.synthetic.openfield import GROUND_TRUTH_NAME, make_session, read_ground_truth

    folder = make_session(data_root, "m000", "s1", n_frames=n_frames, fps=FPS, seed=5,
                          occlusion=0.02, assignment=ASSIGNMENT)
    gt = read_ground_truth(folder / GROUND_TRUTH_NAME)
    poses = gt.poses()
    poses[..., 2] = np.where(np.isnan(poses[..., 0]), 0.0, 0.99)
    order = [gt.body_parts.index(p) for p in model.canonical_body_parts]
    out = folder / "dlc_openfield"
    out.mkdir()
    h5_name, _ = output_names("openfield", model.scorer)
    write_predictions(out / h5_name, model.scorer, model.dlc_body_parts, poses[:, order])
    return folder


def _clone_sessions(template: Path, data_root: Path, n: int) -> list[str]:
    """``n`` copies of a session under new subjects; their recording ids."""
    from dlc_tracking.sessions.layout import recording_id

    ids = []
    for i in range(1, n + 1):
        subject = f"m{i:03d}"
        shutil.copytree(template, data_root / subject / template.name)
        ids.append(recording_id(subject, template.name, "openfield"))
    return ids


def _resources(work: Path, data_root: Path, registry: Path) -> dict:
    from resources import DataRoot, DLCInference, WarehouseResource

    return {"data_root": DataRoot(path=str(data_root), registry_path=str(registry)),
            "warehouse": WarehouseResource(root=str(work / "warehouse")),
            "dlc_inference": DLCInference(device="cpu", work_dir=str(work / "inference"))}


def _job_runner(instance, resources: dict):
    """``rid -> None``: one in-process run of the process_recording job."""
    from dlc_assets.definitions import build_definitions

    job = build_definitions(resources).resolve_job_def("process_recording")

    def run(rid: str) -> None:
        result = job.execute_in_process(partition_key=rid, instance=instance,
                                        raise_on_error=True)
        if not result.success:
            raise RuntimeError(f"process_recording failed for {rid}")

    return run


def _plain_runner(resources: dict):
    """``rid -> None``: the four asset functions called directly, in order."""
    import dagster as dg

    from dlc_assets.assets.tracking import (
        dlc_predictions,
        processed_tracking,
        raw_state_vectors,
        recordings,
    )

    data_root, warehouse = resources["data_root"], resources["warehouse"]

    def run(rid: str) -> None:
        recordings(dg.build_asset_context(partition_key=rid), data_root=data_root,
                   warehouse=warehouse)
        dlc_predictions(dg.build_asset_context(partition_key=rid), data_root=data_root,
                        warehouse=warehouse, dlc_inference=resources["dlc_inference"])
        raw_state_vectors(dg.build_asset_context(partition_key=rid), data_root=data_root,
                          warehouse=warehouse)
        processed_tracking(dg.build_asset_context(partition_key=rid), data_root=data_root,
                           warehouse=warehouse)

    return run


def _per_recording_trials(job, plain, rids: list[str]):
    """Trials over ``rids``; each returns seconds per recording."""
    def over(runner):
        def trial() -> dict[str, float]:
            seconds, cpu, _ = timed_cpu(lambda: [runner(r) for r in rids])
            return {"s": seconds / len(rids), "cpu_s": cpu / len(rids)}
        return trial

    return {"dagster job": over(job), "plain calls": over(plain)}


def code_location_load_s(repeats: int) -> list[float]:
    """Wall seconds to start Python and import the code location, in fresh processes."""
    out = []
    for _ in range(repeats):
        seconds, _ = timed(lambda: subprocess.run(
            [sys.executable, "-c", "import dlc_assets.definitions"], cwd=ROOT, check=True,
            capture_output=True))
        out.append(seconds)
    return out


def _report(res: BenchResult, single: dict, batch: dict, n_batch: int, load: list) -> None:
    for label, runs in (("1 recording", single), (f"{n_batch}-recording backfill", batch)):
        job, plain = runs["dagster job"]["s"], runs["plain calls"]["s"]
        ratios = [j / p for j, p in zip(job, plain, strict=True)]
        res.add(f"{label}: dagster job, per recording", median(job), "s", samples=job,
                cpu_s=median(runs["dagster job"]["cpu_s"]))
        res.add(f"{label}: plain calls, per recording", median(plain), "s", samples=plain,
                cpu_s=median(runs["plain calls"]["cpu_s"]))
        res.add(f"{label}: overhead ratio job / plain", median(ratios), "x",
                note=f"+{(median(job) - median(plain)):.2f} s per recording", samples=ratios)
    res.add("fresh process: import code location", median(load), "s",
            note="per run with the default run launcher", samples=load)


def run(repeats: int | None = None, quick: bool = False) -> BenchResult:
    """Run the orchestration benchmark.

    Parameters
    ----------
    repeats : int, optional
        Measurements of the single-recording case (default 3); the backfill case runs
        ``max(1, repeats // 3)`` times (each is already 20 recordings).
    quick : bool
        300-frame recordings and a 3-recording backfill.

    Returns
    -------
    BenchResult
    """
    import dagster as dg

    repeats = repeats or 3
    n_frames = QUICK_FRAMES if quick else FULL_FRAMES
    n_batch = QUICK_BATCH if quick else FULL_BATCH
    os.environ.setdefault("DAGSTER_TELEMETRY_DISABLED", "1")
    start = time.perf_counter()
    bm = bench_model()
    config = bm.config
    work = Path(tempfile.mkdtemp(prefix="bench-orchestration-"))
    phases: dict[str, float] = {"model": bm.ready_s}

    def phase(name: str, t0: float) -> float:
        now = time.perf_counter()
        phases[name] = now - t0
        return now

    try:
        registry, model = _setup_registry(work, bm)
        data_root = work / "data"
        t_sessions, template = timed(lambda: _session_with_outputs(data_root, model, n_frames))
        rids = _clone_sessions(template, data_root, n_batch + 1)
        home = work / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        resources = _resources(work, data_root, registry)
        t = phase("inputs", start + bm.ready_s)
        with dg.instance_for_test(temp_dir=str(home)) as instance:
            instance.add_dynamic_partitions("recordings", rids)
            job, plain = _job_runner(instance, resources), _plain_runner(resources)
            job(rids[0])  # warm-up: imports, first-run initialisation
            plain(rids[0])
            t = phase("warm_up", t)
            single = alternate(_per_recording_trials(job, plain, rids[:1]), repeats)
            t = phase("single", t)
            batch = alternate(_per_recording_trials(job, plain, rids[1:]),
                              max(1, repeats // 3))
            t = phase("backfill", t)
        load = code_location_load_s(3)
        phase("code_location_load", t)
        res = BenchResult("orchestration")
        _report(res, single, batch, n_batch, load)
        res.details = {"n_frames": n_frames, "fps": FPS, "n_backfill": n_batch,
                       "repeats_single": repeats, "repeats_backfill": max(1, repeats // 3),
                       "executor": "in_process (execute_in_process)",
                       "instance": "instance_for_test (SQLite storage)",
                       "sessions_setup_s": round(t_sessions, 2), "model": bm.kind,
                       "scorer": f"{model.scorer} (add_model, in a child process)",
                       "model_config": str(config),
                       "phase_wall_s": {k: round(v, 1) for k, v in phases.items()}}
        return res
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ----------------------------------------------------------------------------- Celery

CELERY_RECORDINGS = 8


def _celery_env(work: Path, data_root: Path, registry: Path, home: Path, broker: str) -> dict:
    return dict(os.environ, DAGSTER_HOME=str(home), DLC_PLATFORM_DATA_ROOT=str(data_root),
                DLC_PLATFORM_REGISTRY=str(registry),
                DLC_PLATFORM_WAREHOUSE=str(work / "warehouse"),
                DLC_PLATFORM_WORK_DIR=str(work / "inference"), DLC_PLATFORM_DEVICE="cpu",
                DLC_PLATFORM_EXECUTOR="celery", DLC_PLATFORM_CELERY_BROKER=broker,
                OMP_WAIT_POLICY="PASSIVE")


def _step_latencies(instance, run_id: str) -> list[float]:
    """Per step: seconds from the run's submission of the Celery task to the step's start
    in the worker (queueing, broker, worker pick-up, step set-up)."""
    import dagster as dg

    submitted, started = {}, {}
    for record in instance.get_records_for_run(run_id, limit=10_000).records:
        entry = record.event_log_entry
        event = entry.dagster_event
        if event is None or entry.step_key is None:
            continue
        if event.event_type == dg.DagsterEventType.ENGINE_EVENT and (
                event.message or "").startswith("Submitting celery task"):
            submitted[entry.step_key] = entry.timestamp
        elif event.event_type == dg.DagsterEventType.STEP_START:
            started[entry.step_key] = entry.timestamp
    return [started[k] - submitted[k] for k in submitted if k in started]


def run_celery(repeats: int | None = None, quick: bool = False) -> BenchResult:
    """8 recordings (ingested outputs) through the Celery executor with 2 workers (gpu and
    cpu queues, Redis on loopback) vs the in-process executor, alternated by recording.

    Each peer runs the recordings one after the other on the same SQLite instance (the
    Celery runs with ``dagster.execute_job`` on the code location's reconstructable job,
    its steps in the workers; the in-process runs with ``execute_in_process``). Also: per
    step, the latency from task submission to the step's start in a worker.
    """
    import dagster as dg
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    from tests.services import platform_worker, redis_server

    n = QUICK_BATCH if quick else CELERY_RECORDINGS
    n_frames = QUICK_FRAMES if quick else FULL_FRAMES
    bm = bench_model()
    work = Path(tempfile.mkdtemp(prefix="bench-celery-"))
    try:
        registry, model = _setup_registry(work, bm)
        data_root = work / "data"
        template = _session_with_outputs(data_root, model, n_frames)
        rids = _clone_sessions(template, data_root, 2 * n + 1)
        home = work / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        with redis_server(work / "redis") as redis:
            env = _celery_env(work, data_root, registry, home, redis["url"])
            os.environ.update({k: v for k, v in env.items() if k.startswith(("DLC_", "DAG"))})
            with platform_worker("gpu", env, work / "worker-gpu.log"), \
                    platform_worker("cpu", env, work / "worker-cpu.log"), \
                    dg.DagsterInstance.get() as instance:
                instance.add_dynamic_partitions("recordings", rids)
                recon = ReconstructableRepository.for_module(
                    "dlc_assets.definitions", "defs", working_directory=str(ROOT)
                ).get_reconstructable_job("process_recording")
                local = _job_runner(instance, _resources(work, data_root, registry))
                latencies: list[float] = []

                def celery(rid: str) -> None:
                    result = dg.execute_job(recon, instance=instance,
                                            tags={"dagster/partition": rid})
                    if not result.success:
                        raise RuntimeError(f"celery run failed for {rid}")
                    latencies.extend(_step_latencies(instance, result.run_id))

                celery(rids[0])  # warm-up: workers import the code location, first tasks
                local(rids[0])
                latencies.clear()
                queue = list(rids[1:])
                trials = {"celery executor (2 workers)": lambda: {
                              "s": timed(lambda: celery(queue.pop()))[0]},
                          "in-process executor": lambda: {
                              "s": timed(lambda: local(queue.pop()))[0]}}
                figures = alternate(trials, n)
        res = BenchResult("orchestration_celery")
        c = figures["celery executor (2 workers)"]["s"]
        p = figures["in-process executor"]["s"]
        res.add("celery executor (2 workers): wall per recording", median(c), "s", samples=c)
        res.add("in-process executor: wall per recording", median(p), "s", samples=p)
        res.add("overhead ratio celery / in-process", median(c) / median(p), "x",
                note=f"+{median(c) - median(p):.2f} s per recording")
        res.add("task latency: submission -> step start on a worker", median(latencies), "s",
                samples=latencies, note=f"{len(latencies)} steps")
        res.details = {"recordings_per_peer": n, "n_frames": n_frames, "broker": "redis",
                       "instance": "SQLite (DAGSTER_HOME in a temp dir)", "model": bm.kind}
        return res
    finally:
        shutil.rmtree(work, ignore_errors=True)
