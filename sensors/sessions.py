"""Sensors: recordings appearing (or changing) under the data root, and registry edits."""


import hashlib
import os
import time
from pathlib import Path

import dagster as dg

from dlc_assets.execution.celery_executor import model_queue_tags
from dlc_assets.jobs import process_recording_job, update_registry_job
from dlc_assets.partitions import recordings_partitions
from dlc_tracking.sessions.scanning import ScanStateStore, run_key, scan
from resources import DataRoot

# The tag Dagster gives every run a sensor requested with a run key (not exported by dagster).
RUN_KEY_TAG = "dagster/run_key"


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def scan_state_store(context: dg.SensorEvaluationContext) -> ScanStateStore:
    """Where this sensor keeps its scan state: the instance's local storage."""
    return ScanStateStore(Path(context.instance.storage_directory()) / "dlc_platform"
                          / "new_recordings_sensor")


def _runs_with_keys(instance: dg.DagsterInstance, keys: list[str], chunk: int = 500
                    ) -> set[str]:
    """The run keys among ``keys`` that some run of the instance carries.

    One query per ``chunk`` keys rather than one per key: a first tick over a large
    archive requests thousands of runs.
    """
    taken: set[str] = set()
    for start in range(0, len(keys), chunk):
        part = keys[start:start + chunk]
        for run in instance.get_runs(filters=dg.RunsFilter(tags={RUN_KEY_TAG: part})):
            taken.add(run.tags.get(RUN_KEY_TAG, ""))
    return taken


def _missing_partitions(instance: dg.DagsterInstance, keys: list[str]) -> list[str]:
    """The keys among ``keys`` that are not yet partitions of ``recordings``.

    A tick requests at most DLC_PLATFORM_MAX_RUNS_PER_TICK runs: one look-up per key then
    costs milliseconds, where listing every partition of a 100,000-recording archive
    costs ~0.35 s. A first tick over a large archive lists them once instead.
    """
    name = recordings_partitions.name
    if len(keys) <= 200:
        return [key for key in keys if not instance.has_dynamic_partition(name, key)]
    existing = set(instance.get_dynamic_partitions(name))
    return [key for key in keys if key not in existing]


@dg.sensor(
    job=process_recording_job, minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Finds new or changed recordings under the data root once their files are "
    "settled, adds their partitions and requests one run each (bounded per tick).",
)
def new_recordings_sensor(context: dg.SensorEvaluationContext, data_root: DataRoot
                          ) -> dg.SensorResult | dg.SkipReason:
    settle_s = _env_float("DLC_PLATFORM_SETTLE_SECONDS", 30)
    max_runs = int(_env_float("DLC_PLATFORM_MAX_RUNS_PER_TICK", 20))
    store = scan_state_store(context)
    state, warning = store.load(context.cursor)
    if warning:
        context.log.warning(warning)
    already_requested: set[str] = set()
    if not state:
        # A new or lost state: skip what earlier runs took (one query for all run keys).
        for _key, values in context.instance.get_run_tags(tag_keys=[RUN_KEY_TAG]):
            already_requested |= values
    result = scan(data_root.root(), state, time.time(), settle_s, max_runs, already_requested)
    for problem in result.problems:
        context.log.warning(problem)
    if result.removed:
        context.log.info(f"recordings gone from disk (partitions and data kept): {result.removed}")
    if result.waiting:
        context.log.info(f"{len(result.waiting)} recording(s) not settled yet: "
                         f"{result.waiting[:10]}")
    if result.deferred:
        context.log.info(f"{len(result.deferred)} recording(s) left for the next tick")
    new_keys = []
    # A run with the same run key already took this state of the files (e.g. `dlc-platform
    # reprocess`, which Dagster's own per-sensor de-duplication does not see).
    taken = _runs_with_keys(context.instance,
                            [run_key(rec.recording_id, fp) for rec, fp in result.to_process])
    done = [(rec, fp) for rec, fp in result.to_process
            if run_key(rec.recording_id, fp) in taken]
    if done:
        context.log.info(f"{len(done)} recording(s) already processed in this state of their "
                         f"files (reprocess): {[rec.recording_id for rec, _ in done][:10]}")
        result.to_process = [item for item in result.to_process if item not in done]
    if result.to_process:
        new_keys = _missing_partitions(context.instance,
                                       [rec.recording_id for rec, _ in result.to_process])
    requests = [
        dg.RunRequest(run_key=run_key(rec.recording_id, fp), partition_key=rec.recording_id,
                      tags={"dlc_platform/recording": rec.recording_id,
                            "dlc_platform/fingerprint": fp,
                            **model_queue_tags(rec, data_root.registry_path)})
        for rec, fp in result.to_process
    ]
    return dg.SensorResult(
        run_requests=requests, cursor=store.save(result.state),
        dynamic_partitions_requests=[recordings_partitions.build_add_request(new_keys)]
        if new_keys else [],
        skip_reason=None if requests else "no new settled recordings",
    )


@dg.sensor(
    job=update_registry_job, minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Re-materializes the registry tables when the registry file changes.",
)
def registry_changes_sensor(context: dg.SensorEvaluationContext, data_root: DataRoot):
    path = Path(data_root.registry_path)
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError as exc:
        return dg.SkipReason(f"cannot read the registry {path}: {exc}")
    if context.cursor == digest:
        return dg.SkipReason("registry unchanged")
    # The observation gives registry_file a new data version (the UI then shows the
    # registry tables stale until the run below refreshes them); the mtime in the run key
    # lets an edit that returns to an earlier content run again.
    mtime_ns = path.stat().st_mtime_ns
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"registry:{digest}:{mtime_ns}",
                                    tags={"dlc_platform/registry": digest})],
        asset_events=[dg.AssetObservation(asset_key="registry_file",
                                          tags={"dagster/data_version": digest})],
        cursor=digest,
    )
