"""The Celery broker going away (issue 21 E3/E4), on a real Redis: a run waiting for its
steps ends with the same broker message as at launch (no Redis traceback) after a short
outage allowance, a run retry waits for the broker and goes on when it is back, and a
worker process that died on this machine is known lost at once (its pid), not after a
minute of unanswered pings."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from tests.services import free_port, redis_server

DOWN_BROKER = f"redis://127.0.0.1:{free_port()}/0"
"""A broker URL where nothing listens."""


def _app(url: str):
    from dagster._core.execution.retries import RetryMode
    from dagster_celery.make_app import make_app

    from dlc_assets.execution.celery_executor import CELERY_SETTINGS, PlatformCeleryExecutor

    return make_app(PlatformCeleryExecutor(
        retries=RetryMode(RetryMode.DISABLED), broker=url, backend=url,
        config_source=dict(CELERY_SETTINGS)).app_args())


def _start_redis(port: int) -> subprocess.Popen:
    return subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port),
                             "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_broker_down_while_a_step_runs_ends_with_the_broker_message():
    from dlc_assets.execution.celery_executor import CeleryBrokerError, WatchedResult

    with redis_server() as redis:
        app = _app(redis["url"])
        result = app.send_task("dagster_celery.execute_plan", queue="no_worker_here")
        watched = WatchedResult(result, app, "dlc_predictions", "gpu", lost_after_s=10,
                                check_every_s=0.5, broker=redis["url"], outage_s=3.0)
        assert watched.ready() is False                 # queued, broker up: waits
        redis["stop"]()
        started = time.monotonic()
        with pytest.raises(CeleryBrokerError) as caught:
            while not watched.ready():
                time.sleep(0.2)
        elapsed = time.monotonic() - started
    message = str(caught.value)
    assert message.startswith(f"Celery broker {redis['url']} cannot be reached while step "
                              "dlc_predictions ran"), message
    assert "Start it (Redis" in message and caught.value.__cause__ is None
    assert 3.0 <= elapsed < 60, elapsed  # each Redis call retries ~5 s (CELERY_SETTINGS)


def test_a_run_retry_waits_for_the_broker_and_goes_on_when_it_is_back():
    from dlc_assets.execution.celery_executor import CeleryBrokerError, broker_waits

    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    app = _app(url)
    lines: list[str] = []
    server: list[subprocess.Popen] = []
    threading.Timer(4.0, lambda: server.append(_start_redis(port))).start()
    started = time.monotonic()
    try:
        for line in broker_waits(app, url, wait_s=60, every_s=0.5):
            lines.append(line)
        waited = time.monotonic() - started
    finally:
        time.sleep(0.1)
        for proc in server:
            proc.terminate()
            proc.wait()
    assert lines[0].startswith(f"waiting for the Celery broker {url}"), lines
    assert "is back after" in lines[-1] and 3.5 < waited < 30, (lines, waited)
    # never back: the launch's message, saying how long it waited
    with pytest.raises(CeleryBrokerError, match=r"cannot be reached .* Waited \d+ s"):
        list(broker_waits(app, url, wait_s=1.5, every_s=0.5))


def test_a_dead_worker_process_on_this_machine_is_lost_at_once():
    from dlc_assets.execution.celery_executor import _worker_gone_here

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    node = f"celery@{socket.gethostname()}"
    assert not _worker_gone_here(node, proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _worker_gone_here(node, proc.pid)
    assert not _worker_gone_here("celery@another-machine", proc.pid)  # not judged from here
    assert not _worker_gone_here(node, None)


@pytest.mark.parametrize("retry", [False, True])
def test_a_run_with_the_broker_down_fails_with_its_message_a_retry_after_waiting(
        tmp_path, monkeypatch, retry):
    """Through Dagster's own execution of a job on the platform's Celery executor."""
    import dagster as dg

    from tests import pool_helpers

    url = DOWN_BROKER  # one URL: Dagster keeps the job it reconstructed once per process
    monkeypatch.setenv("TEST_BROKER", url)
    monkeypatch.setenv("TEST_BROKER_WAIT_S", "4")
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    tags = {"dagster/retry_number": "1"} if retry else {}
    started = time.monotonic()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        result = dg.execute_job(dg.reconstructable(pool_helpers.celery_job),
                                instance=instance, tags=tags, raise_on_error=False)
        elapsed = time.monotonic() - started
        messages = [str(e.message) for e in instance.all_logs(result.run_id)
                    if e.dagster_event is not None]
    text = "\n".join(messages)
    assert not result.success
    failure = [e for e in result.all_events if e.event_type_value == "RUN_FAILURE"
               or e.is_failure]
    assert failure
    assert f"Celery broker {url} cannot be reached" in text + repr(
        [e.event_specific_data for e in failure]), text
    waiting = [m for m in messages if m.startswith("waiting for the Celery broker")]
    if retry:
        assert waiting and elapsed >= 4, (messages, elapsed)
    else:
        assert not waiting and elapsed < 60, (messages, elapsed)

