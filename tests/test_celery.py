"""Scale-out on dagster-celery, with real servers and real worker processes: a private
PostgreSQL (instance storage) and Redis (broker), two `dlc-platform worker` subprocesses
(`gpu` with the tiny model's files, `cpu` without any), the production instance file and
the daemon. No mocks: the steps run where Celery sends them."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml

from dlc_tracking.synthetic.openfield import make_session
from dlc_tracking.warehouse import Warehouse
from tests.services import platform_worker, postgres_server, redis_server

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow
TABLES = ("recordings", "predictions", "raw_state_vectors", "arena_boundaries",
          "processed_tracking", "recording_summaries", "processed_body_parts")
IGNORED = {"tracking_file"}  # names the file version, different in every run


def wait_for(predicate, timeout_s: float, what: str, logs: list[Path] = ()):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    tails = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                      for p in logs if p.exists())
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}\n{tails}")


def table_rows(store: Warehouse, rid: str) -> dict[str, pd.DataFrame]:
    """Every table's rows of one recording, sorted, for comparing two runs."""
    out = {}
    for table in TABLES:
        df = store.read_partition(table, rid)
        df = df[[c for c in df.columns if c not in IGNORED]]
        out[table] = df.sort_values(list(df.columns[:6])).reset_index(drop=True)
    return out


def assert_same_rows(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    for table in TABLES:
        pd.testing.assert_frame_equal(a[table], b[table], check_dtype=True, obj=table)


@pytest.fixture
def cluster(tmp_path, registry_path, monkeypatch):
    """PostgreSQL + Redis + production instance + env shared by every process."""
    home, data, warehouse = tmp_path / "home", tmp_path / "data", tmp_path / "warehouse"
    for d in (home, data, warehouse):
        d.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.production.yaml", home / "dagster.yaml")
    with postgres_server() as pg, redis_server(tmp_path / "redis") as redis:
        env = {"DAGSTER_HOME": str(home), "DAGSTER_PG_HOST": pg["host"],
               "DAGSTER_PG_PORT": str(pg["port"]), "DAGSTER_PG_DB": pg["db"],
               "DAGSTER_PG_USERNAME": pg["user"], "DAGSTER_PG_PASSWORD": pg["password"],
               "DLC_PLATFORM_DATA_ROOT": str(data), "DLC_PLATFORM_REGISTRY": str(registry_path),
               "DLC_PLATFORM_WAREHOUSE": str(warehouse),
               "DLC_PLATFORM_WORK_DIR": str(tmp_path / "work"), "DLC_PLATFORM_DEVICE": "cpu",
               "DLC_PLATFORM_SETTLE_SECONDS": "1", "DLC_PLATFORM_EXECUTOR": "celery",
               "DLC_PLATFORM_CELERY_BROKER": redis["url"],
               "DLC_PLATFORM_CELERY_LOST_AFTER_S": "10", "OMP_WAIT_POLICY": "PASSIVE"}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        with dg.DagsterInstance.get():  # create the storage before any other process does
            pass
        yield {"env": dict(os.environ), "home": home, "data": data, "tmp": tmp_path,
               "warehouse": Warehouse(warehouse), "redis": redis, "pg": pg,
               "registry": registry_path}


def _workers(cluster, gpu_env: dict | None = None):
    import contextlib

    stack = contextlib.ExitStack()
    cpu_env = dict(cluster["env"])
    # The cpu worker holds no model files: its registry points the model elsewhere.
    gpu = stack.enter_context(platform_worker("gpu", dict(cluster["env"], **(gpu_env or {})),
                                              cluster["tmp"] / "worker-gpu.log"))
    cpu = stack.enter_context(platform_worker("cpu", cpu_env, cluster["tmp"] / "worker-cpu.log"))
    return stack, gpu, cpu


def _recon_job():
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    return ReconstructableRepository.for_module("tests.pipeline_helpers", "current_definitions",
                                                working_directory=str(ROOT)
                                                ).get_reconstructable_job("process_recording")


def _run(cluster, rid: str, tags: dict | None = None):
    with dg.DagsterInstance.get() as instance:
        if not instance.has_dynamic_partition("recordings", rid):
            instance.add_dynamic_partitions("recordings", [rid])
        result = dg.execute_job(_recon_job(), instance=instance, raise_on_error=False,
                                tags={"dagster/partition": rid, **(tags or {})})
        materializations = {}
        for event in instance.all_logs(result.run_id):
            if event.dagster_event and event.dagster_event.is_step_materialization:
                mat = event.dagster_event.step_materialization_data.materialization
                materializations[mat.asset_key.to_user_string()] = {
                    k: v.value for k, v in mat.metadata.items()}
        return result, materializations


def test_steps_on_gpu_and_cpu_workers_equal_in_process(cluster):
    make_session(cluster["data"], "mouse1", "day1", n_frames=40, seed=3)
    rid = "mouse1__day1__openfield"
    stack, gpu, cpu = _workers(cluster)
    with stack:
        result, mats = _run(cluster, rid)
        assert result.success, "\n".join(
            str(e.message) for e in result.all_events if e.is_failure)
    # Inference ran in a process of the gpu worker, everything else on the cpu worker.
    assert mats["dlc_predictions"]["worker_queue"] == "gpu"
    assert mats["dlc_predictions"]["worker_name"].startswith("gpu-")
    for key in ("recordings", "raw_state_vectors", "processed_tracking"):
        assert mats[key]["worker_queue"] == "cpu", (key, mats[key])
        assert mats[key]["worker_name"].startswith("cpu-")
    assert mats["dlc_predictions"]["worker_pid"] != os.getpid()
    celery_rows = table_rows(cluster["warehouse"], rid)

    # The same session through the in-process executor, into another warehouse.
    from tests.pipeline_helpers import run_recording

    other = cluster["tmp"] / "in_process"
    make_session(other / "data", "mouse1", "day1", n_frames=40, seed=3)
    from resources import DataRoot, DLCInference, WarehouseResource

    local = {"data_root": DataRoot(path=str(other / "data"),
                                   registry_path=str(cluster["registry"])),
             "warehouse": WarehouseResource(root=str(other / "warehouse")),
             "dlc_inference": DLCInference(device="cpu", work_dir=str(other / "work"))}
    with dg.instance_for_test() as instance:
        os.environ.pop("DLC_PLATFORM_EXECUTOR")
        local_result = run_recording(instance, local, rid)
        assert local_result.success
    local_rows = table_rows(Warehouse(other / "warehouse"), rid)
    for table in TABLES:
        a, b = celery_rows[table], local_rows[table]
        drop = [c for c in ("video_path",) if c in a.columns]  # another data root
        pd.testing.assert_frame_equal(a.drop(columns=drop), b.drop(columns=drop), obj=table)


def test_model_on_a_worker_without_its_files_fails_clearly(cluster, tmp_path):
    from dlc_tracking.registry.registry_file import read_registry_yaml

    # A registry where the tiny model names the queue 'gpu_lab2', served by a worker whose
    # registry points the model at a project that is not on its machine.
    reg = read_registry_yaml(cluster["registry"])
    reg["models"]["tiny_openfield"]["queue"] = "gpu_lab2"
    registry = tmp_path / "registry_queue.yaml"
    registry.write_text(yaml.safe_dump(reg, sort_keys=False))
    missing = dict(reg)
    missing["models"] = {k: dict(v) for k, v in reg["models"].items()}
    project = Path(str(reg["models"]["tiny_openfield"]["project"]))
    moved = tmp_path / "elsewhere" / project.parent.name
    missing["models"]["tiny_openfield"]["project"] = str(moved / project.name)
    lab2_registry = tmp_path / "registry_lab2.yaml"
    lab2_registry.write_text(yaml.safe_dump(missing, sort_keys=False))
    os.environ["DLC_PLATFORM_REGISTRY"] = str(registry)
    env = dict(os.environ)

    make_session(cluster["data"], "mouse1", "bad", n_frames=30, seed=4)
    make_session(cluster["data"], "mouse2", "good", n_frames=30, seed=5)
    import contextlib

    from dlc_assets.execution.celery_executor import GPU_QUEUE_TAG, model_queue_tags
    from dlc_tracking.sessions.layout import find_recording

    bad = find_recording(cluster["data"], "mouse1__bad__openfield")
    assert model_queue_tags(bad, registry) == {GPU_QUEUE_TAG: "gpu_lab2"}
    with contextlib.ExitStack() as stack:
        stack.enter_context(platform_worker("gpu_lab2", dict(
            env, DLC_PLATFORM_REGISTRY=str(lab2_registry)), tmp_path / "worker-lab2.log"))
        stack.enter_context(platform_worker("cpu", env, tmp_path / "worker-cpu.log"))
        stack.enter_context(platform_worker("gpu", env, tmp_path / "worker-gpu.log"))
        # Without the sensor's tag (as reprocess and backfills run it): the executor
        # finds the model's queue itself.
        result, _ = _run(cluster, bad.recording_id)
        assert not result.success
        text = "\n".join(str(e.message) + str(getattr(e, "event_specific_data", ""))
                         for e in result.all_events if e.is_failure)
        assert "gpu_lab2" in text and "worker gpu_lab2-" in text, text
        assert str(moved) in text, text
        # Another recording, sent to the gpu queue by the run tag (which wins over the
        # registry), is not affected.
        good, _ = _run(cluster, "mouse2__good__openfield", tags={GPU_QUEUE_TAG: "gpu"})
        assert good.success
    store = cluster["warehouse"]
    assert "mouse2__good__openfield" in store.partitions("processed_tracking")
    assert bad.recording_id not in store.partitions("predictions")


def test_broker_down_fails_at_once_naming_the_broker(cluster):
    make_session(cluster["data"], "mouse1", "nobroker", n_frames=20, seed=6)
    url = cluster["redis"]["url"]
    cluster["redis"]["stop"]()
    started = time.monotonic()
    result, _ = _run(cluster, "mouse1__nobroker__openfield")
    elapsed = time.monotonic() - started
    assert not result.success
    messages = "\n".join(str(e.message) + repr(e.event_specific_data)
                         for e in result.all_events if e.is_failure or e.is_engine_event)
    assert url in messages and "cannot be reached" in messages, messages
    assert elapsed < 60, elapsed
