"""Rig calibrations as an asset (docs/3d.md, section 2): dated folders under
<data root>/calibrations/<rig>/, the camera_calibrations asset and its check, the sensor, and
the calibration a session picks (latest at or before its date, unless it names one)."""

from __future__ import annotations

import datetime as dt
import os
import pickle
import shutil
import time

import numpy as np
import pytest
import yaml

from dlc_tracking.multiview.boards import Board
from dlc_tracking.multiview.calibration import load_anipose_toml
from dlc_tracking.multiview.calibration_store import (
    CalibrationFolder,
    CalibrationStore,
    calibrate_folder,
    load_named_calibration,
    parse_calibration_key,
)
from dlc_tracking.multiview.errors import MultiviewError
from dlc_tracking.multiview.rigs import Rig
from dlc_tracking.multiview.triangulation import triangulate_poses
from dlc_tracking.synthetic.rig import (
    _board_image,
    make_multicamera_session,
    make_rig,
    project_scene,
    render_board_frame,
    simulate_scene,
    write_anipose_calibration,
    write_board_videos,
)

BOARD = Board()  # ChArUco 7 x 5, 40 mm squares, 30 mm markers, DICT_4X4_50
BOARD_YAML = {"board": {"kind": "charuco", "squares": [7, 5], "square_mm": 40,
                        "marker_mm": 30, "dict": "DICT_4X4_50"}}
RIG = "rig_3cam"
CAMERAS = ["top", "side_1", "side_2"]
# the board lying on the floor: printed face up, board x = world +x (as in
# tests/test_multiview_calibration.py)
FLOOR_POSE = np.eye(4)
FLOOR_POSE[:3, :3] = np.diag([1.0, -1.0, -1.0])
FLOOR_POSE[:3, 3] = [100.0, 350.0, 0.0]


def _board_folder(folder, cams, n_frames=20, blank=(), floor=True):
    """A dated calibration folder: <camera>.mp4 board videos, calibration.yaml, floor/."""
    import cv2

    videos = write_board_videos(cams, folder / ".render", board=BOARD, n_frames=n_frames,
                                blank_cameras=blank)
    for cam, path in videos.items():
        os.replace(path, folder / f"{cam}.mp4")
    shutil.rmtree(folder / ".render")
    (folder / "calibration.yaml").write_text(yaml.safe_dump(BOARD_YAML))
    if floor:
        (folder / "floor").mkdir()
        img = _board_image(BOARD, 60)
        for cam in cams:
            cv2.imwrite(str(folder / "floor" / f"{cam.name}.png"),
                        render_board_frame(cam, BOARD, FLOOR_POSE, img, 60))
    return folder


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A data root with two calibrations of rig_3cam (board videos on 2026-01-05, an
    imported Anipose toml on 2026-01-20), a registry naming the rig, and a Dagster
    instance; both calibrations materialized through the calibrate_rig job. ~30 s of CPU
    (rendering, aniposelib's first call, Dagster): its tests are marked slow."""
    import dagster as dg

    from dlc_assets.definitions import build_definitions
    from resources import DataRoot, DLCInference, WarehouseResource

    root = tmp_path_factory.mktemp("calib_lab")
    data = root / "data"
    cams = make_rig(3)
    calibrations = data / "calibrations" / RIG
    _board_folder(_mkdir(calibrations / "2026-01-05"), cams)
    write_anipose_calibration(cams, _mkdir(calibrations / "2026-01-20") / "calibration.toml")
    registry = root / "registry.yaml"
    registry.write_text(yaml.safe_dump({"rigs": {RIG: {"cameras": CAMERAS}}}))
    resources = {
        "data_root": DataRoot(path=str(data), registry_path=str(registry)),
        "warehouse": WarehouseResource(root=str(root / "warehouse")),
        "dlc_inference": DLCInference(device="cpu", work_dir=str(root / "work")),
    }
    home = _mkdir(root / "dagster_home")
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        job = build_definitions(resources).resolve_job_def("calibrate_rig")
        results = {}
        for key in (f"{RIG}__2026-01-05", f"{RIG}__2026-01-20"):
            instance.add_dynamic_partitions("calibrations", [key])
            results[key] = job.execute_in_process(partition_key=key, instance=instance,
                                                  raise_on_error=False)
        yield {"root": root, "data": data, "cams": cams, "registry": registry,
               "resources": resources, "instance": instance, "job": job, "results": results,
               "warehouse": root / "warehouse"}


def _mkdir(path):
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.slow
def test_board_videos_calibrate_through_the_asset(lab):
    from dlc_tracking.warehouse import Warehouse

    key = f"{RIG}__2026-01-05"
    result = lab["results"][key]
    assert result.success
    [check] = result.get_asset_check_evaluations()
    assert check.passed and check.check_name == "reprojection_error_within_threshold"
    rows = Warehouse(lab["warehouse"]).read_partition("camera_calibrations", key)
    assert rows.camera.tolist() == CAMERAS
    assert (rows.source == "charuco_videos").all() and (rows["axes"] == "floor_board").all()
    assert (rows.reprojection_error_px < 1.0).all()
    assert (rows.date == "2026-01-05").all() and rows.width_px.tolist() == [640] * 3
    toml = lab["warehouse"] / "calibrations" / RIG / "2026-01-05" / "calibration.toml"
    assert rows.file.unique().tolist() == [str(toml)]
    import hashlib
    assert rows.sha256.iloc[0] == hashlib.sha256(toml.read_bytes()).hexdigest()
    # analysts query it like any table
    both = Warehouse(lab["warehouse"]).query(
        "SELECT date, count(*) AS n FROM camera_calibrations WHERE rig = ? GROUP BY date "
        "ORDER BY date", params=[RIG])
    assert both.values.tolist() == [["2026-01-05", 3], ["2026-01-20", 3]]
    # the stored toml (aniposelib's format) reproduces the rig's triangulation in the
    # floor's frame: origin at the board's first corner
    calib = load_anipose_toml(toml)
    assert calib.axes == "floor_board" and calib.camera_names == CAMERAS
    corners = BOARD.to_aniposelib().board.getChessboardCorners()
    origin = FLOOR_POSE[:3, :3] @ np.asarray(corners[0], dtype=float) + FLOOR_POSE[:3, 3]
    scene = simulate_scene(60, seed=5)
    poses = project_scene(scene, lab["cams"], noise_px=0.2, seed=6)
    pose = triangulate_poses(calib, dict(zip(CAMERAS, poses, strict=True)), scene.body_parts)
    assert np.median(np.linalg.norm(pose.points + origin - scene.points, axis=2)) < 2.0
    assert np.nanmedian(pose.error_px) < 1.0


@pytest.mark.slow
def test_an_anipose_toml_is_imported_unchanged(lab):
    from dlc_tracking.warehouse import Warehouse

    key = f"{RIG}__2026-01-20"
    assert lab["results"][key].success
    rows = Warehouse(lab["warehouse"]).read_partition("camera_calibrations", key)
    assert (rows.source == "anipose_toml").all() and rows.reprojection_error_px.isna().all()
    stored = load_anipose_toml(rows.file.iloc[0])
    source = load_anipose_toml(lab["data"] / "calibrations" / RIG / "2026-01-20"
                               / "calibration.toml")
    for a, b in zip(stored.group.cameras, source.group.cameras, strict=True):
        np.testing.assert_allclose(a.get_camera_matrix(), b.get_camera_matrix())
        np.testing.assert_allclose(a.get_translation(), b.get_translation())


@pytest.mark.slow
def test_board_never_found_fails_and_writes_nothing(lab, tmp_path):
    from dlc_tracking.warehouse import Warehouse

    folder = _board_folder(_mkdir(lab["data"] / "calibrations" / RIG / "2026-03-01"),
                           lab["cams"], n_frames=6, blank=("side_2",), floor=False)
    key = f"{RIG}__2026-03-01"
    lab["instance"].add_dynamic_partitions("calibrations", [key])
    result = lab["job"].execute_in_process(partition_key=key, instance=lab["instance"],
                                           raise_on_error=False)
    assert not result.success
    from tests.pipeline_helpers import failure_messages
    message = failure_messages(result)
    assert str(folder / "side_2.mp4") in message and "found in 0 frame" in message
    assert "printed one" in message  # what to check
    assert not (lab["warehouse"] / "calibrations" / RIG / "2026-03-01").exists()
    assert key not in Warehouse(lab["warehouse"]).partitions("camera_calibrations")
    # a session after it: the folder is there, not calibrated: the error names the partition
    store = CalibrationStore.at(lab["data"], lab["warehouse"])
    rig = Rig(RIG, tuple(CAMERAS))
    with pytest.raises(MultiviewError, match=f"materialize camera_calibrations partition {key}"):
        store.for_session(rig, None, dt.date(2026, 3, 5), tmp_path, "session.yaml")
    shutil.rmtree(folder)


@pytest.mark.slow
def test_check_fails_above_the_threshold(lab):
    """A toml recording 2.5 px for one camera (as RigCalibration.write_toml records errors):
    materialized (an import), and the check fails naming the camera and what to look at."""
    from dlc_assets.assets.calibrations import MAX_BOARD_REPROJECTION_ERROR_PX

    folder = _mkdir(lab["data"] / "calibrations" / RIG / "2026-04-01")
    calib = load_anipose_toml(write_anipose_calibration(lab["cams"], folder / "in.toml"))
    calib.reprojection_error_px = {"top": 0.4, "side_1": 2.5, "side_2": 0.5}
    calib.write_toml(folder / "calibration.toml")
    (folder / "in.toml").unlink()
    key = f"{RIG}__2026-04-01"
    lab["instance"].add_dynamic_partitions("calibrations", [key])
    result = lab["job"].execute_in_process(partition_key=key, instance=lab["instance"],
                                           raise_on_error=False)
    assert result.success
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and check.severity.value == "ERROR"
    assert "camera 'side_1'" in check.description and "2.50 px" in check.description
    assert check.metadata["threshold_px"].value == MAX_BOARD_REPROJECTION_ERROR_PX
    shutil.rmtree(folder)


def test_camera_names_must_be_the_rigs(tmp_path):
    # checked before any video is read: the files' names are enough
    folder = _mkdir(tmp_path / RIG / "2026-01-05")
    for name in ("top.mp4", "back.mp4"):
        (folder / name).write_bytes(b"\x00" * 100)
    (folder / "calibration.yaml").write_text(yaml.safe_dump(BOARD_YAML))
    with pytest.raises(MultiviewError, match=r"cameras \['back'\] are not cameras of rig"):
        calibrate_folder(CalibrationFolder(RIG, dt.date(2026, 1, 5), folder),
                         Rig(RIG, tuple(CAMERAS)))
    # two sources in one folder: which one is meant is not guessed
    write_anipose_calibration(make_rig(3), folder / "calibration.toml")
    with pytest.raises(MultiviewError, match="keep one calibration source"):
        calibrate_folder(CalibrationFolder(RIG, dt.date(2026, 1, 5), folder),
                         Rig(RIG, tuple(CAMERAS)))
    (folder / "top.mp4").unlink()
    (folder / "back.mp4").unlink()
    with pytest.raises(MultiviewError, match="not cameras of rig 'other'"):  # another rig's
        calibrate_folder(CalibrationFolder("other", dt.date(2026, 1, 5), folder),
                         Rig("other", ("a", "b")))
    with pytest.raises(MultiviewError, match="<rig>__<YYYY-MM-DD>"):
        parse_calibration_key("rig_3cam_2026-01-05")
    assert parse_calibration_key("rig__a__2026-01-05") == ("rig__a", dt.date(2026, 1, 5))


def test_a_deeplabcut_3d_project_folder(tmp_path):
    """camera_matrix/stereo_params.pickle in DeepLabCut's layout (the keys its
    calibrate_cameras writes; translation in squares) with calibration.yaml's square_mm."""
    top, side = make_rig(3)[:2]
    rot = side.rotation @ top.rotation.T  # camera 1 -> camera 2
    t = side.tvec - rot @ top.tvec
    folder = _mkdir(tmp_path / RIG / "2026-02-01")
    _mkdir(folder / "camera_matrix")
    params = {"top-side_1": {
        "cameraMatrix1": top.matrix, "cameraMatrix2": side.matrix,
        "distCoeffs1": np.zeros((1, 5)), "distCoeffs2": np.zeros((1, 5)),
        "R": rot, "T": (t / 30.0).reshape(3, 1), "image_shape": [top.size, side.size]}}
    with open(folder / "camera_matrix" / "stereo_params.pickle", "wb") as f:
        pickle.dump(params, f)
    (folder / "calibration.yaml").write_text(yaml.safe_dump({"dlc_3d": {"square_mm": 30}}))
    calib = calibrate_folder(CalibrationFolder(RIG, dt.date(2026, 2, 1), folder),
                             Rig(RIG, tuple(CAMERAS)))
    assert calib.source == "dlc_3d" and calib.camera_names == ["top", "side_1"]
    np.testing.assert_allclose(calib.group.cameras[1].get_translation(), t, atol=1e-9)
    # the same project named by a session (or the registry rig) by its path
    named, path = load_named_calibration(folder, "session.yaml")
    assert named.source == "dlc_3d" and path.name == "stereo_params.pickle"
    (folder / "calibration.yaml").unlink()
    with pytest.raises(MultiviewError, match="give its square's side"):
        load_named_calibration(folder / "camera_matrix", "session.yaml")
    with pytest.raises(MultiviewError, match="does not exist"):
        load_named_calibration(tmp_path / "nope.toml", "session.yaml")


@pytest.mark.slow
def test_sensor_adds_the_partition_and_requests_a_run_once(lab, monkeypatch):
    import dagster as dg

    from sensors.calibrations import new_calibrations_sensor

    monkeypatch.setenv("DLC_PLATFORM_SETTLE_SECONDS", "0")
    resources = {"data_root": lab["resources"]["data_root"]}
    with dg.instance_for_test() as instance:
        ctx = dg.build_sensor_context(instance=instance, resources=resources)
        result = new_calibrations_sensor(ctx)
        keys = [r.partition_key for r in result.run_requests]
        assert keys == [f"{RIG}__2026-01-05", f"{RIG}__2026-01-20"]
        [add] = result.dynamic_partitions_requests
        assert sorted(add.partition_keys) == sorted(keys)
        again = new_calibrations_sensor(dg.build_sensor_context(
            instance=instance, resources=resources, cursor=result.cursor))
        assert isinstance(again, dg.SkipReason)
        # a folder still being copied waits for the settle time
        monkeypatch.setenv("DLC_PLATFORM_SETTLE_SECONDS", "3600")
        assert isinstance(new_calibrations_sensor(dg.build_sensor_context(
            instance=instance, resources=resources)), dg.SkipReason)
        monkeypatch.setenv("DLC_PLATFORM_SETTLE_SECONDS", "0")
        # a changed folder is requested again
        toml = lab["data"] / "calibrations" / RIG / "2026-01-20" / "calibration.toml"
        later = time.time() - 5
        os.utime(toml, (later, later))
        changed = new_calibrations_sensor(dg.build_sensor_context(
            instance=instance, resources=resources, cursor=result.cursor))
        assert [r.partition_key for r in changed.run_requests] == [f"{RIG}__2026-01-20"]


def _session(data, name, start, calibration=None):
    folder = make_multicamera_session(data, "mouse01", name, n_frames=20, rig=RIG)
    meta = yaml.safe_load((folder / "session.yaml").read_text())
    meta["start_time"] = start
    if calibration is not None:
        meta["calibration"] = calibration
    (folder / "session.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    return folder


@pytest.mark.slow
def test_session_uses_the_latest_calibration_at_or_before_its_date(lab, tmp_path):
    from dlc_tracking.multiview.recording import load_recording_calibration
    from dlc_tracking.sessions.layout import discover_recordings, load_session_metadata

    data = lab["data"]
    # the calibrations folder under the data root is not a subject of sessions
    before = discover_recordings(data)
    assert not before.recordings and not before.problems
    folders = {
        "s_jan10": _session(data, "s_jan10", "2026-01-10T10:00:00+01:00"),
        "s_jan25": _session(data, "s_jan25", "2026-01-25T10:00:00+01:00"),
        "s_named": _session(data, "s_named", "2026-01-25T10:00:00+01:00",
                            calibration=dt.date(2026, 1, 5)),  # YAML date
        "s_early": _session(data, "s_early", "2026-01-04T23:30:00+01:00"),
    }
    write_anipose_calibration(lab["cams"], folders["s_named"].parent / "own.toml")
    store = CalibrationStore.at(data, lab["warehouse"])
    rig = Rig(RIG, tuple(CAMERAS))
    found = {r.session: r for r in discover_recordings(data).recordings}
    assert set(found) == set(folders)

    def chosen(session):
        rec = found[session]
        meta = load_session_metadata(rec.session_yaml)
        return load_recording_calibration(rec, meta, rig, store)

    stored = lab["warehouse"] / "calibrations" / RIG
    assert chosen("s_jan10")[1] == stored / "2026-01-05" / "calibration.toml"
    assert chosen("s_jan25")[1] == stored / "2026-01-20" / "calibration.toml"
    assert chosen("s_named")[1] == stored / "2026-01-05" / "calibration.toml"
    with pytest.raises(MultiviewError, match="no calibration at or before the session's date "
                                             "2026-01-04"):
        chosen("s_early")
    # a date without a calibration: the session file and the rig's dates are named
    meta_file = folders["s_early"] / "session.yaml"
    meta = yaml.safe_load(meta_file.read_text())
    meta["calibration"] = "2026-01-07"
    meta_file.write_text(yaml.safe_dump(meta))
    with pytest.raises(MultiviewError, match=r"s_early/session.yaml .*no calibration of rig "
                                             r"'rig_3cam' on 2026-01-07; its calibrations: "
                                             r"\['2026-01-05', '2026-01-20'\]"):
        chosen("s_early")
    # a path relative to the session folder
    meta["calibration"] = "../own.toml"
    meta_file.write_text(yaml.safe_dump(meta))
    assert chosen("s_early")[1] == folders["s_early"] / "../own.toml"


@pytest.mark.slow
def test_pose_3d_of_a_session_with_a_dated_calibration(lab):
    """The session's 2D points triangulated with the stored board calibration (floor axes):
    the calibration fits the session."""
    from dlc_tracking.multiview.recording import process_multicamera
    from dlc_tracking.registry.editing import add_ingest_only_model, edit_registry
    from dlc_tracking.registry.registry_file import load_registry
    from dlc_tracking.sessions.layout import discover_recordings, load_session_metadata

    data = lab["root"] / "pose_data"  # its own data root: the sessions test lists them all
    folder = _session(data, "s_pose", "2026-01-10T10:00:00+01:00")
    registry = lab["root"] / "registry_pose.yaml"
    registry.write_text("models: {}\n")
    add_ingest_only_model(registry, "rig_dlc", outputs_file=next((folder / "dlc_top").glob(
        "*.h5")))
    edit_registry(registry, lambda doc: doc.update(
        {"rigs": {RIG: {"cameras": CAMERAS, "model": "rig_dlc"}}}))
    [rec] = discover_recordings(data).recordings
    store = CalibrationStore(lab["data"] / "calibrations", lab["warehouse"] / "calibrations")
    result = process_multicamera(rec, load_session_metadata(rec.session_yaml),
                                 load_registry(registry), fps=30.0, calibration_store=store)
    assert result.calibration_path.parent.name == "2026-01-05"
    assert result.calibration.axes == "floor_board" and not result.fit.flagged
    assert result.fit.median_error_px < 1.0


def test_pose_3d_waits_for_a_calibration_run_on_the_way(tmp_path, monkeypatch):
    """A session whose rig calibration of the day is pending waits for it when the
    calibrations sensor has added its partition (its run is on the way), and fails at once
    naming the partition when nobody will calibrate it."""
    import threading

    import dagster as dg

    from dlc_assets.assets.multiview import _wait_for_calibration
    from dlc_assets.partitions import calibrations_partitions
    from dlc_tracking.multiview.errors import CalibrationPending

    result = tmp_path / "rig_a" / "2026-01-05" / "calibration.toml"
    pending = CalibrationPending("calibration rig_a__2026-01-05 not calibrated yet",
                                 key="rig_a__2026-01-05", result_path=result)
    with dg.instance_for_test() as instance:
        context = dg.build_asset_context(instance=instance)
        with pytest.raises(CalibrationPending, match="not calibrated yet"):
            _wait_for_calibration(context, pending)  # no partition: nobody calibrates it
        instance.add_dynamic_partitions(calibrations_partitions.name, [pending.key])

        def calibrate():
            result.parent.mkdir(parents=True)
            result.write_text("[cam_0]\n")

        timer = threading.Timer(1.0, calibrate)
        timer.start()
        _wait_for_calibration(context, pending)  # returns once the toml is stored
        timer.join()
        assert result.is_file()
        result.unlink()
        monkeypatch.setenv("DLC_PLATFORM_CALIBRATION_WAIT_S", "0")
        with pytest.raises(CalibrationPending):
            _wait_for_calibration(context, pending)


def test_world_axes_from_three_points_marked_in_the_images(tmp_path):
    """calibration.yaml `align:` (origin, x_axis, floor marked in 2+ cameras' images):
    the triangulated points set the world frame; an import that sets axes is not read
    unmaterialized; bad marks are named."""
    cams = make_rig(3)
    folder = _mkdir(tmp_path / RIG / "2026-01-05")
    write_anipose_calibration(cams, folder / "calibration.toml")  # frame: the world's
    shift = np.array([120.0, 80.0, 0.0])  # the arena's corner, in the rig's world frame
    world = {"origin": shift, "x_axis": shift + [300.0, 0.0, 0.0],
             "floor": shift + [0.0, 250.0, 0.0]}
    align = {name: {c.name: [float(v) for v in c.project(p[None])[0]] for c in cams[:2]}
             for name, p in world.items()}
    (folder / "calibration.yaml").write_text(yaml.safe_dump({"align": align}))
    rig = Rig(RIG, tuple(CAMERAS))
    calib = calibrate_folder(CalibrationFolder(RIG, dt.date(2026, 1, 5), folder), rig)
    assert calib.axes == "points"
    np.testing.assert_allclose(calib.to_world(world["origin"][None]), [[0.0, 0.0, 0.0]],
                               atol=1e-6)
    np.testing.assert_allclose(calib.to_world(world["x_axis"][None]), [[300.0, 0.0, 0.0]],
                               atol=1e-6)
    np.testing.assert_allclose(calib.to_world(np.array([[0.0, 0.0, 50.0]]) + shift),
                               [[0.0, 0.0, 50.0]], atol=1e-6)  # z up
    # a session must wait for the asset: the folder's toml alone lacks the axes
    store = CalibrationStore.at(tmp_path, tmp_path / "warehouse")
    with pytest.raises(MultiviewError, match="an import with world axes to set"):
        store.load(CalibrationFolder(RIG, dt.date(2026, 1, 5), folder), "session.yaml")
    # a mark that is not [x, y]: named, no traceback
    bad = {**align, "origin": {**align["origin"], "top": "left corner"}}
    (folder / "calibration.yaml").write_text(yaml.safe_dump({"align": bad}))
    with pytest.raises(MultiviewError, match=r"'origin' in camera 'top' must be \[x_px, y_px\]"):
        calibrate_folder(CalibrationFolder(RIG, dt.date(2026, 1, 5), folder), rig)
    # marked in one camera only
    align["floor"] = {"top": align["floor"]["top"]}
    (folder / "calibration.yaml").write_text(yaml.safe_dump({"align": align}))
    with pytest.raises(MultiviewError, match="'floor' is marked in 1 camera"):
        calibrate_folder(CalibrationFolder(RIG, dt.date(2026, 1, 5), folder), rig)
