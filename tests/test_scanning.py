"""The scan behind the session sensor: change detection with the session-folder cache,
and the scan state kept in files named by the cursor."""

from __future__ import annotations

import os
import time

import pytest
import yaml

from dlc_tracking.sessions.scanning import ScanStateError, ScanStateStore, encode_state, scan

SESSION = {"tracking_type": "openfield", "start_time": "2026-01-05T10:00:00+01:00",
           "camera_view": "above"}


def add_session(root, subject, session, videos=("openfield.mp4",), extra=None, age_s=120.0):
    folder = root / subject / session
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "session.yaml").write_text(yaml.safe_dump({**SESSION, **(extra or {})}))
    for video in videos:
        (folder / video).parent.mkdir(parents=True, exist_ok=True)
        (folder / video).write_bytes(b"\x00" * 1000)
    age(folder, age_s)
    return folder


def age(folder, seconds=120.0):
    old = time.time() - seconds
    for p in [folder, *folder.rglob("*")]:
        os.utime(p, (old, old))


def run(root, state=None, max_runs=100):
    return scan(root, state, time.time(), 0.0, max_runs)


def ids(result):
    return sorted(rec.recording_id for rec, _ in result.to_process)


def test_unchanged_sessions_are_not_read_again(tmp_path):
    for i in range(5):
        add_session(tmp_path, f"m{i}", "s1")
    first = run(tmp_path)
    assert len(first.to_process) == 5 and first.sessions_read == 5
    second = run(tmp_path, first.state)
    assert second.to_process == [] and second.removed == []
    assert second.sessions_unchanged == 5 and second.sessions_read == 0
    assert second.state == first.state


def test_video_rewritten_in_place_is_noticed(tmp_path):
    folder = add_session(tmp_path, "m1", "s1")
    first = run(tmp_path)
    # same names in the folder, so only the file's own size and mtime change
    with open(folder / "openfield.mp4", "ab") as f:
        f.write(b"\x01" * 10)
    age(folder, 60)
    second = run(tmp_path, first.state)
    assert ids(second) == ["m1__s1__openfield"]
    assert second.to_process[0][1] != first.to_process[0][1]


def test_dlc_outputs_dropped_later_are_noticed(tmp_path):
    folder = add_session(tmp_path, "m1", "s1")
    first = run(tmp_path, None)
    (folder / "dlc_openfield").mkdir()
    age(folder / "dlc_openfield", 60)
    second = run(tmp_path, first.state)
    assert second.to_process == []  # an empty folder changes nothing the run reads
    (folder / "dlc_openfield" / "openfieldDLC_x.h5").write_bytes(b"h5")
    age(folder / "dlc_openfield", 30)
    third = run(tmp_path, second.state)
    assert ids(third) == ["m1__s1__openfield"]


def test_videos_in_sub_folders_are_always_looked_at(tmp_path):
    folder = add_session(tmp_path, "m1", "s1", videos=("raw/cam1.mp4",),
                         extra={"videos": [{"file": "raw/cam1.mp4"}]})
    first = run(tmp_path)
    assert ids(first) == ["m1__s1__cam1"]
    assert first.state["sessions"] == {}  # its listing does not show raw/'s files
    with open(folder / "raw" / "cam1.mp4", "ab") as f:
        f.write(b"\x01")
    age(folder, 60)
    assert ids(run(tmp_path, first.state)) == ["m1__s1__cam1"]


def test_collision_with_a_known_session_is_refused(tmp_path):
    add_session(tmp_path, "m1", "s 1")
    first = run(tmp_path)
    add_session(tmp_path, "m1", "s-1")  # "s 1" sanitises to this id too
    second = run(tmp_path, first.state)
    assert second.to_process == []
    assert any("collides" in p for p in second.problems)


def test_removed_session_is_reported(tmp_path):
    add_session(tmp_path, "m1", "s1")
    gone = add_session(tmp_path, "m2", "s1")
    first = run(tmp_path)
    for p in gone.iterdir():
        p.unlink()
    gone.rmdir()
    second = run(tmp_path, first.state)
    assert second.removed == ["m2__s1__openfield"]
    assert "m2/s1" not in second.state["sessions"]


def test_deferred_recordings_are_taken_on_later_scans(tmp_path):
    for i in range(5):
        add_session(tmp_path, f"m{i}", "s1")
    first = run(tmp_path, max_runs=2)
    second = run(tmp_path, first.state, max_runs=2)
    third = run(tmp_path, second.state, max_runs=2)
    assert [len(r.to_process) for r in (first, second, third)] == [2, 2, 1]
    assert len(set(ids(first) + ids(second) + ids(third))) == 5


def test_state_store_cursor_is_short_and_names_the_state(tmp_path):
    root = tmp_path / "data"
    for i in range(50):
        add_session(root, f"m{i:02d}", "s1")
    state = run(root).state
    store = ScanStateStore(tmp_path / "state")
    cursor = store.save(state)
    assert cursor.startswith("state:") and len(cursor) < 40
    assert store.save(state) == cursor  # same state, same file
    loaded, warning = store.load(cursor)
    assert loaded == state and warning is None


def test_state_store_reads_inline_cursors_and_survives_a_lost_file(tmp_path):
    root = tmp_path / "data"
    add_session(root, "m1", "s1")
    state = run(root).state
    store = ScanStateStore(tmp_path / "state")
    assert store.load(encode_state(state)) == (state, None)  # cursor of an older version
    cursor = store.save(state)
    (tmp_path / "state" / f"{cursor.split(':', 1)[1]}.json.z").unlink()
    loaded, warning = store.load(cursor)
    assert loaded == {} and "cannot be read" in warning and "run keys" in warning


def test_state_store_prunes_old_files(tmp_path):
    store = ScanStateStore(tmp_path, keep=2)
    cursors = [store.save({"n": i}) for i in range(4)]
    files = sorted(tmp_path.glob("*.json.z"), key=lambda p: p.stat().st_mtime_ns)
    old = time.time() - 3600
    for p in files[:-1]:
        os.utime(p, (old, old))
    store.save({"n": 99})
    left = {p.name for p in tmp_path.glob("*.json.z")}
    assert len(left) == 2
    assert f"{cursors[-1].split(':', 1)[1]}.json.z" in left


def test_unwritable_state_folder_gives_a_clear_error(tmp_path):
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state folder should be")
    with pytest.raises(ScanStateError, match="cannot write the sensor's scan state"):
        ScanStateStore(blocker).save({"n": 1})
