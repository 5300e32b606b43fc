"""Benchmark 1: the platform's inference engine versus DeepLabCut's analyze_videos.

Same model, same synthetic videos, same device. Three peers, each in its own long-lived
worker process (started once, warmed up once on a short video, then driven over a pipe),
alternated call by call (engine, defaults, best; best, defaults, engine; ...):

- ``engine``: ``resources.DLCInference(device=D, engine="platform").analyze(model, video,
  rid)``, the ``dlc_predictions`` asset's call (stages the model, decodes in a thread, ONNX
  Runtime on the CPU / PyTorch on CUDA, writes DLC's files); its default batch size;
- ``dlc defaults``: ``deeplabcut.analyze_videos(config, [video], device=D, batch_size=8,
  destfolder=<fresh>)`` on a copy of the project, in a process with glibc's default
  malloc settings: what users run;
- ``dlc best``: the same call with ``batch_size=1`` in a process started with
  ``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=
  17179869184``: the best settings found for analyze_videos on this CPU (1.6x its
  defaults, bit-identical output).

Separate processes, because the allocator setting is process-wide: the engine applies it
in its own process (``dlc_tracking.inference.allocator``), which would otherwise speed up
the "defaults" peer too.

Per frame size (640x480 and 1280x720): frames/s of each peer (frames / wall seconds of the
whole call, model load and writing included), CPU seconds per frame (user + system of the
worker process, all threads), the ratios engine / peer (median of the paired ratios;
targets >= 2.5 against the defaults and >= 1.3 against the best settings), the decode-only
ceiling (the engine's decoder thread alone, frames/s), and the share of each call's time
spent outside the network (engine: its own timers; DLC: one extra, untimed call with a
forward hook on DLC's ``PoseModel``). Memory: a fresh engine worker's peak RSS after a short
video and after a 10-minute one (18,000 frames at 30 fps, 160x120 so that it takes ~1 min;
frames are never all in memory: bounded by the queue of decoded batches,
``(queue 3 + 2) x batch x frame``).

The machine is shared: medians of paired runs, load average recorded.

Command line (also runs on a CUDA device, unchanged)::

    .venv/bin/python -m bench --inference [--repeats N] [--quick]
    .venv/bin/python -m bench.inference [--device cuda] [--repeats N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bench.common import BenchResult, median
from bench.model import bench_model

ROOT = Path(__file__).resolve().parents[1]
FPS = 30.0
SIZES = ((640, 480), (1280, 720))
FULL_FRAMES = {(640, 480): 48, (1280, 720): 24}
QUICK_FRAMES = {(640, 480): 16, (1280, 720): 8}
WARMUP_FRAMES = 8
FULL_REPEATS, QUICK_REPEATS = 3, 1
LONG_FRAMES, LONG_SIZE = 18_000, (160, 120)  # peak-RSS check: 10 minutes at 30 fps
DEFAULT_TARGET, BEST_TARGET = 2.5, 1.3
GLIBC_BEST = ("glibc.malloc.mmap_threshold=4294967296:"
              "glibc.malloc.trim_threshold=17179869184")
PEERS = ("engine", "dlc defaults", "dlc best")
DEVICE_ENV = "BENCH_INFERENCE_DEVICE"


def make_video(path: Path, n_frames: int, width: int, height: int, seed: int) -> Path:
    """A synthetic open-field video (``simulate_openfield`` + ``render_video``)."""
    from dlc_tracking.synthetic.openfield import render_video, simulate_openfield

    gt = simulate_openfield(n_frames=n_frames, fps=FPS, width=width, height=height, seed=seed)
    return render_video(gt, path, noise=2.0, seed=seed)


def copy_project(config: Path, dest: Path) -> Path:
    """A full copy of a DLC project with ``project_path`` pointing at the copy."""
    shutil.copytree(config.parent, dest, symlinks=False)
    cfg_path = dest / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["project_path"] = str(dest)
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return cfg_path


# ----------------------------------------------------------------------------------------
# Worker processes
# ----------------------------------------------------------------------------------------


class Worker:
    """One peer in its own Python process, driven by JSON lines over a pipe."""

    def __init__(self, kind: str, device: str, registry: Path, config: Path, work: Path,
                 log: Path):
        env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
        env.pop("GLIBC_TUNABLES", None)
        if kind == "dlc best":
            env["GLIBC_TUNABLES"] = GLIBC_BEST
        self.kind = kind
        self._log = log.open("a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.inference", "--worker", kind, "--device", device,
             "--registry", str(registry), "--config", str(config), "--work", str(work)],
            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._log, text=True)

    def call(self, **request) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"bench worker {self.kind!r} died (see its log)")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"bench worker {self.kind!r}: {reply['error']}")
        return reply

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        self._log.close()


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _worker_main(kind: str, device: str, registry: Path, config: Path, work: Path) -> None:
    """Serve requests on stdin; replies on the original stdout (DLC prints go to stderr)."""
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    counter = {"i": 0}
    state: dict = {}

    def engine_run(video: Path) -> dict:
        model, inference = state["engine"]
        result = inference.analyze(model, video, "bench__inference")
        state["last"] = result
        ex = result.extra
        return {"n": result.n_frames, "network_s": ex.get("network_s"),
                "model_load_s": result.model_load_s, "batch_size": result.batch_size,
                "runtime": ex.get("runtime"), "decode_wait_s": ex.get("decode_wait_s"),
                "postprocess_s": ex.get("postprocess_s")}

    def dlc_run(video: Path) -> dict:
        import deeplabcut

        counter["i"] += 1
        dest = work / f"run-{counter['i']:03d}"
        dest.mkdir(parents=True)
        deeplabcut.analyze_videos(str(config), [str(video)], shuffle=1, trainingsetindex=0,
                                  device=device, batch_size=1 if kind == "dlc best" else 8,
                                  destfolder=str(dest))
        if not any(dest.glob("*.h5")):
            raise RuntimeError(f"deeplabcut.analyze_videos wrote no .h5 into {dest}")
        shutil.rmtree(dest, ignore_errors=True)
        return {}

    if kind == "engine":  # the asset loads the registry before it calls analyze(): untimed
        from dlc_tracking.registry.registry_file import load_registry
        from resources import DLCInference

        state["engine"] = (load_registry(registry).model("bench"), DLCInference(
            device=device, engine="platform", work_dir=str(work), progress_interval_s=3600.0))

    def run(video: Path) -> dict:
        _sync(device)
        t0, c0 = time.perf_counter(), _cpu_s()
        extra = engine_run(video) if kind == "engine" else dlc_run(video)
        _sync(device)
        return {"s": time.perf_counter() - t0, "cpu_s": _cpu_s() - c0, **extra}

    def profile(video: Path) -> dict:
        """DLC's network time in one call (hooks on PoseModel's forward; not timed)."""
        import torch
        from deeplabcut.pose_estimation_pytorch.models.model import PoseModel

        spent = {"s": 0.0, "t": 0.0}

        def pre(module, _inputs):
            if isinstance(module, PoseModel):
                _sync(device)
                spent["t"] = time.perf_counter()

        def post(module, _inputs, _outputs):
            if isinstance(module, PoseModel):
                _sync(device)
                spent["s"] += time.perf_counter() - spent["t"]

        h1 = torch.nn.modules.module.register_module_forward_pre_hook(pre)
        h2 = torch.nn.modules.module.register_module_forward_hook(post)
        try:
            out = run(video)
        finally:
            h1.remove()
            h2.remove()
        out["network_s"] = spent["s"]
        return out

    def decode(video: Path, batch: int) -> dict:
        from dlc_tracking.inference.decoding import FrameBatches
        from dlc_tracking.io.video import probe_video

        info = probe_video(video)
        batches = FrameBatches(video, info.n_frames, batch, info.width_px, info.height_px)
        t0 = time.perf_counter()
        n = sum(len(frames) for _start, frames in batches)
        return {"fps": n / (time.perf_counter() - t0)}

    ops = {"run": lambda r: run(Path(r["video"])),
           "profile": lambda r: profile(Path(r["video"])),
           "decode": lambda r: decode(Path(r["video"]), int(r.get("batch", 8))),
           "rss": lambda r: {"peak_rss_mib": resource.getrusage(
               resource.RUSAGE_SELF).ru_maxrss / 1024.0}}
    for line in sys.stdin:
        request = json.loads(line)
        try:
            reply = ops[request["op"]](request)
        except Exception as exc:  # reported to the parent, which stops the benchmark
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        proto.write(json.dumps(reply, default=str) + "\n")
        proto.flush()


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


# ----------------------------------------------------------------------------------------
# The benchmark
# ----------------------------------------------------------------------------------------


def _alternate(workers: dict[str, Worker], video: Path, repeats: int) -> dict[str, list]:
    """``repeats`` rounds; the order of the peers reverses every round."""
    runs: dict[str, list] = {k: [] for k in workers}
    order = list(workers)
    for i in range(repeats):
        for kind in (order if i % 2 == 0 else order[::-1]):
            runs[kind].append(workers[kind].call(op="run", video=str(video)))
    return runs


def _report_size(res: BenchResult, label: str, runs: dict[str, list], n: int,
                 profiles: dict[str, dict], decode_fps: float) -> dict:
    fps = {k: [n / r["s"] for r in v] for k, v in runs.items()}
    cpu = {k: [r["cpu_s"] / n for r in v] for k, v in runs.items()}
    eng = runs["engine"][0]
    for kind in PEERS:
        note = f"{median([r['s'] for r in runs[kind]]):.1f} s per call"
        if kind == "engine":
            note += f", {eng['runtime']}, batch {eng['batch_size']}"
        res.add(f"{label} {kind}", median(fps[kind]), "frames/s", note=note,
                samples=fps[kind], cpu_s=median([r["cpu_s"] for r in runs[kind]]))
        res.add(f"{label} {kind}: CPU s per frame", median(cpu[kind]), "s", samples=cpu[kind])
    for peer, target in (("dlc defaults", DEFAULT_TARGET), ("dlc best", BEST_TARGET)):
        ratios = [a / b for a, b in zip(fps["engine"], fps[peer], strict=True)]
        res.add(f"{label} ratio engine / {peer}", median(ratios), "x", ">=", target,
                note="frames/s, median of paired runs", samples=ratios)
        cpu_ratios = [b / a for a, b in zip(cpu["engine"], cpu[peer], strict=True)]
        res.add(f"{label}   same on CPU s per frame ({peer} / engine)", median(cpu_ratios),
                "x", samples=cpu_ratios)
    res.add(f"{label} decode-only ceiling", decode_fps, "frames/s",
            note="the engine's decoder thread alone (cv2 + RGB into batch buffers)")
    outside = {"engine": [1 - r["network_s"] / r["s"] for r in runs["engine"]]}
    for kind, prof in profiles.items():
        outside[kind] = [1 - prof["network_s"] / prof["s"]]
    for kind in PEERS:
        res.add(f"{label} {kind}: share of the call outside the network",
                100 * median(outside[kind]), "%",
                note="whole call (load, decode wait, post-processing, writing)"
                if kind == "engine" else "one profiled call (forward hook)",
                samples=[100 * v for v in outside[kind]])
    return {"engine_extra": {k: eng[k] for k in ("model_load_s", "decode_wait_s",
                                                   "postprocess_s", "network_s")}}


def run(repeats: int | None = None, quick: bool = False, device: str | None = None
        ) -> BenchResult:
    """Run the inference benchmark.

    Parameters
    ----------
    repeats : int, optional
        Rounds of alternated calls per frame size (default 3; 1 with ``quick``).
    quick : bool
        Short videos, one round: a smoke test.
    device : str, optional
        ``cpu`` (default, or ``$BENCH_INFERENCE_DEVICE``) or ``cuda``/``cuda:N``.

    Returns
    -------
    BenchResult
    """
    from dlc_tracking.registry.editing import add_model

    device = device or os.environ.get(DEVICE_ENV, "cpu")
    repeats = repeats or (QUICK_REPEATS if quick else FULL_REPEATS)
    frames = QUICK_FRAMES if quick else FULL_FRAMES
    start = time.perf_counter()
    bm = bench_model()
    work = Path(tempfile.mkdtemp(prefix="bench-inference-"))
    log = ROOT / "bench" / "results" / "inference-workers.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    workers: dict[str, Worker] = {}
    load = [os.getloadavg()[0]]
    try:
        registry = work / "registry.yaml"
        shutil.copy(ROOT / "registry" / "registry.yaml", registry)
        model = add_model(registry, "bench", bm.config)
        direct_cfg = copy_project(bm.config, work / "direct_project")
        videos = {size: make_video(work / f"v{size[0]}x{size[1]}.mp4", frames[size], *size,
                                   seed=11) for size in SIZES}
        warm = {size: make_video(work / f"w{size[0]}x{size[1]}.mp4", WARMUP_FRAMES, *size,
                                 seed=12) for size in SIZES}
        for kind in PEERS:
            workers[kind] = Worker(kind, device, registry, direct_cfg,
                                   work / kind.replace(" ", "_"), log)
        t0 = time.perf_counter()
        for size in SIZES:  # imports, first-call set-up, the engine's export per size
            for w in workers.values():
                w.call(op="run", video=str(warm[size]))
        warm_s = time.perf_counter() - t0
        res = BenchResult("inference")
        details: dict = {"device": device, "n_frames": {f"{w}x{h}": n for (w, h), n in
                                                        frames.items()}, "repeats": repeats}
        for size in SIZES:
            label = f"{size[0]}x{size[1]}"
            runs = _alternate(workers, videos[size], repeats)
            load.append(os.getloadavg()[0])
            profiles = {k: workers[k].call(op="profile", video=str(videos[size]))
                        for k in ("dlc defaults", "dlc best")}
            decode_fps = workers["engine"].call(op="decode", video=str(videos[size]),
                                                batch=runs["engine"][0]["batch_size"])["fps"]
            details[label] = _report_size(res, label, runs, frames[size], profiles,
                                          decode_fps)
        _memory(res, registry, direct_cfg, work, log, device, quick)
        res.add("model ready (cache look-up or build)", bm.ready_s, "s",
                note=f"{bm.kind} ({model.derived['net_type']})")
        load.append(os.getloadavg()[0])
        details.update({"model": bm.details(), "warm_up_s": round(warm_s, 1),
                        "load_average_1min": [round(v, 2) for v in load],
                        "wall_s": round(time.perf_counter() - start, 1),
                        "glibc_tunables_best": GLIBC_BEST})
        res.details = details
        return res
    finally:
        for w in workers.values():
            w.close()
        shutil.rmtree(work, ignore_errors=True)


def _memory(res: BenchResult, registry: Path, config: Path, work: Path, log: Path,
            device: str, quick: bool) -> None:
    """A fresh engine worker's peak RSS after a short video and after a long one."""
    n_long = LONG_FRAMES // 10 if quick else LONG_FRAMES
    short = make_video(work / "short.mp4", 60, *LONG_SIZE, seed=3)
    long_video = make_video(work / "long.mp4", n_long, *LONG_SIZE, seed=4)
    worker = Worker("engine", device, registry, config, work / "rss", log)
    try:
        worker.call(op="run", video=str(short))
        after_short = worker.call(op="rss")["peak_rss_mib"]
        t = worker.call(op="run", video=str(long_video))
        after_long = worker.call(op="rss")["peak_rss_mib"]
    finally:
        worker.close()
    w, h = LONG_SIZE
    bound_mib = 5 * t["batch_size"] * w * h * 3 / 2**20
    res.add(f"peak RSS, engine process, {n_long} frames {w}x{h}", after_long, "MiB",
            note=f"{after_short:.0f} MiB after 60 frames; decoded-frame queue bound "
                 f"{bound_mib:.1f} MiB; {n_long / t['s']:.0f} frames/s")
    res.add("  RSS growth from 60 to the long video", after_long - after_short, "MiB")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.inference", description=__doc__)
    p.add_argument("--device", default=None, help="cpu (default) | cuda | cuda:N")
    p.add_argument("--repeats", type=int)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--worker", choices=PEERS, help=argparse.SUPPRESS)
    p.add_argument("--registry", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        _worker_main(args.worker, args.device or "cpu", args.registry, args.config, args.work)
        return 0
    from bench.common import format_table

    result = run(repeats=args.repeats, quick=args.quick, device=args.device)
    print(format_table([result.to_dict()]))
    out = ROOT / "bench" / "results" / "inference.json"
    out.write_text(json.dumps(result.to_dict(), indent=2, default=str))
    print(f"[bench.inference] wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
