"""Real servers for tests: a private PostgreSQL cluster on loopback (Debian's package,
installed by scripts/services.sh) and a private Redis (the Celery broker)."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root: run its tools as the postgres user then.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextlib.contextmanager
def postgres_server() -> Iterator[dict]:
    """Start a throw-away cluster on 127.0.0.1 with a `dagster` superuser (trust auth)."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not bins:
        raise RuntimeError("PostgreSQL is not installed: run scripts/services.sh")
    bindir = Path(bins[-1])
    base = Path(tempfile.mkdtemp(prefix="dlc-pg-"))
    base.chmod(0o755)
    data = base / "data"
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    port = free_port()
    subprocess.run(_as_postgres([str(bindir / "initdb"), "-D", str(data), "-U", "dagster",
                                 "--auth=trust", "-E", "UTF8"]), check=True,
                   capture_output=True)
    subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l",
                                 str(base / "log"), "-o",
                                 f"-h 127.0.0.1 -p {port} -k {base}", "start"]),
                   check=True, capture_output=True)
    try:
        subprocess.run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U",
                        "dagster", "dagster"], check=True, capture_output=True)
        yield {"host": "127.0.0.1", "port": port, "user": "dagster", "password": "unused",
               "db": "dagster"}
    finally:
        subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast",
                                     "stop"]), capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def redis_server(base: Path | None = None) -> Iterator[dict]:
    """Start a throw-away Redis on 127.0.0.1 (free port, data under ``base`` or a temp dir).

    Yields ``{"host", "port", "url", "stop"}``; ``stop()`` stops it early (broker-down
    tests), and it is stopped (again, harmlessly) on exit.
    """
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not installed: run scripts/services.sh")
    own = base is None
    base = Path(tempfile.mkdtemp(prefix="dlc-redis-")) if base is None else Path(base)
    base.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen([exe, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(base),
                             "--save", "", "--appendonly", "no", "--protected-mode", "yes",
                             "--logfile", str(base / "redis.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {port}: "
                                   + (base / "redis.log").read_text(errors="replace")[-2000:])
            time.sleep(0.1)
        yield {"host": "127.0.0.1", "port": port, "url": f"redis://127.0.0.1:{port}/0",
               "stop": stop}
    finally:
        stop()
        if own:
            shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def platform_worker(queue: str, env: dict, log: Path, concurrency: int = 1,
                    ready_timeout_s: float = 180) -> Iterator[subprocess.Popen]:
    """Run ``dlc-platform worker --queue QUEUE`` as a subprocess until it serves its queue.

    The process runs in its own session (``os.killpg(proc.pid, 9)`` kills the worker and
    its pool, as a machine that goes away would); stopped with SIGTERM on exit.
    """
    import signal
    import sys

    exe = Path(sys.executable).parent / "dlc-platform"
    with open(log, "w") as out:
        proc = subprocess.Popen([str(exe), "worker", "--queue", queue, "--concurrency",
                                 str(concurrency), "--grace", "5"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + ready_timeout_s
        while "ready." not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker for queue {queue} did not start:\n"
                                   + log.read_text(errors="replace")[-4000:])
            time.sleep(0.5)
        yield proc
    finally:
        tree = worker_tree(proc)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        # Celery and its pool (its own process group) outlive a wrapper killed with -9.
        kill_tree(tree)


def worker_tree(proc: subprocess.Popen) -> list:
    """The worker wrapper, Celery's main process and its pool (psutil processes)."""
    import psutil

    try:
        root = psutil.Process(proc.pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def kill_tree(tree: list) -> None:
    """SIGKILL every process of :func:`worker_tree` (a machine that goes away)."""
    import psutil

    for p in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
