"""NWB export (round trip, nwbinspector) and import (ndx-pose files as other tools write
them), on a synthetic recording processed through the real Dagster jobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from dlc_tracking.errors import DLCFileError, WarehouseError
from dlc_tracking.io.nwb import check_nwb_frame_rate, export_nwb, read_nwb_predictions
from dlc_tracking.io.stored_recording import load_stored_recording
from dlc_tracking.warehouse import Warehouse
from tests.export_helpers import PARTS, make_dirs, processed_recording


@pytest.fixture(scope="module")
def processed(tmp_path_factory, registry_path, registry):
    import dagster as dg

    dirs = make_dirs(tmp_path_factory.mktemp("nwb"), registry_path)
    with dg.instance_for_test(temp_dir=str(dirs["home"])) as instance:
        yield processed_recording(instance, dirs, registry.model("tiny_openfield").scorer,
                                  occlusion=0.05)


@pytest.fixture(scope="module")
def exported(processed, registry):
    # The facts DANDI requires about the animal, in the subject's folder (docs/exports.md).
    (processed["folder"].parent / "subject.yaml").write_text(
        "species: Mus musculus\nsex: F\nage: P90D\nstrain: C57BL/6J\n")
    rec = load_stored_recording(processed["rid"], processed["warehouse"])
    params = registry.processing_params("default").to_dict()
    path = export_nwb(rec, processed["warehouse"] / "nwb" / f"{rec.recording_id}.nwb",
                      params=params)
    return path, rec, params


def _read(path: Path):
    from pynwb import NWBHDF5IO

    io = NWBHDF5IO(str(path), "r", load_namespaces=True)
    return io, io.read()


def test_export_round_trips_exactly(exported, processed):
    path, rec, params = exported
    store = Warehouse(processed["warehouse"])
    pred = store.query("SELECT frame, body_part, time_s, x_px, y_px, likelihood FROM "
                       "predictions WHERE recording_id = ? ORDER BY frame", [rec.recording_id])
    proc = store.query("SELECT * FROM processed_tracking WHERE recording_id = ? ORDER BY "
                       "frame", [rec.recording_id])
    io, nwb = _read(path)
    try:
        behavior = nwb.processing["behavior"]
        pose = behavior["PoseEstimation"]
        assert list(pose.pose_estimation_series) == sorted(PARTS)  # a dict by name
        assert list(behavior["Skeletons"]["subject"].nodes[:]) == PARTS
        assert pose.scorer == rec.scorer and pose.source_software == "DeepLabCut"
        assert pose.source_software_version
        for part in PARTS:
            series = pose.pose_estimation_series[part]
            rows = pred[pred.body_part == part]
            np.testing.assert_array_equal(series.data[:, 0], rows.x_px.to_numpy(float))
            np.testing.assert_array_equal(series.data[:, 1], rows.y_px.to_numpy(float))
            np.testing.assert_array_equal(series.confidence[:], rows.likelihood.to_numpy(float))
            np.testing.assert_array_equal(series.get_timestamps(), rows.time_s.to_numpy())
            assert series.unit == "pixels"
        assert np.isnan(pred.x_px.to_numpy(float)).any()  # occlusion: missing points kept
        position = behavior["Position"]["position"]
        np.testing.assert_array_equal(position.data[:, 0], proc.x_cm.to_numpy(float))
        np.testing.assert_array_equal(position.data[:, 1], proc.y_cm.to_numpy(float))
        assert position.conversion == 0.01 and "y up" in position.reference_frame
        np.testing.assert_array_equal(position.get_timestamps(), proc.time_s.to_numpy())
        hd = behavior["CompassDirection"]["head_direction"]
        np.testing.assert_array_equal(hd.data[:], proc.head_direction_deg.to_numpy(float))
        assert hd.unit == "degrees"
        for name, column in (("speed", "speed_cm_s"),
                             ("angular_head_velocity", "angular_head_velocity_deg_s"),
                             ("movement_direction", "movement_direction_deg")):
            np.testing.assert_array_equal(behavior[name].data[:], proc[column].to_numpy(float))
        np.testing.assert_array_equal(behavior["interpolated"].data[:].astype(bool),
                                      proc.interpolated.to_numpy(bool))
        # session facts from session.yaml: start with its time zone, subject, session
        assert nwb.session_start_time == datetime(2026, 1, 5, 10, 0,
                                                  tzinfo=timezone(timedelta(hours=1)))
        assert nwb.session_start_time.utcoffset() == timedelta(hours=1)
        assert nwb.subject.subject_id == rec.info["subject"]
        assert (nwb.subject.species, nwb.subject.sex, nwb.subject.age) == ("Mus musculus", "F",
                                                                           "P90D")
        assert nwb.session_id == rec.info["session"]
        assert params["param_hash"] in nwb.session_description
        assert '"occupancy_bin_cm": 2.5' in nwb.session_description
        video = nwb.acquisition["video"]
        assert (path.parent / video.external_file[0]).resolve() == rec.video_path.resolve()
        assert pose.source_video is video and pose.device is nwb.devices["camera"]
    finally:
        io.close()


def test_export_passes_nwbinspector(exported):
    from nwbinspector import Importance, inspect_nwbfile

    path = exported[0]
    messages = list(inspect_nwbfile(nwbfile_path=str(path)))
    serious = [m for m in messages if m.importance in (Importance.CRITICAL,
                                                       Importance.BEST_PRACTICE_VIOLATION,
                                                       Importance.ERROR)]
    assert not serious, "\n".join(f"{m.importance.name} {m.check_function_name}: {m.message}"
                                  for m in serious)


def test_read_back_gives_the_warehouse_predictions(exported):
    path, rec, _ = exported
    loaded, timestamps = read_nwb_predictions(path)
    assert loaded.body_parts == PARTS and loaded.scorer == rec.scorer
    np.testing.assert_array_equal(loaded.poses, rec.poses)
    np.testing.assert_array_equal(timestamps, rec.time_s)
    check_nwb_frame_rate(timestamps, rec.fps, path, rec.recording_id)  # accepted


def _dlc2nwb_style(path: Path, body_parts: list[str], poses: np.ndarray,
                   timestamps: np.ndarray, *, with_pose: bool = True) -> Path:
    """An NWB file laid out as DLC2NWB writes it: series named by DLC body part, pixels,
    timestamps, scorer and source software on PoseEstimation, skeleton in behavior."""
    from ndx_pose import PoseEstimation, PoseEstimationSeries, Skeleton, Skeletons
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries

    nwb = NWBFile(session_description="converted by DLC2NWB", identifier="x",
                  session_start_time=datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    behavior = nwb.create_processing_module("behavior", "processed behavioral data")
    if with_pose:
        skeleton = Skeleton(name="animal", nodes=body_parts,
                            edges=np.array([[0, 1]], dtype=np.uint8))
        behavior.add(Skeletons(skeletons=[skeleton]))
        series = [PoseEstimationSeries(
            name=bp, description=f"Keypoint {bp}.", data=poses[:, i, :2], unit="pixels",
            reference_frame="(0,0) corresponds to the top left corner of the video.",
            timestamps=timestamps, confidence=poses[:, i, 2],
            confidence_definition="Softmax output of the deep neural network.")
            for i, bp in enumerate(body_parts)]
        behavior.add(PoseEstimation(pose_estimation_series=series, name="PoseEstimation",
                                    description="2D keypoint coordinates estimated using "
                                    "DeepLabCut.", scorer="DLC_resnet50_otherlabJan1shuffle1_1",
                                    source_software="DeepLabCut",
                                    source_software_version="2.3.8", skeleton=skeleton))
    else:
        behavior.add(TimeSeries(name="wheel", data=np.zeros(10), unit="m", rate=30.0))
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


def _poses(n: int, k: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    poses = rng.uniform(0, 100, (n, k, 3))
    poses[..., 2] = rng.uniform(0, 1, (n, k))
    poses[3, 1] = np.nan  # a missing point
    return poses


def test_import_dlc2nwb_layout(tmp_path):
    names = ["snout", "leftear", "rightear"]
    poses = _poses(40, 3)
    path = _dlc2nwb_style(tmp_path / "other.nwb", names, poses, np.arange(40) / 25.0)
    loaded, timestamps = read_nwb_predictions(path)
    assert loaded.body_parts == names  # as written; the registry maps them
    assert loaded.scorer == "DLC_resnet50_otherlabJan1shuffle1_1"
    np.testing.assert_array_equal(loaded.poses, poses)
    np.testing.assert_array_equal(loaded.frames, np.arange(40))
    assert loaded.sources == [path]
    check_nwb_frame_rate(timestamps, 25.0, path, "m__s__v")


def test_frame_indices_stored_as_seconds_refused(tmp_path):
    poses = _poses(40, 2)
    path = _dlc2nwb_style(tmp_path / "indices.nwb", ["left_ear", "right_ear"], poses,
                          np.arange(40, dtype=float))
    _, timestamps = read_nwb_predictions(path)
    with pytest.raises(DLCFileError) as err:
        check_nwb_frame_rate(timestamps, 30.0, path, "m__s__v")
    text = str(err.value)
    assert "1 frames/s" in text and "30 frames/s" in text and "frame indices" in text
    assert str(path) in text and "m__s__v" in text and "Rewrite" in text


def test_nwb_without_pose_refused(tmp_path):
    path = _dlc2nwb_style(tmp_path / "nopose.nwb", [], np.empty((0, 0, 3)), np.array([]),
                          with_pose=False)
    with pytest.raises(DLCFileError, match="no ndx-pose PoseEstimation"):
        read_nwb_predictions(path)


def test_not_an_nwb_file_refused(tmp_path):
    path = tmp_path / "broken.nwb"
    path.write_bytes(b"not hdf5")
    with pytest.raises(DLCFileError, match="not a readable NWB file"):
        read_nwb_predictions(path)


def test_body_parts_not_matching_the_model_refused(tmp_path, registry):
    from dlc_tracking.tracking.predictions import map_body_parts

    path = _dlc2nwb_style(tmp_path / "parts.nwb", ["paw", "tail"], _poses(10, 2),
                          np.arange(10) / 30.0)
    loaded, _ = read_nwb_predictions(path)
    model = registry.model("tiny_openfield")
    with pytest.raises(DLCFileError, match=r"unexpected \['paw', 'tail'\]"):
        map_body_parts(loaded.body_parts, model.to_canonical(), f"{path} (recording r)")


def test_export_of_skipped_recording_refused(tmp_path_factory, registry_path, registry):
    import dagster as dg
    import yaml

    from tests.export_helpers import resources_for, run_job
    from tests.pipeline_helpers import rid_of, session_with_manual_outputs

    dirs = make_dirs(tmp_path_factory.mktemp("nwb_skipped"), registry_path)
    scorer = registry.model("tiny_openfield").scorer
    folder = session_with_manual_outputs(dirs["data_root"], "m2", "wheel1", scorer, PARTS,
                                         n_frames=30)
    meta = yaml.safe_load((folder / "session.yaml").read_text())
    meta["tracking_type"] = "wheel"
    meta["assignment"] = {"model": "tiny_openfield", "method": "two_ears_loose"}
    (folder / "session.yaml").write_text(yaml.safe_dump(meta))
    rid = rid_of(folder)
    with dg.instance_for_test(temp_dir=str(dirs["home"])) as instance:
        run_job(instance, resources_for(dirs), "process_recording", rid)
    rec = load_stored_recording(rid, dirs["warehouse"])
    out = tmp_path_factory.mktemp("out") / "x.nwb"
    with pytest.raises(WarehouseError, match="skipped.*wheel.*dlc-h5"):
        export_nwb(rec, out)
    assert not out.exists() and not list(out.parent.iterdir())  # nothing half-written


def test_export_of_failed_recording_refused(tmp_path_factory, registry_path, registry):
    import dagster as dg

    from tests.export_helpers import resources_for
    from tests.pipeline_helpers import rid_of, run_recording, session_with_manual_outputs

    dirs = make_dirs(tmp_path_factory.mktemp("nwb_failed"), registry_path)
    scorer = registry.model("tiny_openfield").scorer
    folder = session_with_manual_outputs(dirs["data_root"], "m3", "bad", scorer,
                                         ["nose", "paw", "right_ear", "tail_base"], n_frames=30)
    rid = rid_of(folder)
    with dg.instance_for_test(temp_dir=str(dirs["home"])) as instance:
        assert not run_recording(instance, resources_for(dirs), rid).success
    with pytest.raises(WarehouseError, match="no predictions.*dlc-platform status"):
        load_stored_recording(rid, dirs["warehouse"])
    with pytest.raises(WarehouseError, match="not in the warehouse"):
        load_stored_recording("nobody__nothing__none", dirs["warehouse"])
