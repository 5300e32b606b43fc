"""What the fast path of the session scan (issue 11, archive scale) must still notice.

A known session whose recordings were all taken is checked with ``stat`` calls only, and
an unchanged state is neither re-read nor re-written: these tests pin down the changes
that path must see, and when it must not be taken at all.
"""

from __future__ import annotations

import os
import time

import pytest

from dlc_tracking.sessions import scanning
from dlc_tracking.sessions.scanning import STATE_VERSION, ScanStateStore, scan
from tests.test_scanning import add_session, age, ids, run


def append(path, data=b"\x01" * 10):
    """Rewrite a file in place: its size and mtime change, its folder's do not."""
    folder_mtime = path.parent.stat().st_mtime_ns
    with open(path, "ab") as f:
        f.write(data)
    assert path.parent.stat().st_mtime_ns == folder_mtime


def test_new_session_in_a_known_subject_is_found(tmp_path):
    add_session(tmp_path, "m1", "s1")
    first = run(tmp_path)
    add_session(tmp_path, "m1", "s2")
    second = run(tmp_path, first.state)
    assert ids(second) == ["m1__s2__openfield"]
    assert second.sessions_unchanged == 1 and second.sessions_read == 1


def test_video_added_to_a_known_session_is_found(tmp_path):
    folder = add_session(tmp_path, "m1", "s1")
    first = run(tmp_path)
    (folder / "side.mp4").write_bytes(b"\x00" * 1000)
    old = time.time() - 60
    for path in (folder / "side.mp4", folder):  # the other files keep their mtimes
        os.utime(path, (old, old))
    second = run(tmp_path, first.state)
    assert ids(second) == ["m1__s1__side"]


@pytest.mark.parametrize("name", ["openfield.mp4", "session.yaml", "openfield.timestamps.csv",
                                  "dlc_openfield/openfieldDLC_x.h5"])
def test_files_rewritten_in_place_are_noticed(tmp_path, name):
    folder = add_session(tmp_path, "m1", "s1")
    (folder / "openfield.timestamps.csv").write_text("0.0\n")
    (folder / "dlc_openfield").mkdir()
    (folder / "dlc_openfield" / "openfieldDLC_x.h5").write_bytes(b"h5")
    age(folder)
    first = run(tmp_path)
    assert first.state["sessions"]  # cached: the next scan takes the fast path
    append(folder / name)
    old = time.time() - 60
    os.utime(folder / name, (old, old))  # settled again; nothing else was touched
    second = run(tmp_path, first.state)
    assert ids(second) == ["m1__s1__openfield"]
    assert second.sessions_read == 1


def test_file_still_written_in_place_waits_until_it_settles(tmp_path):
    folder = add_session(tmp_path, "m1", "s1", age_s=0)
    now = time.time()
    first = scan(tmp_path, None, now, 30.0, 100)
    assert first.waiting == ["m1__s1__openfield"]
    assert first.state["sessions"] == {}  # not taken yet: read in full every scan
    # the copy tool keeps writing into the same file (the folder's mtime does not move)
    append(folder / "openfield.mp4")
    second = scan(tmp_path, first.state, now + 40, 30.0, 100)
    assert second.to_process == [] and second.waiting == ["m1__s1__openfield"]
    assert second.state["pending"] != first.state["pending"]  # the new size was seen
    age(folder, 60)
    third = scan(tmp_path, second.state, time.time(), 30.0, 100)
    assert third.to_process == [] and third.waiting  # changed since the last look
    fourth = scan(tmp_path, third.state, time.time(), 30.0, 100)
    assert ids(fourth) == ["m1__s1__openfield"]
    assert list(fourth.state["sessions"]) == ["m1/s1"]


def test_recent_changes_are_not_cached(tmp_path):
    add_session(tmp_path, "m1", "s1", age_s=1)  # coarse mtimes may hide the next change
    first = run(tmp_path)
    assert ids(first) == ["m1__s1__openfield"] and first.state["sessions"] == {}
    second = run(tmp_path, first.state)
    assert second.to_process == [] and second.sessions_read == 1


def test_deferred_sessions_are_not_cached_until_taken(tmp_path):
    for i in range(3):
        add_session(tmp_path, f"m{i}", "s1")
    first = run(tmp_path, max_runs=1)
    assert sorted(first.state["sessions"]) == ["m0/s1"]
    second = run(tmp_path, first.state, max_runs=5)
    assert ids(second) == ["m1__s1__openfield", "m2__s1__openfield"]
    assert second.sessions_unchanged == 1
    assert sorted(second.state["sessions"]) == ["m0/s1", "m1/s1", "m2/s1"]


def test_renamed_session_is_removed_and_found_again(tmp_path):
    add_session(tmp_path, "m1", "s1")
    add_session(tmp_path, "m1", "s2")
    first = run(tmp_path)
    os.rename(tmp_path / "m1" / "s2", tmp_path / "m1" / "s3")
    second = run(tmp_path, first.state)
    assert second.removed == ["m1__s2__openfield"]
    assert ids(second) == ["m1__s3__openfield"]
    assert sorted(second.state["sessions"]) == ["m1/s1", "m1/s3"]


def test_removed_video_of_a_known_session_is_reported(tmp_path):
    folder = add_session(tmp_path, "m1", "s1", videos=("a.mp4", "b.mp4"))
    first = run(tmp_path)
    (folder / "b.mp4").unlink()
    second = run(tmp_path, first.state)
    assert second.removed == ["m1__s1__b"] and second.to_process == []


def test_collision_with_a_cached_session_keeps_both_refused(tmp_path):
    add_session(tmp_path, "m1", "s 1")
    first = run(tmp_path)
    add_session(tmp_path, "m1", "s-1")
    second = run(tmp_path, first.state)
    assert second.to_process == [] and "m1/s 1" not in second.state["sessions"]
    third = run(tmp_path, second.state)
    assert third.to_process == [] and any("collides" in p for p in third.problems)


def test_unchanged_scan_returns_the_state_it_was_given(tmp_path):
    for i in range(3):
        add_session(tmp_path, f"m{i}", "s1")
    first = run(tmp_path)
    second = run(tmp_path, first.state)
    assert second.state == first.state
    assert second.state["sessions"]["m0/s1"] is first.state["sessions"]["m0/s1"]


@pytest.mark.parametrize("stale", [{"v": 2}, {"h": 12345}])
def test_state_of_another_layout_reads_sessions_again_but_runs_nothing(tmp_path, stale):
    add_session(tmp_path, "m1", "s1")
    first = run(tmp_path)
    second = run(tmp_path, {**first.state, **stale})
    assert second.to_process == [] and second.sessions_read == 1
    assert second.state["v"] == STATE_VERSION and second.state["sessions"]


def test_store_does_not_rewrite_or_reread_an_unchanged_state(tmp_path, monkeypatch):
    add_session(tmp_path / "data", "m1", "s1")
    store = ScanStateStore(tmp_path / "state")
    cursor = store.save(run(tmp_path / "data").state)
    loaded, _ = ScanStateStore(tmp_path / "state").load(cursor)  # a new tick's store

    def no_encoding(*args, **kwargs):
        raise AssertionError("the state was encoded or decoded again")

    monkeypatch.setattr(scanning.json, "dumps", no_encoding)
    monkeypatch.setattr(scanning.json, "loads", no_encoding)
    again = ScanStateStore(tmp_path / "state")
    state, warning = again.load(cursor)
    assert state is loaded and warning is None
    assert again.save(run(tmp_path / "data", state).state) == cursor


def test_store_reads_the_file_when_its_memory_is_of_another_state(tmp_path):
    store = ScanStateStore(tmp_path)
    first = store.save({"n": 1})
    store.save({"n": 2})
    assert ScanStateStore(tmp_path).load(first) == ({"n": 1}, None)


def test_sensor_looks_up_run_keys_in_batches(instance):
    from dagster._core.storage.dagster_run import DagsterRun

    from sensors.sessions import RUN_KEY_TAG, _runs_with_keys

    for i in range(5):
        instance.add_run(DagsterRun(job_name="j", run_id=f"00000000-0000-0000-0000-00000000000{i}",
                                    tags={RUN_KEY_TAG: f"k{i}"}))
    assert _runs_with_keys(instance, ["k1", "k3", "zz", "k4"], chunk=2) == {"k1", "k3", "k4"}
    assert _runs_with_keys(instance, []) == set()


def test_sensor_finds_missing_partitions_by_key_or_by_listing(instance):
    from sensors.sessions import _missing_partitions

    instance.add_dynamic_partitions("recordings", ["a", "c"])
    assert _missing_partitions(instance, ["a", "b", "c", "d"]) == ["b", "d"]
    many = [f"k{i:03d}" for i in range(300)]  # over the per-key bound: one listing
    assert _missing_partitions(instance, ["a", *many]) == many
