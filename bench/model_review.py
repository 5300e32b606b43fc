"""Benchmark: model review across an archive, and compare on 100 recordings.

- **review at archive scale**: ``select_frames`` (the part of ``dlc-platform models review``
  that reads the archive) over 1,000 recordings of 1 h at 50 Hz (180,000 frames each,
  180 million frames in all). Their ``frame_quality`` partitions are made by the real
  :func:`dlc_tracking.model_review.frame_quality.frame_quality` from synthetic
  predictions: 900 good recordings (~2 % of frames unsure) and 100 bad ones (~45 %),
  about 12 million flagged-frame rows, built once per size under /tmp. The selection runs
  in a fresh Python process (wall time inside it, and its peak RSS: memory bounded means
  it stays near the interpreter's own whatever the archive's size). Peer, same process:
  the global top-N of every flagged frame (``ORDER BY score DESC LIMIT N``), which is as
  fast but puts its frames in few recordings (the spread is reported for both).
- **extraction**: the picked frames written into a DLC project (PNG + machinelabels h5,
  DLC's add_new_videos), for 50 frames from 10 real synthetic videos; DeepLabCut's
  import, paid once per command, reported apart.
- **compare on 100 recordings**: ``compare_models`` runs the second version (the tiny
  model, perturbed) on 100 synthetic recordings (150 frames each, 200 x 150) with the
  platform's inference resource on CPU, writes model_predictions, model_agreement and
  the refreshed frame_quality; peer: the same inference alone (``DLCInference.analyze``
  on the same videos), so the platform's overhead is the difference.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import BenchResult
from dlc_tracking.model_review import frame_quality as fq
from dlc_tracking.warehouse import TABLES, Warehouse

FPS = 50.0
FULL = {"recordings": 1000, "frames": 180_000, "compare": 100, "compare_frames": 150}
QUICK = {"recordings": 100, "frames": 18_000, "compare": 10, "compare_frames": 60}
BAD_EVERY = 10  # one recording in 10 is bad
N_PICK = 50
REVIEW_TARGET_S = 60.0
MODEL = "tiny-iter0-shuffle1"
NEW_MODEL = "tiny-iter1-shuffle1"
PARTS = ["nose", "left_ear", "right_ear", "tail_base"]


def _rid(i: int) -> str:
    return f"m{i:04d}__s1__openfield"


def _recording_row(rid: str, video: str, n_frames: int, model: str) -> dict:
    row = {c: None for c in TABLES["recordings"].column_names}
    row.update({"recording_id": rid, "subject": rid.split("__")[0], "session": "s1",
                "video_path": video, "n_frames": n_frames, "fps": FPS, "width_px": 640,
                "height_px": 480, "model_name": model, "method_name": "two_ears",
                "has_video": True, "state_vector_status": "supported",
                "source": "inference", "fps_source": "video", "video_facts_source": "video"})
    return row


def synthetic_poses(n: int, bad: bool, rng: np.random.Generator) -> np.ndarray:
    """Predictions of a walking animal: confident except for unsure stretches (bad:
    ~45 % of frames; good: ~2 %) and a few jumps."""
    centre = 320 + np.cumsum(rng.normal(0, 0.8, (n, 2)), axis=0).clip(-250, 150)
    poses = np.empty((n, 4, 3))
    poses[..., :2] = centre[:, None] + np.array([[15, 0], [6, -6], [6, 6], [-15, 0]])
    poses[..., 2] = 0.97
    # unsure stretches of 1-3 s (how a model fails: a stretch of video, not single frames)
    share = 0.45 if bad else 0.02
    starts = rng.integers(0, n, int(share * n / 100))
    for s in starts:
        poses[s:s + rng.integers(50, 150), rng.integers(0, 4), 2] = rng.uniform(0.05, 0.5)
    jumps = rng.integers(1, n, 20 if bad else 2)
    poses[jumps, 3, :2] += 120
    return poses


def build_archive(root: Path, n_recordings: int, n_frames: int) -> Warehouse:
    """The archive's ``recordings`` and ``frame_quality`` partitions (cached by size)."""
    done = root / "done.json"
    store = Warehouse(root / "warehouse")
    if done.is_file():
        return store
    shutil.rmtree(root, ignore_errors=True)
    (root / "videos").mkdir(parents=True)
    params = fq.FrameQualityParams(likelihood_cutoff=0.6)
    time_s = np.arange(n_frames) / FPS
    rows = 0
    for i in range(n_recordings):
        rid = _rid(i)
        video = root / "videos" / f"{rid}.mp4"
        video.write_bytes(b"")  # the selection only checks that the video is there
        rng = np.random.default_rng(i)
        poses = synthetic_poses(n_frames, i % BAD_EVERY == 0, rng)
        flags = fq.frame_quality(rid, MODEL, poses, time_s, (640, 480), params)
        store.write_partition("frame_quality", rid, flags)
        store.write_partition("recordings", rid, pd.DataFrame(
            [_recording_row(rid, str(video), n_frames, MODEL)]))
        rows += len(flags)
    done.write_text(json.dumps({"rows": rows}))
    return store


CHILD = r"""
import json, resource, sys, time
from dlc_tracking.warehouse import Warehouse
from dlc_tracking.model_review.selection import select_frames
store = Warehouse(sys.argv[1]); model = sys.argv[2]; n = int(sys.argv[3]); peer = sys.argv[4]
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t = time.perf_counter()
if peer == "global_top_n":
    df = store.query("SELECT recording_id, frame FROM frame_quality WHERE model_name = ? "
                     "ORDER BY score DESC, recording_id, frame LIMIT ?", [model, n])
    spread = {"frames": len(df), "recordings": int(df["recording_id"].nunique()),
              "max_per_recording": int(df["recording_id"].value_counts().max())}
else:
    sel = select_frames(store, model, n)
    df = sel.frames
    spread = {"frames": len(df), "recordings": int(df["recording_id"].nunique()),
              "max_per_recording": int(df["recording_id"].value_counts().max()),
              "from_bad": int(sum(int(r[1:5]) % 10 == 0 for r in df["recording_id"]))}
wall = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT " + json.dumps({"wall_s": wall, "peak_rss_mib": rss, "rss_before_mib": rss0,
                              **spread}))
"""


def _child(store: Warehouse, peer: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(store.root), MODEL, str(N_PICK),
                          peer], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    # DuckDB may draw a progress bar on stdout during a long query: take the result line
    line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def bench_review(result: BenchResult, sizes: dict, repeats: int) -> None:
    root = Path(tempfile.gettempdir()) / (f"dlc_bench_review_{sizes['recordings']}x"
                                          f"{sizes['frames']}")
    t = time.perf_counter()
    store = build_archive(root, sizes["recordings"], sizes["frames"])
    build_s = time.perf_counter() - t
    rows = json.loads((root / "done.json").read_text())["rows"]
    runs = {"spread": [], "global_top_n": []}
    for _ in range(repeats):  # alternated
        for peer in runs:
            runs[peer].append(_child(store, peer))
    ours, peer = runs["spread"], runs["global_top_n"]
    wall = [r["wall_s"] for r in ours]
    result.add(f"review selection, {sizes['recordings']} recordings x 1 h at 50 Hz "
               f"({sizes['recordings'] * sizes['frames'] / 1e6:.0f} M frames), {N_PICK} frames",
               float(np.median(wall)), "s", "<=", REVIEW_TARGET_S,
               note=f"{rows / 1e6:.1f} M flagged-frame rows", samples=wall)
    result.add("  peak RSS of the selecting process", float(np.median(
        [r["peak_rss_mib"] for r in ours])), "MiB",
        note=f"interpreter + imports before: {ours[0]['rss_before_mib']:.0f} MiB")
    result.add("  frames from the bad recordings (1 in 10)", ours[0]["from_bad"], "frames",
               note=f"{ours[0]['recordings']} recordings, at most "
                    f"{ours[0]['max_per_recording']} per recording")
    result.add("  peer: global top-N of all flagged frames", float(np.median(
        [r["wall_s"] for r in peer])), "s",
        note=f"{peer[0]['recordings']} recording(s), up to {peer[0]['max_per_recording']} "
             "consecutive-ish frames of one")
    result.details["review"] = {"runs": runs, "archive_build_s": round(build_s, 1),
                                "flagged_rows": rows, "archive": str(root)}


def _project(tmp: Path, config: Path) -> Path:
    from dlc_tracking.training.projects import copy_project

    return copy_project(config, tmp / "project")


def bench_compare_and_extract(result: BenchResult, sizes: dict) -> None:
    from dlc_tracking.model_review.comparison import compare_models
    from dlc_tracking.model_review.extraction import extract_selected_frames
    from dlc_tracking.model_review.selection import select_frames
    from dlc_tracking.registry.editing import add_model
    from dlc_tracking.registry.registry_file import load_registry
    from dlc_tracking.synthetic.openfield import make_session
    from dlc_tracking.synthetic.tiny_model import build_tiny_model
    from dlc_tracking.tracking.predictions import to_long
    from resources import DLCInference
    from tests.review_helpers import perturbed_copy

    config = build_tiny_model("pytorch")
    tmp = Path(tempfile.mkdtemp(prefix="dlc_bench_compare_"))
    try:
        registry = tmp / "registry.yaml"
        shutil.copy(Path(__file__).resolve().parents[1] / "registry" / "registry.yaml",
                    registry)
        project = _project(tmp, config)
        add_model(registry, MODEL, project, pair_with=["two_ears"])
        add_model(registry, NEW_MODEL, perturbed_copy(config, tmp / "project_b"), shuffle=2,
                  pair_with=["two_ears"])
        reg = load_registry(registry)
        store = Warehouse(tmp / "warehouse")
        n, frames = sizes["compare"], sizes["compare_frames"]
        videos = {}
        t = time.perf_counter()
        for i in range(n):
            folder = make_session(tmp / "data", f"m{i:04d}", "s1", n_frames=frames,
                                  seed=100 + i, noise=30.0 if i % BAD_EVERY == 0 else 0.0)
            rid = _rid(i)
            videos[rid] = folder / "openfield.mp4"
            rng = np.random.default_rng(i)
            poses = synthetic_poses(frames, i % BAD_EVERY == 0, rng) / 3.2  # 200 x 150
            row = _recording_row(rid, str(videos[rid]), frames, MODEL)
            row.update({"width_px": 200, "height_px": 150, "method_name": "two_ears"})
            store.write_partition("recordings", rid, pd.DataFrame([row]))
            store.write_partition("predictions", rid, to_long(
                rid, MODEL, poses, PARTS, np.arange(frames) / FPS))
            store.write_partition("frame_quality", rid, fq.frame_quality(
                rid, MODEL, poses, np.arange(frames) / FPS, (200, 150),
                fq.FrameQualityParams()))
        setup_s = time.perf_counter() - t
        peer = DLCInference(device="cpu", work_dir=str(tmp / "peer_work"))
        ours = DLCInference(device="cpu", work_dir=str(tmp / "work"))
        new = reg.model(NEW_MODEL)
        peer.analyze(new, videos[_rid(0)], "warmup")  # model load, once per process
        t = time.perf_counter()
        for rid, video in videos.items():
            peer.analyze(new, video, rid)
        inference_s = time.perf_counter() - t
        ours.analyze(new, videos[_rid(0)], "warmup")
        t = time.perf_counter()
        comparison = compare_models(store, reg, MODEL, NEW_MODEL,
                                    lambda m, v, r: ours.analyze(m, v, r).h5_path)
        compare_s = time.perf_counter() - t
        assert len(comparison.inferred) == n, comparison.skipped
        result.add(f"compare on {n} recordings ({frames} frames each, CPU)", compare_s, "s",
                   note=f"{n * frames / compare_s:.0f} frames/s end to end")
        result.add("  peer: the same inference alone", inference_s, "s",
                   note=f"platform overhead {100 * (compare_s / inference_s - 1):+.0f} %")
        # extraction of 50 frames from 10 of those videos into the project
        sel = select_frames(store, MODEL, N_PICK, recordings=list(videos)[:10])
        # DeepLabCut's import (add_new_videos), paid once per `models review` command; here
        # the inference imported it already, so it is timed in a fresh interpreter
        out = subprocess.run([sys.executable, "-c", "import time; t = time.perf_counter(); "
                              "import deeplabcut.create_project.add; "
                              "print(time.perf_counter() - t)"], capture_output=True,
                             text=True, check=True)
        import_s = float(out.stdout.strip().splitlines()[-1])
        t = time.perf_counter()
        ext = extract_selected_frames(store, reg.model(MODEL), sel.frames, project)
        extract_s = time.perf_counter() - t
        result.add(f"extraction of {len(ext.images)} frames from "
                   f"{ext.images['recording_id'].nunique()} videos into the DLC project",
                   extract_s, "s", note=f"+ DeepLabCut import {import_s:.1f} s once per command")
        result.details["compare"] = {"recordings": n, "frames": frames,
                                     "setup_s": round(setup_s, 1),
                                     "compare_s": compare_s, "inference_alone_s": inference_s,
                                     "extract_s": extract_s, "dlc_import_s": import_s}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(repeats: int | None = None, quick: bool = False) -> BenchResult:
    """Run the model-review benchmark (``python -m bench --model-review``)."""
    sizes = QUICK if quick else FULL
    result = BenchResult("model_review", details={"sizes": sizes, "n_pick": N_PICK,
                                                  "cpus": os.cpu_count()})
    bench_review(result, sizes, repeats or (1 if quick else 3))
    bench_compare_and_extract(result, sizes)
    return result
