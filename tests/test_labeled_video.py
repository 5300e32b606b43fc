"""The OpenCV labeled-video renderer on a synthetic video with known keypoints."""

from __future__ import annotations

import numpy as np
import pytest

from dlc_tracking.errors import VideoError
from dlc_tracking.qc.labeled_video import image_direction, render_labeled_video, thumbnail_strip
from dlc_tracking.synthetic.openfield import GROUND_TRUTH_NAME, make_session, read_ground_truth


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = make_session(tmp_path_factory.mktemp("clip"), "m", "s", n_frames=60, seed=5)
    gt = read_ground_truth(folder / GROUND_TRUTH_NAME)
    poses = gt.poses()
    poses[..., 2] = 0.95
    poses[:, 3, 2] = 0.1  # tail_base always below the cutoff: never drawn
    return folder / "openfield.mp4", poses, list(gt.body_parts)


def _frames(path):
    import cv2

    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(frame)
    cap.release()
    return np.array(out)


def test_image_direction_conventions():
    # arena angle 90 deg (up in the arena): up in the image (y down) seen from above;
    # seen from below the image is the arena turned by 180 deg: down in the image
    dx, dy = image_direction(np.array([np.pi / 2]), "above")
    assert np.allclose([dx[0], dy[0]], [0, -1])
    dx, dy = image_direction(np.array([0.0]), "below")
    assert np.allclose([dx[0], dy[0]], [-1, 0])


def test_renders_every_frame_with_marks_at_the_keypoints(clip, tmp_path):
    video, poses, parts = clip
    seen = []
    result = render_labeled_video(video, tmp_path / "labeled.mp4", poses, parts,
                                  cutoff=0.6, progress=lambda d, n, f: seen.append((d, n, f)),
                                  progress_interval_s=0.0, recording_id="m__s__openfield")
    assert result.n_frames == 60 and result.frames_per_s > 0
    assert seen[-1][:2] == (60, 60) and seen[-1][2] > 0  # progress with frames/s
    original, labeled = _frames(video), _frames(result.path)
    assert labeled.shape == original.shape
    diff = np.abs(labeled.astype(int) - original.astype(int)).sum(axis=-1)
    for frame in (0, 30, 59):
        for part, drawn in ((0, True), (3, False)):  # nose drawn, tail_base hidden
            x, y = np.round(poses[frame, part, :2]).astype(int)
            patch = diff[frame, max(0, y - 1):y + 2, max(0, x - 1):x + 2]
            assert (patch.mean() > 60) == drawn, (frame, part, patch.mean())
    assert len(result.thumbnails) == 5
    assert thumbnail_strip(result.thumbnails)[:4] == b"\x89PNG"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_missing_video_refused(clip, tmp_path):
    _, poses, parts = clip
    with pytest.raises(VideoError, match="not there.*copy the video back"):
        render_labeled_video(tmp_path / "gone.mp4", tmp_path / "x.mp4", poses, parts,
                             recording_id="m__s__gone")
    assert not (tmp_path / "x.mp4").exists()


def test_frame_count_mismatch_refused(clip, tmp_path):
    video, poses, parts = clip
    longer = np.concatenate([poses, poses[:5]])
    with pytest.raises(VideoError, match="60 readable frames but the predictions have 65"):
        render_labeled_video(video, tmp_path / "x.mp4", longer, parts)
    assert not list(tmp_path.iterdir())  # nothing half-written
