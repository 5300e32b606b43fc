"""Honest frame rates (issue 21, D1): a 30 fps declared in session.yaml against DLC
metadata saying 60 used to be ignored in two spellings (no video here: the session's or
the video entry's fps) and applied in silence in the third (video here). One decision
now: the declared rate is used, and each disagreeing source is named with its value."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dlc_tracking.errors import SessionError
from dlc_tracking.io.dlc_files import output_names, write_metadata, write_predictions
from dlc_tracking.sessions.frame_rate import reconcile_fps
from dlc_tracking.sessions.layout import find_recording
from dlc_tracking.sessions.recording_info import inspect_recording
from dlc_tracking.synthetic.openfield import GROUND_TRUTH_NAME, make_session, read_ground_truth

N = 60


def test_reconcile_rule_and_messages():
    rate = reconcile_fps(declared=30.0, container=60.0, dlc_metadata=60.0, where="rec r1")
    assert (rate.fps, rate.source) == (30.0, "session.yaml")
    assert len(rate.warnings) == 2
    assert all("30 fps" in w and "60 fps" in w and "rec r1" in w for w in rate.warnings)
    assert reconcile_fps(declared=None, container=30.0, dlc_metadata=30.1,
                         where="r").warnings == ()  # within 1 %
    assert reconcile_fps(declared=None, container=None, dlc_metadata=25.0,
                         where="r").source == "dlc_metadata"
    with pytest.raises(SessionError, match="30 fps.*60 fps"):
        reconcile_fps(declared=30.0, container=None, dlc_metadata=60.0, where="r",
                      on_conflict="refuse")
    with pytest.raises(SessionError, match="no frame rate is known"):
        reconcile_fps(declared=None, container=None, dlc_metadata=None, where="r")


def _session(root: Path, registry, name: str, *, keep_video: bool, declare: dict) -> Path:
    """A session whose video runs at 60 fps, with DLC outputs whose metadata says 60, and
    ``declare`` merged into its session.yaml."""
    folder = make_session(root, "m1", name, n_frames=N, fps=60.0, seed=1)
    gt = read_ground_truth(folder / GROUND_TRUTH_NAME)
    scorer = registry.model("tiny_openfield").scorer
    h5, meta = output_names("openfield", scorer)
    out = folder / "dlc_openfield"
    write_predictions(out / h5, scorer, registry.model("tiny_openfield").dlc_body_parts,
                      gt.poses())
    write_metadata(out / meta, {"Scorer": scorer, "fps": 60.0, "nframes": N,
                                "cropping": False, "cropping_parameters": [0, 200, 0, 150]})
    session_yaml = folder / "session.yaml"
    doc = yaml.safe_load(session_yaml.read_text())
    doc.update(declare)
    session_yaml.write_text(yaml.safe_dump(doc, sort_keys=False))
    if not keep_video:
        (folder / "openfield.mp4").unlink()
    return folder


@pytest.mark.parametrize("keep_video, declare", [
    (False, {"fps": 30.0}),                                             # was: 60 used
    (False, {"videos": [{"file": "openfield.mp4", "fps": 30.0}]}),      # was: 60 used
    (True, {"fps": 30.0}),                                              # was: silent
], ids=["session-fps-no-video", "video-entry-fps-no-video", "session-fps-with-video"])
def test_declared_fps_used_and_disagreement_said(tmp_path, registry, keep_video, declare):
    name = f"s{len(str(declare))}{int(keep_video)}"
    _session(tmp_path, registry, name, keep_video=keep_video, declare=declare)
    rid = f"m1__{name}__openfield"
    info = inspect_recording(find_recording(tmp_path, rid), registry)
    assert info.video.fps == 30.0 and info.fps_source == "session.yaml"
    assert info.time_s[1] == pytest.approx(1 / 30)
    assert info.fps_warnings, "a 30 vs 60 fps disagreement must be said"
    text = " ".join(info.fps_warnings)
    assert "30 fps" in text and "60 fps" in text and "_meta.pickle" in text
    assert (("the video container says 60 fps" in text) == keep_video)
