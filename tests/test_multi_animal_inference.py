"""Multi-animal inference by the platform: a two-animal session dropped without DeepLabCut
outputs goes through the real process_recording job on a real Dagster instance, whose
dlc_predictions step runs the tiny maDLC model with DeepLabCut's own multi-animal path
(analyze_videos with auto_track) into the work area; multi_animal_tracking reads those
tracks. A single-animal recording with outputs goes the way it always went.

The tiny multi-animal model is built once per machine (a few minutes on CPU) and cached
(dlc_tracking.synthetic.tiny_ma_model); the job itself takes ~1 min on 2 cores.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.pipeline_helpers import failure_messages, run_recording

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

MAX_MEDIAN_ERROR_PX = 6.0
"""Median keypoint error of the inferred tracks, identities matched to the ground truth
frame by frame. Measured 2.7 px on this session's video (2.6 px in the model's build
verification on another video); loose on purpose (a tiny model trained from random
weights in minutes), yet far below the animals' body length (~25 px). Matching one
permutation for the whole recording gives a median of 5.1 px here: the tiny model loses
one animal for ~10 frames at each close encounter and the tracks come back exchanged (a
real identity swap, as maDLC makes them), so that figure depends on where the swaps fall
and is only printed."""
MIN_FRACTION_TRACKED = 0.6
"""Share of keypoints with coordinates in the inferred tracks (measured 0.81; 0.70 in the
build verification): the frames of the close encounters lack one animal."""


@pytest.fixture(scope="session")
def tiny_ma_config() -> Path:
    from dlc_tracking.synthetic.tiny_ma_model import build_tiny_ma_model

    return build_tiny_ma_model()


@pytest.fixture(scope="module")
def platform(tmp_path_factory, tiny_ma_config):
    """A registry with the tiny maDLC model (registered from its project, as `models add`
    does), a two-animal session with a video and session.yaml but no dlc_social/, and a
    single-animal session with DeepLabCut outputs of an ingest-only model."""
    from dlc_tracking.io.dlc_files import output_names
    from dlc_tracking.io.madlc_files import find_madlc_outputs
    from dlc_tracking.registry.editing import add_ingest_only_model, add_model
    from dlc_tracking.synthetic.multi_animal import (
        make_multi_animal_session,
        simulate_multi_animal,
    )
    from dlc_tracking.synthetic.openfield import BODY_PARTS
    from resources import DataRoot, DLCInference, WarehouseResource
    from tests.pipeline_helpers import session_with_manual_outputs

    base = tmp_path_factory.mktemp("ma_inference")
    data, registry = base / "data", base / "registry.yaml"
    shutil.copy(ROOT / "registry" / "registry.yaml", registry)
    entry = add_model(registry, "tiny_social", tiny_ma_config,
                      description="tiny maDLC model, two mice", pair_with=["two_ears"])
    truth = simulate_multi_animal(n_frames=90, width=200, height=150, n_animals=2, seed=11)
    folder = make_multi_animal_session(
        data, "M12", "2026-03-02_social", truth, "unused",
        individuals={"mus1": "M12", "mus2": "M13"},
        assignment={"model": "tiny_social", "method": "two_ears"})
    shutil.rmtree(folder / "dlc_social")  # no outputs: the platform infers them
    scorer = "DLC_Resnet50_singleJan1shuffle1_snapshot_100"
    single = session_with_manual_outputs(data, "M14", "2026-03-02_alone", scorer,
                                         list(BODY_PARTS), n_frames=60,
                                         assignment={"model": "single", "method": "two_ears"})
    add_ingest_only_model(registry, "single", outputs_file=single / "dlc_openfield" /
                          output_names("openfield", scorer)[0], pair_with=["two_ears"])
    # a maDLC model known only by its outputs, and a session of it without outputs
    short = simulate_multi_animal(n_frames=30, width=200, height=150, n_animals=2, seed=3)
    orphan = make_multi_animal_session(
        data, "M15", "2026-03-02_social", short, "DLC_Resnet50_socialJan1shuffle1_snapshot_200",
        individuals={"mus1": "M15", "mus2": "M16"},
        assignment={"model": "social_outputs", "method": "two_ears"})
    tracks = find_madlc_outputs(orphan / "dlc_social")["tracks"]
    add_ingest_only_model(registry, "social_outputs", outputs_file=tracks,
                          pair_with=["two_ears"])
    shutil.rmtree(orphan / "dlc_social")
    resources = {
        "data_root": DataRoot(path=str(data), registry_path=str(registry)),
        "warehouse": WarehouseResource(root=str(base / "warehouse")),
        "dlc_inference": DLCInference(device="cpu", batch_size=8, work_dir=str(base / "work"),
                                      progress_interval_s=1.0),
    }
    return {"resources": resources, "truth": truth, "folder": folder, "entry": entry,
            "single": single, "orphan": orphan, "work": base / "work"}


def test_registered_tiny_model_is_multi_animal(platform):
    entry = platform["entry"]
    assert not entry.ingest_only
    assert entry.multi_animal["individuals"] == ["mus1", "mus2"]
    assert entry.multi_animal["uniquebodyparts"] == ["corner_tl", "corner_br"]


def test_session_without_outputs_is_inferred_and_tracked(platform, instance):
    from dlc_tracking.sessions.layout import recording_id
    from dlc_tracking.synthetic.tiny_ma_model import matched_error

    resources, truth, folder = platform["resources"], platform["truth"], platform["folder"]
    rid = recording_id("M12", "2026-03-02_social", "social")
    result = run_recording(instance, resources, rid)
    assert result.success, failure_messages(result)

    # DeepLabCut's outputs went to the work area, nothing beside the user's files
    out_dir = resources["dlc_inference"].output_dir(rid, "tiny_social")
    assert out_dir.is_relative_to(platform["work"])
    names = sorted(p.name for p in out_dir.iterdir())
    assert any(n.endswith("_el.h5") for n in names), names
    assert any(n.endswith("_full.pickle") for n in names), names
    assert sorted(p.name for p in folder.iterdir()) == ["session.yaml", "social.mp4"]
    mat = {e.asset_key.path[-1]: e.materialization.metadata
           for e in result.get_asset_materialization_events()}
    assert mat["dlc_predictions"]["source"].value == "inference"
    assert mat["multi_animal_tracking"]["source"].value == "inference"

    store = resources["warehouse"].get()
    source = store.read_partition("multi_animal_sources", rid).iloc[0]
    assert source["source"] == "inference"
    assert source["tracker"] == "ellipse"
    assert json.loads(source["individuals"]) == ["mus1", "mus2"]
    assert all(str(out_dir) in f for f in json.loads(source["files"]))

    # per-individual tracks, each with its subject, every frame
    tracking = store.read_partition("individual_tracking", rid)
    assert sorted(tracking["subject"].unique()) == ["M12", "M13"]
    assert len(tracking) == 2 * truth.n_frames
    preds = store.read_partition("individual_predictions", rid)
    poses = np.stack([
        preds[preds["individual"] == ind].pivot(index="frame", columns="body_part",
                                                values=["x_px", "y_px"])
        .reindex(range(truth.n_frames))
        .to_numpy().reshape(truth.n_frames, 2, -1).transpose(0, 2, 1)
        for ind in ("mus1", "mus2")], axis=1)
    order = sorted(set(preds["body_part"].astype(str)))
    gt = truth.keypoints[:, :, [truth.body_parts.index(b) for b in order]]
    err = matched_error(poses, gt)
    print(f"inferred tracks vs ground truth: {err}")
    assert err["fraction_detected"] >= MIN_FRACTION_TRACKED, err
    assert err["per_frame_median_error_px"] <= MAX_MEDIAN_ERROR_PX, err
    assert len(store.read_partition("social_summary", rid)) == 1
    assert len(store.read_partition("unique_body_parts", rid)) == 2 * truth.n_frames


def test_single_animal_recording_is_untouched(platform, instance):
    from tests.pipeline_helpers import rid_of

    resources = platform["resources"]
    rid = rid_of(platform["single"])
    result = run_recording(instance, resources, rid)
    assert result.success, failure_messages(result)
    store = resources["warehouse"].get()
    sources = store.read_partition("prediction_sources", rid)
    assert sources["source"].tolist() == ["manual"]
    assert len(store.read_partition("predictions", rid)) == 60 * 4
    assert store.partition_path("multi_animal_sources", rid) is None
    assert not (platform["work"] / "outputs" / rid).exists()
    mat = {e.asset_key.path[-1]: e.materialization.metadata
           for e in result.get_asset_materialization_events()}
    assert mat["multi_animal_tracking"]["skipped"].value is True


def test_ingest_only_model_without_outputs_fails_clearly(platform, instance):
    """Nothing to infer with (no weights) and nothing to read: the step fails saying what
    to do, and no multi-animal table is written."""
    from dlc_tracking.sessions.layout import recording_id

    resources = platform["resources"]
    rid = recording_id("M15", "2026-03-02_social", "social")
    result = run_recording(instance, resources, rid)
    assert not result.success
    message = failure_messages(result)
    assert "ingest-only" in message and "dlc_<video stem>/" in message, message
    store = resources["warehouse"].get()
    assert store.partition_path("individual_tracking", rid) is None
    assert store.partition_path("multi_animal_sources", rid) is None
