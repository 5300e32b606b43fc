"""Synthetic open-field recordings: geometry, camera views, video, session folder."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import yaml

from dlc_tracking.synthetic import openfield as synthetic
from dlc_tracking.synthetic.openfield import (
    BODY_PARTS,
    head_direction_from_ears_deg,
    image_to_arena,
    make_session,
    read_ground_truth,
    render_video,
    simulate_openfield,
    write_ground_truth,
)

W, H = 200, 150


def _angle_diff_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs((np.asarray(a) - np.asarray(b) + 180.0) % 360.0 - 180.0)


def _parts(gt: synthetic.GroundTruth) -> dict[str, np.ndarray]:
    return {bp: gt.keypoints[:, i] for i, bp in enumerate(gt.body_parts)}


def test_shapes_and_fields():
    gt = simulate_openfield(n_frames=120, fps=30, width=W, height=H, seed=3)
    assert gt.body_parts == BODY_PARTS == ["nose", "left_ear", "right_ear", "tail_base"]
    assert gt.keypoints.shape == (120, 4, 2)
    assert gt.visible.shape == (120, 4) and gt.visible.all()
    assert gt.time_s.shape == (120,)
    np.testing.assert_allclose(np.diff(gt.time_s), 1 / 30)
    assert gt.head_direction_deg.shape == (120,)
    assert ((gt.head_direction_deg >= 0) & (gt.head_direction_deg < 360)).all()
    assert gt.head_xy_px.shape == (120, 2)
    assert gt.head_speed_px_s.shape == (120,)
    assert (gt.width, gt.height, gt.fps, gt.camera_view) == (W, H, 30.0, "above")
    # The whole animal (keypoints) stays on the arena floor.
    x0, y0, x1, y1 = gt.arena_px
    assert (gt.keypoints[..., 0] > x0).all() and (gt.keypoints[..., 0] < x1).all()
    assert (gt.keypoints[..., 1] > y0).all() and (gt.keypoints[..., 1] < y1).all()
    # Sub-pixel, not rounded.
    assert not np.allclose(gt.keypoints, np.round(gt.keypoints))


def test_ears_either_side_of_heading_above():
    gt = simulate_openfield(n_frames=200, seed=1)
    p = _parts(gt)
    arena = {k: image_to_arena(v, W, H, "above") for k, v in p.items()}
    mid = 0.5 * (arena["left_ear"] + arena["right_ear"])
    fwd = arena["nose"] - mid
    to_left = arena["left_ear"] - mid
    to_right = arena["right_ear"] - mid
    cross_left = fwd[:, 0] * to_left[:, 1] - fwd[:, 1] * to_left[:, 0]
    cross_right = fwd[:, 0] * to_right[:, 1] - fwd[:, 1] * to_right[:, 0]
    # In a y-up frame the animal's left is counter-clockwise of its heading.
    assert (cross_left > 0).all()
    assert (cross_right < 0).all()
    # The nose points along the stored heading.
    nose_dir = np.degrees(np.arctan2(fwd[:, 1], fwd[:, 0]))
    assert _angle_diff_deg(nose_dir, gt.head_direction_deg).max() < 1e-6


@pytest.mark.parametrize("view", ["above", "below"])
def test_head_direction_from_ears_matches_truth(view):
    gt = simulate_openfield(n_frames=300, seed=5, camera_view=view)
    p = _parts(gt)
    hd = head_direction_from_ears_deg(p["left_ear"], p["right_ear"], W, H, view)
    assert _angle_diff_deg(hd, gt.head_direction_deg).max() < 0.1
    # Conventions formula written out, in the arena frame.
    la = image_to_arena(p["left_ear"], W, H, view)
    ra = image_to_arena(p["right_ear"], W, H, view)
    hd2 = np.degrees(np.arctan2(la[:, 1] - ra[:, 1], la[:, 0] - ra[:, 0])) - 90.0
    assert _angle_diff_deg(hd2, gt.head_direction_deg).max() < 0.1
    # Head position = ear midpoint; speed from it.
    np.testing.assert_allclose(gt.head_xy_px, 0.5 * (p["left_ear"] + p["right_ear"]))
    vx = np.gradient(gt.head_xy_px[:, 0], gt.time_s)
    vy = np.gradient(gt.head_xy_px[:, 1], gt.time_s)
    np.testing.assert_allclose(gt.head_speed_px_s, np.hypot(vx, vy))
    assert 1.0 < np.median(gt.head_speed_px_s) < 200.0


def test_camera_below_mirrors_x_and_keeps_left_ear():
    above = simulate_openfield(n_frames=150, seed=11, camera_view="above")
    below = simulate_openfield(n_frames=150, seed=11, camera_view="below")
    np.testing.assert_allclose(below.keypoints[..., 0], W - above.keypoints[..., 0])
    np.testing.assert_allclose(below.keypoints[..., 1], above.keypoints[..., 1])
    np.testing.assert_allclose(below.head_direction_deg, above.head_direction_deg)
    # Same animal, same left ear: in the image it now lies on the other side of the
    # nose-to-tail line (a mirrored image flips handedness).
    for gt, sign in ((above, 1.0), (below, -1.0)):
        p = _parts(gt)
        fwd = p["nose"] - p["tail_base"]
        rel = p["left_ear"] - p["tail_base"]
        cross_img = fwd[:, 0] * rel[:, 1] - fwd[:, 1] * rel[:, 0]
        # Image y points down: the animal's left (seen from above) is clockwise on screen.
        assert (sign * cross_img < 0).all()
    # The rendered image is the mirror image too (x_img = W - x: column j <-> W - j).
    a = synthetic.render_frame(above, 40).astype(int)
    b = synthetic.render_frame(below, 40).astype(int)
    diff = np.abs(b[:, :0:-1] - a[:, 1:])
    assert np.mean(diff) < 1.0


def test_determinism_by_seed():
    a = simulate_openfield(n_frames=100, seed=42)
    b = simulate_openfield(n_frames=100, seed=42)
    c = simulate_openfield(n_frames=100, seed=43)
    np.testing.assert_array_equal(a.keypoints, b.keypoints)
    np.testing.assert_array_equal(a.head_direction_deg, b.head_direction_deg)
    assert not np.allclose(a.keypoints, c.keypoints)
    np.testing.assert_array_equal(synthetic.render_frame(a, 10), synthetic.render_frame(b, 10))


def test_occlusion_marks_hidden_parts():
    gt = simulate_openfield(n_frames=300, seed=2, occlusion=0.2)
    hidden_frames = (~gt.visible).any(axis=1)
    assert 0.15 <= hidden_frames.mean() <= 0.25
    occ = ~np.isnan(gt.occluders[:, 0])
    np.testing.assert_array_equal(occ, hidden_frames)
    poses = gt.poses()
    assert np.isnan(poses[~gt.visible]).all()
    assert not np.isnan(poses[gt.visible]).any()


def test_video_frames_and_size(tmp_path):
    gt = simulate_openfield(n_frames=45, seed=0)
    path = render_video(gt, tmp_path / "v.mp4", noise=3.0, seed=1)
    cap = cv2.VideoCapture(str(path))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 45
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(30.0)
    n = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        assert frame.shape == (H, W, 3)
        n += 1
    cap.release()
    assert n == 45


def test_rendering_is_centred_on_keypoints():
    gt = simulate_openfield(n_frames=20, seed=9)
    img = synthetic.render_frame(gt, 5)
    # Ears are pink (red channel high, green low) at their labelled position.
    for part in ("left_ear", "right_ear"):
        x, y = gt.keypoints[5, gt.body_parts.index(part)]
        b, g, r = img[int(round(y)), int(round(x))].astype(int)
        assert r - g > 40
    # The floor is light and the animal dark.
    x, y = gt.keypoints[5, 3]
    assert img[int(round(y)), int(round(x))].mean() < 120


def test_ground_truth_csv_roundtrip(tmp_path):
    gt = simulate_openfield(n_frames=60, seed=4, camera_view="below", occlusion=0.1)
    path = write_ground_truth(gt, tmp_path / "openfield.groundtruth.csv")
    import pandas as pd

    df = pd.read_csv(path)
    assert list(df.columns) == ["frame", "time_s", "body_part", "x_px", "y_px", "visible"]
    assert len(df) == 60 * 4
    back = read_ground_truth(path, camera_view="below", width=W, height=H)
    np.testing.assert_allclose(back.keypoints, gt.keypoints, atol=1e-5)
    np.testing.assert_array_equal(back.visible, gt.visible)
    np.testing.assert_allclose(back.time_s, gt.time_s, atol=1e-6)
    assert _angle_diff_deg(back.head_direction_deg, gt.head_direction_deg).max() < 1e-3
    assert back.fps == pytest.approx(30.0)


def test_make_session_folder(tmp_path):
    folder = make_session(
        tmp_path,
        "mouse1",
        "2026-01-05_s1",
        n_frames=30,
        seed=3,
        camera_view="below",
        noise=2.0,
        assignment={"model": "tiny", "method": "2points_leftrightear"},
    )
    assert folder == tmp_path / "mouse1" / "2026-01-05_s1"
    assert sorted(p.name for p in folder.iterdir()) == [
        "openfield.groundtruth.csv",
        "openfield.mp4",
        "session.yaml",
    ]
    meta = yaml.safe_load((folder / "session.yaml").read_text())
    assert list(meta) == [
        "tracking_type",
        "start_time",
        "camera_view",
        "arena",
        "pixels_per_cm",
        "assignment",
    ]
    assert meta["tracking_type"] == "openfield"
    assert meta["start_time"] == "2026-01-05T10:00:00+01:00"
    assert meta["camera_view"] == "below"
    assert meta["arena"] == {"shape": "square", "width_cm": 50.0, "height_cm": 50.0}
    gt = simulate_openfield(n_frames=30, seed=3, camera_view="below")
    assert meta["pixels_per_cm"] == pytest.approx(gt.arena_side_px / 50.0)
    assert meta["assignment"] == {"model": "tiny", "method": "2points_leftrightear"}
    # The CSV next to session.yaml and the video reads back with view and size.
    back = read_ground_truth(folder / "openfield.groundtruth.csv")
    assert (back.camera_view, back.width, back.height) == ("below", W, H)
    np.testing.assert_allclose(back.keypoints, gt.keypoints, atol=1e-5)


def test_make_session_without_assignment(tmp_path):
    folder = make_session(tmp_path, "m", "s", n_frames=10)
    meta = yaml.safe_load((folder / "session.yaml").read_text())
    assert "assignment" not in meta
    assert meta["camera_view"] == "above"
    assert isinstance(meta["pixels_per_cm"], float)


def test_bad_arguments():
    with pytest.raises(ValueError, match="camera_view"):
        simulate_openfield(n_frames=5, camera_view="side")
    with pytest.raises(ValueError, match="n_frames"):
        simulate_openfield(n_frames=0)
