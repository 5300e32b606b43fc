"""``dlc-platform worker``: a Celery worker that runs the platform's steps from a queue.

Runs ``celery -A dlc_assets.execution.celery_app worker`` as a child process with the platform's
settings and stays in front of it, so that SIGTERM or Ctrl-C (what systemd, SLURM and a
terminal send) stop it within 30 s: Celery first gets a warm shutdown (the running steps
may finish) for ``--grace`` seconds, then a cold one (running steps are stopped; their
runs fail and the instance's run retries start them again), then SIGKILL.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

from dlc_assets.execution import worker_info

STOP_WAIT_S = 30.0
"""Longest time from SIGTERM to the worker and all its children gone."""


def worker_command(queue: str, concurrency: int, name: str, loglevel: str = "INFO"
                   ) -> list[str]:
    """The celery command line of a worker serving ``queue``."""
    celery = shutil.which("celery", path=os.path.dirname(sys.executable)) or "celery"
    return [celery, "-A", "dlc_assets.execution.celery_app", "worker", "-Q", queue,
            "--concurrency", str(concurrency), "--prefetch-multiplier", "1",
            "-n", name, "--loglevel", loglevel, "--without-mingle", "--without-gossip"]


def _stop(proc: subprocess.Popen, grace_s: float) -> int:
    """Warm shutdown, then cold, then kill, all within :data:`STOP_WAIT_S`."""
    steps = [(signal.SIGTERM, min(grace_s, STOP_WAIT_S - 8)), (signal.SIGQUIT, 5.0),
             (signal.SIGKILL, 2.0)]
    for sig, wait_s in steps:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            return proc.wait(timeout=max(wait_s, 0.5))
        except subprocess.TimeoutExpired:
            print(f"[worker] still running after {sig.name}", file=sys.stderr, flush=True)
    return proc.wait()


def cmd_worker(args) -> None:
    from dlc_assets.execution.celery_executor import broker_url, safe_url  # dagster: only here

    queue = args.queue
    name = args.name or f"{queue}-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
    env = dict(os.environ, **{worker_info.ENV_QUEUE: queue, worker_info.ENV_NAME: name})
    # CPU steps on a 'cpu' worker never look for a GPU; a GPU worker keeps the configured
    # device (auto: each concurrent step claims its own GPU).
    if queue == "cpu":
        env.setdefault("DLC_PLATFORM_DEVICE", "cpu")
    cmd = worker_command(queue, args.concurrency, name, args.loglevel)
    print(f"[worker] {name}: queue {queue}, concurrency {args.concurrency}, broker "
          f"{safe_url(broker_url())}", file=sys.stderr, flush=True)
    # Its own process group: one signal reaches Celery's main process and its pool.
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    stopping: list[int] = []

    def on_signal(signum, _frame) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    while proc.poll() is None and not stopping:
        time.sleep(0.2)
    if stopping:
        print(f"[worker] {name}: {signal.Signals(stopping[0]).name}, stopping (warm for "
              f"{args.grace:.0f} s, then cold)", file=sys.stderr, flush=True)
        _stop(proc, args.grace)
        raise SystemExit(0)
    raise SystemExit(proc.returncode)


def add_worker_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``worker --queue gpu|cpu [--concurrency N]`` to the ``dlc-platform`` command."""
    w = subparsers.add_parser(
        "worker", help="run a Celery worker for the steps of one queue (scale-out)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    w.add_argument("--queue", required=True,
                   help="gpu (inference), cpu (the other steps), or a model's own queue "
                   "from the registry")
    w.add_argument("--concurrency", type=int, default=1,
                   help="steps at once (GPU worker: at most its GPUs; default 1)")
    w.add_argument("--name", help="Celery node name (default <queue>-<random>@<host>)")
    w.add_argument("--grace", type=float, default=15.0,
                   help="seconds running steps get to finish after SIGTERM (max 22)")
    w.add_argument("--loglevel", default="INFO")
    w.set_defaults(func=cmd_worker)
