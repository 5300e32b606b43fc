"""The run launcher of dlc-platform: Dagster's default one, plus a health check.

Dagster's ``DefaultRunLauncher`` starts each run in a process of the code server on the
daemon's machine, but it cannot tell the daemon's run monitoring whether that process
is still alive: a run whose process was killed (``kill -9``, out of memory, a reboot)
stays STARTED forever and keeps its pool slots. This launcher answers the check from the
process id the run logged when it started ("Started process for run (pid: N)"): a
process that is gone, or whose id now belongs to a younger process, is a dead run
worker, which run monitoring marks failed and run retries start again.

Run processes live on the machine of the daemon (steps may run elsewhere, on Celery
workers), so the check is local. Configure it in ``dagster.yaml``::

    run_launcher:
      module: dlc_assets.execution.run_launcher
      class: LocalRunLauncher
"""

from __future__ import annotations

import psutil
from dagster._core.events import DagsterEventType
from dagster._core.launcher import DefaultRunLauncher
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun

_STARTED_PREFIXES = ("Started process for run",  # a launched run's process
                     "Executing steps in process")  # a run executed in process (the CLI)


def run_process_id(instance, run_id: str) -> tuple[int, float] | None:
    """The pid a run logged at start, and the time of that event (epoch s); None if none.

    A launched run logs "Started process for run (pid: N)", a run executed in a
    process of its own (``execute_in_process``: the CLI's commands) "Executing steps in
    process (pid: N)"."""
    records = instance.get_records_for_run(
        run_id, of_type=DagsterEventType.ENGINE_EVENT, limit=50).records
    for record in records:
        entry = record.event_log_entry
        event = entry.dagster_event
        if event is None or not (event.message or "").startswith(_STARTED_PREFIXES):
            continue
        metadata = event.engine_event_data.metadata if event.engine_event_data else {}
        pid = metadata.get("pid")
        if pid is not None:
            return int(pid.value), entry.timestamp
    return None


def process_alive(pid: int, started_before: float) -> bool:
    """Whether ``pid`` is a live process created no later than ``started_before``."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        # A recycled pid belongs to a process created after the run logged its pid.
        return proc.create_time() <= started_before + 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


class LocalRunLauncher(DefaultRunLauncher):
    """``DefaultRunLauncher`` whose run workers can be health-checked by run monitoring."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        found = run_process_id(self._instance, run.run_id)
        if found is None:
            # Not logged yet: anything but RUNNING would make run monitoring fail the run.
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no run process logged yet")
        pid, logged_at = found
        if process_alive(pid, logged_at):
            return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=str(pid))
        return CheckRunHealthResult(
            WorkerStatus.FAILED, f"run process {pid} is gone (killed, out of memory or the "
            "machine restarted)", run_worker_id=str(pid))
