"""A multi-camera take's inputs through the real process_recording job (issue 23, items 1,
2 and 5; docs/3d.md "3. The session"): SLEAP predictions per camera (written with
sleap-io, registered as an ingest-only model), cameras with different frame counts matched
by their frame times on one clock, the take's recordings row, and tracking_on_imaging of a
take whose session has ScanImage imaging. Each test runs the job once on a real Dagster
instance and warehouse; the 2D inputs are the synthetic rig's ground truth projected."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
import yaml

from dlc_tracking.registry.editing import add_ingest_only_model, edit_registry
from dlc_tracking.registry.registry_file import load_registry
from dlc_tracking.sessions.layout import discover_recordings, load_session_metadata
from dlc_tracking.synthetic.rig import (
    BODY_PARTS_3D,
    make_rig,
    project_scene,
    simulate_scene,
    write_anipose_calibration,
    write_dlc_predictions,
    write_sleap_predictions,
)
from dlc_tracking.warehouse import Warehouse
from tests.pipeline_helpers import failure_messages, run_recording

FPS = 30.0
EPOCH = datetime(2026, 1, 5, 10, 0, 0)  # ScanImage's clock (naive local time, +01:00)
CET = timezone(timedelta(hours=1))
SESSION = {"tracking_type": "openfield", "start_time": "2026-01-05T10:00:00+01:00",
           "camera_view": "above"}


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    """The synthetic 3-camera rig, its calibration and a scene projected into every
    camera (ground truth, 0.3 px noise)."""
    root = tmp_path_factory.mktemp("rig")
    cams = make_rig(3)
    scene = simulate_scene(n_frames=64, fps=FPS, seed=5)
    poses = project_scene(scene, cams, noise_px=0.3, seed=6)
    toml = write_anipose_calibration(cams, root / "calibration.toml")
    return {"cams": cams, "scene": scene, "poses": poses, "toml": toml}


def _registry(tmp_path, rig, model_file, model="rig_model", rig_name="tri"):
    """The project's registry template plus an ingest-only model registered from
    ``model_file`` (as `models add --from-outputs`) and a rig naming it."""
    from dlc_assets.cli.demo import TEMPLATE

    path = tmp_path / "registry" / "registry.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(TEMPLATE, path)
    add_ingest_only_model(path, model, outputs_file=model_file)

    def add_rig(doc):
        doc["rigs"] = {**(doc.get("rigs") or {}), rig_name: {
            "cameras": [c.name for c in rig["cams"]], "model": model,
            "calibration": str(rig["toml"])}}
    edit_registry(path, add_rig)
    return path


def _session(data_root, name, cameras, rig_name="tri", **extra):
    folder = data_root / "m1" / name
    folder.mkdir(parents=True)
    meta = {**SESSION, "rig": rig_name, **extra, "cameras": cameras}
    (folder / "session.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    return folder


def _resources(tmp_path, registry):
    from resources import DataRoot, DLCInference, WarehouseResource

    return {"data_root": DataRoot(path=str(tmp_path / "data"), registry_path=str(registry)),
            "warehouse": WarehouseResource(root=str(tmp_path / "warehouse")),
            "dlc_inference": DLCInference(device="cpu", batch_size=8,
                                          work_dir=str(tmp_path / "work"))}


def _run(tmp_path, instance, registry):
    [rec] = discover_recordings(tmp_path / "data").recordings
    result = run_recording(instance, _resources(tmp_path, registry), rec.recording_id)
    return rec, result, Warehouse(tmp_path / "warehouse")


@pytest.mark.slow  # the process_recording job on a real instance
def test_sleap_inputs_triangulate_like_dlc_inputs(tmp_path, instance, rig):
    """SLEAP files written with sleap-io (a .slp for two cameras, an analysis .h5 for the
    third) from the same ground truth as DeepLabCut files: the job gives the pose_3d rows
    the DLC files give, the model is registered from a .slp through the command line."""
    from dlc_assets.cli.main import main
    from dlc_tracking.multiview.recording import process_multicamera

    cams, poses = rig["cams"], rig["poses"]
    folder = _session(tmp_path / "data", "sleap_take", {c.name: f"{c.name}.mp4" for c in cams},
                      rig_name="tri_sleap", fps=FPS)
    for i, cam in enumerate(cams):  # no videos here: an outputs-only take
        write_sleap_predictions(poses[i][None], [cam], BODY_PARTS_3D, folder / f"dlc_{cam.name}",
                                analysis_h5=(cam.name == "side_1"))
    registry = tmp_path / "registry" / "registry.yaml"
    registry.parent.mkdir()
    from dlc_assets.cli.demo import TEMPLATE

    shutil.copy(TEMPLATE, registry)
    main(["--registry", str(registry), "models", "add", "--name", "rig_sleap",
          "--from-outputs", str(folder / "dlc_top" / "top.predictions.slp")])
    entry = load_registry(registry).model("rig_sleap")
    assert entry.ingest_only and entry.engine == "sleap" and entry.scorer == "SLEAP"
    assert entry.canonical_body_parts == list(BODY_PARTS_3D)
    edit_registry(registry, lambda doc: doc.update(rigs={"tri_sleap": {
        "cameras": [c.name for c in cams], "model": "rig_sleap",
        "calibration": str(rig["toml"])}}))

    rec, result, store = _run(tmp_path, instance, registry)
    assert rec.source == "manual"
    assert result.success, failure_messages(result)
    pose = store.read_partition("pose_3d", rec.recording_id).astype({"body_part": str})
    pose = pose.sort_values(["frame", "body_part"], ignore_index=True)

    # the same ground truth as DeepLabCut files, triangulated by the same code
    dlc_root = tmp_path / "dlc_data"
    dlc_folder = _session(dlc_root, "dlc_take", {c.name: f"{c.name}.mp4" for c in cams},
                          fps=FPS)
    for i, cam in enumerate(cams):
        write_dlc_predictions(poses[i][None], [cam], BODY_PARTS_3D, dlc_folder / f"dlc_{cam.name}")
    dlc_registry = _registry(tmp_path / "dlc", rig, next((dlc_folder / "dlc_top").glob("*.h5")))
    [dlc_rec] = discover_recordings(dlc_root).recordings
    expected = process_multicamera(dlc_rec, load_session_metadata(dlc_folder / "session.yaml"),
                                   load_registry(dlc_registry), fps=FPS).pose.to_frame()
    expected = expected.astype({"body_part": str}).sort_values(["frame", "body_part"],
                                                                ignore_index=True)
    assert len(pose) == len(expected) == rig["scene"].n_frames * len(BODY_PARTS_3D)
    for col in ("x_mm", "y_mm", "z_mm", "reprojection_error_px"):
        # sleap-io stores float32 in the analysis file: 1e-3 mm is far below the noise
        np.testing.assert_allclose(pose[col], expected[col], atol=1e-3, equal_nan=True)
    assert (pose.n_cameras.to_numpy() == expected.n_cameras.to_numpy()).all()
    sources = store.read_partition("prediction_sources", rec.recording_id)
    assert sorted(sources.camera) == ["side_1", "side_2", "top"]
    assert sources.files.str.contains(r"\.slp|\.analysis\.h5").all()
    assert sources.notes.str.contains("SLEAP").all()


def _write_times_take(tmp_path, rig, counts_only=False):
    """Cameras with different frame counts on one clock: ``top`` (the reference) frames
    0..59, ``side_1`` started 2 frames late (2..59), ``side_2`` stopped 3 frames late
    (0..62); each camera's times carry its own few-ms offset. ``counts_only``: the same
    files, session.yaml without the times."""
    cams, poses = rig["cams"], rig["poses"]
    frames = {"top": np.arange(0, 60), "side_1": np.arange(2, 60), "side_2": np.arange(0, 63)}
    offset = {"top": 0.0, "side_1": 0.004, "side_2": -0.003}
    cameras = {c.name: (f"{c.name}.mp4" if counts_only else
                        {"file": f"{c.name}.mp4", "timestamps": f"{c.name}.times.csv"})
               for c in cams}
    folder = _session(tmp_path / "data", "times_take", cameras,
                      **({"fps": FPS} if counts_only else {}))
    for i, cam in enumerate(cams):
        f = frames[cam.name]
        write_dlc_predictions(poses[i][f][None], [cam], BODY_PARTS_3D, folder / f"dlc_{cam.name}")
        np.savetxt(folder / f"{cam.name}.times.csv", f / FPS + offset[cam.name], fmt="%.6f")
    return folder, frames, offset


@pytest.mark.slow  # the process_recording job on a real instance
def test_cameras_matched_by_frame_times_with_imaging(tmp_path, instance, rig):
    """Different frame counts + frame times: the take's frames are the reference camera's,
    the others matched within half a frame (missing where a camera has none); the rows
    hold the ground truth; the take's recordings row; tracking_on_imaging at the imaging
    frames of the ScanImage tifs on the reference camera's clock."""
    from dlc_tracking.synthetic.scanimage_tifs import write_scanimage_tifs

    folder, frames, offset = _write_times_take(tmp_path, rig)
    img_times = 0.05 + np.arange(36) / 20.0  # 20 Hz inside the 2 s of video
    tifs = write_scanimage_tifs(folder, "take", img_times, EPOCH, frame_rate_hz=20.0)
    meta = yaml.safe_load((folder / "session.yaml").read_text())
    meta["imaging"] = {"scanimage": [p.name for p in tifs], "timezone": "+01:00"}
    (folder / "session.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    registry = _registry(tmp_path, rig, next((folder / "dlc_top").glob("*.h5")))

    rec, result, store = _run(tmp_path, instance, registry)
    assert result.success, failure_messages(result)
    rid = rec.recording_id
    processed = store.read_partition("processed_tracking", rid).sort_values("frame")
    assert len(processed) == 60
    np.testing.assert_allclose(processed.time_s, np.arange(60) / FPS, atol=1e-6)
    head = rig["scene"].head_mm()[:60] / 10.0
    for i, col in enumerate(("x_cm", "y_cm", "z_cm")):
        assert np.median(np.abs(processed[col] - head[:, i])) < 0.2  # 2 mm
    pose = store.read_partition("pose_3d", rid)
    by_frame = pose.groupby("frame").n_cameras.max()
    assert (by_frame.loc[[0, 1]] == 2).all() and (by_frame.loc[2:] == 3).all()
    preds = store.read_partition("predictions", rid)
    side_1 = preds[(preds.camera == "side_1") & (preds.body_part == "nose")].sort_values(
        "frame")
    assert len(side_1) == 58  # its own frames and times, as written
    np.testing.assert_allclose(side_1.time_s, frames["side_1"] / FPS + offset["side_1"],
                               atol=1e-6)
    assert (preds[preds.camera == "side_2"].frame.max() == 62)

    row = store.read_partition("recordings", rid).iloc[0]
    assert (row.subject, row.session, row.n_frames) == ("m1", "times_take", 60)
    assert row.fps == pytest.approx(FPS, rel=1e-3) and row.fps_source == "frame_times"
    assert bool(row.has_timestamps) and row.video_file == "top.mp4"
    assert json.loads(row.cameras) == {c.name: f"{c.name}.mp4" for c in rig["cams"]}
    assert pd.Timestamp(row.start_time) == pd.Timestamp(EPOCH.replace(tzinfo=CET))
    summary = store.query("SELECT subject, session, n_frames FROM recording_summary "
                          "WHERE recording_id = ?", params=[rid])
    assert summary.values.tolist() == [["m1", "times_take", 60]]

    rows = store.read_partition("tracking_on_imaging", rid).sort_values("imaging_frame")
    assert len(rows) == 36 and rows.valid.all()
    np.testing.assert_allclose(rows.time_s, img_times, atol=1e-6)
    t, x = processed.time_s.to_numpy(), processed.x_cm.to_numpy()
    np.testing.assert_allclose(rows.x_cm, np.interp(rows.time_s, t, x), atol=1e-6)
    truth = np.interp(rows.time_s, np.arange(64) / FPS, rig["scene"].head_mm()[:, 0] / 10.0)
    assert np.median(np.abs(rows.x_cm - truth)) < 0.3
    # the 3D columns too: height and pitch linear, roll along the shorter arc
    np.testing.assert_allclose(rows.z_cm, np.interp(rows.time_s, t, processed.z_cm),
                               atol=1e-6)
    np.testing.assert_allclose(rows.pitch_deg, np.interp(rows.time_s, t, processed.pitch_deg),
                               atol=1e-6)
    roll = np.interp(rows.time_s, np.arange(64) / FPS, rig["scene"].roll_deg)
    assert np.median(np.abs(rows.roll_deg - roll)) < 3.0


@pytest.mark.slow  # the process_recording job on a real instance
def test_different_counts_without_times_fail_naming_the_file(tmp_path, instance, rig):
    """The same cameras without frame times: the job fails naming session.yaml and each
    camera's frame count; nothing is written for the take."""
    folder, _, _ = _write_times_take(tmp_path, rig, counts_only=True)
    registry = _registry(tmp_path, rig, next((folder / "dlc_top").glob("*.h5")))
    rec, result, store = _run(tmp_path, instance, registry)
    assert not result.success
    message = failure_messages(result)
    assert str(folder / "session.yaml") in message
    assert "different numbers of frames" in message and "'side_1': 58" in message
    for table in ("pose_3d", "predictions", "processed_tracking", "recordings",
                  "pose_3d_calibrations"):
        assert store.partition_path(table, rec.recording_id) is None, table


def test_take_synchronisation_rules(tmp_path):
    """Frame times for every camera or none; without them equal counts (else the error
    names the counts) and a frame rate; with them the reference camera's times."""
    from dlc_tracking.multiview.errors import MultiviewError
    from dlc_tracking.multiview.sync import synchronise_take

    for cam, times in {"a": np.arange(5) / 10.0, "b": np.arange(1, 5) / 10.0 + 0.01}.items():
        np.savetxt(tmp_path / f"{cam}.csv", times)
    files = {"a": tmp_path / "a.csv", "b": tmp_path / "b.csv"}
    clock = synchronise_take({"a": 5, "b": 4}, files, None, "s.yaml")
    assert clock.method == "frame_times" and clock.fps == pytest.approx(10.0)
    assert clock.index["b"].tolist() == [-1, 0, 1, 2, 3]
    assert clock.matched_fraction() == {"a": 1.0, "b": 0.8}
    with pytest.raises(MultiviewError, match=r"s.yaml: frame times are given for cameras \['a'\]"):
        synchronise_take({"a": 5, "b": 4}, {"a": files["a"], "b": None}, 10.0, "s.yaml")
    with pytest.raises(MultiviewError, match=r"s.yaml: .*different numbers of frames"):
        synchronise_take({"a": 5, "b": 4}, {}, 10.0, "s.yaml")
    with pytest.raises(MultiviewError, match="no frame rate"):
        synchronise_take({"a": 4, "b": 4}, {}, None, "s.yaml")
    with pytest.raises(MultiviewError, match="4 frame times for 5 frames"):
        synchronise_take({"a": 5, "b": 5}, files, None, "s.yaml")
    clock = synchronise_take({"a": 4, "b": 4}, {}, 20.0, "s.yaml")
    assert clock.method == "frame_index" and clock.time_s.tolist() == [0, 0.05, 0.1, 0.15]


def test_sleap_model_from_an_analysis_file(tmp_path, rig):
    """`models add --from-outputs` with a SLEAP analysis .h5: engine sleap, the file's
    nodes as body parts; a DLC .h5 beside it is still a DLC model; --config is refused."""
    from dlc_tracking.errors import RegistryError
    from dlc_tracking.io.sleap_files import is_sleap_file

    cam, poses = rig["cams"][0], rig["poses"][0]
    [h5] = write_sleap_predictions(poses[None], [cam], BODY_PARTS_3D, tmp_path / "s",
                                   analysis_h5=True).values()
    [dlc] = write_dlc_predictions(poses[None], [cam], BODY_PARTS_3D, tmp_path / "d").values()
    assert is_sleap_file(h5) and not is_sleap_file(dlc)
    registry = tmp_path / "registry.yaml"
    registry.write_text("models: {}\n")
    add_ingest_only_model(registry, "sleap_model", outputs_file=h5)
    add_ingest_only_model(registry, "dlc_model", outputs_file=dlc)
    loaded = load_registry(registry)
    assert loaded.model("sleap_model").engine == "sleap"
    assert loaded.model("sleap_model").dlc_body_parts == list(BODY_PARTS_3D)
    assert loaded.model("dlc_model").engine == "pytorch"
    with pytest.raises(RegistryError, match="SLEAP predictions; --config"):
        add_ingest_only_model(registry, "other", outputs_file=h5, config_path=tmp_path / "c")
