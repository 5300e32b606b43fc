"""Per-recording status for the CLI: processed, failed (with reason), skipped (with reason),
queued/running, or not yet run."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from dlc_assets.partitions import recordings_partitions


def _failure_reason(instance: dg.DagsterInstance, run_id: str) -> str:
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records
    for record in records:
        data = record.event_log_entry.dagster_event.step_failure_data
        if data and data.user_failure_data and data.user_failure_data.description:
            return data.user_failure_data.description
        if data and data.error:
            return " ".join(data.error.message.strip().splitlines()[:3])
    return "run failed (see the run in the UI)"


def recording_status(warehouse_root: str, only: str | None = None,
                     instance: dg.DagsterInstance | None = None) -> list[dict]:
    from dlc_tracking.warehouse import Warehouse

    instance = instance or dg.DagsterInstance.get()
    keys = instance.get_dynamic_partitions(recordings_partitions.name)
    if only:
        keys = [k for k in keys if k == only]
    store = Warehouse(Path(warehouse_root))
    skipped = set(store.partitions("skipped_recordings"))
    rows = []
    for key in keys:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": key}), limit=1)
        if not runs:
            rows.append({"recording_id": key, "status": "pending", "detail": "no run yet"})
            continue
        run = runs[0]
        if run.status == dg.DagsterRunStatus.SUCCESS:
            if key in skipped:
                reason = store.read_partition("skipped_recordings", key)["reason"].iloc[0]
                rows.append({"recording_id": key, "status": "skipped", "detail": reason})
            else:
                rows.append({"recording_id": key, "status": "processed",
                             "detail": f"run {run.run_id[:8]}"})
        elif run.status == dg.DagsterRunStatus.FAILURE:
            rows.append({"recording_id": key, "status": "failed",
                         "detail": _failure_reason(instance, run.run_id)})
        else:
            rows.append({"recording_id": key, "status": run.status.value.lower(),
                         "detail": f"run {run.run_id[:8]}"})
    return rows
