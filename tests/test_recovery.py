"""Crash recovery with real processes: a Celery gpu worker killed (-9) mid-inference, a run
process killed (-9) on the embedded instance, the daemon restarted with runs queued, and
SIGTERM to the daemon, the webserver and a worker. The daemon's run monitoring and run
retries (dagster.yaml / deploy/dagster.production.yaml) do the recovery; the warehouse
afterwards equals a clean run's."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from dlc_assets.execution.run_launcher import run_process_id
from dlc_tracking.synthetic.openfield import make_session
from dlc_tracking.warehouse import Warehouse
from tests.pipeline_helpers import session_with_manual_outputs
from tests.services import free_port, kill_tree, platform_worker, worker_tree
from tests.test_celery import assert_same_rows, cluster, table_rows, wait_for  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


def start(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    with open(log, "a") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout_s: float = 30) -> float:
    """Send ``sig`` to the process group, as systemd (KillMode=control-group) and Ctrl-C
    do; seconds until the process and its group are gone."""
    started = time.monotonic()
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return 0.0
    try:
        proc.wait(timeout_s)
        while time.monotonic() - started < timeout_s:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        return time.monotonic() - started
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if proc.poll() is None:
            proc.wait()


def runs(status: list | None = None) -> list:
    """Runs of the per-recording job (not the registry refreshes), newest first."""
    with dg.DagsterInstance.get() as instance:
        return list(instance.get_runs(filters=dg.RunsFilter(
            job_name="process_recording", statuses=status or [])))


def step_started(run_id: str, step_key: str) -> bool:
    with dg.DagsterInstance.get() as instance:
        records = instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.STEP_START).records
        return any(r.event_log_entry.step_key == step_key for r in records)


def touch_recording(folder: Path) -> None:
    """A new mtime on the video: the sensor requests the recording again (same content)."""
    later = time.time() - 5
    os.utime(folder / "openfield.mp4", (later, later))


def kill_mid_inference_and_recover(env: dict, data: Path, store: Warehouse, logs: list[Path],
                                   kill, revive=None, detect_limit_s: float = 60) -> dict:
    """Clean run by the sensor, then a second run killed during dlc_predictions: it must be
    marked failed within ``detect_limit_s``, retried, finish, and leave the same rows."""
    staging = data.parent / "staging"
    folder = make_session(staging, "mouse1", "day1", n_frames=400, seed=7)
    rid = "mouse1__day1__openfield"
    shutil.copytree(folder, data / "mouse1" / "day1")
    wait_for(lambda: [r for r in runs([dg.DagsterRunStatus.SUCCESS])], 900,
             "the clean run", logs)
    clean = table_rows(store, rid)
    touch_recording(data / "mouse1" / "day1")
    second = wait_for(lambda: [r for r in runs() if r.status != dg.DagsterRunStatus.SUCCESS],
                      180, "the second run", logs)[0]
    wait_for(lambda: step_started(second.run_id, "dlc_predictions"), 600,
             "inference of the second run", logs)
    killed = time.monotonic()  # inside inference (model load + 400 frames: tens of s)
    kill(second)
    wait_for(lambda: [r for r in runs([dg.DagsterRunStatus.FAILURE])
                      if r.run_id == second.run_id], detect_limit_s + 30,
             "the killed run to be marked failed", logs)
    detected_s = time.monotonic() - killed
    if revive is not None:
        revive()
    retry = wait_for(lambda: [r for r in runs([dg.DagsterRunStatus.SUCCESS])
                              if r.tags.get("dagster/parent_run_id") == second.run_id],
                     900, "the retried run to succeed", logs)[0]
    recovered_s = time.monotonic() - killed
    assert_same_rows(clean, table_rows(store, rid))
    print(f"detected after {detected_s:.1f} s, recovered after {recovered_s:.1f} s")
    assert detected_s <= detect_limit_s, detected_s
    return {"detected_s": detected_s, "recovered_s": recovered_s, "retry": retry}


def test_gpu_worker_killed_mid_inference_is_retried(cluster):  # noqa: F811
    tmp, env = cluster["tmp"], cluster["env"]
    logs = [tmp / "daemon.log", tmp / "worker-gpu.log", tmp / "worker-cpu.log",
            tmp / "worker-gpu2.log"]
    daemon = start([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], env, logs[0])
    try:
        with platform_worker("cpu", env, logs[2]), platform_worker("gpu", env, logs[1]) as gpu:
            import contextlib

            later = contextlib.ExitStack()
            with later:
                def kill(_run) -> None:
                    kill_tree(worker_tree(gpu))  # the machine is gone: every process

                def revive() -> None:  # it comes back (systemd Restart=always)
                    later.enter_context(platform_worker("gpu", env, logs[3]))

                # lost after 10 s of silence, checked every 5 s: failed within ~20 s
                kill_mid_inference_and_recover(env, cluster["data"], cluster["warehouse"], logs,
                                               kill, revive, detect_limit_s=40)
    finally:
        assert stop(daemon) < 30


@pytest.fixture
def embedded(tmp_path, registry_path, monkeypatch):
    """The embedded instance (SQLite, the repository's dagster.yaml) and its daemon's env."""
    home, data, warehouse = tmp_path / "home", tmp_path / "data", tmp_path / "warehouse"
    for d in (home, data, warehouse):
        d.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {"DAGSTER_HOME": str(home), "DLC_PLATFORM_DATA_ROOT": str(data),
           "DLC_PLATFORM_REGISTRY": str(registry_path), "DLC_PLATFORM_WAREHOUSE": str(warehouse),
           "DLC_PLATFORM_WORK_DIR": str(tmp_path / "work"), "DLC_PLATFORM_DEVICE": "cpu",
           "DLC_PLATFORM_SETTLE_SECONDS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    monkeypatch.delenv("DLC_PLATFORM_EXECUTOR", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with dg.DagsterInstance.get():  # create the storage now, not in a race with the daemon
        pass
    yield {"env": dict(os.environ), "home": home, "data": data, "tmp": tmp_path,
           "warehouse": Warehouse(warehouse), "registry": registry_path}


def test_run_process_killed_on_embedded_instance_is_retried(embedded):
    env, tmp = embedded["env"], embedded["tmp"]
    logs = [tmp / "daemon.log"]
    daemon = start([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], env, logs[0])
    try:
        def kill(run) -> None:
            with dg.DagsterInstance.get() as instance:
                pid, _ = run_process_id(instance, run.run_id)
            os.kill(pid, signal.SIGKILL)

        # run monitoring polls every 10 s (dagster.yaml): failed within ~10-20 s
        kill_mid_inference_and_recover(env, embedded["data"], embedded["warehouse"], logs,
                                       kill, detect_limit_s=45)
    finally:
        assert stop(daemon) < 30


def test_daemon_restarted_with_runs_queued_loses_nothing(embedded, registry):
    env, tmp, data = embedded["env"], embedded["tmp"], embedded["data"]
    logs = [tmp / "daemon.log"]
    scorer = registry.model("tiny_openfield").scorer
    rids = []
    for i in range(5):  # more than max_concurrent_runs (2): some wait in the queue
        folder = session_with_manual_outputs(tmp / "staging", f"m{i}", "s", scorer,
                                             ["nose", "left_ear", "right_ear", "tail_base"],
                                             n_frames=60, seed=i)
        rids.append(f"m{i}__s__openfield")
        shutil.copytree(folder, data / f"m{i}" / "s")
    daemon = start([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], env, logs[0])
    try:
        wait_for(lambda: [r for r in runs([dg.DagsterRunStatus.QUEUED])], 300,
                 "runs waiting in the queue", logs)
        assert stop(daemon) < 30
        daemon = start([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], env,
                       logs[0])
        store = embedded["warehouse"]
        wait_for(lambda: set(rids) <= set(store.partitions("processed_tracking")), 900,
                 "every recording processed", logs)
        wait_for(lambda: not [r for r in runs() if not r.is_finished], 300,
                 "every run finished", logs)
        done = runs()
        partitions = sorted(r.tags.get("dagster/partition") for r in done
                            if not r.tags.get("dagster/parent_run_id"))
        assert partitions == sorted(rids), partitions     # one run each: no duplicate
        assert {r.status for r in done} <= {dg.DagsterRunStatus.SUCCESS,
                                           dg.DagsterRunStatus.FAILURE}
        by_partition = {}
        for r in done:
            by_partition.setdefault(r.tags["dagster/partition"], []).append(r.status)
        assert all(dg.DagsterRunStatus.SUCCESS in s for s in by_partition.values())
    finally:
        assert stop(daemon) < 30


def _up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2):
            return True
    except OSError:
        return False


def test_sigterm_stops_webserver_daemon_and_worker_within_30_s(cluster):  # noqa: F811
    tmp, env = cluster["tmp"], cluster["env"]
    port = free_port()
    web = start([str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1",
                 "-p", str(port)], env, tmp / "web.log")
    daemon = start([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], env,
                   tmp / "daemon.log")
    with platform_worker("cpu", env, tmp / "worker-cpu.log") as worker:
        wait_for(lambda: _up(port), 240, "the webserver", [tmp / "web.log"])
        time.sleep(5)
        times = {"webserver": stop(web), "daemon": stop(daemon), "worker": stop(worker)}
    print(times)
    assert all(t < 30 for t in times.values()), times
