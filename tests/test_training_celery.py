"""A training run on a Celery ``gpu``-queue worker: the production instance (PostgreSQL),
Redis, a real ``dlc-platform worker --queue gpu`` subprocess; the train_model_version
job's steps (dlc_training_runs, model_evaluations) run there and register the version."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest

from dlc_tracking.registry.registry_file import load_registry
from tests.services import platform_worker
from tests.test_celery import cluster  # noqa: F401  (the fixture: PostgreSQL + Redis + env)
from tests.training_helpers import BASE, project_with_registry

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _recon_job(name: str):
    """The job, reconstructed by calling ``build_definitions()`` (not the module's ``defs``,
    built once at its first import in this test process, with that moment's environment):
    the executor and resources follow this test's environment here and on the worker."""
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    return ReconstructableRepository.for_module("tests.pipeline_helpers", "current_definitions",
                                                working_directory=str(ROOT)
                                                ).get_reconstructable_job(name)


def test_training_step_runs_on_a_gpu_queue_worker(cluster, tiny_pytorch_config,  # noqa: F811
                                                  monkeypatch) -> None:
    from dlc_tracking.training.versions import plan_training

    config, registry = project_with_registry(tiny_pytorch_config, cluster["tmp"] / "lab")
    monkeypatch.setenv("DLC_PLATFORM_REGISTRY", str(registry))
    env = dict(cluster["env"], DLC_PLATFORM_REGISTRY=str(registry))
    plan = plan_training(registry, BASE)
    with (platform_worker("gpu", env, cluster["tmp"] / "worker-gpu.log"),
          dg.DagsterInstance.get() as instance):
        instance.add_dynamic_partitions("model_versions", [plan.version])
        result = dg.execute_job(_recon_job("train_model_version"), instance=instance,
                                raise_on_error=False,
                                tags={"dagster/partition": plan.version})
        mats = {}
        for event in instance.all_logs(result.run_id):
            if event.dagster_event and event.dagster_event.is_step_materialization:
                mat = event.dagster_event.step_materialization_data.materialization
                mats[mat.asset_key.to_user_string()] = {k: v.value
                                                        for k, v in mat.metadata.items()}
    assert result.success, "\n".join(str(e.message) for e in result.all_events
                                     if e.is_failure)
    for key in ("dlc_training_runs", "model_evaluations"):
        assert mats[key]["worker_queue"] == "gpu", (key, mats[key])
        assert mats[key]["worker_name"].startswith("gpu-")
        assert mats[key]["worker_pid"] != os.getpid()
    assert mats["dlc_training_runs"]["epochs"] == 1
    entry = load_registry(registry).model(plan.version)
    assert (entry.project_config.parent / entry.derived["snapshot"]).is_file()
    rows = cluster["warehouse"].read_partition("model_evaluations", plan.version)
    assert (rows["body_part"] == "all").any()
