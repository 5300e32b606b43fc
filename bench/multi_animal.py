"""Benchmark: several animals in one video, 1 h at 50 Hz, 3 animals x 12 body parts.

- per-individual processing (:func:`dlc_tracking.social.individuals.process_individuals`:
  state vector, processed tracking and 12 processed body parts per animal) against the
  single-animal pipeline on one animal of the same recording (target: per animal at most
  3 x the single-animal time);
- identity checks (:func:`dlc_tracking.social.identity.check_identities`);
- the social table of the 3 pairs and its per-pair summary;
- ingestion of a 1 h maDLC tracks ``.h5`` (``read_madlc``, the file written with pandas'
  ``to_hdf(format="table")`` as DeepLabCut's stitcher writes it);
- peak memory of the process.

Run alone: ``PYTHONPATH=. .venv/bin/python -m bench.multi_animal [--quick]``.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import BenchResult, median, peak_rss_mib, repeat, timed, timed_cpu
from dlc_tracking.io.madlc_files import read_madlc
from dlc_tracking.social.identity import check_identities
from dlc_tracking.social.individuals import process_individuals
from dlc_tracking.social.measures import social_frames, social_summary
from dlc_tracking.synthetic.multi_animal import simulate_multi_animal
from dlc_tracking.tracking.methods import BUILTIN_METHODS
from dlc_tracking.tracking.params import ProcessingParams
from dlc_tracking.tracking.processed import process_body_parts, process_tracking
from dlc_tracking.tracking.raw_state import raw_state_vector

FPS = 50.0
FULL_FRAMES = 180_000
QUICK_FRAMES = 18_000
WIDTH, HEIGHT = 640, 480
PPCM = 8.0
TARGET_RATIO = 3.0
EXTRA = ["neck", "spine1", "spine2", "spine3", "left_shoulder", "right_shoulder",
         "left_hip", "right_hip"]


def recording(n: int, seed: int = 3) -> tuple[np.ndarray, list[str], np.ndarray]:
    """``(n, 3, 12, 3)`` noisy poses of 3 animals (4 simulated keypoints + 8 points
    between them), 3 % low-likelihood points."""
    truth = simulate_multi_animal(n_frames=n, fps=FPS, width=WIDTH, height=HEIGHT,
                                  n_animals=3, seed=seed, laps=n / FPS / 20)
    kp = truth.keypoints  # nose, left_ear, right_ear, tail_base
    nose, le, re, tail = (kp[:, :, i] for i in range(4))
    ears = 0.5 * (le + re)
    extra = [0.7 * ears + 0.3 * tail, 0.55 * ears + 0.45 * tail, 0.4 * ears + 0.6 * tail,
             0.25 * ears + 0.75 * tail, le + 0.2 * (tail - ears), re + 0.2 * (tail - ears),
             le + 0.8 * (tail - ears), re + 0.8 * (tail - ears)]
    xy = np.concatenate([kp, np.stack(extra, axis=2)], axis=2)
    rng = np.random.default_rng(seed)
    xy = xy + rng.normal(0, 0.7, xy.shape)
    lik = np.where(rng.random(xy.shape[:3]) < 0.03, rng.uniform(0, 0.5, xy.shape[:3]),
                   rng.uniform(0.95, 1.0, xy.shape[:3]))
    poses = np.concatenate([xy, lik[..., None]], axis=3)
    return poses, list(truth.body_parts) + EXTRA, truth.time_s


def run(repeats: int | None = None, quick: bool = False) -> BenchResult:
    """Run the multi-animal benchmark (default 3 repeats)."""
    repeats = repeats or 3
    n = QUICK_FRAMES if quick else FULL_FRAMES
    t_setup, (poses, parts, time_s) = timed(lambda: recording(n))
    method = BUILTIN_METHODS["two_ears"]
    params = ProcessingParams()
    size = (WIDTH, HEIGHT)
    names = ["mus1", "mus2", "mus3"]

    def single() -> dict[str, float]:
        def work():
            raw = raw_state_vector(method, poses[:, 0], parts, time_s, "above", size)
            proc = process_tracking(raw, params, pixels_per_cm=PPCM)
            process_body_parts(poses[:, 0], parts, time_s, "above", size, proc.calibration,
                               params, method.likelihood_cutoff)
        wall, cpu, _ = timed_cpu(work)
        return {"single_s": wall, "single_cpu_s": cpu}

    holder: dict = {}

    def multi() -> dict[str, float]:
        wall, cpu, tracks = timed_cpu(lambda: process_individuals(
            method, poses, names, parts, time_s, "above", size, params, pixels_per_cm=PPCM))
        holder["tracks"] = tracks
        t_id, _, _ = timed_cpu(lambda: check_identities(poses, names))
        t_soc, _, social = timed_cpu(lambda: social_frames(tracks, recording_id="r"))
        t_sum, _, _ = timed_cpu(lambda: social_summary(tracks, social))
        holder["social_rows"] = len(social)
        return {"multi_s": wall, "multi_cpu_s": cpu, "identity_s": t_id,
                "social_s": t_soc, "summary_s": t_sum}

    s_single = repeat(single, repeats)
    s_multi = repeat(multi, repeats)
    one = median(s_single["single_s"])
    per_animal = median(s_multi["multi_s"]) / 3
    res = BenchResult("multi_animal")
    res.add("single-animal pipeline, 1 animal", one, "s", note=f"{n:,} frames x 12 parts",
            samples=s_single["single_s"], cpu_s=median(s_single["single_cpu_s"]))
    res.add("process_individuals, 3 animals", median(s_multi["multi_s"]), "s",
            samples=s_multi["multi_s"], cpu_s=median(s_multi["multi_cpu_s"]))
    res.add("per animal / single-animal time", per_animal / one, "x", "<=", TARGET_RATIO)
    res.add("identity checks, 3 animals", median(s_multi["identity_s"]), "s",
            samples=s_multi["identity_s"])
    res.add("social table, 3 pairs", median(s_multi["social_s"]), "s",
            note=f"{holder['social_rows']:,} rows", samples=s_multi["social_s"])
    res.add("social summary, 3 pairs", median(s_multi["summary_s"]), "s",
            samples=s_multi["summary_s"])

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "socialDLC_Resnet50_socialJan1shuffle1_snapshot_200_el.h5"
        cols = pd.MultiIndex.from_product(
            [["DLC_Resnet50_socialJan1shuffle1_snapshot_200"], names, parts,
             ["x", "y", "likelihood"]], names=["scorer", "individuals", "bodyparts", "coords"])
        df = pd.DataFrame(poses.reshape(n, -1), columns=cols)
        t_write, _ = timed(lambda df=df: df.to_hdf(path, key="tracks", format="table", mode="w"))
        del df
        size_mib = path.stat().st_size / 2**20
        s_read = repeat(lambda: {"read_s": timed(lambda: read_madlc(path))[0]}, repeats)
    res.add("read_madlc, 1 h tracks .h5", median(s_read["read_s"]), "s",
            note=f"{size_mib:.0f} MiB file", samples=s_read["read_s"])
    res.add("peak memory", peak_rss_mib(), "MiB")
    res.details = {"n_frames": n, "fps": FPS, "n_individuals": 3, "n_body_parts": 12,
                   "method": "two_ears", "repeats": repeats, "setup_s": round(t_setup, 2),
                   "h5_write_s": round(t_write, 2)}
    return res


if __name__ == "__main__":
    result = run(quick="--quick" in sys.argv)
    for m in result.metrics:
        print(f"{m.name:40s} {m.value:10.3f} {m.unit:4s} {m.op or ''} {m.target or ''} "
              f"{m.note}")
    print(json.dumps(result.details))
