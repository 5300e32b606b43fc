"""A multi-camera take as NWB (ndx-pose MultiCameraPoseEstimation, each camera a
CalibratedCamera) and its reprojection picture (issue 23, item 6; docs/3d.md sections 6-7).

One synthetic 3-camera take (20 frames) goes through the process_recording job once: its
pose_3d rows, pictures and NWB file are checked here; the NWB file is read back with pynwb
and ndx-pose and compared with the warehouse's rows.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import yaml

from dlc_tracking.synthetic.rig import BODY_PARTS_3D, make_rig, project_scene, simulate_scene
from tests.test_multiview_sessions import _ingest_registry, _session

N_FRAMES = 20
CAMERAS = ["top", "side_1", "side_2"]


def _write_video(path, poses, size):
    """A real video of ``poses`` ``(n_frames, n_parts, 3)``: grey frames with a white dot
    per body part (OpenCV's writer)."""
    import cv2

    tmp = path.with_name("tmp_" + path.name)
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, size)
    for frame in poses:
        image = np.full((size[1], size[0], 3), 90, np.uint8)
        for x, y, _ in frame:
            cv2.circle(image, (int(round(x)), int(round(y))), 4, (255, 255, 255), -1)
        writer.write(image)
    writer.release()
    tmp.replace(path)


@pytest.fixture(scope="module")
def take(tmp_path_factory):
    """The take through the process_recording job: `top` has a real video, `side_1` none
    (outputs only), `side_2` a file OpenCV cannot read."""
    import dagster as dg

    from dlc_assets.definitions import build_definitions
    from dlc_tracking.sessions.layout import discover_recordings
    from dlc_tracking.warehouse import Warehouse
    from resources import DataRoot, DLCInference, WarehouseResource
    from tests.pipeline_helpers import failure_messages

    tmp = tmp_path_factory.mktemp("nwb3d")
    folder = _session(tmp / "data", outputs=True)
    meta = yaml.safe_load((folder / "session.yaml").read_text())
    meta["fps"] = 30.0
    (folder / "session.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    (folder.parent / "subject.yaml").write_text(yaml.safe_dump(
        {"species": "Mus musculus", "sex": "F", "age": "P90D"}))
    rig = make_rig(3)
    top = project_scene(simulate_scene(n_frames=N_FRAMES), rig)[0]
    _write_video(folder / "top.mp4", top, rig[0].size)
    (folder / "side_1.mp4").unlink()
    registry = _ingest_registry(tmp, tmp / "calib" / "calibration.toml",
                                next((folder / "dlc_top").glob("*.h5")))
    [rec] = discover_recordings(tmp / "data").recordings
    resources = {
        "data_root": DataRoot(path=str(tmp / "data"), registry_path=str(registry.path)),
        "warehouse": WarehouseResource(root=str(tmp / "warehouse")),
        "dlc_inference": DLCInference(device="cpu", batch_size=8, work_dir=str(tmp / "work")),
    }
    home = tmp / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    # The process_recording job's pose_3d and nwb_files steps (the whole job, every other
    # asset skipping the take, runs in tests/test_multiview_sessions.py, marked slow).
    job = build_definitions(resources).resolve_job_def("process_recording")
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        instance.add_dynamic_partitions("recordings", [rec.recording_id])
        result = job.execute_in_process(
            partition_key=rec.recording_id, instance=instance, raise_on_error=False,
            asset_selection=[dg.AssetKey("pose_3d"), dg.AssetKey("nwb_files")])
        assert result.success, failure_messages(result)
        events = {e.asset_key.to_user_string(): e.materialization.metadata
                  for e in result.get_asset_materialization_events()}
    return {"tmp": tmp, "folder": folder, "rid": rec.recording_id, "events": events,
            "store": Warehouse(tmp / "warehouse"), "calibration": tmp / "calib" /
            "calibration.toml", "registry": registry.path}


def _read(path):
    import ndx_pose  # noqa: F401 - registers the ndx-pose classes
    from pynwb import NWBHDF5IO

    return NWBHDF5IO(str(path), "r", load_namespaces=True)


def test_nwb_files_asset_writes_the_take_in_the_job(take):
    import dagster as dg

    from dlc_assets.assets.exports import nwb_path
    from dlc_assets.definitions import build_definitions

    job = build_definitions().resolve_job_def("process_recording")
    assert {dg.AssetKey("pose_3d"), dg.AssetKey("nwb_files")} <= set(
        job.asset_layer.selected_asset_keys)

    meta = take["events"]["nwb_files"]
    assert "skipped" not in meta
    path = nwb_path(take["store"].root, take["rid"])
    assert path.is_file() and meta["path"].value == str(path)
    assert meta["cameras"].value == "top, side_1, side_2"
    assert meta["frames"].value == N_FRAMES


def test_nwb_round_trip_equals_pose_3d_rows(take):
    """3D series = pose_3d rows (mm, score as confidence), original body-part names,
    devices = cameras with their calibration, each camera's 2D pose = its predictions
    rows, processed 3D tracking = processed_tracking rows."""
    from ndx_pose import CalibratedCamera, MultiCameraPoseEstimation, PoseEstimation

    from dlc_assets.assets.exports import nwb_path

    store, rid = take["store"], take["rid"]
    pose = store.read_partition("pose_3d", rid).sort_values(
        ["frame", "body_part"], key=lambda s: s.map(BODY_PARTS_3D.index)
        if s.name == "body_part" else s)
    calib = store.read_partition("pose_3d_calibrations", rid)
    preds = store.read_partition("predictions", rid)
    processed = store.read_partition("processed_tracking", rid).sort_values("frame")
    with _read(nwb_path(store.root, rid)) as io:
        nwb = io.read()
        behavior = nwb.processing["behavior"]
        mc = behavior["MultiCameraPoseEstimation"]
        assert isinstance(mc, MultiCameraPoseEstimation)
        # the body parts' names as stored (HDF5 lists groups by name; the skeleton keeps
        # their order)
        assert sorted(mc.pose_estimation_series) == sorted(BODY_PARTS_3D)
        assert list(mc.skeleton.nodes[:]) == list(BODY_PARTS_3D)
        for part in BODY_PARTS_3D:
            series = mc.pose_estimation_series[part]
            rows = pose[pose.body_part == part]
            np.testing.assert_array_equal(series.data[:],
                                          rows[["x_mm", "y_mm", "z_mm"]].to_numpy())
            np.testing.assert_array_equal(series.confidence[:], rows.score.to_numpy())
            assert series.unit == "meters" and series.conversion == pytest.approx(0.001)
            assert series.rate == pytest.approx(30.0)
        # devices = cameras, with the calibration recorded
        assert sorted(nwb.devices) == sorted(CAMERAS)
        from dlc_tracking.multiview.calibration import load_anipose_toml

        cal = load_anipose_toml(take["calibration"])
        sha = str(calib.calibration_sha256.iloc[0])
        assert sha in mc.description and str(take["calibration"]) in mc.description
        world = pose[pose.frame == 0][["x_mm", "y_mm", "z_mm"]].to_numpy()
        for i, cam in enumerate(cal.camera_names):
            device = nwb.devices[cam]
            assert isinstance(device, CalibratedCamera) and sha in device.description
            np.testing.assert_allclose(device.intrinsic_matrix[:],
                                       cal.group.cameras[i].get_camera_matrix())
            # the stored extrinsics project the world points as the calibration does
            import cv2

            rvec, _ = cv2.Rodrigues(np.asarray(device.rotation_matrix[:]))
            got, _ = cv2.projectPoints(world, rvec, np.asarray(device.translation_vector[:]),
                                       np.asarray(device.intrinsic_matrix[:]),
                                       np.asarray(device.distortion_coefficients[:]))
            np.testing.assert_allclose(got.reshape(-1, 2), cal.project(world)[i], atol=1e-6)
            # the camera's 2D pose, linked to its device
            two_d = mc.pose_estimations[f"PoseEstimation_{cam}"]
            assert isinstance(two_d, PoseEstimation) and two_d.device is device
            rows = preds[(preds.camera == cam) & (preds.body_part == "nose")].sort_values(
                "frame")
            np.testing.assert_array_equal(two_d.pose_estimation_series["nose"].data[:],
                                          rows[["x_px", "y_px"]].to_numpy())
            np.testing.assert_array_equal(
                two_d.pose_estimation_series["nose"].confidence[:], rows.likelihood)
        assert mc.pose_estimations["PoseEstimation_top"].source_video is not None
        assert "video_top" in nwb.acquisition and "video_side_1" not in nwb.acquisition
        # processed 3D tracking, as for one camera's NWB
        np.testing.assert_array_equal(
            behavior["Position"]["position"].data[:],
            processed[["x_cm", "y_cm", "z_cm"]].to_numpy())
        compass = behavior["CompassDirection"]
        for name, column in (("head_direction", "head_direction_deg"),
                             ("head_pitch", "pitch_deg"), ("head_roll", "roll_deg")):
            np.testing.assert_array_equal(compass[name].data[:], processed[column])
        np.testing.assert_array_equal(behavior["speed_3d"].data[:], processed.speed_3d_cm_s)
        np.testing.assert_array_equal(behavior["n_cameras"].data[:],
                                      pose.n_cameras.to_numpy().reshape(N_FRAMES, -1))
        assert nwb.subject.species == "Mus musculus"
        assert nwb.session_start_time.isoformat() == "2026-01-05T10:00:00+01:00"


def test_cli_exports_the_take_as_nwb(take, tmp_path):
    from dlc_assets.cli.main import main

    out = tmp_path / "take.nwb"
    main(["--registry", str(take["registry"]), "export", take["rid"], "--format", "nwb",
          "--out", str(out), "--warehouse", str(take["store"].root)])
    with _read(out) as io:
        nwb = io.read()
        assert sorted(nwb.devices) == sorted(CAMERAS)
        assert "processing parameters" in nwb.session_description.lower()
    with pytest.raises(SystemExit):  # a single-camera layout: refused, naming the 3D ones
        main(["export", take["rid"], "--format", "dlc-h5", "--out", str(tmp_path / "x.h5"),
              "--warehouse", str(take["store"].root)])


def test_changed_calibration_file_is_refused(take, tmp_path):
    """The NWB file records the calibration's cameras: a file changed since the take was
    triangulated is refused, naming the file and the fix."""
    from dlc_tracking.errors import WarehouseError
    from dlc_tracking.io.stored_multi_camera import _read_calibration

    rows = take["store"].read_partition("pose_3d_calibrations", take["rid"])
    changed = tmp_path / "calibration.toml"
    shutil.copy(take["calibration"], changed)
    with changed.open("a") as f:
        f.write("\n# edited\n")
    rows["calibration_file"] = str(changed)
    with pytest.raises(WarehouseError, match="changed since the take was triangulated"):
        _read_calibration(rows, take["rid"])
    changed.unlink()
    with pytest.raises(WarehouseError, match="is gone"):
        _read_calibration(rows, take["rid"])


def test_pictures_on_the_pose_3d_page(take):
    """The three pictures exist; the reprojection frame has one panel per camera: the
    video's frame where it is readable, a blank frame of the calibration's size (and the
    title says so) where not; the reprojected points sit on the 2D ones."""
    import cv2

    from dlc_tracking.io.stored_multi_camera import load_stored_multi_camera
    from dlc_tracking.qc.reprojection import best_frame, reprojection_panels, reprojection_png

    meta = take["events"]["pose_3d"]
    assert {"reprojection_error", "trajectory_3d", "reprojection_frame"} <= set(meta)
    assert "data:image/png;base64," in meta["reprojection_frame"].value
    rec = load_stored_multi_camera(take["rid"], take["store"].root)
    poses = {c: rec.camera_poses(c) for c in rec.cameras}
    points = rec.points_mm
    points[:3, :2] = np.nan  # fewer points triangulated in the first frames
    panels = reprojection_panels(rec.calibration, points, poses, rec.videos)
    assert [p.camera for p in panels] == CAMERAS
    assert {p.camera: p.background for p in panels} == {
        "top": "video", "side_1": "absent", "side_2": "unreadable"}
    assert panels[0].frame == best_frame(points) == 3
    for p in panels:
        assert p.image.shape == (480, 640, 3)
        assert np.nanmax(p.error_px) < 0.5  # noise-free synthetic take
    assert (panels[1].image == 255).all() and panels[0].image.std() > 0
    png = reprojection_png(rec.calibration, points, rec.body_parts, poses, rec.videos)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[1] > 2.5 * image.shape[0]  # three panels side by side


def test_camera_extrinsics_are_in_the_world_frame(tmp_path):
    """With the world aligned to the arena (a rigid move of the calibration frame), the
    extrinsics written to the NWB devices project world points as the calibration does."""
    import cv2

    from dlc_tracking.io.pose3d_nwb import camera_extrinsics_world
    from dlc_tracking.multiview.calibration import load_anipose_toml
    from dlc_tracking.synthetic.rig import write_anipose_calibration

    cams = make_rig(3)
    cal = load_anipose_toml(write_anipose_calibration(cams, tmp_path / "c.toml"))
    angle = np.deg2rad(30.0)
    move = np.eye(4)
    move[:3, :3] = cv2.Rodrigues(np.array([0.1, -0.2, angle]))[0]
    move[:3, 3] = [100.0, -50.0, 20.0]
    aligned = cal.with_axes(move, "points")
    world = np.array([[10.0, 20.0, 30.0], [-40.0, 5.0, 60.0]])
    for i, cam in enumerate(aligned.camera_names):
        rotation, translation = camera_extrinsics_world(aligned, cam)
        camera = aligned.group.cameras[i]
        got, _ = cv2.projectPoints(world, cv2.Rodrigues(rotation)[0], translation,
                                   camera.get_camera_matrix(), camera.get_distortions())
        np.testing.assert_allclose(got.reshape(-1, 2), aligned.project(world)[i], atol=1e-6)
