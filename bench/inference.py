"""Benchmark 1: the platform's inference path versus DeepLabCut called directly.

Same model, same synthetic 640x480 video (80 frames), same device (CPU), batch size 8, in
the same process, alternated in 7 pairs (platform, direct, direct, platform, ...) after
one untimed warm-up of each on a 16-frame video (imports, first-call initialisation).

The model (:func:`bench.model.bench_model`) is the tiny trained PyTorch model
(``dlc_tracking.synthetic.tiny_model``, cspnext_s) when it is cached; on a fresh set-up, where
training it would take 8-9 minutes, a *speed model*: the same project and architecture
with untrained weights (speed depends on the network and the input size, not on the
weights). The output says which, and how long getting it took.

Sizes: 7 pairs x 2 calls x 80 frames = 1,120 timed frames of about 0.3 CPU-s each (~0.2 s
wall on two idle cores), so the benchmark takes 4-5 minutes in all. The ratio is the
median of the 7 pairs: on a shared machine the load changes from minute to minute, and
short calls (~20 s) keep the two calls of a pair close in time. Any fixed cost per call
(staging, model load, writing outputs) weighs more on 80 frames than on a real recording
of thousands, so a short video makes the ratio stricter, not kinder.

- platform: ``resources.DLCInference(device="cpu", batch_size=8).analyze(model_entry,
  video, recording_id)``, the call the ``dlc_predictions`` asset makes (stages a private
  copy of the project, runs ``deeplabcut.analyze_videos`` with a progress hook, checks the
  outputs);
- direct: ``deeplabcut.analyze_videos(config, [video], shuffle=1, trainingsetindex=0,
  device="cpu", batch_size=8, destfolder=<fresh folder>)`` on a copy of the project
  (``analyze_videos`` writes into the project it is given; what it wrote is recorded).

Reported: frames/s of each (frames / wall seconds of the call), their ratio, the model
load time and per-frame latency (from the platform's progress hook: time to the first
frame, then seconds per frame).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import yaml

from bench.common import BenchResult, alternate, median, timed
from bench.model import bench_model

ROOT = Path(__file__).resolve().parents[1]
FULL_FRAMES, QUICK_FRAMES, WARMUP_FRAMES = 80, 40, 16
FULL_REPEATS = 7
WIDTH, HEIGHT, FPS = 640, 480, 30.0
BATCH_SIZE = 8
RATIO_TARGET = 0.95
RECORDING_ID = "bench__inference__openfield"


def make_video(path: Path, n_frames: int, seed: int) -> Path:
    """A synthetic open-field video at 640x480 (``simulate_openfield`` + ``render_video``)."""
    from dlc_tracking.synthetic.openfield import render_video, simulate_openfield

    gt = simulate_openfield(n_frames=n_frames, fps=FPS, width=WIDTH, height=HEIGHT, seed=seed)
    return render_video(gt, path, noise=2.0, seed=seed)


def copy_project(config: Path, dest: Path) -> Path:
    """A full copy of a DLC project with ``project_path`` pointing at the copy."""
    shutil.copytree(config.parent, dest, symlinks=False)
    cfg_path = dest / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["project_path"] = str(dest)
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return cfg_path


def tree_state(folder: Path) -> dict[str, tuple[int, int]]:
    """``{relative path: (size, mtime_ns)}`` of every file under ``folder``."""
    out = {}
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            p = Path(dirpath) / name
            st = p.stat()
            out[str(p.relative_to(folder))] = (st.st_size, st.st_mtime_ns)
    return out


def tree_changes(before: dict, after: dict) -> list[str]:
    """Paths added, removed or changed between two :func:`tree_state` snapshots."""
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def _platform_trial(model, video: Path, work: Path, n_frames: int):
    from resources import DLCInference

    inference = DLCInference(device="cpu", batch_size=BATCH_SIZE, work_dir=str(work),
                             progress_interval_s=60.0)

    def run() -> dict[str, float]:
        seconds, result = timed(lambda: inference.analyze(model, video, RECORDING_ID))
        infer_s = result.seconds - result.model_load_s
        return {"s": seconds, "fps": n_frames / seconds, "model_load_s": result.model_load_s,
                "latency_ms": 1000.0 * infer_s / n_frames, "steady_fps": result.frames_per_s}

    return run


def _direct_trial(config: Path, video: Path, out_root: Path, n_frames: int):
    import deeplabcut

    state = {"i": 0}

    def run() -> dict[str, float]:
        state["i"] += 1
        dest = out_root / f"run-{state['i']:02d}"
        dest.mkdir(parents=True)
        seconds, _ = timed(lambda: deeplabcut.analyze_videos(
            str(config), [str(video)], shuffle=1, trainingsetindex=0, device="cpu",
            batch_size=BATCH_SIZE, destfolder=str(dest)))
        if not any(dest.glob("*.h5")):
            raise RuntimeError(f"deeplabcut.analyze_videos wrote no .h5 into {dest}")
        return {"s": seconds, "fps": n_frames / seconds}

    return run


def _report(res: BenchResult, runs: dict, n_frames: int) -> None:
    plat, direct = runs["platform"], runs["direct"]
    ratios = [p / d for p, d in zip(plat["fps"], direct["fps"], strict=True)]
    res.add("platform DLCInference.analyze", median(plat["fps"]), "frames/s",
            note=f"{median(plat['s']):.2f} s per call", samples=plat["fps"],
            cpu_s=median(plat["cpu_s"]))
    res.add("direct deeplabcut.analyze_videos", median(direct["fps"]), "frames/s",
            note=f"{median(direct['s']):.2f} s per call", samples=direct["fps"],
            cpu_s=median(direct["cpu_s"]))
    res.add("ratio platform / direct", median(ratios), "x", ">=", RATIO_TARGET,
            note="frames/s, median of paired runs", samples=ratios)
    cpu_ratios = [d / p for p, d in zip(plat["cpu_s"], direct["cpu_s"], strict=True)]
    res.add("  same ratio on CPU time (direct / platform)", median(cpu_ratios), "x",
            note="less sensitive to other load", samples=cpu_ratios)
    res.add("model load (call -> first frame)", median(plat["model_load_s"]), "s",
            note="platform path", samples=plat["model_load_s"])
    res.add("time per frame (after load)", median(plat["latency_ms"]), "ms",
            note=f"batches of {BATCH_SIZE}", samples=plat["latency_ms"])
    res.add("steady-state throughput (after load)", median(plat["steady_fps"]), "frames/s",
            samples=plat["steady_fps"])


def run(repeats: int | None = None, quick: bool = False) -> BenchResult:
    """Run the inference benchmark (PyTorch engine, CPU).

    Parameters
    ----------
    repeats : int, optional
        Paired measurements (default 7; each call takes ~20 s on two CPU cores).
    quick : bool
        40 frames instead of 80, one repeat unless ``repeats`` is given.

    Returns
    -------
    BenchResult
    """
    from dlc_tracking.registry.editing import add_model

    repeats = repeats or (1 if quick else FULL_REPEATS)
    n_frames = QUICK_FRAMES if quick else FULL_FRAMES
    start = time.perf_counter()
    bm = bench_model()
    config = bm.config
    work = Path(tempfile.mkdtemp(prefix="bench-inference-"))
    phases: dict[str, float] = {"model": bm.ready_s}
    try:
        registry = work / "registry.yaml"
        shutil.copy(ROOT / "registry" / "registry.yaml", registry)
        model = add_model(registry, "tiny", config)
        video = make_video(work / "openfield.mp4", n_frames, seed=11)
        warm = make_video(work / "warmup.mp4", WARMUP_FRAMES, seed=12)
        original = tree_state(config.parent)
        direct_cfg = copy_project(config, work / "direct_project")
        copy_before = tree_state(direct_cfg.parent)
        trials = {
            "platform": _platform_trial(model, video, work / "platform", n_frames),
            "direct": _direct_trial(direct_cfg, video, work / "direct_out", n_frames),
        }
        phases["inputs"] = time.perf_counter() - start - bm.ready_s
        t0 = time.perf_counter()
        _platform_trial(model, warm, work / "platform", WARMUP_FRAMES)()
        _direct_trial(direct_cfg, warm, work / "direct_warmup", WARMUP_FRAMES)()
        phases["warm_up"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        runs = alternate(trials, repeats)
        phases["measured"] = time.perf_counter() - t0
        res = BenchResult("inference")
        _report(res, runs, n_frames)
        how = ("built in this run" if bm.built_now else
               f"cached, built in {bm.build_s:.0f} s" if bm.build_s else "")
        res.add("model ready (cache look-up or build)", bm.ready_s, "s",
                note=f"{bm.kind} ({model.derived['net_type']}{', ' + how if how else ''})")
        res.details = {
            "engine": model.engine, "device": "cpu", "batch_size": BATCH_SIZE,
            "n_frames": n_frames, "frame_size": [WIDTH, HEIGHT], "repeats": repeats,
            "net_type": model.derived["net_type"], "snapshot": model.derived["snapshot"],
            "model": bm.details(),
            "phase_wall_s": {k: round(v, 1) for k, v in phases.items()},
            "direct_wrote_into_project_copy": tree_changes(
                copy_before, tree_state(direct_cfg.parent)),
            "model_project_modified": tree_changes(original, tree_state(config.parent)),
        }
        return res
    finally:
        shutil.rmtree(work, ignore_errors=True)
