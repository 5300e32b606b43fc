"""The bf16 opt-in against fp32: network speed and keypoint displacement (not in the suite).

The engine's own pieces (``load_model``, ``build_network`` with ``precision="bf16"``,
``poses_of``, ``precision.compare_poses``) on one synthetic video: every frame through
both networks at the engine's CPU batch, alternated batch by batch, timed on wall and CPU
seconds; then the displacement statistics the per-recording check uses, over all frames
(the check itself looks at the first 64 only).

Command line::

    .venv/bin/python -m bench.precision [--size 640x480] [--frames 400] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.inference import make_video
from bench.model import bench_model


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _frames(video: Path) -> np.ndarray:
    import cv2

    capture = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    return np.stack(frames)


def run(width: int, height: int, n_frames: int, device: str = "cpu") -> dict:
    """fp32 vs bf16 on one video: seconds, CPU seconds per frame, displacement figures."""
    from dlc_tracking.inference.engine import (
        DEFAULT_CPU_BATCH,
        build_network,
        load_model,
        poses_of,
    )
    from dlc_tracking.inference.precision import compare_poses

    bm = bench_model()
    loaded = load_model(bm.config, 1, 0)
    batch = DEFAULT_CPU_BATCH
    full, low = build_network(loaded, device, height, width, print, batch=batch,
                              precision="bf16")
    if low is None:
        return {"error": "no bf16 runtime on this device (see the log above)"}
    with tempfile.TemporaryDirectory() as tmp:
        frames = _frames(make_video(Path(tmp) / "v.mp4", n_frames, width, height, seed=5))
    timing = {"fp32": [0.0, 0.0], "bf16": [0.0, 0.0]}
    poses = {"fp32": [], "bf16": []}
    for i in range(0, len(frames), batch):
        chunk = frames[i:i + batch]
        for name, network in (("fp32", full), ("bf16", low))[::(1 if i % 2 else -1)]:
            c0, t0 = _cpu_s(), time.perf_counter()
            maps = network(chunk)
            timing[name][0] += time.perf_counter() - t0
            timing[name][1] += _cpu_s() - c0
            poses[name].append(poses_of(maps, loaded))
    check = compare_poses(np.concatenate(poses["fp32"]), np.concatenate(poses["bf16"]))
    n = len(frames)
    return {
        "model": bm.kind, "size": f"{width}x{height}", "frames": n, "batch": batch,
        "fp32_runtime": full.runtime, "bf16_runtime": low.runtime,
        "fp32_frames_per_s": round(n / timing["fp32"][0], 2),
        "bf16_frames_per_s": round(n / timing["bf16"][0], 2),
        "fp32_cpu_s_per_frame": round(timing["fp32"][1] / n, 4),
        "bf16_cpu_s_per_frame": round(timing["bf16"][1] / n, 4),
        "speed_ratio_bf16_over_fp32": round(timing["fp32"][0] / timing["bf16"][0], 2),
        "all_frames": check.as_dict(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.precision", description=__doc__)
    p.add_argument("--size", default="640x480")
    p.add_argument("--frames", type=int, default=400)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    print(json.dumps(run(width, height, args.frames, args.device), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
