"""session.yaml schema, recording ids, discovery and frame times."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from dlc_tracking.errors import SessionError
from dlc_tracking.sessions.layout import (
    PARTITION_KEY_PATTERN,
    discover_recordings,
    frame_times,
    load_session_metadata,
    read_timestamps,
    recording_id,
)

VALID = {
    "tracking_type": "openfield",
    "start_time": "2026-01-05T10:00:00+01:00",
    "camera_view": "above",
    "arena": {"shape": "square", "width_cm": 50},
    "assignment": {"model": "tiny_openfield", "method": "two_ears"},
}


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data) if isinstance(data, dict) else data)
    return path


def test_valid_session_yaml(tmp_path):
    meta = load_session_metadata(write(tmp_path / "session.yaml", VALID))
    assert meta.start_time.utcoffset().total_seconds() == 3600
    assert meta.arena.height_cm == 50  # square: height defaults to width
    assert meta.assignment.model == "tiny_openfield"


def test_documented_example_is_valid(tmp_path):
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "sessions.md").read_text()
    complete = doc.split("## session.yaml (complete example)", 1)[1]
    example = complete.split("```yaml", 1)[1].split("```", 1)[0]
    meta = load_session_metadata(write(tmp_path / "session.yaml", example))
    assert meta.camera_view in ("above", "below")


@pytest.mark.parametrize("change, message", [
    ({"start_time": "05/01/2026 10:00"}, "not ISO 8601"),
    ({"start_time": "2026-01-05T10:00:00"}, "no time zone"),
    ({"camera_view": "side"}, "camera_view"),
    ({"tracking_type": "Open Field"}, "snake_case"),
    ({"colour": "red"}, "colour"),
    ({"arena": {"shape": "square", "width_cm": -1}}, "width_cm"),
])
def test_invalid_session_yaml_names_file_and_key(tmp_path, change, message):
    path = write(tmp_path / "s" / "session.yaml", {**VALID, **change})
    with pytest.raises(SessionError) as err:
        load_session_metadata(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_missing_and_malformed_session_yaml(tmp_path):
    with pytest.raises(SessionError, match="missing"):
        load_session_metadata(tmp_path / "session.yaml")
    with pytest.raises(SessionError, match="not valid YAML"):
        load_session_metadata(write(tmp_path / "session.yaml", "a: [1, 2\n"))


def test_camera_view_is_required(tmp_path):
    data = dict(VALID)
    del data["camera_view"]
    with pytest.raises(SessionError, match="camera_view"):
        load_session_metadata(write(tmp_path / "session.yaml", data))


@pytest.mark.parametrize("parts", [
    ("mouse 1", "2026-01-05, run [2]", "open field"),
    ("m/1", "s#1", "vid(1)"),
    ("Maus-Ä", "sess.1", "cam_0"),
])
def test_recording_ids_are_valid_partition_keys(parts):
    rid = recording_id(*parts)
    assert PARTITION_KEY_PATTERN.match(rid), rid
    assert not set(",[]()/ #") & set(rid)
    assert rid == recording_id(*parts)  # stable


def _session(root, subject, session, video="openfield.mp4"):
    folder = root / subject / session
    write(folder / "session.yaml", VALID)
    (folder / video).write_bytes(b"x")
    return folder


def test_discovery_finds_recordings_and_ignores_junk(tmp_path):
    _session(tmp_path, "mouse1", "s1")
    folder = _session(tmp_path, "mouse1", "s2")
    (folder / ".hidden.mp4").write_bytes(b"x")
    (folder / "notes.txt").write_text("x")
    (folder / "video.mp4.part").write_bytes(b"x")
    (tmp_path / ".trash" / "s").mkdir(parents=True)
    found = discover_recordings(tmp_path)
    assert sorted(r.recording_id for r in found.recordings) == [
        "mouse1__s1__openfield", "mouse1__s2__openfield"]


def test_recording_id_collision_is_refused(tmp_path):
    _session(tmp_path, "mouse 1", "s1")
    _session(tmp_path, "mouse_1", "s1")  # different folder, same id after sanitising? no
    _session(tmp_path, "mouse-1", "s1")
    _session(tmp_path, "mouse#1", "s1")  # sanitises to mouse-1 as well
    found = discover_recordings(tmp_path)
    ids = [r.recording_id for r in found.recordings]
    assert "mouse-1__s1__openfield" not in ids
    assert any("collides" in p for p in found.problems)
    assert "mouse_1__s1__openfield" in ids


def test_timestamps_length_must_match(tmp_path):
    path = write(tmp_path / "v.timestamps.csv", "time_s\n0.0\n0.025\n0.05\n")
    assert np.allclose(read_timestamps(path, 3), [0, 0.025, 0.05])
    with pytest.raises(SessionError, match="3 timestamps but the video has 4 frames"):
        read_timestamps(path, 4, "rec1")


def test_frame_times_from_fps():
    assert np.allclose(frame_times(4, 40.0), [0, 0.025, 0.05, 0.075])
