"""Confident mistakes are caught (issue 21, C): a noisy real model put the tail base more
than 50 px off in 175 frames with likelihood >= 0.9, and only other body parts' low
likelihood flagged those frames. Body-part outliers are now flagged whatever the
likelihood, counted for a check, picked by ``models review``, which keeps its spacing."""

from __future__ import annotations

import numpy as np
import pytest

from dlc_tracking.model_review import frame_quality as fq
from dlc_tracking.model_review import selection
from dlc_tracking.model_review.outliers import OutlierParams, outlier_summary
from dlc_tracking.synthetic.openfield import simulate_openfield
from dlc_tracking.warehouse import Warehouse
from tests.review_helpers import recordings_row

WIDTH, HEIGHT, FPS = 640, 480, 30.0
N_FRAMES, N_BAD = 3000, 175


def noisy_model_poses(seed: int = 4) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A 640 x 480 open-field recording as a noisy model tracks it: every point >= 0.9
    likelihood, posture changes (tail base swinging, nose moving), 1.5 px jitter; and the
    tail base 52-90 px off in 175 frames (single frames and stretches of up to 15), at
    likelihood >= 0.9 too. Returns poses, the bad frames, the body parts."""
    from scipy.ndimage import gaussian_filter1d

    gt = simulate_openfield(n_frames=N_FRAMES, fps=FPS, width=WIDTH, height=HEIGHT, seed=seed)
    poses = gt.poses().copy()
    rng = np.random.default_rng(seed)
    poses[..., :2] += rng.normal(0, 1.5, poses[..., :2].shape)
    swing = gaussian_filter1d(rng.normal(0, 1, (N_FRAMES, 2)), 15, axis=0)
    poses[:, 3, :2] += swing * 15 / swing.std()
    poses[:, 0, :2] += gaussian_filter1d(rng.normal(0, 1, (N_FRAMES, 2)), 8, axis=0) * 50
    poses[..., 2] = rng.uniform(0.9, 1.0, poses.shape[:2])
    bad = np.zeros(N_FRAMES, bool)
    while bad.sum() < N_BAD:  # single frames and stretches, all over the recording
        start = int(rng.integers(10, N_FRAMES - 20))
        bad[start:start + min(int(rng.integers(1, 16)), N_BAD - int(bad.sum()))] = True
    frames = np.flatnonzero(bad)
    angle = rng.uniform(0, 2 * np.pi, N_BAD)
    radius = rng.uniform(52, 90, N_BAD)
    poses[frames, 3, 0] += radius * np.cos(angle)
    poses[frames, 3, 1] += radius * np.sin(angle)
    return poses, frames, list(gt.body_parts)


@pytest.fixture(scope="module")
def recording():
    return noisy_model_poses()


def test_tail_base_confident_mistakes_flagged_as_body_parts(recording, tmp_path):
    poses, bad, parts = recording
    params = fq.FrameQualityParams(likelihood_cutoff=0.9)
    rows = fq.frame_quality("r1", "m", poses, np.arange(N_FRAMES) / FPS, (WIDTH, HEIGHT),
                            params, body_parts=parts)
    # no point is below the cutoff: only the new flag can find them
    assert (rows["low_likelihood_parts"] == 0).all()
    flagged = rows.set_index("frame")
    caught = flagged.reindex(bad)["outlier_body_parts"].fillna("")
    assert (caught.str.contains("tail_base")).mean() >= 0.9
    # the tail base is blamed, (almost) never the others
    assert caught.str.contains("nose|ear").sum() <= 0.01 * N_BAD
    clean = np.setdiff1d(np.arange(N_FRAMES), bad)
    false = flagged.index.intersection(clean)
    assert len(false) <= 0.01 * len(clean)
    assert flagged.loc[bad[0], "max_outlier_px"] > 50
    # the rows fit the warehouse table, and the metadata counts them
    Warehouse(tmp_path / "wh").write_partition("frame_quality", "r1", rows)
    assert fq.summarize(rows, N_FRAMES)["outlier_frames"] >= 0.9 * N_BAD


def test_outlier_fraction_for_a_check(recording):
    poses, bad, parts = recording
    summary = outlier_summary(poses, parts, OutlierParams(offset_px=0.05 * np.hypot(640, 480)))
    tracked = N_FRAMES * len(parts)
    assert summary.fraction == pytest.approx(N_BAD / tracked, rel=0.15)
    assert summary.per_part["tail_base"] >= 0.9 * N_BAD / N_FRAMES
    assert summary.per_part["nose"] < 0.002 and summary.confident >= 0.9 * N_BAD
    # a clean recording: (almost) nothing
    clean = poses.copy()
    clean[bad, 3] = np.nan
    assert outlier_summary(clean, parts, OutlierParams(offset_px=32)).fraction < 0.001


def _archive(tmp_path, recording):
    poses, bad, parts = recording
    store = Warehouse(tmp_path / "wh")
    video = tmp_path / "openfield.mp4"
    video.write_bytes(b"\0")
    params = fq.FrameQualityParams(likelihood_cutoff=0.6)
    # the outlier recording, and a recording whose only flags are a burst of unsure frames
    rid, burst = "m1__s1__openfield", "m2__s1__openfield"
    store.write_partition("recordings", rid, recordings_row(rid, video, N_FRAMES, "m"))
    store.write_partition("frame_quality", rid, fq.frame_quality(
        rid, "m", poses, np.arange(N_FRAMES) / FPS, (WIDTH, HEIGHT), params, body_parts=parts))
    unsure = np.repeat(poses[:1], N_FRAMES, axis=0)  # a still animal: no outliers
    unsure[..., 2] = 0.99
    unsure[1000:1040, 0, 2] = 0.1
    store.write_partition("recordings", burst, recordings_row(burst, video, N_FRAMES, "m"))
    store.write_partition("frame_quality", burst, fq.frame_quality(
        burst, "m", unsure, np.arange(N_FRAMES) / FPS, (WIDTH, HEIGHT), params,
        body_parts=parts))
    return store, rid, burst


def test_models_review_picks_them_half_a_stretch_apart(recording, tmp_path):
    poses, bad, parts = recording
    store, rid, burst = _archive(tmp_path, recording)
    sel = selection.select_frames(store, "m", 12)
    picked = sel.frames.groupby("recording_id")["frame"].apply(list).to_dict()
    # the burst recording cannot give more than one frame spaced half a stretch apart;
    # its slots went to the outlier recording, whose picks are the tail-base mistakes
    assert len(picked[burst]) == 1
    assert len(picked[rid]) > 6  # more than its share: the burst could not use its slots
    mine = np.asarray(picked[rid])
    assert np.isin(mine, bad).mean() >= 0.8
    # half a stretch apart: a recording is asked at most 12 frames, a stretch of 250
    assert np.diff(np.sort(mine)).min() >= N_FRAMES / 12 / 2
