"""Multi-camera calibration: rendered ChArUco videos through aniposelib, the floor board for
world axes, DeepLabCut's own calibrate_cameras pickles, and the bad-input cases."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from dlc_tracking.multiview.boards import Board
from dlc_tracking.multiview.calibration import (
    align_to_board,
    align_to_points,
    calibrate_videos,
    load_anipose_toml,
    load_dlc_3d,
)
from dlc_tracking.multiview.errors import MultiviewError
from dlc_tracking.multiview.triangulation import TriangulationParams, triangulate_poses
from dlc_tracking.synthetic.rig import (
    _board_image,
    make_rig,
    project_scene,
    render_board_frame,
    simulate_scene,
    write_board_videos,
    write_checkerboard_images,
)

BOARD = Board()


@pytest.fixture(scope="module")
def charuco(tmp_path_factory):
    root = tmp_path_factory.mktemp("charuco")
    cams = make_rig(3)
    videos = write_board_videos(cams, root, board=BOARD, n_frames=45)
    return cams, calibrate_videos(videos, BOARD)


@pytest.mark.slow
def test_charuco_calibration_reprojects_within_1px_and_triangulates_within_2mm(charuco):
    cams, calib = charuco
    assert calib.camera_names == ["top", "side_1", "side_2"]
    assert calib.source == "charuco_videos"
    assert all(e is not None and e < 1.0 for e in calib.reprojection_error_px.values())
    # the floor: the board lying flat on the arena, seen once by every camera
    pose = np.eye(4)
    pose[:3, :3] = np.diag([1.0, -1.0, -1.0])  # printed face up, board x = world +x
    pose[:3, 3] = [100.0, 350.0, 0.0]
    px = 60
    img = _board_image(BOARD, px)
    frames = {c.name: render_board_frame(c, BOARD, pose, img, px) for c in cams}
    aligned = align_to_board(calib, frames)
    assert aligned.axes == "floor_board"
    corners = BOARD.to_aniposelib().board.getChessboardCorners()  # OpenCV's own geometry
    origin = pose[:3, :3] @ np.asarray(corners[0], dtype=float) + pose[:3, 3]
    scene = simulate_scene(150, seed=5)
    poses = project_scene(scene, cams, noise_px=0.2, seed=6)
    pose3d = triangulate_poses(aligned, {c.name: p for c, p in zip(cams, poses, strict=True)},
                               scene.body_parts)
    err = np.linalg.norm(pose3d.points + origin - scene.points, axis=2)
    assert np.median(err) < 2.0
    assert np.nanmedian(pose3d.error_px) < 1.0
    # reprojection of the true 3D points through the recovered calibration
    proj = aligned.project(scene.points.reshape(-1, 3) - origin)
    truth = np.stack([c.project(scene.points.reshape(-1, 3)) for c in cams])
    assert np.median(np.linalg.norm(proj - truth, axis=2)) < 1.0
    # the alignment survives the Anipose toml round trip (aniposelib's writer)
    again = load_anipose_toml(aligned.write_toml(calib.source_files[0] + ".toml"))
    np.testing.assert_allclose(again.world_from_calibration, aligned.world_from_calibration)
    # three named points give the same axes as the floor board
    corner_pts = aligned.to_calibration_frame(np.array(
        [[0.0, 0.0, 0.0], [200.0, 0.0, 0.0], [0.0, 120.0, 0.0]]))
    by_points = align_to_points(calib, *corner_pts)
    np.testing.assert_allclose(by_points.world_from_calibration,
                               aligned.world_from_calibration, atol=1e-6)


@pytest.mark.slow
def test_refinement_keeps_points_and_missing(charuco):
    cams, calib = charuco
    scene = simulate_scene(60, seed=7)
    poses = {c.name: p for c, p in zip(cams, project_scene(scene, cams, noise_px=0.5, seed=8),
                                       strict=True)}
    poses["side_1"][5:8, 3] = np.nan
    poses["side_2"][5:8, 3] = np.nan
    params = TriangulationParams(refine=True, constraints=(("left_ear", "right_ear"),))
    refined = triangulate_poses(calib, poses, scene.body_parts, params)
    plain = triangulate_poses(calib, poses, scene.body_parts)
    assert np.isnan(refined.points[5:8, 3]).all()
    ok = np.isfinite(plain.points)
    assert np.nanmedian(np.abs(refined.points[ok] - plain.points[ok])) < 2.0
    with pytest.raises(MultiviewError, match="not tracked"):
        triangulate_poses(calib, poses, scene.body_parts,
                          TriangulationParams(refine=True, constraints=(("ear", "nose"),)))


def test_board_never_found_names_the_video(tmp_path):
    cams = make_rig(3)
    videos = write_board_videos(cams, tmp_path, board=BOARD, n_frames=8,
                                blank_cameras=("side_2",))
    with pytest.raises(MultiviewError, match=r"calib-side_2\.mp4: the charuco board .* found "
                                             r"in 0 frame"):
        calibrate_videos(videos, BOARD, min_detections=3)
    with pytest.raises(MultiviewError, match="missing or cannot be read"):
        calibrate_videos({"top": videos["top"], "side": tmp_path / "nope.mp4"}, BOARD)


def test_board_definition_errors():
    with pytest.raises(MultiviewError, match="marker_mm"):
        Board(marker_mm=50.0, square_mm=40.0)
    with pytest.raises(MultiviewError, match="kind"):
        Board(kind="circles")


@pytest.mark.slow
def test_deeplabcut_calibrate_cameras_pickles_import_and_agree(tmp_path, monkeypatch):
    """DeepLabCut 3.0.2's calibrate_cameras reads the 3D project's config.yaml with
    read_config, which validates it as a 2D ProjectConfig and refuses every 3D key
    (num_cameras, camera_names...): DLC's 3D module cannot run as released. The test lets
    it read the file with DLC's own plain YAML reader (read_plainconfig), as DLC 2.x did.
    Its mean-error print then calls cv2.norm on corners (n, 2) and projections (n, 1, 2),
    which OpenCV 5 refuses (type mismatch); the test gives cv2.norm both as (n, 2).
    Everything else is DLC's code unchanged."""
    import deeplabcut
    from deeplabcut.pose_estimation_3d.triangulation import _undistort_points
    from deeplabcut.utils import auxiliaryfunctions
    from deeplabcut.utils.auxiliaryfunctions_3d import triangulatePoints

    top, side = make_rig(3)[:2]
    cams = [dataclasses.replace(top, name="camera-1"), dataclasses.replace(side, name="camera-2")]
    config = deeplabcut.create_new_project_3d("rig", "lab", num_cameras=2,
                                              working_directory=str(tmp_path))
    project = tmp_path / next(p.name for p in tmp_path.iterdir() if p.name.startswith("rig"))
    write_checkerboard_images(cams, project / "calibration_images", inner_cols=8,
                              inner_rows=5, square_mm=30.0, n_images=20)
    monkeypatch.setattr(auxiliaryfunctions, "read_config", auxiliaryfunctions.read_plainconfig)
    norm = cv2.norm

    def norm_same_shape(a, b, kind):
        return norm(np.asarray(a).reshape(-1, 2), np.asarray(b).reshape(-1, 2), kind)

    monkeypatch.setattr(cv2, "norm", norm_same_shape)
    # DLC's documented two passes: find corners (pairs where a camera misses the board are
    # moved out), then calibrate on the complete pairs
    # squares are ~18 px wide: DLC's default 11 px half-window for cornerSubPix would span
    # neighbouring corners, so the window is set to 5 (a calibrate_cameras parameter)
    deeplabcut.calibrate_cameras(config, cbrow=5, cbcol=8, calibrate=False,
                                 search_window_size=(5, 5))
    deeplabcut.calibrate_cameras(config, cbrow=5, cbcol=8, calibrate=True, alpha=0.9,
                                 search_window_size=(5, 5))
    calib = load_dlc_3d(project, square_mm=30.0)
    assert calib.camera_names == ["camera-1", "camera-2"] and calib.source == "dlc_3d"
    scene = simulate_scene(100, seed=9)
    poses = project_scene(scene, cams)
    pose3d = triangulate_poses(calib, {c.name: p for c, p in zip(cams, poses, strict=True)},
                               scene.body_parts)
    # the calibration frame is camera-1's: back to the world with the true extrinsics.
    # A two-camera checkerboard calibration from 20 stills gets the baseline within a few
    # tenths of a percent: ~2.5 mm at 0.9 m
    world = (pose3d.points - cams[0].tvec) @ cams[0].rotation
    assert np.median(np.linalg.norm(world - scene.points, axis=2)) < 5.0
    # DeepLabCut's own triangulation (rectified frame, squares) on the same 2D points
    import pickle

    with open(project / "camera_matrix" / "stereo_params.pickle", "rb") as f:
        st = pickle.load(f)["camera-1-camera-2"]
    n = scene.n_frames * len(scene.body_parts)
    undist = [_undistort_points(poses[i].reshape(n, 3).copy(), st[f"cameraMatrix{i + 1}"],
                                st[f"distCoeffs{i + 1}"], st[f"P{i + 1}"], st[f"R{i + 1}"])
              for i in range(2)]
    dlc = triangulatePoints(st["P1"], st["P2"], undist[0][:, :2].T, undist[1][:, :2].T)[:3].T
    ours_rect = pose3d.points.reshape(-1, 3) @ st["R1"].T / 30.0
    assert np.median(np.linalg.norm(ours_rect - dlc, axis=1)) * 30.0 < 0.05  # mm


def test_dlc_import_errors(tmp_path):
    with pytest.raises(MultiviewError, match="no DeepLabCut stereo_params.pickle"):
        load_dlc_3d(tmp_path, square_mm=30.0)
    (tmp_path / "stereo_params.pickle").write_bytes(b"not a pickle")
    with pytest.raises(MultiviewError, match="unreadable"):
        load_dlc_3d(tmp_path, square_mm=30.0)


def test_toml_errors(tmp_path):
    with pytest.raises(MultiviewError, match="calibration file not found"):
        load_anipose_toml(tmp_path / "calibration.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[cam_0]\nname = 'top'\n")
    with pytest.raises(MultiviewError, match="not an Anipose calibration.toml"):
        load_anipose_toml(bad)


def test_checkerboard_images_are_found_by_opencv(tmp_path):
    cams = make_rig(3)[:2]
    paths = write_checkerboard_images(cams, tmp_path, n_images=2)
    gray = cv2.imread(str(paths[0]), cv2.IMREAD_GRAYSCALE)
    ok, _ = cv2.findChessboardCorners(gray, (8, 5))
    assert ok
