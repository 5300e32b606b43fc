"""A run killed without the daemon running (issue 21 E3): its `gpu` pool slot is freed by
`dlc-platform runs free-slots` and by the CLI itself, and a command that waits for the
pool says what it waits for. Real Dagster instance (the repository's dagster.yaml: a
`gpu` pool of one slot), real processes killed with SIGKILL; the step holding the slot
is a stand-in for training (tests/pool_helpers.py)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # Dagster processes started and killed: ~1 min each here


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get():  # storage created before the processes race for it
        pass
    return home


def _holder(tmp_path: Path, name: str) -> tuple[subprocess.Popen, Path]:
    """A process whose run holds the gpu slot until killed (or ``release`` exists)."""
    started, release = tmp_path / f"{name}.started", tmp_path / f"{name}.release"
    code = ("from tests.pool_helpers import run_holder; "
            f"run_holder({str(release)!r}, {str(started)!r})")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=str(ROOT),
                            env=dict(os.environ, PYTHONPATH=str(ROOT)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not started.exists():
        assert proc.poll() is None, "the holder run ended before it held the slot"
        assert time.monotonic() < deadline, "the holder run never held the slot"
        time.sleep(0.2)
    return proc, release


def _kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def _claimed(instance) -> list:
    return instance.event_log_storage.get_concurrency_info("gpu").claimed_slots


def test_free_slots_frees_the_slot_of_a_killed_run(home, tmp_path, capsys):
    from dlc_assets.cli.main import main

    proc, _ = _holder(tmp_path, "train")
    with dg.DagsterInstance.get() as instance:
        (slot,) = _claimed(instance)
        main(["runs", "slots"])
        out = capsys.readouterr().out
        assert slot.run_id[:8] in out and "alive" in out and "dead" not in out
        main(["runs", "free-slots"])              # alive: nothing freed
        assert "no slot is held by a dead run" in capsys.readouterr().out
        _kill(proc)                               # kill -9, no daemon to notice
        main(["runs", "slots"])
        assert "gone" in capsys.readouterr().out
        main(["runs", "free-slots"])
        out = capsys.readouterr().out
        assert f"run {slot.run_id[:8]}" in out and "process is gone" in out
        assert _claimed(instance) == []
        assert instance.get_run_by_id(slot.run_id).status == dg.DagsterRunStatus.FAILURE


def test_a_waiting_command_says_what_it_waits_for_and_goes_on_when_the_holder_dies(
        home, tmp_path):
    from dlc_assets.execution.pool_slots import announce_waits, free_dead_slots
    from tests.pool_helpers import run_holder

    said: list[str] = []
    killed = _holder(tmp_path, "dead")[0]
    _kill(killed)
    with dg.DagsterInstance.get() as instance:
        # what every job-running command does first: the dead run's slot is freed
        freed = free_dead_slots(instance, say=said.append)
        assert len(freed) == 1 and "process is gone" in said[0]
        assert _claimed(instance) == []
        alive, _ = _holder(tmp_path, "alive")
        (slot,) = _claimed(instance)
        threading.Timer(12.0, _kill, [alive]).start()  # the holder dies while we wait
        release = tmp_path / "ours.release"
        release.touch()
        started = time.monotonic()
        with announce_waits(instance, said.append, every_s=1.0):
            assert run_holder(str(release), str(tmp_path / "ours.started"))
    waited = time.monotonic() - started
    waits = [m for m in said if m.startswith("waiting for pool 'gpu'")]
    assert len(waits) == 1, said                        # said once, not every second
    assert slot.run_id[:8] in waits[0] and "alive" in waits[0]
    assert any(slot.run_id[:8] in m and "process is gone" in m for m in said[1:]), said
    assert 10 < waited < 45, waited                     # seconds after the kill, not minutes


def test_the_next_command_frees_the_slot_of_a_killed_run_itself(home, tmp_path, capsys,
                                                                  registry_path):
    """`models train` killed with kill -9, then a `models train` again: the command frees
    the dead run's slot first and says so (here it then stops on its own bad input)."""
    from dlc_assets.cli.main import main

    proc, _ = _holder(tmp_path, "train")
    with dg.DagsterInstance.get() as instance:
        (slot,) = _claimed(instance)
        _kill(proc)
        with pytest.raises(SystemExit):
            main(["--registry", str(registry_path), "models", "train", "not_registered"])
        err = capsys.readouterr().err
        assert f"freed pool 'gpu' slot(s) of run {slot.run_id[:8]}" in err, err
        assert "no model named 'not_registered'" in err
        assert _claimed(instance) == []
