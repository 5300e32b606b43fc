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
from dlc_tracking.model_review.promotion import apply_promotion, plan_promotion
from dlc_tracking.model_review.selection import ReviewError
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
    from dlc_assets.cli import build_parser

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
