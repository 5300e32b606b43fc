"""Pool slots held by dead runs: found, freed, and said.

A step of the ``gpu`` pool holds one of the pool's slots while it runs. The daemon's run
monitoring frees the slots of a run whose process died; without the daemon (``models
train`` in a terminal, killed with ``kill -9``, then run again) nothing does, and every
later run waits for the pool in silence. Here:

- :func:`slot_holders`: who holds each pool's slots, with the run's process (pid and
  host from the run's own "Started process for run" / "Executing steps in process"
  events) and whether it is alive;
- :func:`free_dead_slots`: marks runs whose process is gone as failed and frees their
  slots (and those of runs that ended without freeing them); ``dlc-platform runs
  free-slots`` and every command that runs jobs call it first;
- :func:`announce_waits`: while a command's run waits for a pool, says once what it
  waits for (which run holds the slots, its process), and frees the slots when that
  run's process turns out to be gone.

A process can only be checked on its own machine: a run counts as local when its
``dlc_platform/host`` tag names this machine, or, untagged, when the instance's storage
is SQLite (the embedded instance: every run of it runs here). A run on another machine
is never judged dead here (``--run RUN_ID`` frees it by hand).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import dagster as dg

from dlc_assets.execution.run_launcher import process_alive, run_process_id

HOST_TAG = "dlc_platform/host"
"""Run tag: the machine whose process runs the run (set by the CLI's in-process runs)."""

_ENDED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE,
          dg.DagsterRunStatus.CANCELED}


@dataclass
class SlotHolder:
    """A run holding (or waiting for) a pool slot.

    Attributes
    ----------
    pool, run_id, step_key : str
    job : str
        The run's job.
    status : str
        The run's status (``STARTED``, ``FAILURE``, ...; ``missing``: no such run).
    pid : int or None
        The run's process, when it logged one.
    host : str or None
        Its machine (the run's tag), None when unknown.
    alive : bool or None
        Whether that process is alive; None when it cannot be checked here (another
        machine, no process logged yet).
    """

    pool: str
    run_id: str
    step_key: str
    job: str
    status: str
    pid: int | None
    host: str | None
    alive: bool | None

    @property
    def dead(self) -> bool:
        """The slot is held for nothing: the run ended, or its process is gone."""
        return self.status in {s.value for s in _ENDED} | {"missing"} or self.alive is False

    def describe(self) -> str:
        where = f"process {self.pid}" if self.pid else "no process logged yet"
        if self.host:
            where += f" on {self.host}"
        state = {True: "alive", False: "gone", None: "not checkable here"}[self.alive]
        return (f"run {self.run_id[:8]} ({self.job}, step {self.step_key}, {self.status}; "
                f"{where}: {state})")


def _local_storage(instance) -> bool:
    return type(instance.run_storage).__name__.lower().startswith("sqlite")


def _holder(instance, pool: str, run_id: str, step_key: str) -> SlotHolder:
    run = instance.get_run_by_id(run_id)
    if run is None:
        return SlotHolder(pool, run_id, step_key, "?", "missing", None, None, None)
    host = run.tags.get(HOST_TAG)
    local = host == socket.gethostname() if host else _local_storage(instance)
    found = run_process_id(instance, run_id)
    pid, alive = (found[0], None) if found else (None, None)
    if found and local:
        alive = process_alive(found[0], found[1])
    return SlotHolder(pool, run_id, step_key, run.job_name, run.status.value, pid,
                      host or (socket.gethostname() if local else None), alive)


def slot_holders(instance, pools: list[str] | None = None) -> list[SlotHolder]:
    """Every claimed slot of the instance's pools (or of ``pools``), with its run."""
    storage = instance.event_log_storage
    out = []
    for pool in sorted(pools or storage.get_concurrency_keys()):
        info = storage.get_concurrency_info(pool)
        out += [_holder(instance, pool, s.run_id, s.step_key) for s in info.claimed_slots]
    return out


def free_run_slots(instance, run_id: str, reason: str) -> None:
    """Free every slot of a run; a run still marked in progress is marked failed."""
    run = instance.get_run_by_id(run_id)
    if run is not None and run.status not in _ENDED:
        instance.report_run_failed(run, f"dlc-platform freed its pool slots: {reason}")
    instance.event_log_storage.free_concurrency_slots_for_run(run_id)


def free_dead_slots(instance, pools: list[str] | None = None,
                    say: Callable[[str], None] | None = None) -> list[SlotHolder]:
    """Free the slots of runs that ended or whose process is gone (marked failed);
    returns the holders freed."""
    freed, done = [], set()
    for holder in slot_holders(instance, pools):
        if not holder.dead or holder.run_id in done:
            continue
        why = ("its process is gone (killed, out of memory or the machine restarted)"
               if holder.alive is False else f"the run ended ({holder.status}) without "
               "freeing them")
        free_run_slots(instance, holder.run_id, why)
        done.add(holder.run_id)
        freed.append(holder)
        if say:
            say(f"freed pool {holder.pool!r} slot(s) of {holder.describe()}: {why}"
                + ("; the run is marked failed" if holder.alive is False else ""))
    return freed


def _waiting_pools(instance, pid: int) -> dict[str, list[str]]:
    """``{pool: [step keys]}`` that runs of process ``pid`` wait for."""
    storage = instance.event_log_storage
    waiting: dict[str, list[str]] = {}
    for pool in storage.get_concurrency_keys():
        info = storage.get_concurrency_info(pool)
        for step in info.pending_steps:
            if step.assigned_timestamp is not None:
                continue
            found = run_process_id(instance, step.run_id)
            if found is not None and found[0] == pid:
                waiting.setdefault(pool, []).append(step.step_key)
    return waiting


def wait_message(instance, pool: str, steps: list[str]) -> str:
    """What a step waiting for ``pool`` waits for, in one line."""
    info = instance.event_log_storage.get_concurrency_info(pool)
    holders = [_holder(instance, pool, s.run_id, s.step_key) for s in info.claimed_slots]
    held = "; ".join(h.describe() for h in holders) or "no run (the slot is being handed over)"
    return (f"waiting for pool {pool!r} ({info.slot_count} slot(s)) for step(s) "
            f"{', '.join(steps)}: held by {held}. It goes on when that run ends; if that "
            "run is dead on another machine, `dlc-platform runs free-slots --run RUN_ID` "
            "frees its slot.")


@contextlib.contextmanager
def announce_waits(instance, say: Callable[[str], None], every_s: float = 3.0
                   ) -> Iterator[None]:
    """While the block runs (a run of this process), say what it waits for when one of
    its steps waits for a pool slot (once per pool and holders), and free slots whose
    run's process is gone."""
    stop = threading.Event()
    said: set = set()
    pid = os.getpid()

    def watch() -> None:
        while not stop.wait(every_s):
            try:
                waiting = _waiting_pools(instance, pid)
                if not waiting:
                    continue
                free_dead_slots(instance, list(waiting), say)
                for pool, steps in waiting.items():
                    info = instance.event_log_storage.get_concurrency_info(pool)
                    key = (pool, tuple(sorted(s.run_id for s in info.claimed_slots)))
                    if key not in said and info.claimed_slots:
                        said.add(key)
                        say(wait_message(instance, pool, steps))
            except Exception:  # noqa: BLE001 - a notice must never break the run
                continue

    thread = threading.Thread(target=watch, name="dlc-platform-pool-watch", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=every_s + 1)
