"""The session sensor, evaluated through Dagster's own APIs with a real instance."""

from __future__ import annotations

import os
import time

import dagster as dg
import pytest
import yaml

from resources import DataRoot
from sensors.sessions import RUN_KEY_TAG, new_recordings_sensor, registry_changes_sensor

SESSION = {"tracking_type": "openfield", "start_time": "2026-01-05T10:00:00+01:00",
           "camera_view": "above", "arena": {"shape": "square", "width_cm": 50}}


def add_session(root, subject, session, video="openfield.mp4", age_s=120.0):
    folder = root / subject / session
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "session.yaml").write_text(yaml.safe_dump(SESSION))
    (folder / video).write_bytes(b"\x00" * 1000)
    old = time.time() - age_s
    for p in folder.iterdir():
        os.utime(p, (old, old))
    return folder


def tick(instance, root, cursor=None, settle="30", max_runs="20", monkeypatch=None):
    monkeypatch.setenv("DLC_PLATFORM_SETTLE_SECONDS", settle)
    monkeypatch.setenv("DLC_PLATFORM_MAX_RUNS_PER_TICK", max_runs)
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor,
        resources={"data_root": DataRoot(path=str(root), registry_path=str(root / "r.yaml"))})
    result = new_recordings_sensor(context)
    # apply the partition requests the way the daemon does
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "data"
    r.mkdir()
    return r


def keys(result):
    return sorted(r.partition_key for r in result.run_requests)


def test_new_recordings_get_partitions_and_runs(instance, root, monkeypatch):
    add_session(root, "m1", "s1")
    add_session(root, "m2", "s1")
    first = tick(instance, root, settle="0", monkeypatch=monkeypatch)
    assert keys(first) == ["m1__s1__openfield", "m2__s1__openfield"]
    assert sorted(instance.get_dynamic_partitions("recordings")) == keys(first)
    assert all(r.run_key for r in first.run_requests)
    again = tick(instance, root, cursor=first.cursor, settle="0", monkeypatch=monkeypatch)
    assert again.run_requests == []


def test_idempotent_on_re_evaluation(instance, root, monkeypatch):
    add_session(root, "m1", "s1")
    a = tick(instance, root, settle="0", monkeypatch=monkeypatch)
    b = tick(instance, root, settle="0", monkeypatch=monkeypatch)  # daemon restarted, no cursor
    assert [r.run_key for r in a.run_requests] == [r.run_key for r in b.run_requests]
    assert not b.dynamic_partitions_requests  # partition already there


def test_unsettled_video_waits(instance, root, monkeypatch):
    add_session(root, "m1", "s1", age_s=0)  # just written
    first = tick(instance, root, settle="1", monkeypatch=monkeypatch)
    assert first.run_requests == []
    time.sleep(1.1)
    # unchanged since the previous tick saw it, and old enough: taken
    second = tick(instance, root, cursor=first.cursor, settle="1", monkeypatch=monkeypatch)
    assert keys(second) == ["m1__s1__openfield"]


def test_size_change_between_ticks_waits(instance, root, monkeypatch):
    folder = add_session(root, "m1", "s1")
    first = tick(instance, root, monkeypatch=monkeypatch)  # seen once: pending
    assert first.run_requests == []
    with open(folder / "openfield.mp4", "ab") as f:
        f.write(b"more")  # still being copied
    old = time.time() - 120
    os.utime(folder / "openfield.mp4", (old, old))
    second = tick(instance, root, cursor=first.cursor, monkeypatch=monkeypatch)
    assert second.run_requests == []
    third = tick(instance, root, cursor=second.cursor, monkeypatch=monkeypatch)
    assert keys(third) == ["m1__s1__openfield"]


def test_partial_copy_marker(instance, root, monkeypatch):
    folder = add_session(root, "m1", "s1")
    (folder / ".copying").write_text("")
    assert tick(instance, root, settle="0", monkeypatch=monkeypatch).run_requests == []
    (folder / ".copying").unlink()
    assert keys(tick(instance, root, settle="0", monkeypatch=monkeypatch)) == ["m1__s1__openfield"]


def test_changed_video_or_yaml_requests_new_run(instance, root, monkeypatch):
    folder = add_session(root, "m1", "s1")
    first = tick(instance, root, settle="0", monkeypatch=monkeypatch)
    (folder / "session.yaml").write_text(yaml.safe_dump({**SESSION, "camera_view": "below"}))
    second = tick(instance, root, cursor=first.cursor, settle="0", monkeypatch=monkeypatch)
    assert keys(second) == ["m1__s1__openfield"]
    assert second.run_requests[0].run_key != first.run_requests[0].run_key
    # manual DLC outputs dropped later are noticed too
    (folder / "dlc_openfield").mkdir()
    (folder / "dlc_openfield" / "openfieldDLC_x.h5").write_bytes(b"h5")
    third = tick(instance, root, cursor=second.cursor, settle="0", monkeypatch=monkeypatch)
    assert keys(third) == ["m1__s1__openfield"]


def test_removed_and_junk(instance, root, monkeypatch):
    import shutil

    folder = add_session(root, "m1", "s1")
    (folder / ".hidden.mp4").write_bytes(b"x")
    (folder / "clip.mp4.part").write_bytes(b"x")
    (folder / "Thumbs.db").write_bytes(b"x")
    (root / "README.txt").write_text("not a subject")
    (root / ".Trash-1000" / "s").mkdir(parents=True)
    first = tick(instance, root, settle="0", monkeypatch=monkeypatch)
    assert keys(first) == ["m1__s1__openfield"]
    shutil.rmtree(folder)
    second = tick(instance, root, cursor=first.cursor, settle="0", monkeypatch=monkeypatch)
    assert second.run_requests == []


def test_unreadable_folder_logged(instance, root, monkeypatch):
    """As root, simulate the OSError of an unreadable folder."""
    add_session(root, "m1", "s1")
    bad = add_session(root, "m2", "s1")
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path) == str(bad.parent):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = tick(instance, root, settle="0", monkeypatch=monkeypatch)
    assert keys(result) == ["m1__s1__openfield"]


def test_bounded_per_tick(instance, root, monkeypatch):
    for i in range(7):
        add_session(root, f"m{i}", "s1")
    first = tick(instance, root, settle="0", max_runs="3", monkeypatch=monkeypatch)
    second = tick(instance, root, cursor=first.cursor, settle="0", max_runs="3",
                  monkeypatch=monkeypatch)
    third = tick(instance, root, cursor=second.cursor, settle="0", max_runs="3",
                 monkeypatch=monkeypatch)
    assert [len(first.run_requests), len(second.run_requests), len(third.run_requests)] == [3, 3, 1]
    assert len(set(keys(first) + keys(second) + keys(third))) == 7


def test_registry_sensor_runs_on_change(instance, tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("models: {}\n")
    res = {"data_root": DataRoot(path=str(tmp_path), registry_path=str(path))}
    ctx = dg.build_sensor_context(instance=instance, resources=res)
    first = registry_changes_sensor(ctx)
    assert len(first.run_requests) == 1 and first.cursor
    assert first.asset_events[0].asset_key == dg.AssetKey("registry_file")
    ctx2 = dg.build_sensor_context(instance=instance, cursor=first.cursor, resources=res)
    assert isinstance(registry_changes_sensor(ctx2), dg.SkipReason)


def test_lost_state_skips_what_earlier_runs_took(instance, root, monkeypatch):
    """A sensor without state (new, or its state file lost) does not spend its per-tick
    bound re-requesting recordings whose run keys exist; new ones are requested."""
    @dg.op
    def stand_in():
        pass

    @dg.job
    def launched():
        stand_in()

    for i in range(3):
        add_session(root, f"m{i}", "s1")
    first = tick(instance, root, settle="0", monkeypatch=monkeypatch)
    for request in first.run_requests:  # the runs' tags, as the daemon stores them
        instance.create_run_for_job(launched, tags={
            **request.tags, RUN_KEY_TAG: request.run_key, "dagster/partition":
            request.partition_key})
    add_session(root, "m9", "s1")
    again = tick(instance, root, settle="0", max_runs="1", monkeypatch=monkeypatch)
    assert keys(again) == ["m9__s1__openfield"]


def test_outputs_without_their_video_are_a_recording(instance, root, monkeypatch):
    folder = root / "m1" / "archived"
    (folder / "dlc_top camera").mkdir(parents=True)
    (folder / "session.yaml").write_text(yaml.safe_dump(SESSION))
    (folder / "dlc_top camera" / "top cameraDLC_resnet50_xJan1shuffle1_500.h5").write_bytes(
        b"\x00" * 100)
    old = time.time() - 120
    for p in [folder, *folder.rglob("*")]:
        os.utime(p, (old, old))
    first = tick(instance, root, monkeypatch=monkeypatch)  # seen once: settling
    result = tick(instance, root, cursor=first.cursor, monkeypatch=monkeypatch)
    assert keys(first) + keys(result) == ["m1__archived__top-camera"]
    # a later tick with nothing changed asks for nothing
    again = tick(instance, root, cursor=result.cursor, monkeypatch=monkeypatch)
    assert not again.run_requests
