"""Per-recording status for the CLI: processed, processed with warnings (each warning's
figure), failed (with reason), skipped (with reason), queued/running, or not yet run."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from dlc_assets.partitions import recordings_partitions


def _check_evaluations(instance: dg.DagsterInstance, run_id: str) -> list:
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    return [r.event_log_entry.dagster_event.event_specific_data for r in records]


def _figure(evaluation) -> str:
    """The check's first numeric figure, for a one-line summary."""
    for key, value in (evaluation.metadata or {}).items():
        raw = getattr(value, "value", value)
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return f"{key}={raw:g}"
    return ""


def check_warnings(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """``check (figure): description`` of every failed check of a run."""
    out = []
    for ev in _check_evaluations(instance, run_id):
        if ev.passed:
            continue
        figure = _figure(ev)
        text = f"{ev.check_name}" + (f" ({figure})" if figure else "")
        if ev.description:
            text += f": {ev.description}"
        out.append(text)
    return out


def _failure_reason(instance: dg.DagsterInstance, run_id: str) -> str:
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records
    for record in records:
        data = record.event_log_entry.dagster_event.step_failure_data
        if data and data.user_failure_data and data.user_failure_data.description:
            return data.user_failure_data.description
        if data and data.error:
            if data.error.cls_name == "DagsterAssetCheckFailedError":
                failed = check_warnings(instance, run_id)
                if failed:
                    return "blocking check failed: " + " | ".join(failed)
            return " ".join(data.error.message.strip().splitlines()[:3])
    return "run failed (see the run in the UI)"


def _multi_animal(reason: str) -> bool:
    """The single-animal assets' skip of a multi-animal recording (processed by
    multi_animal_tracking, not skipped)."""
    return reason.startswith("multi-animal recording")


def _identity_figures(store, key: str) -> str:
    """``multi-animal: 2 individuals, 1 identity swap(s), 0 track event(s), ...``."""
    if store.partition_path("individual_tracking", key) is None:
        return "multi-animal: no per-individual tables yet"
    n = store.query("SELECT count(DISTINCT individual) AS n FROM individual_tracking "
                    "WHERE recording_id = ?", [key])["n"].iloc[0]
    events = store.read_partition("identity_events", key)["event"].value_counts()
    swaps = int(events.get("identity_swap", 0))
    gone = int(sum(events.get(e, 0) for e in ("vanishes", "appears", "reappears",
                                              "never_present")))
    dup = int(events.get("two_tracks_one_animal", 0))
    return (f"multi-animal: {n} individuals, {swaps} identity swap(s), {gone} track "
            f"event(s), {dup} two-tracks-one-animal run(s)")


def recording_status(warehouse_root: str, only: str | None = None,
                     instance: dg.DagsterInstance | None = None) -> list[dict]:
    """One row per known recording: ``recording_id``, ``status``, ``detail``, ``warnings``."""
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
            rows.append({"recording_id": key, "status": "pending", "detail": "no run yet",
                         "warnings": []})
            continue
        run = runs[0]
        if run.status == dg.DagsterRunStatus.SUCCESS:
            warnings = check_warnings(instance, run.run_id)
            reason = (store.read_partition("skipped_recordings", key)["reason"].iloc[0]
                      if key in skipped else None)
            if reason is not None and not _multi_animal(reason):
                rows.append({"recording_id": key, "status": "skipped", "detail": reason,
                             "warnings": warnings})
            else:
                status = "processed with warnings" if warnings else "processed"
                detail = f"run {run.run_id[:8]}" + (
                    f", {len(warnings)} warning(s)" if warnings else "")
                if reason is not None:  # the identity figures of a multi-animal recording
                    detail += ", " + _identity_figures(store, key)
                rows.append({"recording_id": key, "status": status, "detail": detail,
                             "warnings": warnings})
        elif run.status == dg.DagsterRunStatus.FAILURE:
            rows.append({"recording_id": key, "status": "failed",
                         "detail": _failure_reason(instance, run.run_id), "warnings": []})
        else:
            rows.append({"recording_id": key, "status": run.status.value.lower(),
                         "detail": f"run {run.run_id[:8]}", "warnings": []})
    return rows
