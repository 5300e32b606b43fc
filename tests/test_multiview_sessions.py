"""Multi-camera rigs in the registry and multi-camera sessions on disk (docs/3d.md)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import yaml

from dlc_tracking.errors import RegistryError
from dlc_tracking.registry.registry_file import load_registry
from dlc_tracking.sessions.layout import discover_recordings, load_session_metadata
from dlc_tracking.sessions.scanning import recording_files, scan
from dlc_tracking.synthetic.rig import (
    BODY_PARTS_3D,
    make_rig,
    project_scene,
    simulate_scene,
    write_dlc_predictions,
)

SESSION = {"tracking_type": "openfield", "start_time": "2026-01-05T10:00:00+01:00",
           "camera_view": "above"}
CAMERAS = {"top": "top.mp4", "side_1": {"file": "side_1.mp4"},
           "side_2": "side_2.mp4"}


def _registry(tmp_path, rigs):
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump({"rigs": rigs}))
    return path


def test_rig_with_cameras_and_camera_only_rig(tmp_path):
    reg = load_registry(_registry(tmp_path, {
        "tri": {"cameras": ["top", "side_left", "side_right"],
                "calibration": "calib/calibration.toml"},
        "box": {"arena": {"width_cm": 50, "height_cm": 50, "bounds_px": [0, 0, 100, 100]},
                "cameras": {"top": {}, "side": {}}},
        "plain": {"arena": {"width_cm": 50, "height_cm": 50, "bounds_px": [0, 0, 100, 100]}},
    }))
    assert reg.camera_rig("tri").cameras == ("top", "side_left", "side_right")
    assert reg.camera_rig("tri").calibration == str(tmp_path / "calib" / "calibration.toml")
    assert reg.rig("box").width_cm == 50 and reg.rig("plain").width_cm == 50  # arenas as before
    assert set(reg.rigs) == {"box", "plain"}
    with pytest.raises(RegistryError, match="names cameras but no arena"):
        reg.rig("tri")
    with pytest.raises(RegistryError, match="names no cameras"):
        reg.camera_rig("plain")


@pytest.mark.parametrize("spec, message", [
    ({"cameras": ["top"]}, "2 or more cameras"),
    ({"cameras": {"top": {"model": "nope"}, "side": {}}}, "unknown model 'nope'"),
    ({"description": "no arena, no cameras"}, "must be"),
])
def test_bad_rig_names_the_key(tmp_path, spec, message):
    with pytest.raises(RegistryError, match=message):
        load_registry(_registry(tmp_path, {"r": spec}))


def _session(root, cameras=CAMERAS, rig="tri", outputs=False):
    folder = root / "m1" / "s1"
    folder.mkdir(parents=True)
    meta = {**SESSION, "cameras": cameras, **({"rig": rig} if rig else {})}
    (folder / "session.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    names = {c: (e if isinstance(e, str) else e["file"]) for c, e in cameras.items()}
    for name in names.values():
        (folder / name).write_bytes(b"\x00" * 1000)
    if outputs:
        rig_cams = make_rig(3)
        poses = project_scene(simulate_scene(n_frames=20), rig_cams)
        for cam, cam_poses in zip(rig_cams, poses, strict=True):
            stem = names[cam.name].rsplit(".", 1)[0]
            write_dlc_predictions(cam_poses[None], [cam], BODY_PARTS_3D, folder / f"dlc_{stem}")
    return folder


def test_session_yaml_cameras(tmp_path):
    folder = _session(tmp_path)
    meta = load_session_metadata(folder / "session.yaml")
    entries = meta.camera_entries()
    assert list(entries) == ["top", "side_1", "side_2"]
    assert entries["side_1"].file == "side_1.mp4"
    bad = {**SESSION, "cameras": {"top": "top.mp4"}}
    (folder / "session.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(Exception, match="2 or more"):
        load_session_metadata(folder / "session.yaml")


def test_cameras_of_a_session_are_one_recording(tmp_path):
    _session(tmp_path, outputs=True)
    found = discover_recordings(tmp_path)
    assert not found.problems
    [rec] = found.recordings
    assert rec.recording_id == "m1__s1__tri"
    assert rec.is_multi_camera and [c.camera for c in rec.cameras] == list(CAMERAS)
    assert rec.source == "manual"
    files = recording_files(rec, [])
    assert {"video/top", "video/side_1", "video/side_2"} <= set(files)
    assert any(k.startswith("dlc/side_2/") for k in files)
    # the sensor's scan proposes it once, as one run
    old = time.time() - 120
    for p in [tmp_path, *tmp_path.rglob("*")]:
        import os
        os.utime(p, (old, old))
    result = scan(tmp_path, None, time.time(), 0.0, 100)
    assert [r.recording_id for r, _ in result.to_process] == ["m1__s1__tri"]


def test_session_without_rig_is_multicam_and_missing_video_is_a_problem(tmp_path):
    folder = _session(tmp_path, rig=None)
    [rec] = discover_recordings(tmp_path).recordings
    assert rec.recording_id == "m1__s1__multicam" and rec.source == "inference"
    (folder / "side_2.mp4").unlink()
    found = discover_recordings(tmp_path)
    assert not found.recordings
    assert "side_2.mp4" in found.problems[0] and "cameras" in found.problems[0]


def test_synthetic_outputs_have_all_cameras(tmp_path):
    folder = _session(tmp_path, outputs=True)
    assert sorted(p.name for p in folder.glob("dlc_*")) == ["dlc_side_1", "dlc_side_2",
                                                          "dlc_top"]
    assert all(any(p.glob("*.h5")) for p in folder.glob("dlc_*"))


def _ingest_registry(tmp_path, calibration, outputs_file):
    """An ingest-only model registered from one camera's outputs (as `models add
    --from-outputs` does) and a rig naming it, with the rig's Anipose calibration."""
    from dlc_tracking.registry.editing import add_ingest_only_model, edit_registry
    from dlc_tracking.synthetic.rig import write_anipose_calibration

    write_anipose_calibration(make_rig(3), calibration)
    path = tmp_path / "registry.yaml"
    path.write_text("models: {}\n")
    add_ingest_only_model(path, "rig_dlc", outputs_file=outputs_file)

    def add_rig(doc):
        doc["rigs"] = {"tri": {"cameras": ["top", "side_1", "side_2"], "model": "rig_dlc",
                               "calibration": str(calibration)}}
    edit_registry(path, add_rig)
    return load_registry(path)


def test_multicamera_recording_triangulates(tmp_path):
    from dlc_tracking.multiview.recording import process_multicamera

    folder = _session(tmp_path / "data", outputs=True)
    registry = _ingest_registry(tmp_path, tmp_path / "calib" / "calibration.toml",
                                next((folder / "dlc_top").glob("*.h5")))
    [rec] = discover_recordings(tmp_path / "data").recordings
    meta = load_session_metadata(folder / "session.yaml")
    result = process_multicamera(rec, meta, registry, fps=30.0)
    frame = result.pose.to_frame()
    assert len(frame) == 20 * len(BODY_PARTS_3D)
    assert frame.n_cameras.max() == 3 and not result.fit.flagged
    assert result.processed[["z_cm", "pitch_deg", "roll_deg"]].notna().all().all()
    assert result.processed.z_cm.between(0, 10).all()  # head 35 mm above the floor


@pytest.mark.slow
def test_three_camera_session_through_process_recording_job(tmp_path, instance):
    """The demo's 3-camera session (DLC outputs per camera, an ingest-only model and the
    rig's Anipose calibration.toml in the registry) dropped in the data folder: the
    process_recording job writes pose_3d, the calibration used, each camera's predictions
    and the 3D state vector in processed_tracking; the single-camera assets skip it with
    their reason, nothing fails."""
    import shutil

    from dlc_assets.cli.demo import TEMPLATE, prepare_multicamera_session
    from dlc_tracking.warehouse import Warehouse
    from resources import DataRoot, DLCInference, WarehouseResource
    from tests.pipeline_helpers import failure_messages, run_recording

    registry = tmp_path / "registry" / "registry.yaml"
    registry.parent.mkdir()
    shutil.copy(TEMPLATE, registry)
    (tmp_path / "data").mkdir()
    prepare_multicamera_session(tmp_path / "data", registry)
    [rec] = discover_recordings(tmp_path / "data").recordings
    rid = rec.recording_id
    assert rid == "mouse04__2026-01-05_openfield_3cam__rig_3cam" and rec.source == "manual"
    resources = {
        "data_root": DataRoot(path=str(tmp_path / "data"), registry_path=str(registry)),
        "warehouse": WarehouseResource(root=str(tmp_path / "warehouse")),
        "dlc_inference": DLCInference(device="cpu", batch_size=8,
                                      work_dir=str(tmp_path / "work")),
    }
    result = run_recording(instance, resources, rid)
    assert result.success, failure_messages(result)
    store = Warehouse(tmp_path / "warehouse")
    pose = store.read_partition("pose_3d", rid)
    assert len(pose) == 300 * len(BODY_PARTS_3D) and pose.n_cameras.max() == 3
    assert pose.reprojection_error_px.median() < 1.0
    calib = store.read_partition("pose_3d_calibrations", rid)
    assert sorted(calib.camera) == ["side_1", "side_2", "top"] and not calib.flagged.any()
    processed = store.read_partition("processed_tracking", rid)
    assert len(processed) == 300
    assert processed[["z_cm", "pitch_deg", "roll_deg"]].notna().mean().min() > 0.9
    preds = store.read_partition("predictions", rid)
    assert sorted(preds.camera.unique()) == ["side_1", "side_2", "top"]
    assert sorted(store.read_partition("prediction_sources", rid).camera) == [
        "side_1", "side_2", "top"]
    assert store.query("SELECT n_frames FROM recording_summary WHERE recording_id = ?",
                       params=[rid]).n_frames.tolist() == [300]
    occupancy = store.read_partition("occupancy", rid)  # from the 3D rows' floor position
    tracked_s = processed.x_cm.notna().sum() * processed.time_s.diff().median()
    assert occupancy.occupancy_s.sum() == pytest.approx(tracked_s, rel=0.01)
    skipped = {e.asset_key.to_user_string(): e.materialization.metadata.get("reason")
               for e in result.get_asset_materialization_events()
               if e.materialization.metadata.get("skipped")}
    assert {"recordings", "dlc_predictions", "processed_tracking"} <= set(skipped)
    [pose_event] = [e for e in result.get_asset_materialization_events()
                    if e.asset_key.to_user_string() == "pose_3d"]
    assert {"reprojection_error", "trajectory_3d"} <= set(pose_event.materialization.metadata)
    # the 3D exports from the warehouse, through the command line
    import pandas as pd

    from dlc_assets.cli.main import main

    out = tmp_path / "pose.csv"
    main(["export", rid, "--format", "anipose-csv", "--out", str(out),
          "--warehouse", str(tmp_path / "warehouse")])
    csv = pd.read_csv(out)
    assert len(csv) == 300 and {"nose_x", "nose_z", "nose_ncams", "fnum"} <= set(csv.columns)
    first = pose[(pose.frame == 0) & (pose.body_part == "nose")].iloc[0]
    assert csv.nose_z.iloc[0] == pytest.approx(first.z_mm)


def test_pose_3d_rows_export_like_the_triangulation(tmp_path):
    """pose_3d rows read back give the same DLC 3D h5 and Anipose CSV as the Pose3D."""
    import io

    import pandas as pd

    from dlc_tracking.io.pose3d_exports import (
        export_pose_3d,
        to_anipose_frame,
        write_dlc_3d_h5,
    )
    from dlc_tracking.multiview.calibration import load_anipose_toml
    from dlc_tracking.multiview.triangulation import triangulate_poses
    from dlc_tracking.synthetic.rig import write_anipose_calibration

    cams = make_rig(3)
    poses = project_scene(simulate_scene(n_frames=15), cams)
    poses[1, 3:5, 0] = np.nan  # a part seen by fewer cameras
    cal = load_anipose_toml(write_anipose_calibration(cams, tmp_path / "c.toml"))
    pose = triangulate_poses(cal, {c.name: p for c, p in zip(cams, poses, strict=True)},
                             BODY_PARTS_3D)
    table = pose.to_frame()
    table["time_s"] = table["frame"] / 30.0
    pd.testing.assert_frame_equal(
        pd.read_csv(export_pose_3d(table, "anipose-csv", tmp_path / "a.csv")),
        pd.read_csv(io.StringIO(to_anipose_frame(pose).to_csv(index=False))))
    a = pd.read_hdf(export_pose_3d(table, "dlc-3d-h5", tmp_path / "a.h5"))
    b = pd.read_hdf(write_dlc_3d_h5(pose, tmp_path / "b.h5"))
    pd.testing.assert_frame_equal(a, b)
    assert export_pose_3d(table, "movement-3d", tmp_path / "m.nc", fps=30.0).stat().st_size
