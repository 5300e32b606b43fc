"""A two-animal session dropped into a data folder, processed by the real process_recording
job on a real Dagster instance: per-subject tables and the social table, no user code.
The single-animal assets skip it with the reason, the multi-animal asset skips a
single-animal recording."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.pipeline_helpers import failure_messages, run_recording

ROOT = Path(__file__).resolve().parents[1]
SCORER = "DLC_Resnet50_socialJan1shuffle1_snapshot_200"
SOCIAL = {"proximity_cm": 6.0, "contact_cm": 1.5}
pytestmark = pytest.mark.slow  # the session folder (video + outputs) takes ~1-2 min to write


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """Data root with one two-animal session, a registry with the ingest-only maDLC model
    registered from its outputs (as `models add --from-outputs` does), a warehouse."""
    import yaml

    from dlc_tracking.io.madlc_files import find_madlc_outputs
    from dlc_tracking.registry.editing import add_ingest_only_model
    from dlc_tracking.synthetic.multi_animal import (
        make_multi_animal_session,
        simulate_multi_animal,
    )
    from resources import DataRoot, DLCInference, WarehouseResource

    base = tmp_path_factory.mktemp("ma_pipeline")
    data, registry = base / "data", base / "registry.yaml"
    shutil.copy(ROOT / "registry" / "registry.yaml", registry)
    # the open field's parameter set has a social: section (docs/multi-animal.md, 6)
    raw = yaml.safe_load(registry.read_text())
    raw["processing"] = {"default": {}, "social_close": {"social": SOCIAL}}
    raw["defaults"] = {"openfield": {"processing": "social_close"}}
    registry.write_text(yaml.safe_dump(raw, sort_keys=False))
    truth = simulate_multi_animal(n_frames=90, n_animals=2, seed=4)
    folder = make_multi_animal_session(
        data, "M12", "2026-03-01_social", truth, SCORER,
        individuals={"mus1": "M12", "mus2": "M13"},
        assignment={"model": "social", "method": "two_ears"})
    # the session also has two-photon imaging (ScanImage tifs at 20 Hz, on the video's
    # clock from 50 ms): tracking_on_imaging is per individual
    from datetime import datetime

    from dlc_tracking.synthetic.scanimage_tifs import write_scanimage_tifs

    tifs = write_scanimage_tifs(folder, "imaging", 0.05 + np.arange(50) / 20.0,
                                datetime(2026, 3, 1, 10, 0, 0), frame_rate_hz=20.0)
    meta = yaml.safe_load((folder / "session.yaml").read_text())
    meta["imaging"] = {"scanimage": [p.name for p in tifs], "timezone": "+01:00"}
    (folder / "session.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    tracks = find_madlc_outputs(folder / "dlc_social")["tracks"]
    entry = add_ingest_only_model(registry, "social", outputs_file=tracks,
                                  description="maDLC, two mice", pair_with=["two_ears"])
    resources = {
        "data_root": DataRoot(path=str(data), registry_path=str(registry)),
        "warehouse": WarehouseResource(root=str(base / "warehouse")),
        "dlc_inference": DLCInference(device="cpu", batch_size=8, work_dir=str(base / "work")),
    }
    return {"resources": resources, "truth": truth, "folder": folder, "entry": entry,
            "registry": registry, "data": data}


def test_models_add_from_outputs_registers_a_multi_animal_model(platform):
    entry = platform["entry"]
    assert entry.ingest_only
    assert entry.multi_animal["individuals"] == ["mus1", "mus2"]
    assert entry.scorer == SCORER


def test_two_animal_session_goes_to_subject_tables(platform, instance):
    from dlc_tracking.sessions.layout import recording_id

    resources, truth = platform["resources"], platform["truth"]
    rid = recording_id("M12", "2026-03-01_social", "social")
    result = run_recording(instance, resources, rid)
    assert result.success, failure_messages(result)
    store = resources["warehouse"].get()
    tracking = store.read_partition("individual_tracking", rid)
    assert sorted(tracking["subject"].unique()) == ["M12", "M13"]
    assert len(tracking) == 2 * truth.n_frames
    social = store.read_partition("social", rid)
    assert social[["subject_a", "subject_b"]].drop_duplicates().values.tolist() == [
        ["M12", "M13"]]
    assert len(store.read_partition("social_summary", rid)) == 1
    _check_social_params(store, rid, truth)
    # the single-animal assets skipped it, with the reason; nothing single-animal written
    skipped = store.read_partition("skipped_recordings", rid)
    assert "multi-animal recording" in skipped["reason"].iloc[0]
    assert store.partition_path("predictions", rid) is None
    assert store.partition_path("processed_tracking", rid) is None
    # one query: all of M12's frames, whether filmed alone or with cage mates
    rows = store.query("SELECT count(*) AS n FROM subject_tracking WHERE subject = 'M12'")
    assert rows["n"].iloc[0] == truth.n_frames
    # the identity checks ran and the metadata has the pictures
    checks = {e.asset_check_evaluation_data.check_name
              for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert {"identity_swaps", "tracks_vanish", "two_tracks_one_animal",
            "all_individuals_present"} <= checks
    mat = [e for e in result.get_asset_materialization_events()
           if e.asset_key.path[-1] == "multi_animal_tracking"][0]
    metadata = mat.materialization.metadata
    assert "trajectories" in metadata and "inter_animal_distance" in metadata
    assert metadata["subjects"].value == {"mus1": "M12", "mus2": "M13"}
    # frame_quality: per frame and individual, with the identity flags
    _check_frame_quality(result, store, rid)
    _check_imaging(store, rid)
    # the job wrote its NWB file (one PoseEstimation per individual, both subjects)
    _check_nwb(result, store, rid, truth.n_frames)
    # on demand: the labeled_videos asset draws the multi-animal labeled video
    _check_labeled_video(instance, resources, store, rid, truth.n_frames)
    # `dlc-platform status`: processed (not "skipped"), with the identity figures
    from dlc_assets.status import recording_status

    (row,) = recording_status(str(store.root), rid, instance)
    assert row["status"].startswith("processed"), row
    assert "multi-animal: 2 individuals" in row["detail"], row


def _check_imaging(store, rid: str) -> None:
    """tracking_on_imaging: one set of rows per individual, with its subject; each
    individual's position at the imaging times is its own processed track's."""
    rows = store.read_partition("tracking_on_imaging", rid)
    assert rows.groupby(["individual", "subject"]).size().to_dict() == {
        ("mus1", "M12"): 50, ("mus2", "M13"): 50}
    tracking = store.read_partition("individual_tracking", rid)
    for individual, got in rows.groupby("individual"):
        own = tracking[tracking.individual == individual].sort_values("frame")
        ok = got[got.valid]
        assert len(ok) >= 40
        np.testing.assert_allclose(ok.x_cm, np.interp(ok.time_s, own.time_s, own.x_cm),
                                   atol=1e-6)


def _check_social_params(store, rid: str, truth) -> None:
    """The social rows were made with the set's social: section, and say so."""
    from dlc_tracking.social.measures import SocialParams

    params = SocialParams(name="social_close", **SOCIAL)
    social = store.read_partition("social", rid)
    summary = store.read_partition("social_summary", rid).iloc[0]
    for table in (social, summary.to_frame().T):
        assert set(table["params_name"].astype(str)) == {"social_close"}
        assert set(table["params_hash"].astype(str)) == {params.param_hash}
    assert params.param_hash != SocialParams().param_hash
    assert summary["time_in_proximity_s"] == pytest.approx(
        (social["distance_cm"] < 6.0).sum() / truth.fps)


def _check_frame_quality(result, store, rid: str) -> None:
    """The frame_quality asset flagged the multi-animal recording per individual."""
    mat = [e for e in result.get_asset_materialization_events()
           if e.asset_key.path[-1] == "frame_quality"][0]
    assert "skipped" not in mat.materialization.metadata
    path = store.partition_path("frame_quality", rid)
    assert path is not None
    rows = store.read_partition("frame_quality", rid)
    events = store.read_partition("identity_events", rid)
    swaps = events.loc[events["event"] == "identity_swap", "frame"].tolist()
    if len(rows):
        assert set(rows["individual"].astype(str)) <= {"mus1", "mus2"}
        assert sorted(set(rows.loc[rows["identity_swap"].astype(bool), "frame"])) == \
            sorted(set(swaps))
    else:
        assert not swaps


def _check_nwb(result, store, rid: str, n_frames: int) -> None:
    """nwb_files ran after multi_animal_tracking and its file reads back with pynwb."""
    import ndx_multisubjects
    import ndx_pose
    from pynwb import NWBHDF5IO

    from dlc_assets.assets.exports import nwb_path

    mat = [e for e in result.get_asset_materialization_events()
           if e.asset_key.path[-1] == "nwb_files"][0]
    metadata = mat.materialization.metadata
    assert "skipped" not in metadata
    assert metadata["individuals"].value == {"mus1": "M12", "mus2": "M13"}
    path = nwb_path(store.root, rid)
    assert path.is_file() and metadata["path"].value == str(path)
    with NWBHDF5IO(str(path), "r", load_namespaces=True) as io:
        nwb = io.read()
        assert isinstance(nwb, ndx_multisubjects.NdxMultiSubjectsNWBFile)
        assert list(nwb.subjects_table.to_dataframe()["subject_id"]) == ["M12", "M13"]
        behavior = nwb.processing["behavior"]
        for ind, subject in (("mus1", "M12"), ("mus2", "M13")):
            pose = behavior[f"subject_{subject}"].nwb_data_interfaces[f"PoseEstimation_{ind}"]
            assert isinstance(pose, ndx_pose.PoseEstimation)
            series = next(iter(pose.pose_estimation_series.values()))
            assert series.data.shape == (n_frames, 2)


def _check_labeled_video(instance, resources, store, rid: str, n_frames: int) -> None:
    import cv2
    import dagster as dg

    from dlc_assets.assets.exports import labeled_video_path
    from dlc_assets.definitions import build_definitions

    result = dg.materialize(list(build_definitions(resources).assets),
                            selection=["labeled_videos"], partition_key=rid,
                            instance=instance, resources=resources)
    (mat,) = result.get_asset_materialization_events()
    assert mat.materialization.metadata["frames"].value == n_frames
    cap = cv2.VideoCapture(str(labeled_video_path(store.root, rid)))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == n_frames
    cap.release()


def test_models_show_prints_the_multi_animal_layout(platform, capsys):
    from argparse import Namespace

    from dlc_assets.cli.registry import cmd_models_show

    cmd_models_show(Namespace(registry=str(platform["registry"]), name="social"))
    out = capsys.readouterr().out
    assert "multi_animal:" in out and "- mus1" in out


def test_demo_two_animal_session(tmp_path):
    """The demo's two-animal session: outputs, session.yaml and its ingest-only model."""
    from dlc_assets.cli.demo import SOCIAL_MODEL, prepare_social_session
    from dlc_tracking.registry.registry_file import load_registry
    from dlc_tracking.sessions.layout import load_session_metadata

    registry = tmp_path / "registry.yaml"
    shutil.copy(ROOT / "registry" / "registry.yaml", registry)
    folder = prepare_social_session(tmp_path / "data", registry)
    assert load_session_metadata(folder / "session.yaml").individuals == {
        "mus1": "M12", "mus2": "M13"}
    model = load_registry(registry).model(SOCIAL_MODEL)
    assert model.multi_animal["individuals"] == ["mus1", "mus2"]
    assert prepare_social_session(tmp_path / "data", registry) is None  # idempotent
    shutil.copy(ROOT / "registry" / "registry.yaml", registry)  # a new demo registry
    assert prepare_social_session(tmp_path / "data", registry) is None
    assert SOCIAL_MODEL in load_registry(registry).models
