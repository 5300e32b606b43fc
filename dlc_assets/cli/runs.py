"""``dlc-platform runs slots | free-slots``: who holds the pools' slots, and freeing the
slots of runs that died (docs/production.md, "Pool slots of dead runs")."""

from __future__ import annotations

import sys

from dlc_tracking.errors import DLCPlatformError

RUN_COMMANDS = {"cmd_models_train", "cmd_models_merge", "cmd_models_evaluate",
                "cmd_reprocess", "cmd_compare", "cmd_promote"}
"""Commands that run Dagster jobs in their own process (and may wait for a pool)."""


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_slots(args) -> None:
    import dagster as dg

    from dlc_assets.execution.pool_slots import slot_holders

    with dg.DagsterInstance.get() as instance:
        holders = slot_holders(instance, args.pool)
        if not holders:
            print("no pool slot is held")
        for h in holders:
            print(f"pool {h.pool}: {h.describe()}"
                  + ("  <- dead: `dlc-platform runs free-slots` frees it" if h.dead else ""))


def cmd_free_slots(args) -> None:
    import dagster as dg

    from dlc_assets.execution.pool_slots import free_dead_slots, free_run_slots, slot_holders

    with dg.DagsterInstance.get() as instance:
        if args.run:
            held = [h for h in slot_holders(instance) if h.run_id.startswith(args.run)]
            runs = sorted({h.run_id for h in held})
            if len(runs) != 1:
                raise DLCPlatformError(
                    f"--run {args.run}: {'no' if not runs else 'several'} run(s) holding "
                    f"slots match {runs or ''}; `dlc-platform runs slots` lists them.")
            for h in held:
                print(f"pool {h.pool}: {h.describe()}")
            if not args.yes and input("free its slots and mark it failed? [y/N] "
                                      ).strip().lower() not in ("y", "yes"):
                print("nothing changed")
                return
            free_run_slots(instance, runs[0], "freed by hand (`dlc-platform runs free-slots "
                           "--run`)")
            print(f"freed the slots of run {runs[0]}")
            return
        freed = free_dead_slots(instance, args.pool, say=print)
        if not freed:
            print("no slot is held by a dead run")
        for h in slot_holders(instance, args.pool):
            print(f"still held, pool {h.pool}: {h.describe()}")


def before_run_command(args) -> object:
    """Called by ``main`` before a command that runs jobs: frees the slots of dead runs
    (saying so) and returns a context manager that says what the command waits for."""
    import contextlib

    if getattr(getattr(args, "func", None), "__name__", "") not in RUN_COMMANDS:
        return contextlib.nullcontext()
    import dagster as dg

    from dlc_assets.execution.pool_slots import announce_waits, free_dead_slots

    instance = dg.DagsterInstance.get()
    free_dead_slots(instance, say=_say)
    return announce_waits(instance, _say)


def add_runs_parser(sub) -> None:
    """``runs slots`` and ``runs free-slots``."""
    runs = sub.add_parser("runs", help="runs and the pool slots they hold").add_subparsers(
        dest="runs_command", required=True)
    sl = runs.add_parser("slots", help="who holds each pool's slots (run, process, alive?)")
    sl.add_argument("--pool", action="append", help="only this pool (repeatable)")
    sl.set_defaults(func=cmd_slots)
    fs = runs.add_parser("free-slots", help="free the slots of runs whose process is gone "
                         "(marked failed) or that ended without freeing them")
    fs.add_argument("--pool", action="append", help="only this pool (repeatable)")
    fs.add_argument("--run", metavar="RUN_ID", help="free this run's slots (a run on another "
                    "machine, known dead); asks first")
    fs.add_argument("--yes", action="store_true", help="do not ask")
    fs.set_defaults(func=cmd_free_slots)
