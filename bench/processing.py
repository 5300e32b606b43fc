"""Benchmark 2: raw predictions -> raw state vector -> processed tracking, 1 h at 50 Hz.

Times :func:`dlc_tracking.tracking.raw_state.raw_state_vector` (method ``two_ears``) plus
:func:`~dlc_tracking.tracking.processed.process_tracking` on 180,000 frames x 4 body parts of
noisy synthetic predictions (jitter, 3 % low-likelihood points, 0.2 % outliers), and
:func:`~dlc_tracking.tracking.processed.process_body_parts` separately.
"""

from __future__ import annotations

from bench import data
from bench.common import BenchResult, median, repeat, timed, timed_cpu
from dlc_tracking.synthetic.openfield import arena_layout
from dlc_tracking.tracking.methods import BUILTIN_METHODS
from dlc_tracking.tracking.params import ProcessingParams
from dlc_tracking.tracking.processed import process_body_parts, process_tracking
from dlc_tracking.tracking.raw_state import raw_state_vector as make_raw_state_vector

FPS = 50.0
FULL_FRAMES = 180_000  # 1 hour at 50 Hz
QUICK_FRAMES = 18_000
TARGET_S = 0.5
ARENA_CM = 50.0


def _trial(poses, body_parts, time_s, params, pixels_per_cm):
    """One measurement: state vector, processed tracking, then the body parts."""
    method = BUILTIN_METHODS["two_ears"]
    size = (data.WIDTH, data.HEIGHT)

    def run() -> dict[str, float]:
        t_raw, c_raw, raw = timed_cpu(lambda: make_raw_state_vector(
            method, poses, body_parts, time_s, "above", size))
        t_proc, c_proc, processed = timed_cpu(lambda: process_tracking(
            raw, params, pixels_per_cm=pixels_per_cm))
        t_parts, c_parts, _ = timed_cpu(lambda: process_body_parts(
            poses, body_parts, time_s, "above", size, processed.calibration, params,
            method.likelihood_cutoff))
        return {"raw_s": t_raw, "processed_s": t_proc, "pipeline_s": t_raw + t_proc,
                "body_parts_s": t_parts, "cpu_s": c_raw + c_proc, "parts_cpu_s": c_parts}

    return run


def run(repeats: int | None = None, quick: bool = False) -> BenchResult:
    """Run the processing benchmark.

    Parameters
    ----------
    repeats : int, optional
        Measurements (default 5).
    quick : bool
        6 minutes of recording instead of 1 hour.

    Returns
    -------
    BenchResult
    """
    repeats = repeats or 5
    n = QUICK_FRAMES if quick else FULL_FRAMES
    t_setup, (poses, body_parts, time_s) = timed(lambda: data.recording_poses(n, FPS, seed=2))
    x0, _, x1, _ = arena_layout(data.WIDTH, data.HEIGHT)
    ppcm = (x1 - x0) / ARENA_CM
    params = ProcessingParams()
    samples = repeat(_trial(poses, body_parts, time_s, params, ppcm), repeats)
    res = BenchResult("processing")
    pipeline = median(samples["pipeline_s"])
    res.add("raw -> state vector -> processed tracking", pipeline, "s", "<=", TARGET_S,
            note=f"{n:,} frames x 4 parts", samples=samples["pipeline_s"],
            cpu_s=median(samples["cpu_s"]))
    res.add("  of which raw_state_vector", median(samples["raw_s"]), "s",
            samples=samples["raw_s"])
    res.add("  of which process_tracking", median(samples["processed_s"]), "s",
            samples=samples["processed_s"])
    res.add("pipeline throughput", n / pipeline, "frames/s")
    parts = median(samples["body_parts_s"])
    res.add("process_body_parts (4 parts)", parts, "s", note="reported separately",
            samples=samples["body_parts_s"], cpu_s=median(samples["parts_cpu_s"]))
    res.add("process_body_parts throughput", n / parts, "frames/s")
    res.details = {"n_frames": n, "fps": FPS, "n_body_parts": len(body_parts),
                   "method": "two_ears", "params": params.to_dict(), "repeats": repeats,
                   "pixels_per_cm": ppcm, "setup_s": round(t_setup, 2)}
    return res
