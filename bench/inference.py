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

    def engine_run(video: Path, opts: dict) -> dict:
        model, inference = state["engine"]
        # the resource reads these per call: cropping on/off, the batch (GPU sweeps)
        os.environ["DLC_PLATFORM_CROPPING"] = opts.get("cropping", "off")
        if opts.get("batch"):
            from resources import DLCInference

            inference = DLCInference(device=device, engine="platform", work_dir=str(work),
                                     progress_interval_s=3600.0, batch_size=opts["batch"])
        result = inference.analyze(model, video, "bench__inference")
        state["last"] = result
        ex = result.extra
        out = {"n": result.n_frames, "network_s": ex.get("network_s"),
               "model_load_s": result.model_load_s, "batch_size": result.batch_size,
               "runtime": ex.get("runtime"), "decode_wait_s": ex.get("decode_wait_s"),
               "postprocess_s": ex.get("postprocess_s"),
               "full_frame_share": ex.get("full_frame_share"),
               "runtime_choice": (ex.get("runtime_choice") or {}).get("chosen"),
               "cropping": {k: v for k, v in (ex.get("cropping") or {}).items()
                            if k != "events"}, "summary": ex.get("summary")}
        if opts.get("poses"):
            out["poses"] = _read_poses(result.h5_path)
        return out

    def dlc_run(video: Path, opts: dict) -> dict:
        import deeplabcut

        counter["i"] += 1
        dest = work / f"run-{counter['i']:03d}"
        dest.mkdir(parents=True)
        kwargs = {}
        if opts.get("dynamic"):
            kwargs["dynamic"] = tuple(opts["dynamic"])
        batch = opts.get("batch") or (1 if kind == "dlc best" else 8)
        deeplabcut.analyze_videos(str(config), [str(video)], shuffle=1, trainingsetindex=0,
                                  device=device, batch_size=batch, destfolder=str(dest),
                                  **kwargs)
        h5 = sorted(dest.glob("*.h5"))
        if not h5:
            raise RuntimeError(f"deeplabcut.analyze_videos wrote no .h5 into {dest}")
        out = {"poses": _read_poses(h5[0])} if opts.get("poses") else {}
        shutil.rmtree(dest, ignore_errors=True)
        return out

    if kind == "engine":  # the asset loads the registry before it calls analyze(): untimed
        from dlc_tracking.registry.registry_file import load_registry
        from resources import DLCInference

        state["engine"] = (load_registry(registry).model("bench"), DLCInference(
            device=device, engine="platform", work_dir=str(work), progress_interval_s=3600.0))

    def run(video: Path, opts: dict | None = None) -> dict:
        opts = opts or {}
        sampler = GpuSampler() if device.startswith("cuda") else None
        _sync(device)
        if sampler:
            sampler.start()
        t0, c0 = time.perf_counter(), _cpu_s()
        extra = engine_run(video, opts) if kind == "engine" else dlc_run(video, opts)
        _sync(device)
        out = {"s": time.perf_counter() - t0, "cpu_s": _cpu_s() - c0, **extra}
        if sampler:
            out["gpu"] = sampler.stop()
        return out

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

    ops = {"run": lambda r: run(Path(r["video"]), r.get("opts")),
           "network": lambda r: network_speed(config, device, Path(r["video"]), r),
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


# ----------------------------------------------------------------------------------------
# Issue 22: the networks labs train (resnet_50, hrnet_w32, cspnext_m) on h264 video
# ----------------------------------------------------------------------------------------

NETS = ("resnet_50", "hrnet_w32", "cspnext_m")
NET_SIZES = ((640, 480), (1280, 720))
NET_FRAMES = {(640, 480): 120, (1280, 720): 60}
QUICK_NET_FRAMES = {(640, 480): 32, (1280, 720): 16}
CUDA_FRAMES = 600
CUDA_BATCHES = (8, 32, 64)
TINY_CANVAS = (960, 544)  # the tiny model's ~544 px crop pays from here
TINY_FRAMES, QUICK_TINY_FRAMES = 300, 96
CONFIDENT = 0.6
DLC_DYNAMIC_THRESHOLD = 0.5
DEFAULT_TARGET_NETS, CROP_TARGET_NETS = 1.5, 3.0  # the brief's CPU targets, resnet_50
NET_PEERS = ("engine", "dlc defaults", "dlc best", "dlc dynamic")


def _read_poses(h5: Path) -> list:
    import pandas as pd

    table = pd.read_hdf(h5, "df_with_missing").to_numpy()
    return table.reshape(len(table), -1, 3).round(5).tolist()


def encode_h264(source: Path, out: Path) -> Path:
    """Re-encode ``source`` as lab cameras write it: H.264, yuv420p, with the ffmpeg
    imageio-ffmpeg ships (crf 18, preset fast)."""
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-i",
                    str(source), "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18",
                    "-preset", "fast", str(out)], check=True)
    return out


def make_h264_video(path: Path, n_frames: int, width: int, height: int, seed: int):
    """A synthetic open field filling the frame, h264 yuv420p; returns (path, ground truth)."""
    from dlc_tracking.synthetic.openfield import render_video, simulate_openfield

    gt = simulate_openfield(n_frames=n_frames, fps=FPS, width=width, height=height, seed=seed)
    raw = render_video(gt, path.with_suffix(".mp4v.mp4"), noise=2.0, seed=seed)
    encode_h264(raw, path)
    raw.unlink()
    return path, gt


class GpuSampler:
    """``nvidia-smi`` sampled every 100 ms while a call runs: GPU utilisation and memory."""

    def __init__(self, interval_ms: int = 100):
        self.interval_ms = interval_ms
        self.proc = None

    def start(self) -> None:
        if shutil.which("nvidia-smi") is None:
            return
        self.proc = subprocess.Popen(
            ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used",
             "--format=csv,noheader,nounits", f"-lms={self.interval_ms}"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def stop(self) -> dict:
        if self.proc is None:
            return {"error": "nvidia-smi not found"}
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=10)
        util, mem = [], []
        for line in out.splitlines():
            parts = [p.strip() for p in line.split(",")]
            if len(parts) >= 2 and parts[0].isdigit():
                util.append(float(parts[0]))
                mem.append(float(parts[1]))
        return {"samples": len(util), "util_mean_pct": round(float(sum(util) / len(util)), 1)
                if util else None, "util_median_pct": median(util) if util else None,
                "mem_max_mib": max(mem) if mem else None}


def network_speed(config: Path, device: str, video: Path, request: dict) -> dict:
    """The engine's networks alone on the video's frames: full frame vs the crop the
    cropper would use (its receptive-field margin, the animal's size), alternated batch by
    batch; on CUDA also autocast fp16 and the host-to-device copy, per batch size."""
    import numpy as np

    from bench.precision import _frames
    from dlc_tracking.inference.cropping import CropSettings, check_margin, crop_size
    from dlc_tracking.inference.engine import (
        DEFAULT_CPU_BATCH,
        build_network,
        load_model,
        poses_of,
        receptive_field,
    )

    frames = _frames(video)
    n, height, width = frames.shape[:3]
    loaded = load_model(config, 1, 0)
    # the full frame gets this machine's table; the crop sizes run ONNX Runtime (their own
    # tables would add minutes of measurement here)
    loaded.runtime_setting = request.get("runtime")
    rf = receptive_field(loaded, height, width)
    margin = check_margin(CropSettings(), rf["effective_px"])
    cw, ch = crop_size(float(request["extent_px"]), margin, width, height)
    out = {"receptive_field": rf, "margin_px": margin, "crop_size": [cw, ch],
           "crop_share_of_frame": round(cw * ch / (width * height), 3)}
    if not device.startswith("cuda"):
        batch = DEFAULT_CPU_BATCH
        full, _ = build_network(loaded, device, height, width, print, batch=batch)
        out["runtime_full"] = getattr(full, "choice", {}).get("chosen")
        # the crop this model's receptive field gives, and fixed sizes (what a trained
        # model with a smaller field would get)
        shapes = {"full": (width, height), "rf crop": (cw, ch)}
        for side in request.get("crop_sides", (256, 384)):
            if side < min(width, height):
                shapes[f"{side} crop"] = (side, side)
        nets = {"full": full}
        loaded.runtime_setting = "onnxruntime"
        for name, (w, h) in shapes.items():
            if name != "full":
                nets[name] = nets["full"] if (w, h) == (width, height) else build_network(
                    loaded, device, h, w, print, batch=batch)[0]
        times = dict.fromkeys(shapes, 0.0)
        for i in range(0, n, batch):
            chunk = frames[i:i + batch]
            order = list(shapes) if (i // batch) % 2 else list(shapes)[::-1]
            for name in order:
                w, h = shapes[name]
                y0, x0 = (height - h) // 2, (width - w) // 2
                x = chunk if name == "full" else np.ascontiguousarray(
                    chunk[:, y0:y0 + h, x0:x0 + w])
                t0 = time.perf_counter()
                poses_of(nets[name](x), loaded)
                times[name] += time.perf_counter() - t0
        out["runtime_crop"] = getattr(nets["rf crop"], "choice", {}).get("chosen")
        out.update(full_s_per_frame=times["full"] / n, crop_s_per_frame=times["rf crop"] / n,
                   crop_speedup=round(times["full"] / times["rf crop"], 3),
                   sizes={name: {"size": list(shapes[name]),
                                 "frames_per_s": round(n / times[name], 3),
                                 "speedup": round(times["full"] / times[name], 3)}
                          for name in shapes})
        return out
    import torch

    from dlc_tracking.inference.engine import pinned_allocator

    rows = {}
    for batch in request.get("batches", CUDA_BATCHES):
        fp32, _ = build_network(loaded, device, height, width, print, batch=batch)
        fp16 = type(fp32)(fp32.network, device, autocast=torch.float16)
        pinned = pinned_allocator((batch, height, width, 3))
        pinned[:] = frames[:batch] if n >= batch else frames[np.arange(batch) % n]
        row = {}
        for name, net in (("fp32", fp32), ("fp16", fp16)):
            net(pinned)  # warm-up (cudnn.benchmark picks its kernels)
            torch.cuda.synchronize()
            sampler = GpuSampler()
            sampler.start()
            t0 = time.perf_counter()
            reps = max(3, 256 // batch)
            for _ in range(reps):
                net(pinned)
            torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            row[name] = {"frames_per_s": round(reps * batch / dt, 1), "gpu": sampler.stop()}
        t0 = time.perf_counter()
        for _ in range(10):
            torch.from_numpy(pinned).to(device, non_blocking=True)
        torch.cuda.synchronize()
        row["h2d_ms_per_batch"] = round(100 * (time.perf_counter() - t0), 3)
        rows[str(batch)] = row
    out["batches"] = rows
    return out


def parity(poses: list, reference: list) -> dict:
    """Displacement of ``poses`` vs ``reference`` (DLC full frame fp32) on the keypoints
    the reference gives a likelihood >= 0.6: p99, max, how many; likelihood max diff."""
    import numpy as np

    a, b = np.asarray(poses, float), np.asarray(reference, float)
    if a.shape != b.shape:
        return {"error": f"shapes differ {a.shape} vs {b.shape}"}
    conf = b[..., 2] >= CONFIDENT
    d = np.hypot(*(a[..., :2] - b[..., :2]).transpose(2, 0, 1))[conf]
    return {"confident": int(conf.sum()), "of": int(conf.size),
            "p99_px": round(float(np.percentile(d, 99)), 4) if d.size else None,
            "max_px": round(float(d.max()), 4) if d.size else None,
            "likelihood_max_diff": round(float(np.abs(a[..., 2] - b[..., 2]).max()), 4)}


def ground_truth_error(poses: list, gt_kp, visible) -> dict:
    """Median and p95 error (px) vs the synthetic ground truth on visible parts."""
    import numpy as np

    a = np.asarray(poses, float)
    d = np.hypot(*(a[..., :2] - gt_kp).transpose(2, 0, 1))[visible]
    return {"median_px": round(float(np.median(d)), 3),
            "p95_px": round(float(np.percentile(d, 95)), 3), "points": int(d.size)}


def _pair_runs(calls: dict[str, tuple[Worker, dict]], video: Path, repeats: int
               ) -> dict[str, list]:
    """Each peer ``repeats`` times, order reversed every round (A B C, C B A, ...)."""
    runs: dict[str, list] = {k: [] for k in calls}
    order = list(calls)
    for i in range(repeats):
        for name in (order if i % 2 == 0 else order[::-1]):
            worker, opts = calls[name]
            runs[name].append(worker.call(op="run", video=str(video),
                                          opts={**opts, "poses": True}))
    return runs


def _summarise(runs: dict[str, list], n: int, reference: str = "dlc defaults") -> dict:
    """frames/s (median), ratios to each DLC peer (median of paired ratios), parity."""
    out: dict = {}
    fps = {k: [n / r["s"] for r in v] for k, v in runs.items()}
    ref = runs[reference][0]["poses"]
    for name, v in runs.items():
        row = {"frames_per_s": round(median(fps[name]), 3),
               "samples": [round(x, 3) for x in fps[name]],
               "cpu_s_per_frame": round(median([r["cpu_s"] / n for r in v]), 4),
               "parity_vs_dlc_full_frame": parity(v[0]["poses"], ref)}
        for key in ("runtime", "runtime_choice", "full_frame_share", "cropping", "summary",
                    "batch_size", "network_s", "gpu"):
            if key in v[0]:
                row[key] = v[0][key]
        for peer in ("dlc defaults", "dlc best"):
            if peer in runs and peer != name:
                ratios = [a / b for a, b in zip(fps[name], fps[peer], strict=True)]
                row[f"ratio_vs_{peer.replace(' ', '_')}"] = round(median(ratios), 3)
        out[name] = row
    return out


def _net_workers(config: Path, device: str, work: Path, log: Path, kinds) -> dict:
    from dlc_tracking.registry.editing import add_model

    registry = work / "registry.yaml"
    shutil.copy(ROOT / "registry" / "registry.yaml", registry)
    add_model(registry, "bench", config)
    direct = copy_project(config, work / "direct_project")
    return {k: Worker(k, device, registry, direct, work / k.replace(" ", "_"), log)
            for k in kinds}


def run_networks(nets=NETS, sizes=NET_SIZES, frames: int | None = None, repeats: int = 1,
                 device: str = "cpu", quick: bool = False, tiny: bool = True,
                 say=print) -> dict:
    """Issue 22's benchmark (``python -m bench.inference``): see BENCHMARKS.md."""
    start = time.perf_counter()
    on_cuda = device.startswith("cuda")
    work = Path(tempfile.mkdtemp(prefix="bench-nets-"))
    log = ROOT / "bench" / "results" / "inference-nets-workers.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    result: dict = {"device": device, "quick": quick, "repeats": repeats,
                    "load_average": [round(os.getloadavg()[0], 2)], "nets": {},
                    "cpu_count": os.cpu_count()}
    try:
        if tiny and not on_cuda:
            say("[bench.inference] tiny trained model: cropping on real predictions")
            result["tiny_cropping"] = run_tiny_cropping(work / "tiny", log, repeats, quick, say)
            result["load_average"].append(round(os.getloadavg()[0], 2))
        for net in nets:
            bm = bench_model(say=say, net_type=net)
            for (w, h) in sizes:
                n = frames or (CUDA_FRAMES if on_cuda else (
                    QUICK_NET_FRAMES if quick else NET_FRAMES)[(w, h)])
                label = f"{net} {w}x{h}"
                say(f"[bench.inference] {label}: {n} frames, {bm.kind}")
                folder = work / f"{net}-{w}x{h}"
                folder.mkdir(parents=True)
                video, gt = make_h264_video(folder / "video.mp4", n, w, h, seed=11)
                warm, _ = make_h264_video(folder / "warm.mp4", WARMUP_FRAMES, w, h, seed=12)
                kinds = ("engine", "dlc defaults") if on_cuda else ("engine", "dlc defaults",
                                                                    "dlc best")
                workers = _net_workers(bm.config, device, folder, log, kinds)
                try:
                    result["nets"][label] = _one_network(workers, video, warm, gt, n, repeats,
                                                         on_cuda, say)
                finally:
                    for wk in workers.values():
                        wk.close()
                result["nets"][label]["model"] = bm.details()
                result["load_average"].append(round(os.getloadavg()[0], 2))
                shutil.rmtree(folder, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["wall_s"] = round(time.perf_counter() - start, 1)
    return result


def _one_network(workers: dict, video: Path, warm: Path, gt, n: int, repeats: int,
                 on_cuda: bool, say) -> dict:
    import numpy as np

    extent = float(np.max(np.linalg.norm(gt.keypoints[:, :, None] - gt.keypoints[:, None],
                                         axis=-1)))
    t0 = time.perf_counter()
    for wk in workers.values():  # imports, the engine's export and runtime table
        wk.call(op="run", video=str(warm))
    out: dict = {"frames": n, "warm_up_s": round(time.perf_counter() - t0, 1),
                 "animal_extent_px": round(extent, 1)}
    if on_cuda:
        batches: dict = {}
        for batch in CUDA_BATCHES:
            calls = {"engine": (workers["engine"], {"batch": batch}),
                     "dlc defaults": (workers["dlc defaults"], {"batch": batch})}
            runs = _pair_runs(calls, video, repeats)
            batches[str(batch)] = _summarise(runs, n)
            say(f"  batch {batch}: " + ", ".join(
                f"{k} {v['frames_per_s']:.1f} frames/s (GPU "
                f"{(v.get('gpu') or {}).get('util_mean_pct')} %)"
                for k, v in batches[str(batch)].items()))
        out["batches"] = batches
        out["network"] = workers["engine"].call(op="network", video=str(video),
                                                extent_px=extent, batches=list(CUDA_BATCHES))
        return out
    margin = workers["engine"].call(op="network", video=str(warm), extent_px=extent)
    calls = {"engine": (workers["engine"], {"cropping": "off"}),
             "dlc defaults": (workers["dlc defaults"], {}),
             "dlc best": (workers["dlc best"], {}),
             "dlc dynamic": (workers["dlc defaults"], {
                 "batch": 1, "dynamic": [True, DLC_DYNAMIC_THRESHOLD, margin["margin_px"]]})}
    runs = _pair_runs(calls, video, repeats)
    out["peers"] = _summarise(runs, n)
    net = workers["engine"].call(op="network", video=str(video), extent_px=extent)
    out["network"] = net
    say("  " + ", ".join(f"{k} {v['frames_per_s']:.2f} frames/s"
                         for k, v in out["peers"].items()))
    return out


def run_tiny_cropping(work: Path, log: Path, repeats: int, quick: bool, say) -> dict:
    """Cropping on the tiny trained model's real predictions: its 200 x 150 scene on a
    640 x 480 canvas (the animal at the size it was trained on), h264; the platform engine
    full frame and cropped, DLC's defaults and DLC's ``dynamic`` (same margin) alternated;
    parity vs DLC full frame and error vs the ground truth."""
    from dlc_tracking.synthetic.openfield import simulate_openfield
    from dlc_tracking.synthetic.tiny_model import cached_config_path, read_metadata
    from dlc_tracking.synthetic.video_variants import openfield_on_canvas

    config = cached_config_path("pytorch")
    if config is None:
        return {"skipped": "the tiny model is not cached (python -m "
                           "dlc_tracking.synthetic.tiny_model builds it, ~10 min)"}
    work.mkdir(parents=True)
    n = QUICK_TINY_FRAMES if quick else TINY_FRAMES
    gt = simulate_openfield(n_frames=n, fps=FPS, width=200, height=150, seed=31)
    offset = ((TINY_CANVAS[0] - 200) // 2 - 200, (TINY_CANVAS[1] - 150) // 2 + 60)
    raw, kp, visible = openfield_on_canvas(gt, work / "raw.mp4", TINY_CANVAS, offset,
                                           hidden=(n // 2, n // 2 + 20))
    video = encode_h264(raw, work / "tiny.mp4")
    warm_gt = simulate_openfield(n_frames=WARMUP_FRAMES, fps=FPS, width=200, height=150,
                                 seed=32)
    warm = encode_h264(openfield_on_canvas(warm_gt, work / "wraw.mp4", TINY_CANVAS,
                                           offset)[0], work / "warm.mp4")
    workers = _net_workers(config, "cpu", work, log, ("engine", "dlc defaults"))
    try:
        for wk in workers.values():
            wk.call(op="run", video=str(warm))
        wk = workers["engine"]
        wk.call(op="run", video=str(warm), opts={"cropping": "on"})
        extent = 26.0
        net = wk.call(op="network", video=str(warm), extent_px=extent)
        calls = {"engine": (wk, {"cropping": "off"}),
                 "engine crop": (wk, {"cropping": "on"}),
                 "dlc defaults": (workers["dlc defaults"], {}),
                 "dlc dynamic": (workers["dlc defaults"], {
                     "batch": 1, "dynamic": [True, DLC_DYNAMIC_THRESHOLD, net["margin_px"]]})}
        runs = _pair_runs(calls, video, repeats)
    finally:
        for w in workers.values():
            w.close()
    peers = _summarise(runs, n)
    for name, v in runs.items():
        peers[name]["vs_ground_truth"] = ground_truth_error(v[0]["poses"], kp, visible)
    say("  tiny: " + ", ".join(f"{k} {v['frames_per_s']:.1f} frames/s" for k, v in
                               peers.items()))
    return {"model": read_metadata(config).get("net_type"), "frames": n,
            "canvas": list(TINY_CANVAS), "animal_gone_frames": [n // 2, n // 2 + 20],
            "peers": peers, "network": net}


def _print_networks(result: dict) -> None:
    """The figures as a short table."""
    tiny = result.get("tiny_cropping") or {}
    if "peers" in tiny:
        print(f"\ntiny trained model ({tiny['model']}), {tiny['frames']} frames, "
              f"{tiny['canvas'][0]}x{tiny['canvas'][1]} h264:")
        for k, v in tiny["peers"].items():
            par = v["parity_vs_dlc_full_frame"]
            ratio = v.get("ratio_vs_dlc_defaults", 1.0)
            print(f"  {k:14s} {v['frames_per_s']:8.2f} frames/s  x{ratio} vs defaults  "
                  f"parity p99 {par['p99_px']} px "
                  f"(max {par['max_px']}, {par['confident']} pts)  full-frame share "
                  f"{v.get('full_frame_share')}  gt median {v['vs_ground_truth']['median_px']}")
    for label, r in result["nets"].items():
        print(f"\n{label} ({r['frames']} frames):")
        for k, v in (r.get("peers") or {}).items():
            par = v["parity_vs_dlc_full_frame"]
            r1, r2 = v.get("ratio_vs_dlc_defaults", 1.0), v.get("ratio_vs_dlc_best", 1.0)
            print(f"  {k:14s} {v['frames_per_s']:8.3f} frames/s  x{r1} vs defaults, x{r2} "
                  f"vs best  parity p99 {par['p99_px']} ({par['confident']} confident)")
        net = r.get("network") or {}
        if "sizes" in net:
            print(f"  network alone ({net['runtime_full']}), margin {net['margin_px']} px, "
                  f"receptive field {net['receptive_field']}: " + ", ".join(
                      f"{k} {v['size'][0]}x{v['size'][1]} {v['frames_per_s']:.2f} frames/s "
                      f"(x{v['speedup']})" for k, v in net["sizes"].items()))
        for b, row in (r.get("batches") or {}).items():
            print(f"  batch {b}: " + ", ".join(f"{k} {v['frames_per_s']:.1f} frames/s"
                                                for k, v in row.items()))
    print(f"\nwall {result['wall_s']} s, load average {result['load_average']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.inference", description=__doc__)
    p.add_argument("--device", default=None, help="cpu (default) | cuda | cuda:N")
    p.add_argument("--nets", default=",".join(NETS),
                   help=f"comma-separated DLC networks (default {','.join(NETS)})")
    p.add_argument("--sizes", default="640x480,1280x720")
    p.add_argument("--frames", type=int, help="frames per video (default per size)")
    p.add_argument("--repeats", type=int, help="alternated rounds (default 1)")
    p.add_argument("--quick", action="store_true",
                   help="resnet_50 at 640x480 only unless --nets/--sizes say otherwise, "
                        "short videos: fits ~15 min on a loaded 2-core CPU")
    p.add_argument("--no-tiny", action="store_true",
                   help="skip the tiny trained model's cropping section")
    p.add_argument("--suite", action="store_true",
                   help="the suite's benchmark 1 instead (tiny model, 3 peers; "
                        "`python -m bench --inference`)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "inference.json")
    p.add_argument("--worker", choices=PEERS, help=argparse.SUPPRESS)
    p.add_argument("--registry", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        _worker_main(args.worker, args.device or "cpu", args.registry, args.config, args.work)
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.suite:
        from bench.common import format_table

        result = run(repeats=args.repeats, quick=args.quick, device=args.device)
        print(format_table([result.to_dict()]))
        args.out.write_text(json.dumps(result.to_dict(), indent=2, default=str))
        print(f"[bench.inference] wrote {args.out}")
        return 0
    argv = argv if argv is not None else sys.argv[1:]
    nets = tuple(args.nets.split(","))
    sizes = tuple(tuple(int(v) for v in s.split("x")) for s in args.sizes.split(","))
    if args.quick:
        nets = nets if any(a.startswith("--nets") for a in argv) else ("resnet_50",)
        sizes = sizes if any(a.startswith("--sizes") for a in argv) else ((640, 480),)
    device = args.device or os.environ.get(DEVICE_ENV, "cpu")
    result = run_networks(nets=nets, sizes=sizes, frames=args.frames,
                          repeats=args.repeats or 1, device=device, quick=args.quick,
                          tiny=not args.no_tiny)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    _print_networks(result)
    print(f"[bench.inference] wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
