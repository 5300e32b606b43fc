"""Multi-camera 3D: triangulation, head orientation, SLEAP inputs, exports, bad input.

The ground-truth calibration is written by aniposelib as an Anipose calibration.toml; the
2D inputs are written by pandas in DLC's layout and by sleap-io.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dlc_tracking.io.dlc_files import read_predictions
from dlc_tracking.io.pose3d_exports import (
    to_anipose_frame,
    to_movement_dataset,
    write_anipose_csv,
    write_dlc_3d_h5,
)
from dlc_tracking.io.sleap_files import read_sleap_predictions
from dlc_tracking.multiview.calibration import load_anipose_toml
from dlc_tracking.multiview.errors import MultiviewError
from dlc_tracking.multiview.orientation import head_pose, state_vector_3d
from dlc_tracking.multiview.rigs import Rig, check_session_cameras
from dlc_tracking.multiview.sync import (
    align_by_times,
    check_frame_counts,
    read_camera_times,
    take_frames,
)
from dlc_tracking.multiview.triangulation import (
    TriangulationParams,
    assess_calibration_fit,
    triangulate_poses,
)
from dlc_tracking.synthetic.rig import (
    head_rotation,
    make_rig,
    project_scene,
    simulate_scene,
    write_anipose_calibration,
    write_dlc_predictions,
    write_sleap_predictions,
)
from dlc_tracking.tracking.methods import BUILTIN_METHODS

N_FRAMES = 200


@pytest.fixture(scope="session")
def rig_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("rig")
    cams = make_rig(4)
    scene = simulate_scene(N_FRAMES, seed=3)
    poses = project_scene(scene, cams, noise_px=0.3, seed=4)
    toml = write_anipose_calibration(cams, root / "calibration.toml")
    dlc = write_dlc_predictions(poses, cams, scene.body_parts, root / "dlc")
    sleap = write_sleap_predictions(poses, cams, scene.body_parts, root / "sleap")
    return {"root": root, "cams": cams, "scene": scene, "poses": poses, "toml": toml,
            "dlc": dlc, "sleap": sleap, "calibration": load_anipose_toml(toml)}


@pytest.fixture(scope="session")
def dlc_pose(rig_data):
    preds = {c: read_predictions(p) for c, p in rig_data["dlc"].items()}
    body_parts = preds["top"].body_parts
    return triangulate_poses(rig_data["calibration"], {c: p.poses for c, p in preds.items()},
                             body_parts)


def _angle_diff(a, b):
    return np.abs((np.asarray(a) - np.asarray(b) + 180.0) % 360.0 - 180.0)


def test_triangulated_points_match_ground_truth(rig_data, dlc_pose):
    err = np.linalg.norm(dlc_pose.points - rig_data["scene"].points, axis=2)
    assert np.median(err) < 2.0
    assert np.all(dlc_pose.n_cameras == 4)
    assert np.nanmedian(dlc_pose.error_px) < 1.0
    assert 0.98 < np.nanmin(dlc_pose.score) <= 1.0
    table = dlc_pose.to_frame()
    assert list(table.columns) == ["frame", "body_part", "x_mm", "y_mm", "z_mm",
                                   "reprojection_error_px", "n_cameras", "score"]
    assert len(table) == N_FRAMES * 4


def test_head_pitch_roll_azimuth_within_3_degrees(rig_data, dlc_pose):
    scene = rig_data["scene"]
    sv = state_vector_3d(BUILTIN_METHODS["two_ears"], dlc_pose.points, dlc_pose.body_parts,
                         front_part="nose")
    assert np.median(_angle_diff(np.degrees(sv.azimuth_rad), scene.azimuth_deg)) < 3.0
    assert np.median(np.abs(np.degrees(sv.pitch_rad) - scene.pitch_deg)) < 3.0
    assert np.median(np.abs(np.degrees(sv.roll_rad) - scene.roll_deg)) < 3.0
    assert np.ptp(scene.pitch_deg) > 20 and np.ptp(scene.roll_deg) > 20  # they do move
    head = np.stack([sv.x_mm, sv.y_mm, sv.z_mm], axis=1)
    assert np.median(np.linalg.norm(head - scene.head_mm(), axis=1)) < 2.0
    # without a front point: the 2D two-ears formula, no pitch or roll
    flat = state_vector_3d(BUILTIN_METHODS["two_ears"], dlc_pose.points, dlc_pose.body_parts)
    assert np.isnan(flat.pitch_rad).all() and np.isnan(flat.roll_rad).all()
    assert np.median(_angle_diff(np.degrees(flat.azimuth_rad), scene.azimuth_deg)) < 10.0


def test_sleap_inputs_triangulate_identically(rig_data, dlc_pose):
    preds = {c: read_sleap_predictions(p, n_frames=N_FRAMES)
             for c, p in rig_data["sleap"].items()}
    pose = triangulate_poses(rig_data["calibration"], {c: p.poses for c, p in preds.items()},
                             preds["top"].body_parts)
    np.testing.assert_allclose(pose.points, dlc_pose.points, atol=1e-6)
    np.testing.assert_allclose(pose.error_px, dlc_pose.error_px, atol=1e-6)


def test_disagreeing_camera_is_left_out_like_aniposelib_ransac(rig_data):
    poses = {c.name: p.copy() for c, p in zip(rig_data["cams"], rig_data["poses"],
                                              strict=True)}
    bad = np.arange(0, 40, 2)
    poses["side_2"][bad, 0, :2] += 45.0  # the nose, 45 px off in one camera
    calib = rig_data["calibration"]
    pose = triangulate_poses(calib, poses, rig_data["scene"].body_parts)
    assert pose.stats["camera_left_out"]["side_2"] == len(bad)
    assert not pose.used[2, bad, 0].any() and (pose.n_cameras[bad, 0] == 3).all()
    err = np.linalg.norm(pose.points[bad, 0] - rig_data["scene"].points[bad, 0], axis=1)
    assert np.median(err) < 2.0
    # aniposelib's own robust triangulation picks the same cameras and points
    pts = np.stack([poses[c][bad, 0, :2] for c in pose.cameras])
    p3d, picked, _, _ = calib.group.triangulate_ransac(pts)
    np.testing.assert_allclose(p3d, pose.points[bad, 0], atol=1e-3)
    np.testing.assert_array_equal(picked[:, :, 0], pose.used[:, bad, 0])
    # not robust: all cameras, worse
    plain = triangulate_poses(calib, poses, rig_data["scene"].body_parts,
                              TriangulationParams(robust=False))
    assert np.median(np.linalg.norm(plain.points[bad, 0] - rig_data["scene"].points[bad, 0],
                                    axis=1)) > 3 * np.median(err)


def test_points_seen_by_two_cameras_equal_aniposelib_default_path(rig_data):
    """Two-camera points go through aniposelib's OpenCV two-view path: same solution as
    its default (jax) triangulation, for a 2-camera rig and for a point two of four
    cameras saw."""
    poses = {c.name: p.copy() for c, p in zip(rig_data["cams"], rig_data["poses"],
                                              strict=True)}
    poses["side_2"][:50, :, 2] = 0.0   # below the cutoff: seen by 3 cameras
    poses["side_3"][:25, :, 2] = 0.0   # and by 2 in the first 25 frames
    calib = rig_data["calibration"]
    parts = rig_data["scene"].body_parts
    pose = triangulate_poses(calib, poses, parts, TriangulationParams(robust=False))
    idx = [calib.camera_names.index(c) for c in pose.cameras]
    group = calib.group.subset_cameras(idx)
    pts = np.stack([np.where(pose.used[i][..., None], poses[c][..., :2], np.nan)
                    for i, c in enumerate(pose.cameras)]).reshape(len(idx), -1, 2)
    direct = calib.to_world(group.triangulate(pts).reshape(N_FRAMES, len(parts), 3))
    assert (pose.n_cameras[:25] == 2).all() and (pose.n_cameras[30:40] == 3).all()
    np.testing.assert_allclose(pose.points, direct, atol=1e-6)
    two = {c: poses[c] for c in ("top", "side_1")}
    pose2 = triangulate_poses(calib, two, parts)
    g2 = calib.group.subset_cameras([calib.camera_names.index(c) for c in two])
    p2 = g2.triangulate(np.stack([two[c][..., :2] for c in two]).reshape(2, -1, 2))
    np.testing.assert_allclose(pose2.points.reshape(-1, 3), calib.to_world(p2), atol=1e-6)


def test_part_seen_by_one_camera_stays_missing_and_is_counted(rig_data):
    poses = {c.name: p.copy() for c, p in zip(rig_data["cams"], rig_data["poses"],
                                              strict=True)}
    for cam in ("side_1", "side_2", "side_3"):
        poses[cam][10:15, 3] = np.nan           # tail base only seen from the top
    poses["side_1"][20:23, 1, 2] = 0.2          # left ear below the cutoff in one camera
    pose = triangulate_poses(rig_data["calibration"], poses, rig_data["scene"].body_parts)
    assert np.isnan(pose.points[10:15, 3]).all() and (pose.n_cameras[10:15, 3] == 0).all()
    assert pose.stats["missing_by_part"]["tail_base"] == 5
    assert pose.stats["fewer_than_two_cameras"] == 5
    assert (pose.n_cameras[20:23, 1] == 3).all()
    assert pose.stats["below_cutoff_by_camera"]["side_1"] == 5 + 3


def test_calibration_of_another_rig_is_flagged(rig_data, dlc_pose, tmp_path):
    other = make_rig(4, arena_mm=460.0, focal_px=600.0, azimuth_offset_deg=25.0)
    calib = load_anipose_toml(write_anipose_calibration(other, tmp_path / "other.toml"))
    poses = {c.name: p for c, p in zip(rig_data["cams"], rig_data["poses"], strict=True)}
    pose = triangulate_poses(calib, poses, rig_data["scene"].body_parts)
    fit = assess_calibration_fit(pose, calibration_source="other.toml", source="mouse1/s1")
    assert fit.flagged and "other.toml" in fit.message and "mouse1/s1" in fit.message
    own = assess_calibration_fit(dlc_pose)
    assert not own.flagged and own.median_error_px < 1.0


def test_camera_names_must_match_the_calibration(rig_data):
    poses = {"top": rig_data["poses"][0], "front": rig_data["poses"][1]}
    with pytest.raises(MultiviewError, match=r"\['front'\] are not in the calibration"):
        triangulate_poses(rig_data["calibration"], poses, rig_data["scene"].body_parts,
                          source="mouse1/s1")


def test_rig_and_session_cameras():
    rig = Rig.from_spec("rig_a", {"cameras": {"top": {"model": "m_top"}, "side": None},
                                  "model": "m_all"})
    assert rig.models == {"top": "m_top", "side": "m_all"}
    with pytest.raises(MultiviewError, match="not cameras of rig 'rig_a'"):
        check_session_cameras(rig, ["top", "bottom"], "s/session.yaml")
    with pytest.raises(MultiviewError, match="2 or more cameras"):
        Rig("r", ("top",))


def test_frame_counts_and_frame_times():
    with pytest.raises(MultiviewError, match="different numbers of frames"):
        check_frame_counts({"top": 100, "side": 99}, "s1")
    assert check_frame_counts({"top": 100, "side": 100}, "s1") == 100
    t_top = np.arange(10) * 0.02
    t_side = np.delete(np.arange(11) * 0.02 + 0.003, 4)  # dropped frame 4, 3 ms later
    t, index = align_by_times({"top": t_top, "side": t_side}, {"top": 10, "side": 10})
    assert index["side"][4] == -1 and index["side"][5] == 4 and index["side"][0] == 0
    poses = np.arange(10 * 2 * 3, dtype=float).reshape(10, 2, 3)
    taken = take_frames(poses, index["side"])
    assert np.isnan(taken[4]).all() and (taken[5] == poses[4]).all()


def test_exports(rig_data, dlc_pose, tmp_path):
    h5 = write_dlc_3d_h5(dlc_pose, tmp_path / "take_DLC_3D.h5")
    df = pd.read_hdf(h5, "df_with_missing")
    assert df.columns.names == ["scorer", "bodyparts", "coords"]
    np.testing.assert_allclose(df[("DLC_3D", "nose", "z")], dlc_pose.points[:, 0, 2])
    csv = pd.read_csv(write_anipose_csv(dlc_pose, tmp_path / "take.csv"))
    assert {"nose_x", "nose_error", "nose_ncams", "nose_score", "M_00", "center_2",
            "fnum"} <= set(csv.columns)
    assert list(csv.columns) == list(to_anipose_frame(dlc_pose).columns)
    ds = to_movement_dataset(dlc_pose, fps=30.0)
    assert list(ds.space.values) == ["x", "y", "z"]
    np.testing.assert_allclose(ds.position.sel(space="z", keypoints="nose").values[:, 0],
                               dlc_pose.points[:, 0, 2])


def test_camera_frame_time_files(tmp_path):
    np.save(tmp_path / "top.npy", np.arange(5) * 0.02)
    (tmp_path / "side.csv").write_text("time_s\n0.001\n0.021\n0.041\n")
    times = read_camera_times({"top": tmp_path / "top.npy", "side": tmp_path / "side.csv"})
    assert times["side"].tolist() == [0.001, 0.021, 0.041]
    (tmp_path / "bad.csv").write_text("0.0\n0.02\n0.01\n")
    with pytest.raises(MultiviewError, match=r"bad\.csv: frame times of camera 'side'.*row 2"):
        read_camera_times({"side": tmp_path / "bad.csv"})
    with pytest.raises(MultiviewError, match="file not found"):
        read_camera_times({"side": tmp_path / "none.csv"})


def test_head_angle_conventions():
    """Facing +y, nose 10 deg up, left ear 12 deg up: azimuth 90, pitch +10, roll +12."""
    rot = head_rotation(np.radians([90.0]), np.radians([10.0]), np.radians([12.0]))[0]
    fwd, lat = rot[:, 0], rot[:, 1]
    left, right, nose = 5.0 * lat[None], -5.0 * lat[None], 20.0 * fwd[None]
    assert fwd[2] > 0 and lat[2] > 0  # the nose and the left ear are up
    hp = head_pose(left, right, nose)
    assert np.degrees(hp.azimuth_rad[0]) == pytest.approx(90.0)
    assert np.degrees(hp.pitch_rad[0]) == pytest.approx(10.0)
    assert np.degrees(hp.roll_rad[0]) == pytest.approx(12.0)
    ears_only = head_pose(left, right)  # the 2D formula on x/y
    assert np.degrees(ears_only.azimuth_rad[0]) == pytest.approx(90.0, abs=3.0)
    missing = head_pose(left, right, np.full((1, 3), np.nan))
    assert np.isnan([missing.azimuth_rad, missing.pitch_rad, missing.roll_rad]).all()
    points = np.stack([nose[0], left[0], right[0]])[None]
    sv = state_vector_3d(BUILTIN_METHODS["nose"], points, ["nose", "left_ear", "right_ear"])
    assert sv.z_mm[0] == pytest.approx(nose[0, 2]) and np.isnan(sv.azimuth_rad[0])
    with pytest.raises(MultiviewError, match="not triangulated"):
        state_vector_3d(BUILTIN_METHODS["two_ears"], points, ["nose", "a", "b"])
