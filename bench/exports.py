"""Benchmark: time of each export of one recording of 1 h at 50 Hz (180,000 frames x 4
body parts), read from a real warehouse, and the labeled-video renderers.

The warehouse is filled the way the assets fill it (recordings row, predictions,
raw_state_vectors, processed_tracking) from noisy synthetic predictions
(:mod:`bench.data`). Each export is timed from the warehouse read to the file written:
NWB, movement (netCDF), DLC h5, CSV, and the occupancy table. The labeled video is timed
on a short synthetic clip (frames/s), OpenCV renderer vs DeepLabCut's
``create_labeled_video`` alternated in one run, and scaled to the hour.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from bench import data
from bench.common import BenchResult, median, repeat, timed
from dlc_tracking.synthetic.openfield import arena_layout
from dlc_tracking.tracking.methods import BUILTIN_METHODS
from dlc_tracking.tracking.params import ProcessingParams
from dlc_tracking.tracking.predictions import to_long
from dlc_tracking.tracking.processed import process_tracking
from dlc_tracking.tracking.raw_state import raw_state_vector
from dlc_tracking.warehouse import TABLES, Warehouse, insert_constant_columns

FPS = 50.0
FULL_FRAMES = 180_000
QUICK_FRAMES = 18_000
ARENA_CM = 50.0
RID = "bench__hour__openfield"
VIDEO_FRAMES = 600


def fill_warehouse(root: Path, n_frames: int) -> None:
    """One processed recording in a fresh warehouse, as the assets write it."""
    poses, body_parts, time_s = data.recording_poses(n_frames, FPS, seed=4)
    method = BUILTIN_METHODS["two_ears"]
    raw = raw_state_vector(method, poses, body_parts, time_s, "above",
                           (data.WIDTH, data.HEIGHT))
    x0, _, x1, _ = arena_layout(data.WIDTH, data.HEIGHT)
    params = ProcessingParams()
    processed = process_tracking(raw, params, pixels_per_cm=(x1 - x0) / ARENA_CM)
    store = Warehouse(root)
    row = dict.fromkeys(TABLES["recordings"].column_names)  # columns not set here: NULL
    row.update({
        "recording_id": RID, "subject": "bench", "session": "hour",
        "video_path": str(root / "missing.mp4"), "video_file": "missing.mp4",
        "tracking_type": "openfield", "start_time": pd.Timestamp("2026-01-05T09:00:00Z"),
        "n_frames": n_frames, "fps": FPS, "width_px": data.WIDTH, "height_px": data.HEIGHT,
        "duration_s": n_frames / FPS, "codec": "mp4v", "camera_view": "above",
        "arena_width_cm": ARENA_CM, "arena_height_cm": ARENA_CM, "has_timestamps": False,
        "model_name": "bench", "method_name": method.name, "state_vector_status": "supported",
    })
    store.write_partition("recordings", RID, pd.DataFrame([row]))
    store.write_partition("predictions", RID, to_long(RID, "bench", poses, body_parts, time_s))
    df = processed.to_frame()
    insert_constant_columns(df, [("recording_id", RID), ("model_name", "bench"),
                                 ("method_name", method.name), ("params_name", params.name),
                                 ("params_hash", params.param_hash)])
    store.write_processed_tracking(RID, df, arena_width_cm=ARENA_CM, arena_height_cm=ARENA_CM)


def _export_trials(root: Path, out: Path) -> dict:
    from dlc_tracking.io.recording_exports import export_recording
    from dlc_tracking.io.stored_recording import load_stored_recording
    from dlc_tracking.tracking.occupancy import occupancy_table

    params = ProcessingParams().to_dict()

    def one(fmt: str, name: str):
        def run() -> dict[str, float]:
            t_read, rec = timed(lambda: load_stored_recording(RID, root))
            t_write, path = timed(lambda: export_recording(rec, fmt, out / name,
                                                           params=params))
            return {"read_s": t_read, "write_s": t_write, "total_s": t_read + t_write,
                    "mb": path.stat().st_size / 1e6}
        return run

    def occupancy() -> dict[str, float]:
        t_read, rec = timed(lambda: load_stored_recording(RID, root))
        p = rec.processed
        t_occ, _ = timed(lambda: occupancy_table(
            p.x_cm.to_numpy(), p.y_cm.to_numpy(), p.time_s.to_numpy(), 2.5, ARENA_CM, ARENA_CM))
        return {"read_s": t_read, "write_s": t_occ, "total_s": t_read + t_occ, "mb": 0.0}

    return {"nwb": one("nwb", "r.nwb"), "movement (netCDF)": one("movement", "r.nc"),
            "dlc-h5": one("dlc-h5", "r.h5"), "csv (processed)": one("csv", "r.csv"),
            "occupancy table": occupancy}


def _labeled_video_trials(folder: Path) -> dict:
    """OpenCV renderer vs DLC's create_labeled_video on one synthetic clip."""
    from dlc_tracking.io.dlc_files import write_metadata, write_predictions
    from dlc_tracking.io.video import probe_video
    from dlc_tracking.qc.labeled_video import render_labeled_video
    from dlc_tracking.synthetic.openfield import (
        GROUND_TRUTH_NAME,
        make_session,
        read_ground_truth,
    )

    session = make_session(folder, "bench", "video", n_frames=VIDEO_FRAMES, fps=FPS,
                           width=data.WIDTH, height=data.HEIGHT, seed=1)
    gt = read_ground_truth(session / GROUND_TRUTH_NAME)
    poses = gt.poses()
    poses[..., 2] = np.where(np.isnan(poses[..., 0]), 0.0, 0.99)
    video = session / "openfield.mp4"

    def opencv() -> dict[str, float]:
        t, res = timed(lambda: render_labeled_video(video, folder / "cv.mp4", poses,
                                                    list(gt.body_parts), cutoff=0.6))
        assert probe_video(res.path).n_frames == VIDEO_FRAMES
        return {"s": t, "frames_per_s": res.n_frames / t}

    trials = {"opencv": opencv}
    try:
        from dlc_tracking.inference.tf_compat import ensure_numpy_sctypes
        from dlc_tracking.synthetic.tiny_model import cached_config_path

        config = cached_config_path("pytorch")
    except Exception:  # noqa: BLE001 - no cached model: DLC's renderer cannot run
        config = None
    if config is not None and Path(config).is_file():
        ensure_numpy_sctypes()
        import deeplabcut
        import yaml

        cfg = yaml.safe_load(Path(config).read_text())
        # The scorer DLC looks for next to the video (the tiny model's, from its build notes).
        notes = Path(config).parent.parent / "tiny_model.json"
        scorer = json.loads(notes.read_text())["scorer"]
        write_predictions(session / f"openfield{scorer}.h5", scorer, cfg["bodyparts"], poses)
        # create_labeled_video reads fps and cropping from the metadata pickle
        write_metadata(session / f"openfield{scorer}_meta.pickle", {
            "Scorer": scorer, "fps": FPS, "nframes": VIDEO_FRAMES,
            "frame_dimensions": (data.WIDTH, data.HEIGHT), "cropping": False,
            "cropping_parameters": [0, data.WIDTH, 0, data.HEIGHT]})

        def dlc() -> dict[str, float]:
            for old in session.glob("*_labeled.mp4"):
                old.unlink()
            t, _ = timed(lambda: deeplabcut.create_labeled_video(
                str(config), [str(video)], videotype=".mp4", pcutoff=0.6, save_frames=False,
                draw_skeleton=False, overwrite=True))
            written = list(session.glob("*_labeled.mp4"))
            # same output shape as ours: every frame, same size (else the timing is void)
            assert written and probe_video(written[0]).n_frames == VIDEO_FRAMES, written
            return {"s": t, "frames_per_s": VIDEO_FRAMES / t}

        trials["dlc create_labeled_video"] = dlc
    return trials


def run(repeats: int | None = None, quick: bool = False) -> BenchResult:
    """Run the export benchmark (3 repeats by default)."""
    from bench.common import alternate

    repeats = repeats or 3
    n = QUICK_FRAMES if quick else FULL_FRAMES
    res = BenchResult("exports")
    with tempfile.TemporaryDirectory(prefix="bench-exports-") as tmp:
        root = Path(tmp) / "warehouse"
        out = Path(tmp) / "out"
        t_fill, _ = timed(lambda: fill_warehouse(root, n))
        import pynwb  # noqa: F401 - import once, outside the timings (~1-2 s)
        import xarray  # noqa: F401

        for name, trial in _export_trials(root, out).items():
            samples = repeat(trial, repeats)
            res.add(f"export {name}", median(samples["total_s"]), "s",
                    note=f"{n:,} frames; read {median(samples['read_s']):.2f} s + write "
                    f"{median(samples['write_s']):.2f} s; {median(samples['mb']):.1f} MB",
                    samples=samples["total_s"], cpu_s=median(samples["cpu_s"]))
        video = alternate(_labeled_video_trials(Path(tmp) / "video"), repeats)
        for name, samples in video.items():
            fps = median(samples["frames_per_s"])
            res.add(f"labeled video, {name}", fps, "frames/s",
                    note=f"{VIDEO_FRAMES} frames {data.WIDTH}x{data.HEIGHT}; 1 h at 50 Hz "
                    f"~ {FULL_FRAMES / fps / 60:.1f} min", samples=samples["frames_per_s"])
        res.details = {"n_frames": n, "fps": FPS, "repeats": repeats, "fill_s": round(t_fill, 2),
                       "video_frames": VIDEO_FRAMES}
    return res


if __name__ == "__main__":
    import sys

    from bench.common import format_table

    result = run(quick="--quick" in sys.argv)
    print(format_table([result.to_dict()]))
