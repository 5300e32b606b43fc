"""Identity checks, per-individual tracking, social measures and subject mapping on
synthetic multi-animal recordings with exact ground truth (no DeepLabCut import)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dlc_tracking.errors import DLCFileError, ProcessingError
from dlc_tracking.social.identity import IdentityParams, check_identities
from dlc_tracking.social.individuals import individual_frames, process_individuals
from dlc_tracking.social.measures import SocialParams, social_frames, social_summary
from dlc_tracking.social.subjects import (
    check_individuals_match,
    check_method_for_multi_animal,
    map_subjects,
)
from dlc_tracking.synthetic.multi_animal import simulate_multi_animal
from dlc_tracking.tracking.methods import BUILTIN_METHODS
from dlc_tracking.tracking.params import ProcessingParams
from dlc_tracking.tracking.processed import process_body_parts, process_tracking
from dlc_tracking.tracking.raw_state import raw_state_vector

PPCM = 4.0
EXACT = ProcessingParams(name="exact", max_speed_cm_s=None, max_gap_s=0.0,
                         sigma_position_s=0.0, sigma_speed_s=0.0, sigma_head_s=0.0)


@pytest.fixture(scope="session")
def truth():
    return simulate_multi_animal(n_frames=600, n_animals=3, seed=2, laps=2.0)


@pytest.fixture(scope="session")
def tracks(truth):
    return process_individuals(BUILTIN_METHODS["two_ears"], truth.poses(), truth.individuals,
                               truth.body_parts, truth.time_s, "above",
                               (truth.width, truth.height), EXACT, pixels_per_cm=PPCM,
                               subjects={"mus1": "M12", "mus2": "M13"})


# ----------------------------------------------------------------------------- identity


def test_clean_tracks_have_no_identity_problems(truth):
    report = check_identities(truth.poses(), truth.individuals)
    assert report.swaps.empty and report.track_events.empty and report.duplicates.empty
    assert report.fraction_all_present == 1.0


@pytest.mark.parametrize("where", ["middle", "encounter"])
def test_injected_swap_flagged_at_its_frame(truth, where):
    frame = truth.n_frames // 2 + 7 if where == "middle" else truth.encounters[0]
    poses = truth.poses()
    poses[frame:, [0, 1]] = poses[frame:, [1, 0]]
    report = check_identities(poses, truth.individuals)
    assert report.swaps[["frame", "individual_a", "individual_b"]].values.tolist() == [
        [frame, "mus1", "mus2"]]
    flags = report.frame_flags(truth.individuals, truth.n_frames)
    assert set(flags.loc[flags["identity_swap"], "frame"]) == {frame}
    assert report.summary()["swap_frames"] == [frame]


def test_swap_across_a_short_dropout(truth):
    poses = truth.poses()
    poses[300:, [0, 2]] = poses[300:, [2, 0]]
    poses[298:300, [0, 2]] = np.nan  # both missing for two frames, then exchanged
    report = check_identities(poses, truth.individuals)
    assert report.swaps["frame"].tolist() == [300]
    assert set(report.swaps.iloc[0][["individual_a", "individual_b"]]) == {"mus1", "mus3"}


def test_vanishing_and_appearing_tracks(truth):
    poses = truth.poses()
    poses[:40, 1] = np.nan           # mus2 appears at 40
    poses[200:260, 2] = np.nan       # mus3 vanishes for 60 frames
    poses[590:, 0] = np.nan          # mus1 vanishes before the end
    report = check_identities(poses, truth.individuals, IdentityParams(min_gap_frames=25))
    events = report.track_events[["individual", "event", "frame"]].values.tolist()
    assert events == [["mus2", "appears", 40], ["mus3", "vanishes", 200],
                      ["mus3", "reappears", 260], ["mus1", "vanishes", 590]]
    assert report.fraction_all_present == pytest.approx((600 - 40 - 60 - 10) / 600)
    assert report.fraction_present["mus3"] == pytest.approx(540 / 600)


def test_two_tracks_on_one_animal(truth):
    poses = truth.poses()
    poses[100:130, 2] = poses[100:130, 0] + 0.5  # mus3's track sits on mus1
    report = check_identities(poses, truth.individuals)
    dups = report.duplicates
    assert dups[["individual_a", "individual_b", "start_frame", "stop_frame"]
                ].values.tolist() == [["mus1", "mus3", 100, 130]]


# ----------------------------------------------------------------------------- tracking


def test_single_individual_gives_the_single_animal_rows(truth):
    """One individual through the multi-animal loop == today's single-animal pipeline."""
    poses = truth.poses()[:, :1]
    method = BUILTIN_METHODS["two_ears"]
    size = (truth.width, truth.height)
    raw = raw_state_vector(method, poses[:, 0], truth.body_parts, truth.time_s, "above", size)
    proc = process_tracking(raw, None, arena_width_cm=40.0, arena_height_cm=40.0,
                            head_perpendicular=True)
    parts = process_body_parts(poses[:, 0], truth.body_parts, truth.time_s, "above", size,
                               proc.calibration, None, method.likelihood_cutoff)
    multi = process_individuals(method, poses, ["mus1"], truth.body_parts, truth.time_s,
                                "above", size, None, arena_width_cm=40.0, arena_height_cm=40.0)
    one = multi["mus1"]
    assert one.raw.boundary == raw.boundary
    pd.testing.assert_frame_equal(one.raw.to_frame(), raw.to_frame())
    pd.testing.assert_frame_equal(one.processed.to_frame(), proc.to_frame())
    for name, (x, y) in parts.items():
        np.testing.assert_array_equal(one.parts[name][0], x)
        np.testing.assert_array_equal(one.parts[name][1], y)


def test_per_individual_tracks_match_truth(truth, tracks):
    for k, ind in enumerate(truth.individuals):
        t = tracks[ind]
        ears = 0.5 * (truth.keypoints[:, k, 1] + truth.keypoints[:, k, 2])
        np.testing.assert_allclose(t.raw.x_px, ears[:, 0], atol=1e-9)
        np.testing.assert_allclose(t.raw.y_px, ears[:, 1], atol=1e-9)
        head = t.processed.head_direction_deg
        diff = np.mod(head - truth.heading_deg[:, k] + 180, 360) - 180
        assert np.max(np.abs(diff)) < 1e-6
    # one arena frame for all: the calibration is shared
    assert len({(t.processed.calibration.origin_x_px, t.processed.calibration.origin_y_px)
                for t in tracks.values()}) == 1
    raw, processed, parts = individual_frames(tracks)
    assert processed.groupby("individual").size().tolist() == [600, 600, 600]
    assert processed.drop_duplicates("individual")["subject"].tolist() == ["M12", "M13", None]
    assert list(processed.columns[:2]) == ["individual", "subject"]


# ----------------------------------------------------------------------------- social


def test_social_distances_match_truth(truth, tracks):
    social = social_frames(tracks, recording_id="rec")
    assert len(social) == 3 * truth.n_frames
    pair = social[(social["individual_a"] == "mus1") & (social["individual_b"] == "mus2")]
    kp = truth.keypoints
    ears = 0.5 * (kp[:, :, 1] + kp[:, :, 2])
    expected = np.linalg.norm(ears[:, 0] - ears[:, 1], axis=1) / PPCM
    np.testing.assert_allclose(pair["distance_cm"], expected, atol=1e-9)
    nose_nose = np.linalg.norm(kp[:, 0, 0] - kp[:, 1, 0], axis=1) / PPCM
    np.testing.assert_allclose(pair["nose_nose_cm"], nose_nose, atol=1e-9)
    nose_tail = np.linalg.norm(kp[:, 0, 0] - kp[:, 1, 3], axis=1) / PPCM
    np.testing.assert_allclose(pair["a_nose_b_tail_base_cm"], nose_tail, atol=1e-9)
    # relative heading from the arena-frame truth (y up)
    d = ears[:, 1] - ears[:, 0]
    bearing = np.degrees(np.arctan2(-d[:, 1], d[:, 0]))
    facing = np.abs(np.mod(bearing - truth.heading_deg[:, 0] + 180, 360) - 180)
    np.testing.assert_allclose(pair["a_facing_b_deg"], facing, atol=1e-6)
    assert pair["subject_a"].iloc[0] == "M12" and pair["subject_b"].iloc[0] == "M13"


def test_social_summary_counts(truth, tracks):
    params = SocialParams(proximity_cm=12.0, contact_cm=3.0)
    social = social_frames(tracks, params, recording_id="rec")
    summary = social_summary(tracks, social, params)
    assert len(summary) == 3
    row = summary.iloc[0]
    pair = social[(social["individual_a"] == "mus1") & (social["individual_b"] == "mus2")]
    dt = 1 / truth.fps
    assert row["time_in_proximity_s"] == pytest.approx((pair["distance_cm"] < 12).sum() * dt)
    assert row["params_hash"] == params.param_hash
    assert row["mean_distance_cm"] == pytest.approx(pair["distance_cm"].mean())
    contact = pair["contact"].to_numpy()
    assert row["n_contacts"] <= int(np.sum(np.diff(contact.astype(int)) == 1) + contact[0])


def test_approach_detected_on_a_constructed_pair():
    """B stands still; A walks straight at it from 40 cm away, stops 3 cm short."""
    from dlc_tracking.social.individuals import IndividualTracking

    n, fps = 200, 50.0
    t = np.arange(n) / fps
    xa = np.concatenate([np.linspace(0, 37, 100), np.full(100, 37.0)])
    fake = {}
    for name, x in (("a", xa), ("b", np.full(n, 40.0))):
        proc = _processed(t, x, np.zeros(n), np.zeros(n))
        fake[name] = IndividualTracking(name, None, None, proc, {})
    social = social_frames(fake, recording_id="r")
    summary = social_summary(fake, social)
    assert summary.iloc[0]["n_approaches_a_to_b"] == 1
    assert summary.iloc[0]["n_approaches_b_to_a"] == 0
    assert social["a_faces_b"].all() and not social["b_faces_a"].any()


def _processed(t, x, y, head):
    from dlc_tracking.tracking.arena import Boundary
    from dlc_tracking.tracking.calibration import calibrate
    from dlc_tracking.tracking.processed import ProcessedTracking

    cal = calibrate(Boundary(0, 100, 0, 100), "above", (100, 100), pixels_per_cm=1.0)
    nan = np.full(len(t), np.nan)
    return ProcessedTracking(t, x, y, nan, head, nan, nan, np.zeros(len(t), bool),
                             np.zeros(len(t), bool), ProcessingParams(), cal, "m", "h", True)


def test_social_params_are_validated():
    with pytest.raises(ProcessingError, match="proximity_cm"):
        SocialParams(proximity_cm=-1)
    with pytest.raises(ProcessingError, match="unknown keys"):
        SocialParams.from_dict({"proximty_cm": 3})
    assert SocialParams(name="x").param_hash == SocialParams(name="y").param_hash


# ----------------------------------------------------------------------------- subjects


def test_subject_mapping_keeps_anonymous_individuals():
    assert map_subjects(["mus1", "mus2", "mus3"], {"mus1": "M12", "mus2": "M13"}, "f") == {
        "mus1": "M12", "mus2": "M13", "mus3": None}


def test_subject_mapping_refusals():
    with pytest.raises(DLCFileError, match=r"maps \['mus9'\].*file's individuals"):
        map_subjects(["mus1", "mus2"], {"mus9": "M12"}, "social_el.h5 (recording r)")
    with pytest.raises(DLCFileError, match="several individuals to one subject"):
        map_subjects(["mus1", "mus2"], {"mus1": "M12", "mus2": "M12"}, "f")
    with pytest.raises(DLCFileError, match="differ from the registered model"):
        check_individuals_match(["rat1", "rat2"], ["mus1", "mus2"], "f")
    check_individuals_match(["ind1", "ind2"], ["mus1", "mus2"], "f")  # stitched unnamed


def test_single_animal_method_on_a_multi_animal_model():
    with pytest.raises(ProcessingError, match="unique body parts"):
        check_method_for_multi_animal("corners", ["corner_tl"], ["nose", "tail_base"],
                                      ["corner_tl"], "model social")
    with pytest.raises(ProcessingError, match="nose_tail_base"):
        check_method_for_multi_animal("b_nose", ["B_nose"], ["nose", "tail_base"], [],
                                      "model social")
    check_method_for_multi_animal("nose_tail_base", ["nose", "tail_base"],
                                  ["nose", "tail_base"], [], "model social")


def test_unique_corner_parts_calibrate(truth):
    from dlc_tracking.social.arena_corners import arena_from_unique_parts
    from dlc_tracking.synthetic.multi_animal import UNIQUE_BODY_PARTS
    from dlc_tracking.tracking.calibration import calibrate_from_arena

    corners = np.concatenate([truth.unique_keypoints(), np.ones((truth.n_frames, 2, 1))], 2)
    x0, _, x1, _ = truth.arena_px
    geometry = arena_from_unique_parts(corners, UNIQUE_BODY_PARTS, UNIQUE_BODY_PARTS,
                                       40.0, 40.0)
    cal = calibrate_from_arena(geometry, "above", (truth.width, truth.height))
    assert cal.pixels_per_cm == pytest.approx((x1 - x0) / 40.0)
    moving = corners.copy()
    moving[:, 0, 0] += np.linspace(0, 50, truth.n_frames)
    with pytest.raises(ProcessingError, match="moves"):
        arena_from_unique_parts(moving, UNIQUE_BODY_PARTS, UNIQUE_BODY_PARTS, 40.0, 40.0)
    with pytest.raises(ProcessingError, match="no unique body part 'feeder'"):
        arena_from_unique_parts(corners, UNIQUE_BODY_PARTS, ["feeder", "corner_br"], 40, 40)


def test_social_pictures(truth, tracks):
    from dlc_tracking.qc.social_plots import distance_png, trajectories_png

    png = trajectories_png({i: (t.processed.x_cm, t.processed.y_cm) for i, t in tracks.items()},
                           {i: t.subject for i, t in tracks.items()}, 40.0, 40.0)
    assert png.startswith(b"\x89PNG")
    social = social_frames(tracks, recording_id="rec")
    pairs = {f"{a}-{b}": g["distance_cm"].to_numpy()
             for (a, b), g in social.groupby(["individual_a", "individual_b"], observed=True)}
    assert distance_png(truth.time_s, pairs, [1.0, 5.0], 10.0).startswith(b"\x89PNG")


def test_labels_rotating_among_three_animals(truth):
    poses = truth.poses()
    poses[250:] = poses[250:, [1, 2, 0]]  # mus1 <- mus2, mus2 <- mus3, mus3 <- mus1
    report = check_identities(poses, truth.individuals)
    assert set(report.swaps["frame"]) == {250}
    involved = set(report.swaps["individual_a"]) | set(report.swaps["individual_b"])
    assert involved == {"mus1", "mus2", "mus3"}


def test_social_labeled_video(tmp_path):
    import cv2

    from dlc_tracking.qc.social_video import render_social_video
    from dlc_tracking.synthetic.multi_animal import render_multi_video

    small = simulate_multi_animal(n_frames=12, n_animals=2, seed=5)
    video = render_multi_video(small, tmp_path / "social.mp4")
    out = render_social_video(video, tmp_path / "social_labeled.mp4", small.poses(),
                              small.individuals, {"mus1": "M12"}, swap_frames=[3]).path
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    ok, frame = cap.read()
    cap.release()
    assert ok and frame.shape == (small.height, small.width, 3)
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())
