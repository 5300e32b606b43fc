"""Bad videos are refused early with the file named."""

from __future__ import annotations

import shutil

import pytest

from dlc_tracking.errors import VideoError
from dlc_tracking.io.video import probe_video
from dlc_tracking.synthetic.openfield import render_video, simulate_openfield


@pytest.fixture(scope="module")
def good_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "good.mp4"
    render_video(simulate_openfield(n_frames=60, fps=30, width=200, height=150, seed=1), path)
    return path


def test_probe_good_video(good_video):
    info = probe_video(good_video)
    assert (info.n_frames, info.width_px, info.height_px) == (60, 200, 150)
    assert info.fps == pytest.approx(30)


def test_missing_video(tmp_path):
    with pytest.raises(VideoError, match="not found"):
        probe_video(tmp_path / "nope.mp4")


def test_empty_and_unreadable_video(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoError, match="empty"):
        probe_video(tmp_path / "empty.mp4")
    (tmp_path / "text.mp4").write_bytes(b"this is not a video" * 100)
    with pytest.raises(VideoError, match="text.mp4"):
        probe_video(tmp_path / "text.mp4")


def test_truncated_video(tmp_path, good_video):
    data = good_video.read_bytes()
    cut = tmp_path / "cut.mp4"
    shutil.copy(good_video, cut)
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match="cut.mp4"):
        probe_video(cut)


def test_zero_frame_video(tmp_path):
    import cv2
    import numpy as np

    path = tmp_path / "zero.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (64, 48))
    writer.release()
    if not path.exists():
        path.write_bytes(np.zeros(10, np.uint8).tobytes())
    with pytest.raises(VideoError, match="zero.avi"):
        probe_video(path)
