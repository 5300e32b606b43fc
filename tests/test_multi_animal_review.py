"""Multi-animal recordings in model review and the social parameter sets: identity-swap
flags in ``frame_quality`` (per frame and individual), ``models review`` picking a swap
frame with its reason, single-animal ``frame_quality`` files unchanged, and the
``social:`` section of a processing parameter set (no DeepLabCut import, no Dagster run;
the end-to-end path is in test_multi_animal_pipeline)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from dlc_tracking.errors import RegistryError
from dlc_tracking.model_review import frame_quality as fq
from dlc_tracking.model_review import selection
from dlc_tracking.model_review.multi_animal import (
    identity_flags,
    recording_multi_animal_quality,
)
from dlc_tracking.social.identity import check_identities
from dlc_tracking.social.measures import SocialParams, social_frames, social_summary
from dlc_tracking.social.recording import identity_event_rows
from dlc_tracking.synthetic.multi_animal import render_multi_video, simulate_multi_animal
from dlc_tracking.warehouse import Warehouse
from tests.review_helpers import recordings_row

ROOT = Path(__file__).resolve().parents[1]
MODEL = "social"
SCORER = "DLC_Resnet50_socialJan1shuffle1_snapshot_200"
RID = "M12__social__social"
SWAP = 157          # first frame with mus2's and mus3's labels exchanged
UNSURE = (20, 80, 230, 280)  # mus1's nose below the cutoff


@pytest.fixture(scope="module")
def truth():
    return simulate_multi_animal(n_frames=300, n_animals=3, seed=2)


@pytest.fixture(scope="module")
def poses(truth):
    p = truth.poses()
    p[SWAP:, [1, 2]] = p[SWAP:, [2, 1]]
    p[list(UNSURE), 0, 0, 2] = 0.2
    return p


@pytest.fixture(scope="module")
def archive(tmp_path_factory, truth, poses):
    """A warehouse with the multi-animal recording's rows, as multi_animal_tracking writes
    them, and its frame_quality rows, as the frame_quality asset writes them."""
    from dlc_tracking.io.madlc_files import MultiAnimalPredictions

    base = tmp_path_factory.mktemp("ma_review")
    store = Warehouse(base / "wh")
    video = render_multi_video(truth, base / "social.mp4")  # frames to extract
    subjects = {"mus1": "M12", "mus2": "M13", "mus3": None}
    pred = MultiAnimalPredictions(SCORER, truth.individuals, truth.body_parts, poses,
                                  [], np.zeros((truth.n_frames, 0, 3)))
    long = pred.to_long(RID, MODEL, truth.time_s)
    long.insert(3, "subject", long["individual"].astype(str).map(subjects))
    store.write_partition("individual_predictions", RID, long)
    report = check_identities(poses, truth.individuals)
    store.write_partition("identity_events", RID, identity_event_rows(report, RID, subjects))
    store.write_partition("recordings", RID, recordings_row(
        RID, video, truth.n_frames, MODEL, truth.width, truth.height, method="two_ears"))
    params = fq.FrameQualityParams(likelihood_cutoff=0.6)
    rows = recording_multi_animal_quality(store, RID, params, (truth.width, truth.height))
    store.write_partition("frame_quality", RID, rows)
    return {"store": store, "rows": rows, "report": report, "base": base}


def test_injected_swap_is_flagged_at_its_frame_for_both_individuals(archive, truth):
    rows = archive["rows"]
    swapped = rows[rows["identity_swap"]]
    assert swapped[["frame", "individual"]].values.tolist() == [[SWAP, "mus2"],
                                                                [SWAP, "mus3"]]
    # every row names its individual; the other flags are the single-animal ones
    assert set(rows["individual"]) <= set(truth.individuals)
    unsure = rows[(rows["individual"] == "mus1") & (rows["low_likelihood_parts"] > 0)]
    assert unsure["frame"].tolist() == list(UNSURE)
    assert not rows["two_tracks_one_animal"].any()
    # a swapped track scores above an unsure body part: all of it is on the wrong animal
    assert swapped["score"].min() > unsure["score"].max() + 0.9
    # the flags from identity_events are IdentityReport.frame_flags'
    flags = identity_flags(archive["store"].read_partition("identity_events", RID),
                           truth.individuals, truth.n_frames)
    direct = archive["report"].frame_flags(truth.individuals, truth.n_frames)
    f, k = np.nonzero(flags["identity_swap"])
    expected = direct[direct["identity_swap"]]
    assert sorted(zip(f.tolist(), [truth.individuals[i] for i in k], strict=True)) == sorted(
        zip(expected["frame"], expected["individual"], strict=True))
    # stored with the optional columns, read back as written
    back = archive["store"].query("SELECT frame, individual FROM frame_quality WHERE "
                                  "identity_swap ORDER BY individual")
    assert back.values.tolist() == [[SWAP, "mus2"], [SWAP, "mus3"]]


def test_review_picks_the_swap_frame_with_its_reason(archive):
    sel = selection.select_frames(archive["store"], MODEL, 3)
    frames = sel.frames
    assert len(frames) == 3 and frames["frame"].is_unique
    swap = frames[frames["frame"] == SWAP]
    assert len(swap) == 1, frames
    assert swap["reason"].iloc[0] == "identity_swap"
    assert swap["individuals"].iloc[0] == "mus2,mus3"
    others = frames[frames["frame"] != SWAP]
    assert set(others["frame"]) <= set(UNSURE)
    assert set(others["reason"]) == {"low_likelihood"}
    assert set(others["individuals"]) == {"mus1"}
    assert np.diff(frames["frame"]).min() >= 300 / 3 / 2  # spread as any selection


@pytest.fixture(scope="module")
def registry(archive, truth):
    """A registry with the maDLC model registered from its outputs (a tracks .h5 written
    by pandas' own writer), as `models add --from-outputs` does."""
    import pandas as pd

    from dlc_tracking.registry.editing import add_ingest_only_model

    base = archive["base"]
    path = base / "registry.yaml"
    shutil.copy(ROOT / "registry" / "registry.yaml", path)
    columns = pd.MultiIndex.from_product(
        [[SCORER], truth.individuals, truth.body_parts, ["x", "y", "likelihood"]],
        names=["scorer", "individuals", "bodyparts", "coords"])
    tracks = base / f"social{SCORER}_el.h5"
    pd.DataFrame(truth.poses()[:5].reshape(5, -1), columns=columns).to_hdf(
        tracks, key="tracks", format="table", mode="w")
    add_ingest_only_model(path, MODEL, outputs_file=tracks, pair_with=["two_ears"])
    return path


def test_models_review_dry_run_lists_the_swap(archive, registry, capsys):
    """`dlc-platform models review NAME --dry-run` as a user types it."""
    from dlc_assets.cli.main import main

    main(["--registry", str(registry), "models", "review", MODEL, "--n", "3", "--dry-run",
          "--warehouse", str(archive["store"].root)])
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if f"frame {SWAP:8d}" in x)
    assert "identity_swap (mus2,mus3)" in line


@pytest.mark.slow  # DeepLabCut's add_new_videos imports DeepLabCut (~20-80 s on 2 busy cores)
def test_review_writes_the_swap_frame_into_a_multi_animal_project(archive, registry, truth,
                                                                   poses, tmp_path):
    """The picks go into a maDLC project as DeepLabCut's extract_outlier_frames writes
    them: the frame image and machine labels with the individuals level (the tracks as
    predicted, swap included, for the labeller to correct)."""
    import pandas as pd

    from dlc_tracking.model_review.extraction import MACHINE_KEY
    from dlc_tracking.model_review.flows import review_model_frames
    from dlc_tracking.registry.registry_file import load_registry

    project = tmp_path / "social-lab-2026-03-01"
    (project / "videos").mkdir(parents=True)
    config = project / "config.yaml"
    config.write_text(yaml.safe_dump({
        "Task": "social", "scorer": "lab", "date": "Mar1", "multianimalproject": True,
        "identity": False, "project_path": str(project), "engine": "pytorch",
        "video_sets": {}, "individuals": list(truth.individuals), "uniquebodyparts": [],
        "multianimalbodyparts": list(truth.body_parts), "bodyparts": "MULTI!",
        "iteration": 0, "default_net_type": "dlcrnet_ms5", "TrainingFraction": [0.95],
        "skeleton": [], "numframes2pick": 20, "pcutoff": 0.6}, sort_keys=False))
    review = review_model_frames(archive["store"], load_registry(registry), MODEL, 3,
                                 out=config)
    images = review.extraction.images
    assert sorted(images["frame"]) == sorted(review.selection.frames["frame"])
    folder = project / "labeled-data" / RID
    assert (folder / f"img{SWAP}.png").is_file()
    labels = pd.read_hdf(folder / "machinelabels-iter0.h5", MACHINE_KEY)
    assert list(labels.columns.names) == ["scorer", "individuals", "bodyparts", "coords"]
    assert list(labels.columns.get_level_values("individuals").unique()) == truth.individuals
    assert set(labels.columns.get_level_values("scorer")) == {SCORER}
    row = labels.loc[("labeled-data", RID, f"img{SWAP}.png")]
    for k, ind in enumerate(truth.individuals):
        got = row[SCORER][ind].unstack()[["x", "y", "likelihood"]].loc[truth.body_parts]
        np.testing.assert_allclose(got.to_numpy(float), poses[SWAP, k])
    cfg = yaml.safe_load(config.read_text())
    assert any(RID in str(v) for v in cfg["video_sets"])


def test_single_animal_frame_quality_files_have_no_multi_animal_columns(tmp_path):
    import pyarrow.parquet as pq

    from tests.test_model_review import steady_poses

    store = Warehouse(tmp_path / "wh")
    poses = steady_poses(60)
    poses[7, 0, 2] = 0.1
    rows = fq.frame_quality("r1", "m", poses, np.arange(60) / 30, (200, 150),
                            fq.FrameQualityParams())
    assert "individual" not in rows and "identity_swap" not in rows
    store.write_partition("frame_quality", "r1", rows)
    names = pq.read_schema(store.partition_path("frame_quality", "r1")).names
    assert not {"individual", "identity_swap", "two_tracks_one_animal"} & set(names)
    back = store.query("SELECT frame, individual, identity_swap FROM frame_quality")
    assert back["frame"].tolist() == [7] and back["individual"].isna().all()


# ----------------------------------------------------------------------------- social sets


def _registry_with(tmp_path: Path, processing: dict) -> Path:
    path = tmp_path / "registry.yaml"
    shutil.copy(ROOT / "registry" / "registry.yaml", path)
    raw = yaml.safe_load(path.read_text())
    raw["processing"] = {"default": {}, **processing}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_social_parameters_from_a_processing_set(tmp_path, truth, capsys):
    from dlc_assets.cli.main import main
    from dlc_tracking.registry.registry_file import load_registry
    from dlc_tracking.social.individuals import process_individuals
    from dlc_tracking.tracking.methods import BUILTIN_METHODS
    from dlc_tracking.tracking.params import ProcessingParams

    path = _registry_with(tmp_path, {
        "close": {"max_gap_s": 0.5, "social": {"proximity_cm": 5, "contact_cm": 1.5}},
        "plain": {"max_gap_s": 0.5}})
    registry = load_registry(path)
    main(["--registry", str(path), "processing", "show", "close"])
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["max_gap_s"] == 0.5 and shown["social"]["proximity_cm"] == 5.0
    assert shown["social"]["param_hash"] == registry.social_params("close").param_hash
    close = registry.social_params("close")
    assert (close.name, close.proximity_cm, close.contact_cm) == ("close", 5.0, 1.5)
    assert close.facing_deg == SocialParams().facing_deg  # the rest at the defaults
    # the processing parameters are those of the set without its social section
    assert registry.processing_params("close") == ProcessingParams(name="close",
                                                                   max_gap_s=0.5)
    # a set without a social section, and the default set: the defaults, unchanged
    assert registry.social_params("plain").param_hash == SocialParams().param_hash
    assert registry.social_params("default") == SocialParams()
    with pytest.raises(RegistryError, match="no processing parameter set named 'nope'"):
        registry.social_params("nope")
    # the set changes the proximity time as expected
    tracks = process_individuals(BUILTIN_METHODS["two_ears"], truth.poses(),
                                 truth.individuals, truth.body_parts, truth.time_s, "above",
                                 (truth.width, truth.height), None, pixels_per_cm=4.0)
    times = {}
    for params in (SocialParams(), close):
        social = social_frames(tracks, params, recording_id="r")
        summary = social_summary(tracks, social, params).iloc[0]
        pair = social[(social["individual_a"] == "mus1") & (social["individual_b"] == "mus2")]
        assert summary["time_in_proximity_s"] == pytest.approx(
            (pair["distance_cm"] < params.proximity_cm).sum() / truth.fps)
        assert (social["params_name"] == params.name).all()
        assert summary["params_hash"] == params.param_hash
        times[params.name] = summary["time_in_proximity_s"]
    assert times["close"] < times["default"]


@pytest.mark.parametrize(("social", "match"), [
    ({"proximty_cm": 5}, r"processing\.close\.social: .*unknown keys \['proximty_cm'\] "
                         r"\(did you mean 'proximty_cm' -> 'proximity_cm'\?\)"),
    ({"proximity_cm": -2}, r"processing\.close\.social: social parameter proximity_cm=-2"),
    ({"facing_deg": 200}, r"processing\.close\.social: .*facing_deg=200.0 must be at most"),
    ({"nose_part": ""}, r"processing\.close\.social: social parameter nose_part=''"),
    ({"name": "x"}, r"processing\.close\.social\.name"),
    ([5], r"processing\.close\.social must be a mapping"),
])
def test_bad_social_section_names_the_file_and_key(tmp_path, social, match):
    from dlc_tracking.registry.registry_file import load_registry

    path = _registry_with(tmp_path, {"close": {"social": social}})
    with pytest.raises(RegistryError, match=match) as exc:
        load_registry(path)
    assert str(path) in str(exc.value)
