"""What users tripped on with files out and in (issue 21, A): a dlc-h5 export that comes
back in unchanged under DLC's own names, true NWB provenance, DLC2NWB's NWB files, and
files readable by the lab (umask permissions).

Built on a warehouse written directly (recordings, predictions, prediction_sources as
the dlc_predictions step writes them) from DLC outputs written with the real writers, so
the tests need no trained model and no Dagster run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dlc_tracking.errors import DLCFileError, WarehouseError
from dlc_tracking.io.dlc_files import output_names, write_metadata, write_predictions
from dlc_tracking.io.recording_exports import export_recording
from dlc_tracking.io.stored_recording import StoredRecording, load_stored_recording
from dlc_tracking.tracking import predictions as preds
from dlc_tracking.warehouse import TABLES, Warehouse

SCORER = "DLC_resnet50_openfieldAug20shuffle1_30000"
DLC_PARTS = ["snout", "leftear", "rightear", "tailbase"]
CANONICAL = ["nose", "left_ear", "right_ear", "tail_base"]
TO_CANONICAL = dict(zip(DLC_PARTS, CANONICAL, strict=True))
FPS = 30.0
N = 90


def _poses(n: int = N, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    poses = np.empty((n, 4, 3))
    poses[..., 0] = rng.uniform(10, 600, (n, 4))
    poses[..., 1] = rng.uniform(10, 450, (n, 4))
    poses[..., 2] = rng.uniform(0.5, 1.0, (n, 4))
    poses[7, 2] = np.nan  # a missing point, as DLC writes it
    return poses


def _recordings_row(rid: str, video: Path) -> pd.DataFrame:
    row = {c: None for c in TABLES["recordings"].column_names}
    row.update({"recording_id": rid, "subject": "m1", "session": "s1",
                "video_path": str(video), "video_file": video.name,
                "tracking_type": "openfield", "n_frames": N, "fps": FPS, "width_px": 640,
                "height_px": 480, "camera_view": "above", "model_name": "lab_model_v1",
                "method_name": "two_ears", "has_video": False, "source": "manual",
                "state_vector_status": "supported", "fps_source": "video",
                "video_facts_source": "video",
                "start_time": pd.Timestamp("2026-01-05T09:00:00", tz="UTC")})
    return pd.DataFrame([row])


@pytest.fixture
def ingested(tmp_path) -> dict:
    """A session whose DLC outputs (lab names, DLC scorer) were ingested into the
    warehouse under the registry name ``lab_model_v1`` and canonical names."""
    session = tmp_path / "data" / "m1" / "s1"
    outputs = session / "dlc_openfield"
    h5_name, meta_name = output_names("openfield", SCORER)
    poses = _poses()
    h5 = write_predictions(outputs / h5_name, SCORER, DLC_PARTS, poses)
    write_metadata(outputs / meta_name, {"Scorer": SCORER, "fps": FPS, "nframes": N,
                                         "dlc_version": "2.3.9"})
    loaded = preds.load_manual_outputs(outputs, SCORER, "m1__s1__openfield", FPS)
    names = preds.map_body_parts(loaded.predictions.body_parts, TO_CANONICAL, str(h5))
    rid = "m1__s1__openfield"
    store = Warehouse(tmp_path / "warehouse")
    store.write_partition("recordings", rid, _recordings_row(rid, session / "openfield.mp4"))
    long = preds.to_long(rid, "lab_model_v1", loaded.predictions.poses, names,
                         np.arange(N) / FPS)
    store.write_partition("predictions", rid, long)
    store.write_partition("prediction_sources", rid, pd.DataFrame([{
        "recording_id": rid, "model_name": "lab_model_v1", "source": "manual",
        "scorer": loaded.predictions.scorer, "files": json.dumps(loaded.files),
        "rows_in_files": N, "video_frames": N, "rows_dropped": 0, "rows_padded": 0,
        "dlc_fps": FPS, "points_outside_frame": 0, "notes": "[]"}]))
    return {"rid": rid, "store": store, "h5": h5, "long": long, "tmp": tmp_path}


def test_dlc_h5_export_carries_dlc_names_and_comes_back_unchanged(ingested, tmp_path):
    # The registry tables were never materialized (the daemon never ran): the export
    # used to write the registry name as scorer and the canonical names.
    rec = load_stored_recording(ingested["rid"], ingested["store"].root)
    assert rec.model is None
    again = tmp_path / "again" / "m1" / "s2" / "dlc_openfield"
    out = export_recording(rec, "dlc-h5", again / output_names("openfield", SCORER)[0])
    head = pd.read_hdf(out, "df_with_missing")
    assert list(head.columns.get_level_values(0).unique()) == [SCORER]
    assert list(head.columns.get_level_values(1).unique()) == DLC_PARTS
    # Ingested back as the platform ingests a session's outputs: the same rows.
    loaded = preds.load_manual_outputs(again, SCORER, "m1__s2__openfield", FPS)
    names = preds.map_body_parts(loaded.predictions.body_parts, TO_CANONICAL, str(out))
    back = preds.to_long(ingested["rid"], "lab_model_v1", loaded.predictions.poses, names,
                         np.arange(N) / FPS)
    pd.testing.assert_frame_equal(back, ingested["long"])


def test_dlc_h5_names_from_the_model_row_when_the_ingested_file_is_gone(ingested, tmp_path):
    store = ingested["store"]
    store.write_table("models", pd.DataFrame([{
        "model_name": "lab_model_v1", "scorer": SCORER, "engine": "tensorflow",
        "net_type": "resnet50", "snapshot": "snapshot-30000",
        "body_parts": ",".join(CANONICAL), "dlc_body_parts": ",".join(DLC_PARTS)}]))
    ingested["h5"].unlink()
    rec = load_stored_recording(ingested["rid"], store.root)
    out = export_recording(rec, "dlc-h5", tmp_path / "x.h5")
    head = pd.read_hdf(out, "df_with_missing")
    assert list(head.columns.get_level_values(1).unique()) == DLC_PARTS
    assert list(head.columns.get_level_values(0).unique()) == [SCORER]


def test_dlc_h5_export_refuses_rather_than_write_canonical_names(ingested, tmp_path):
    ingested["h5"].unlink()
    rec = load_stored_recording(ingested["rid"], ingested["store"].root)
    with pytest.raises(WarehouseError) as err:
        export_recording(rec, "dlc-h5", tmp_path / "x.h5")
    assert "canonical" in str(err.value) and "lab_model_v1" in str(err.value)
    assert not (tmp_path / "x.h5").exists()


def test_movement_export_scorer_is_the_dlc_scorer(ingested, tmp_path):
    import xarray as xr

    rec = load_stored_recording(ingested["rid"], ingested["store"].root)
    out = export_recording(rec, "movement", tmp_path / "m.nc")
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert ds.attrs["scorer"] == SCORER


# ----------------------------------------------------------------------------- NWB


def _processed(n: int, time_s: np.ndarray) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "frame": np.arange(n), "time_s": time_s, "x_cm": rng.uniform(0, 50, n),
        "y_cm": rng.uniform(0, 50, n), "speed_cm_s": rng.uniform(0, 20, n),
        "head_direction_deg": rng.uniform(0, 360, n),
        "angular_head_velocity_deg_s": rng.normal(0, 30, n),
        "movement_direction_deg": rng.uniform(0, 360, n), "interpolated": np.zeros(n, bool),
        "method_name": "two_ears", "params_name": "default", "params_hash": "abc"})


def _with_processed(rec: StoredRecording, time_s: np.ndarray | None = None) -> StoredRecording:
    time_s = rec.time_s if time_s is None else time_s
    rec.info.update({"subject": "m1", "session": "s1"})
    return dataclasses.replace(rec, processed=_processed(rec.n_frames, time_s), time_s=time_s,
                               subject={"species": "Mus musculus", "sex": "F", "age": "P90D"})


def _pose_estimation(path: Path):
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(path), "r", load_namespaces=True) as io:
        nwb = io.read()
        pe = nwb.processing["behavior"]["PoseEstimation"]
        return {"scorer": pe.scorer, "version": pe.source_software_version,
                "description": pe.description,
                "labeled_video": (None if pe.labeled_video is None
                                  else list(pe.labeled_video.external_file[:])),
                "experimenter": nwb.experimenter, "institution": nwb.institution}


def test_nwb_provenance_is_the_predictions_own(ingested, tmp_path):
    rec = _with_processed(load_stored_recording(ingested["rid"], ingested["store"].root))
    from dlc_tracking.io.nwb import export_nwb

    out = export_nwb(rec, tmp_path / "a.nwb", labeled_video=tmp_path / "absent.mp4",
                     experimenter="Doe, Jane", institution="Example University")
    pe = _pose_estimation(out)
    assert pe["scorer"] == SCORER
    assert pe["version"] == "2.3.9"  # from the _meta.pickle, not the DLC installed here
    assert "engine tensorflow" in pe["description"] and "net resnet50" in pe["description"]
    assert "snapshot snapshot-30000" in pe["description"]
    assert pe["labeled_video"] is None  # no such file: absent, not a wrong link
    assert pe["experimenter"] == ("Doe, Jane",)
    assert pe["institution"] == "Example University"


def test_nwb_version_unknown_when_not_recorded(ingested, tmp_path):
    from dlc_tracking.io.nwb import UNKNOWN_VERSION, export_nwb

    meta = next(ingested["h5"].parent.glob("*_meta.pickle"))
    write_metadata(meta, {"Scorer": SCORER, "fps": FPS, "nframes": N})
    rec = _with_processed(load_stored_recording(ingested["rid"], ingested["store"].root))
    labeled = tmp_path / "labeled.mp4"
    labeled.write_bytes(b"\0")
    pe = _pose_estimation(export_nwb(rec, tmp_path / "b.nwb", labeled_video=labeled))
    assert pe["version"] == UNKNOWN_VERSION
    assert pe["labeled_video"] == ["labeled.mp4"]


def test_nwb_of_camera_clock_times_passes_regular_timestamps_check(ingested, tmp_path):
    """Imaging sessions' frame times come from the acquisition clock (a start offset and
    float sums): regular to the nanosecond, never bit-equal to frame / fps."""
    from nwbinspector import inspect_nwbfile

    from dlc_tracking.io.nwb import export_nwb

    rec = load_stored_recording(ingested["rid"], ingested["store"].root)
    clock = 12.345678 + np.cumsum(np.full(N, 1 / FPS)) - 1 / FPS
    assert not np.array_equal(clock, np.arange(N) / FPS + clock[0])
    on_imaging = pd.DataFrame({
        "plane": 0, "imaging_frame": np.arange(20), "time_s": 12.4 + np.arange(20) * 0.1,
        "x_cm": 1.0, "y_cm": 2.0, "head_direction_deg": 3.0, "speed_cm_s": 4.0,
        "angular_head_velocity_deg_s": 5.0, "valid": True})
    rec = dataclasses.replace(_with_processed(rec, clock), on_imaging=on_imaging)
    out = export_nwb(rec, tmp_path / "imaging.nwb")
    found = [m for m in inspect_nwbfile(nwbfile_path=str(out))
             if m.check_function_name == "check_regular_timestamps"]
    assert found == []


# ----------------------------------------------------------------------------- DLC2NWB


def dlc2nwb_file(path: Path, body_parts: list[str], poses: np.ndarray, timestamps,
                 scorer: str = "DLC_resnet50_openfieldAug20shuffle1") -> Path:
    """An NWB file laid out as DeepLabCut's DLC2NWB ``convert_h5_to_nwb`` writes it:
    series ``<individual>_<body part>`` described "Keypoint <bp> from individual <ind>.",
    pixels, the scorer without its '_<iterations>', ``original_videos`` "fake_path" and
    the frame index as timestamps when the video was not found, experimenter = the
    config's scorer. ndx-pose 0.1 kept the nodes on PoseEstimation; 0.4 (installed) keeps
    them on a Skeleton, with the same names."""
    import warnings

    from ndx_pose import PoseEstimation, PoseEstimationSeries, Skeleton, Skeletons
    from pynwb import NWBHDF5IO, NWBFile

    nwb = NWBFile(session_description="openfield", experimenter="Mackenzie",
                  identifier=scorer, session_start_time=datetime(2020, 8, 20, tzinfo=UTC))
    behavior = nwb.create_processing_module(name="behavior",
                                            description="processed behavioral data")
    series = [PoseEstimationSeries(
        name=f"ind1_{bp}", description=f"Keypoint {bp} from individual ind1.",
        data=poses[:, i, :2], unit="pixels",
        reference_frame="(0,0) corresponds to the bottom left corner of the video.",
        timestamps=timestamps, confidence=poses[:, i, 2],
        confidence_definition="Softmax output of the deep neural network.")
        for i, bp in enumerate(body_parts)]
    skeleton = Skeleton(name="subject", nodes=[s.name for s in series],
                        edges=np.zeros((0, 2), dtype=np.uint8))
    behavior.add(Skeletons(skeletons=[skeleton]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        behavior.add(PoseEstimation(
            pose_estimation_series=series, name="PoseEstimation",
            description="2D keypoint coordinates estimated using DeepLabCut.",
            original_videos=["fake_path"], dimensions=[[0, 0]], scorer=scorer,
            source_software="DeepLabCut", source_software_version="2.2.0.6",
            skeleton=skeleton))
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


def test_dlc2nwb_file_matched_to_the_model_and_registered(tmp_path):
    from dlc_tracking.registry.editing import add_ingest_only_model
    from dlc_tracking.registry.registry_file import load_registry

    poses = _poses(40)
    folder = tmp_path / "dlc_m3v1mp4"
    folder.mkdir()
    nwb = dlc2nwb_file(folder / "m3v1mp4DLC_resnet50_openfieldAug20shuffle1_30000_ind1.nwb",
                       DLC_PARTS, poses, np.arange(40) / FPS)
    loaded = preds.load_manual_outputs(folder, SCORER, "m__s__v", FPS)
    assert loaded.predictions.body_parts == DLC_PARTS  # not ind1_snout...
    np.testing.assert_array_equal(loaded.predictions.poses[~np.isnan(poses)],
                                  poses[~np.isnan(poses)])
    assert any("names no snapshot" in n and "30000" in n for n in loaded.notes)
    # another shuffle's model: refused
    with pytest.raises(DLCFileError, match="another model"):
        preds.load_manual_outputs(folder, SCORER.replace("shuffle1", "shuffle2"), "m__s__v",
                                  FPS)
    # models add --from-outputs FILE.nwb
    registry = tmp_path / "registry.yaml"
    entry = add_ingest_only_model(registry, "openfield_dlc2nwb", outputs_file=nwb,
                                  body_part_map=TO_CANONICAL)
    assert entry.scorer == "DLC_resnet50_openfieldAug20shuffle1"
    model = load_registry(registry).models["openfield_dlc2nwb"]
    assert model.scorer == "DLC_resnet50_openfieldAug20shuffle1"


def test_dlc2nwb_frame_index_timestamps_refused_with_both_rates(tmp_path):
    folder = tmp_path / "dlc_v"
    folder.mkdir()
    dlc2nwb_file(folder / "vDLC_resnet50_openfieldAug20shuffle1_30000_ind1.nwb", DLC_PARTS,
                 _poses(40), np.arange(40, dtype=float))
    with pytest.raises(DLCFileError) as err:
        preds.load_manual_outputs(folder, SCORER, "m__s__v", FPS)
    text = str(err.value)
    assert "1 frames/s" in text and "30 frames/s" in text and "frame indices" in text


# ----------------------------------------------------------------------------- umask


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _small_video(path: Path, n: int) -> Path:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (64, 48))
    for i in range(n):
        writer.write(np.full((48, 64, 3), i % 255, np.uint8))
    writer.release()
    return path


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_for_users_get_the_umask_permissions(ingested, tmp_path, umask_022):
    from dlc_tracking.io.nwb import export_nwb
    from dlc_tracking.qc.labeled_video import render_labeled_video

    rec = load_stored_recording(ingested["rid"], ingested["store"].root)
    written = [export_recording(rec, fmt, tmp_path / f"out.{ext}")
               for fmt, ext in (("dlc-h5", "h5"), ("movement", "nc"))]
    written.append(export_nwb(_with_processed(rec), tmp_path / "out.nwb"))
    written.append(write_predictions(tmp_path / "p.h5", SCORER, DLC_PARTS, _poses(), csv=True))
    written.append(tmp_path / "p.csv")
    video = _small_video(tmp_path / "v.avi", N)
    written.append(render_labeled_video(video, tmp_path / "labeled.mp4", _poses() / 10,
                                        CANONICAL).path)
    assert {p.name: oct(_mode(p)) for p in written} == {p.name: "0o644" for p in written}
    os.umask(0o002)
    assert _mode(export_recording(rec, "dlc-h5", tmp_path / "group.h5")) == 0o664


def test_models_add_from_a_dlc2nwb_file_on_the_command_line(tmp_path, capsys):
    import shutil

    from dlc_assets.cli.main import main
    from dlc_tracking.registry.registry_file import load_registry

    registry = tmp_path / "registry.yaml"
    shutil.copy(Path(__file__).resolve().parents[1] / "registry" / "registry.yaml", registry)
    nwb = dlc2nwb_file(tmp_path / "m3v1mp4DLC_resnet50_openfieldAug20shuffle1_30000_ind1.nwb",
                       DLC_PARTS, _poses(40), np.arange(40) / FPS)
    main(["--registry", str(registry), "models", "add", "--name", "openfield_nwb",
          "--from-outputs", str(nwb), *[f"--map={k}={v}" for k, v in TO_CANONICAL.items()]])
    model = load_registry(registry).models["openfield_nwb"]
    assert model.scorer == "DLC_resnet50_openfieldAug20shuffle1"
    assert model.canonical_body_parts == CANONICAL
