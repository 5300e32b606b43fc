"""Model review without DeepLabCut inference: frame flags, frame selection across
recordings, agreement figures, registry promotions and the promotion's refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from dlc_tracking.errors import RegistryError
from dlc_tracking.model_review import agreement, selection
from dlc_tracking.model_review import frame_quality as fq
from dlc_tracking.model_review.errors import ReviewError
from dlc_tracking.model_review.promotion import apply_promotion, plan_promotion
from dlc_tracking.model_review.version_predictions import (
    keep_current_predictions,
    recording_frame_quality,
    version_key,
    version_predictions,
)
from dlc_tracking.warehouse import Warehouse
from tests.review_helpers import (
    PARTS,
    predictions_long,
    recordings_row,
    write_evaluation,
)

ROOT = Path(__file__).resolve().parent.parent


def steady_poses(n: int, seed: int = 0, lik: float = 0.95) -> np.ndarray:
    """A slowly moving animal: 4 parts, small steps, confident."""
    rng = np.random.default_rng(seed)
    centre = 100 + np.cumsum(rng.normal(0, 0.5, (n, 2)), axis=0)
    offsets = np.array([[10, 0], [4, -4], [4, 4], [-10, 0]], float)
    poses = np.empty((n, 4, 3))
    poses[..., :2] = centre[:, None, :] + offsets[None]
    poses[..., 2] = lik
    return poses


# ----------------------------------------------------------------------------- flags


def test_frame_flags_low_likelihood_jumps_and_disagreement():
    poses = steady_poses(100)
    poses[10:15, 0, 2] = 0.1           # nose unsure for 5 frames
    poses[40, 3, :2] += 80             # tail base jumps away and back (2 steps)
    poses[60, 1, :2] = np.nan          # an ear missing
    params = fq.FrameQualityParams(likelihood_cutoff=0.6, jump_px=30, disagreement_px=5)
    rows = fq.frame_quality("r1", "m", poses, np.arange(100) / 30, (200, 150), params)
    assert list(rows["frame"]) == [10, 11, 12, 13, 14, 40, 41, 60]
    assert (rows.set_index("frame").loc[40:41, "jump_parts"] == 1).all()
    assert rows.set_index("frame").loc[60, "low_likelihood_parts"] == 1
    assert rows["disagreement_parts"].isna().all() and rows["compared_model"].isna().all()
    other = poses.copy()
    other[70, 2, :2] += 12             # the other version puts an ear 12 px away
    rows2 = fq.frame_quality("r1", "m", poses, np.arange(100) / 30, (200, 150), params,
                             other, "m2")
    assert 70 in set(rows2["frame"])
    r70 = rows2.set_index("frame").loc[70]
    assert r70["disagreement_parts"] == 1 and r70["max_disagreement_px"] == pytest.approx(
        np.hypot(12, 12))
    assert (rows2["compared_model"] == "m2").all()
    # the unsure frames score above a frame with one disagreeing part
    assert rows2.set_index("frame").loc[10, "score"] > 0
    # default jump threshold: 5 % of the frame diagonal
    assert fq.FrameQualityParams().jump_threshold(640, 480) == pytest.approx(40.0)


def test_frame_quality_rows_fit_the_table(tmp_path):
    store = Warehouse(tmp_path / "wh")
    poses = steady_poses(50)
    poses[5, 0, 2] = 0.0
    rows = fq.frame_quality("r1", "m", poses, np.arange(50) / 30, (200, 150),
                            fq.FrameQualityParams())
    store.write_partition("frame_quality", "r1", rows)
    back = store.query("SELECT frame, low_likelihood_parts, disagreement_parts FROM "
                       "frame_quality")
    assert back["frame"].tolist() == [5] and back["disagreement_parts"].isna().all()


# ----------------------------------------------------------------------------- selection


def test_allocate_and_spread():
    assert selection.allocate([10, 1, 1], [100, 100, 100], 12).tolist() == [10, 1, 1]
    assert selection.allocate([10, 1, 1], [3, 100, 100], 12).tolist() == [3, 5, 4]
    assert selection.allocate([0, 0], [1, 1], 5).tolist() == [1, 1]
    frames = np.arange(1000)
    scores = np.where(frames < 100, 5.0, 1.0)  # the first 100 frames are the worst
    picked = selection.spread_in_time(frames, scores, 10, 1000)
    assert len(picked) == 10 and np.diff(picked).min() >= 50  # one per time segment
    # only a burst flagged: made up with frames at least half a segment apart, then any
    picked = selection.spread_in_time(np.arange(20), np.ones(20), 5, 1000)
    assert len(picked) == 5


@pytest.fixture
def archive(tmp_path):
    """Six recordings of model 'm': two bad (many unsure frames), one bad without its
    video, three good; videos are empty files (selection only checks they exist)."""
    store = Warehouse(tmp_path / "wh")
    n = 3000
    params = fq.FrameQualityParams(likelihood_cutoff=0.6)
    for i, kind in enumerate(["bad", "bad", "bad_novideo", "good", "good", "good"]):
        rid = f"mouse{i}__s__openfield"
        video = tmp_path / f"{rid}.mp4"
        if kind != "bad_novideo":
            video.write_bytes(b"")
        poses = steady_poses(n, seed=i)
        rng = np.random.default_rng(i)
        unsure = rng.random(n) < (0.5 if kind.startswith("bad") else 0.01)
        poses[unsure, 0, 2] = 0.2
        store.write_partition("recordings", rid, recordings_row(
            rid, video, n, "m", has_video=kind != "bad_novideo"))
        store.write_partition("frame_quality", rid, fq.frame_quality(
            rid, "m", poses, np.arange(n) / 30, (200, 150), params))
    return store


def test_select_frames_prefers_bad_recordings_spreads_and_skips_missing_videos(archive):
    sel = selection.select_frames(archive, "m", 40)
    frames = sel.frames
    assert len(frames) == 40
    per = frames["recording_id"].value_counts()
    bad = per.reindex(["mouse0__s__openfield", "mouse1__s__openfield"]).fillna(0).sum()
    assert bad >= 30                                      # most from the bad ones
    assert per.max() <= 20                                # max_share 0.5
    assert "mouse2__s__openfield" in sel.skipped and "not in the session" in \
        sel.skipped["mouse2__s__openfield"]
    assert "mouse2__s__openfield" not in set(frames["recording_id"])
    for _, group in frames.groupby("recording_id"):       # spread over time
        if len(group) > 1:
            assert np.diff(np.sort(group["frame"])).min() >= 3000 / len(group) / 2 - 1
    only = selection.select_frames(archive, "m", 5, recordings=["mouse3__s__openfield"])
    assert set(only.frames["recording_id"]) == {"mouse3__s__openfield"}
    with pytest.raises(ReviewError, match="no flagged frames"):
        selection.select_frames(archive, "other_model", 5)


# ----------------------------------------------------------------------------- agreement


def test_agreement_rows():
    old = steady_poses(200)
    new = old.copy()
    new[:, 0, 0] += 3.0                 # nose 3 px right everywhere
    new[:20, 1, :2] += 20.0             # left ear 28 px off on 10 % of frames
    new[:, 2, 2] = 0.1                  # right ear unsure in the new version
    rows = agreement.agreement_rows("r", "a", "b", PARTS, old, new, 10.0, 0.6).set_index(
        "body_part")
    assert rows.loc["nose", "median_distance_px"] == pytest.approx(3.0)
    assert rows.loc["nose", "fraction_above_threshold"] == 0
    assert rows.loc["left_ear", "fraction_above_threshold"] == pytest.approx(0.1)
    assert rows.loc["right_ear", "low_likelihood_change"] == pytest.approx(1.0)
    assert rows.loc["right_ear", "new_distance_travelled_px"] == 0
    assert rows.loc["tail_base", "median_distance_px"] == 0
    assert "all" in rows.index and rows.loc["all", "n_frames"] == 800


# ----------------------------------------------------------------------------- versions


def test_both_versions_stay_queryable(tmp_path):
    store = Warehouse(tmp_path / "wh")
    rid = "mouse0__s__openfield"
    old = steady_poses(60)
    store.write_partition("predictions", rid, predictions_long(rid, "tiny-iter0", old))
    assert keep_current_predictions(store, rid) == "tiny-iter0"
    new = old.copy()
    new[:, 0, :2] += 15
    store.write_partition("predictions", rid, predictions_long(rid, "tiny-iter1", new))
    kept = version_predictions(store, rid, "tiny-iter0")
    assert kept is not None and np.allclose(kept[0], old)
    both = store.query("SELECT model_name, count(*) AS n FROM (SELECT * FROM predictions "
                       "UNION ALL BY NAME SELECT * EXCLUDE (source) FROM model_predictions) "
                       "GROUP BY 1 ORDER BY 1")
    assert both.to_dict("list") == {"model_name": ["tiny-iter0", "tiny-iter1"],
                                    "n": [240, 240]}
    rows = recording_frame_quality(store, rid, fq.FrameQualityParams(), (200, 150))
    assert (rows["compared_model"] == "tiny-iter0").all() and len(rows) == 60
    assert version_key(rid, "m") == f"{rid}__m"


# ----------------------------------------------------------------------------- registry


def _registry_with(tmp_path, registry_path, extra: dict) -> Path:
    path = tmp_path / "registry.yaml"
    raw = yaml.safe_load(Path(registry_path).read_text())
    raw.update(extra)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _second_entry(registry_path, tmp_path) -> Path:
    """The registry plus 'tiny_b', the tiny model's entry under another shuffle number
    (identity differs; registry loading never opens the project)."""
    raw = yaml.safe_load(Path(registry_path).read_text())
    entry = dict(raw["models"]["tiny_openfield"])
    entry["shuffle"] = 2
    entry["derived"] = {**entry["derived"],
                        "scorer": entry["derived"]["scorer"].replace("shuffle1", "shuffle2")}
    raw["models"]["tiny_b"] = entry
    raw["pairings"].append({"model": "tiny_b", "method": "two_ears_loose"})
    path = tmp_path / "registry2.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_registry_promotions_resolve_and_refuse_bad_entries(tmp_path, registry_path):
    from dlc_tracking.registry.registry_file import load_registry

    path = _second_entry(registry_path, tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["promotions"] = {"tiny_openfield": {"model": "tiny_b"}}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    registry = load_registry(path)
    assert registry.resolve_assignment("openfield", None, None) == ("tiny_b",
                                                                    "two_ears_loose")
    assert registry.resolve_assignment("openfield", "tiny_openfield", "two_ears_loose")[0] \
        == "tiny_b"
    raw["promotions"]["tiny_b"] = {"model": "tiny_openfield"}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(RegistryError, match="cycle"):
        load_registry(path)
    raw["promotions"] = {"tiny_openfield": {"model": "nope"}}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(RegistryError, match="unknown model 'nope'"):
        load_registry(path)


def test_promote_refuses_a_model_never_evaluated_and_changes_nothing(tmp_path,
                                                                     registry_path):
    from dlc_tracking.registry.registry_file import load_registry

    path = _second_entry(registry_path, tmp_path)
    before = path.read_bytes()
    store = Warehouse(tmp_path / "wh")
    rid = "mouse0__s__openfield"
    store.write_partition("recordings", rid, recordings_row(rid, None, 60, "tiny_openfield"))
    store.write_partition("predictions", rid, predictions_long(rid, "tiny_openfield",
                                                               steady_poses(60)))
    registry = load_registry(path)
    with pytest.raises(ReviewError, match="'tiny_b' was never evaluated"):
        plan_promotion(store, registry, "tiny_b", "tiny_openfield")
    assert path.read_bytes() == before
    assert store.partitions("model_predictions") == []
    write_evaluation(store, "tiny_b")
    with pytest.raises(ReviewError, match="give --replaces OLD"):
        plan_promotion(store, registry, "tiny_b")          # never compared
    plan = plan_promotion(store, registry, "tiny_b", "tiny_openfield")
    assert plan.recordings == (rid,) and plan.old == "tiny_openfield"
    assert set(plan.pair_with) == {"two_ears", "nose_tail_base", "nose", "centroid_all"}
    after = apply_promotion(path, store, plan)
    assert after.promotions == {"tiny_openfield": "tiny_b"}
    assert after.resolve_assignment("openfield", None, None)[0] == "tiny_b"
    assert store.partitions("model_predictions") == [version_key(rid, "tiny_openfield")]
    with pytest.raises(ReviewError, match="already replaces"):
        plan_promotion(store, after, "tiny_b", "tiny_openfield")


def test_recording_info_names_the_promoted_model(tmp_path, registry_path):
    from dlc_tracking.registry.registry_file import load_registry
    from dlc_tracking.sessions.layout import discover_recordings
    from dlc_tracking.sessions.recording_info import inspect_recording
    from dlc_tracking.synthetic.openfield import make_session

    path = _second_entry(registry_path, tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["promotions"] = {"tiny_openfield": {"model": "tiny_b"}}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    make_session(tmp_path / "data", "mouse0", "s1", n_frames=10)
    rec = discover_recordings(tmp_path / "data").recordings[0]
    info = inspect_recording(rec, load_registry(path))
    assert info.model_name == "tiny_b" and info.row()["promoted_from"] == "tiny_openfield"
    info = inspect_recording(rec, load_registry(registry_path))
    assert info.model_name == "tiny_openfield" and info.row()["promoted_from"] is None


def test_cli_parsers_are_hooked():
    from dlc_assets.cli.main import build_parser

    p = build_parser()
    args = p.parse_args(["models", "review", "m", "--n", "7"])
    assert args.n == 7 and args.func.__name__ == "cmd_review"
    args = p.parse_args(["models", "compare", "a", "b", "--recordings", "r1", "r2"])
    assert args.recordings == ["r1", "r2"] and args.func.__name__ == "cmd_compare"
    args = p.parse_args(["models", "promote", "b", "--replaces", "a"])
    assert args.replaces == "a" and args.func.__name__ == "cmd_promote"




def test_compare_skips_a_recording_without_video_and_refuses_unknown_ones(tmp_path,
                                                                        registry_path):
    """OLD = 'tiny_b' (its files need not be here), NEW = the tiny model (they are)."""
    from dlc_tracking.model_review.comparison import compare_models, sample_recordings
    from dlc_tracking.registry.registry_file import load_registry

    registry = load_registry(_second_entry(registry_path, tmp_path))
    store = Warehouse(tmp_path / "wh")
    rid = "mouse0__s__openfield"
    store.write_partition("recordings", rid, recordings_row(
        rid, tmp_path / "gone.mp4", 60, "tiny_b", has_video=False))
    store.write_partition("predictions", rid, predictions_long(rid, "tiny_b",
                                                               steady_poses(60)))

    def never(*_args):
        raise AssertionError("no inference for a recording without its video")

    with pytest.raises(ReviewError, match="two different versions"):
        compare_models(store, registry, "tiny_b", "tiny_b", never)
    result = compare_models(store, registry, "tiny_b", "tiny_openfield", never)
    assert result.agreement.empty and "not in the session" in result.skipped[rid]
    assert store.partitions("model_agreement") == []
    with pytest.raises(ReviewError, match="no predictions by 'tiny_b'"):
        compare_models(store, registry, "tiny_b", "tiny_openfield", never,
                       recordings=["other__s__openfield"])
    ids = [f"r{i}" for i in range(10)]
    assert sample_recordings(ids, 3) == sample_recordings(ids[::-1], 3)
    assert len(sample_recordings(ids, 3)) == 3 and sample_recordings(ids, None) == ids


# ----------------------------------------------------------------------------- review fixes


def _promotion_archive(tmp_path, registry_path, evaluation: dict | None = None):
    """Registry with tiny_b (NEW) and a warehouse of four recordings: two inferred by
    tiny_openfield (OLD), one of OLD from files on disk, one of another model."""
    from dlc_tracking.registry.registry_file import load_registry
    from tests.review_helpers import prediction_source_row

    path = _second_entry(registry_path, tmp_path)
    if evaluation is not None:
        raw = yaml.safe_load(path.read_text())
        raw["models"]["tiny_b"]["evaluation"] = evaluation
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
    store = Warehouse(tmp_path / "wh")
    for rid, model, source in [("a__s__openfield", "tiny_openfield", "inference"),
                               ("b__s__openfield", "tiny_openfield", "inference"),
                               ("c__s__openfield", "tiny_openfield", "manual"),
                               ("d__s__openfield", "other_model", "inference")]:
        store.write_partition("recordings", rid, recordings_row(rid, None, 60, model))
        store.write_partition("predictions", rid, predictions_long(rid, model,
                                                                   steady_poses(60)))
        store.write_partition("prediction_sources", rid,
                              prediction_source_row(rid, model, source))
    return path, store, load_registry(path)


def test_promote_reruns_only_recordings_old_inferred(tmp_path, registry_path):
    """Recordings whose predictions came from OLD's files on disk are not re-run (NEW
    could not load those files): listed with the reason; another model's are untouched."""
    path, store, registry = _promotion_archive(tmp_path, registry_path)
    write_evaluation(store, "tiny_b")
    plan = plan_promotion(store, registry, "tiny_b", "tiny_openfield")
    assert plan.recordings == ("a__s__openfield", "b__s__openfield")
    assert list(plan.kept) == ["c__s__openfield"]
    assert plan.kept["c__s__openfield"] == (
        "outputs on disk made by tiny_openfield: re-predict with tiny_b (dlc-platform "
        "predict) or leave on tiny_openfield")
    assert plan.summary()["kept_on_old"] == plan.kept
    apply_promotion(path, store, plan)
    assert store.partitions("model_predictions") == [
        version_key("a__s__openfield", "tiny_openfield"),
        version_key("b__s__openfield", "tiny_openfield")]
    entry = yaml.safe_load(path.read_text())["promotions"]["tiny_openfield"]
    assert entry["recordings"] == 2 and entry["kept_on_old"] == 1


def test_promotion_is_not_applied_to_recordings_with_old_outputs_on_disk(tmp_path,
                                                                         registry_path):
    """recording_info keeps a recording whose dlc_<stem>/ holds OLD's outputs on OLD (its
    re-run keeps loading them); once re-predicted with NEW the promotion applies."""
    from dlc_tracking.registry.registry_file import load_registry
    from dlc_tracking.sessions.layout import discover_recordings
    from dlc_tracking.sessions.recording_info import inspect_recording
    from dlc_tracking.synthetic.openfield import make_session

    path = _second_entry(registry_path, tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["promotions"] = {"tiny_openfield": {"model": "tiny_b"}}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    registry = load_registry(path)
    make_session(tmp_path / "data", "mouse0", "s1", n_frames=10)
    rec = discover_recordings(tmp_path / "data").recordings[0]
    outputs = rec.manual_output_dir
    outputs.mkdir()
    old_file = outputs / f"{rec.video_stem}{registry.model('tiny_openfield').scorer}.h5"
    old_file.write_bytes(b"")
    info = inspect_recording(rec, registry)
    assert info.model_name == "tiny_openfield" and info.row()["promoted_from"] is None
    old_file.unlink()
    (outputs / f"{rec.video_stem}{registry.model('tiny_b').scorer}.h5").write_bytes(b"")
    info = inspect_recording(rec, registry)
    assert info.model_name == "tiny_b" and info.row()["promoted_from"] == "tiny_openfield"


def test_promote_refuses_a_model_that_failed_its_evaluation_threshold(tmp_path,
                                                                      registry_path):
    path, store, registry = _promotion_archive(tmp_path, registry_path,
                                               evaluation={"max_test_rmse_px": 1.5})
    before = path.read_bytes()
    write_evaluation(store, "tiny_b", test_rmse_px=4.25)
    with pytest.raises(ReviewError, match=r"test_error_within_threshold: test RMSE 4.25 px "
                       r".*exceeds the threshold 1.5 px.*--force"):
        plan_promotion(store, registry, "tiny_b", "tiny_openfield")
    assert path.read_bytes() == before
    plan = plan_promotion(store, registry, "tiny_b", "tiny_openfield", force=True)
    assert plan.forced and "exceeds" in plan.evaluation
    write_evaluation(store, "tiny_b", test_rmse_px=1.0)
    plan = plan_promotion(store, registry, "tiny_b", "tiny_openfield")
    assert not plan.forced and "1.00 px" in plan.evaluation


def test_both_versions_processed_numbers_stay_queryable(tmp_path):
    """After a promotion's backfill, OLD's processed frames and summary are still there
    (keyed by recording x model) and summary_versions gives both, the current marked."""
    from dlc_tracking.model_review.version_predictions import (
        keep_current_version,
        summary_versions,
    )
    from tests.review_helpers import processed_frames

    store = Warehouse(tmp_path / "wh")
    rid = "mouse0__s__openfield"
    store.write_partition("recordings", rid, recordings_row(rid, None, 31, "old"))
    assert set(summary_versions(store)["current"]) <= {True}  # nothing promoted: current only
    store.write_partition("predictions", rid, predictions_long(rid, "old", steady_poses(31)))
    store.write_processed_tracking(rid, processed_frames(rid, "old", 31, 1.0))
    assert keep_current_version(store, rid) == "old"
    key = version_key(rid, "old")
    assert store.partitions("model_processed_tracking") == [key]
    assert store.partitions("model_recording_summaries") == [key]
    # the backfill with NEW replaces the current rows
    store.write_partition("predictions", rid, predictions_long(rid, "new", steady_poses(31)))
    store.write_processed_tracking(rid, processed_frames(rid, "new", 31, 2.0))
    both = summary_versions(store, rid).set_index("model_name")
    assert both.loc["new", "current"] and not both.loc["old", "current"]
    assert both.loc["old", "distance_cm"] == pytest.approx(30.0)
    assert both.loc["new", "distance_cm"] == pytest.approx(60.0)
    assert both.loc["old", "subject"] == "mouse0"
    frames = store.query("SELECT model_name, count(*) AS n FROM model_processed_tracking "
                         "GROUP BY 1")
    assert frames.to_dict("list") == {"model_name": ["old"], "n": [31]}
    assert store.query("SELECT distance_cm FROM recording_summary")["distance_cm"].tolist() \
        == pytest.approx([60.0])


def test_video_problem_without_recordings_row_and_selection_skips_it(archive):
    for missing in (None, np.nan, __import__("pandas").NA):
        assert "no recordings row" in selection.video_problem(None, missing)
    archive.delete_partition("recordings", "mouse0__s__openfield")
    sel = selection.select_frames(archive, "m", 10)
    assert "no recordings row" in sel.skipped["mouse0__s__openfield"]
    assert "mouse0__s__openfield" not in set(sel.frames["recording_id"])
    assert len(sel.frames) == 10


def test_ranking_blends_the_flagged_share():
    """A short recording failing on half its frames outranks a long one failing on 1 %,
    though the long one's summed score is twice as large."""
    import pandas as pd

    per = pd.DataFrame({"recording_id": ["long", "short"], "flagged_frames": [1000, 500],
                        "total_score": [500.0, 250.0], "n_frames": [100_000, 1000],
                        "last_flagged": [99_000, 990]})
    w = selection.recording_weights(per)
    assert w[1] > w[0] and w.sum() == pytest.approx(1.0)


def test_review_target_ingest_only_and_folder(tmp_path, registry_path):
    import dataclasses

    from dlc_tracking.model_review.flows import review_target
    from dlc_tracking.registry.registry_file import load_registry

    model = load_registry(registry_path).model("tiny_openfield")
    assert review_target(model, None) == model.project_config
    assert review_target(model, tmp_path) == tmp_path / "config.yaml"
    ingest_only = dataclasses.replace(model, project_config=None, ingest_only=True)
    with pytest.raises(ReviewError, match="ingest-only.*--out"):
        review_target(ingest_only, None)
    assert review_target(ingest_only, tmp_path / "p" / "config.yaml") == \
        tmp_path / "p" / "config.yaml"


def test_review_op_runs_the_shared_flow(tmp_path, registry_path):
    """The review_model op runs the CLI's flow (a folder as out is accepted; a warehouse
    without frame_quality is a clear Failure naming the model)."""
    import dagster as dg

    from dlc_assets.assets.model_review import ReviewConfig, review_model
    from resources import DataRoot, WarehouseResource

    with dg.build_op_context(resources={
            "data_root": DataRoot(path=str(tmp_path), registry_path=str(registry_path)),
            "warehouse": WarehouseResource(root=str(tmp_path / "wh"))}) as context, \
            pytest.raises(dg.Failure, match="model tiny_openfield: .*no flagged frames"):
        review_model(context, ReviewConfig(model="tiny_openfield", n=5, out=str(tmp_path)))


def test_compare_skips_a_failing_recording_and_goes_on(tmp_path, registry_path):
    from dlc_tracking.errors import DLCFileError
    from dlc_tracking.model_review.comparison import compare_models
    from dlc_tracking.registry.registry_file import load_registry

    registry = load_registry(_second_entry(registry_path, tmp_path))
    store = Warehouse(tmp_path / "wh")
    for rid in ("a__s__openfield", "b__s__openfield"):
        video = tmp_path / f"{rid}.mp4"
        video.write_bytes(b"")
        store.write_partition("recordings", rid, recordings_row(rid, video, 60, "tiny_b"))
        store.write_partition("predictions", rid, predictions_long(rid, "tiny_b",
                                                                   steady_poses(60)))
    new = steady_poses(60)
    new[:, 0, :2] += 3
    store.write_partition("model_predictions", version_key("b__s__openfield", "tiny_openfield"),
                          predictions_long("b__s__openfield", "tiny_openfield", new)
                          .assign(source="compare"))

    def infer(model, video, rid):
        raise DLCFileError(f"{video}: cannot be opened by OpenCV.")

    result = compare_models(store, registry, "tiny_b", "tiny_openfield", infer)
    assert result.skipped == {"a__s__openfield":
                              f"failed: {tmp_path / 'a__s__openfield.mp4'}: cannot be opened "
                              "by OpenCV."}
    assert set(result.agreement["recording_id"]) == {"b__s__openfield"}
    assert store.partitions("model_agreement") == ["tiny_b__vs__tiny_openfield"]
