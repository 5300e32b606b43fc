"""Benchmark: tracking resampled at the imaging frames of one recording: 1 h of processed
tracking at 50 Hz (180,000 frames) onto 30 Hz imaging (108,000 frames).

Peers, alternated in one run on the same arrays:

- ``platform``: :func:`dlc_tracking.imaging.alignment.resample_tracking`, what the
  tracking_on_imaging asset runs (linear position, speed and angular velocity; shorter-arc
  head direction; validity: gaps, nearest frame, inside the video);
- ``np.interp``: the plain numpy baseline, ``np.interp`` of the same five columns (head
  direction interpolated linearly, so wrong across 0/360, and no validity).

Targets (issue 17): <= 50 ms per recording, and <= 1.5x the baseline. Also reported
(no target): the whole recording step without I/O (:func:`tracking_on_imaging` from the
processed rows and a frame-times file: clock alignment, resampling, the table's
DataFrame), and reading ScanImage headers (pages per second, tifffile).
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import BenchResult, alternate, median, repeat, timed
from dlc_tracking.imaging.alignment import resample_tracking
from dlc_tracking.imaging.config import ImagingConfig
from dlc_tracking.imaging.on_imaging import tracking_on_imaging
from dlc_tracking.imaging.scanimage import read_scanimage
from dlc_tracking.synthetic.scanimage_tifs import write_scanimage_tifs

FPS, IMAGING_HZ = 50.0, 30.0
FULL_S, QUICK_S = 3600.0, 360.0
TARGET_S = 0.050
TARGET_RATIO = 1.5
HEADER_PAGES = 3000
INNER = 10


def tracking(duration_s: float, seed: int = 0) -> dict[str, np.ndarray]:
    """Processed-tracking-like columns: a random walk, head direction wrapping, gaps."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * FPS)
    t = np.arange(n) / FPS
    x = np.clip(25 + np.cumsum(rng.normal(0, 0.3, n)), 0, 50)
    y = np.clip(25 + np.cumsum(rng.normal(0, 0.3, n)), 0, 50)
    hd = np.remainder(np.cumsum(rng.normal(0, 3.0, n)), 360.0)
    for start in rng.integers(0, n - 50, n // 5000):  # tracking gaps
        x[start:start + 20] = np.nan
        y[start:start + 20] = np.nan
    speed = np.abs(rng.normal(10, 3, n))
    ahv = rng.normal(0, 100, n)
    return {"time_s": t, "x_cm": x, "y_cm": y, "speed_cm_s": speed,
            "head_direction_deg": hd, "angular_head_velocity_deg_s": ahv}


def run(repeats: int | None = None, quick: bool = False) -> BenchResult:
    """Measure; see the module docstring."""
    repeats = repeats or 9
    duration = QUICK_S if quick else FULL_S
    cols = tracking(duration)
    n_img = int(duration * IMAGING_HZ)
    rng = np.random.default_rng(1)
    query = 0.01 + np.arange(n_img) / IMAGING_HZ + rng.uniform(-1e-4, 1e-4, n_img)
    t = cols["time_s"]
    names = ("x_cm", "y_cm", "speed_cm_s", "head_direction_deg", "angular_head_velocity_deg_s")

    def per_call(fn) -> dict[str, float]:
        # INNER calls per sample: one call is ~10 ms, short enough for scheduler noise
        seconds, _ = timed(lambda: [fn() for _ in range(INNER)])
        return {"seconds": seconds / INNER}

    def platform() -> dict[str, float]:
        return per_call(lambda: resample_tracking(t, *(cols[k] for k in names), query,
                                                  2 / FPS))

    def baseline() -> dict[str, float]:
        return per_call(lambda: [np.interp(query, t, cols[k]) for k in names])

    samples = alternate({"platform": platform, "np.interp": baseline}, repeats)
    # (each sample: the mean of INNER calls)
    ours, base = median(samples["platform"]["seconds"]), median(samples["np.interp"]["seconds"])
    res = BenchResult("imaging", details={
        "tracking_frames": int(t.size), "imaging_frames": n_img, "repeats": repeats,
        "platform_s": samples["platform"]["seconds"],
        "np_interp_s": samples["np.interp"]["seconds"]})
    res.add(f"resample {t.size:,} frames onto {n_img:,} imaging frames", ours * 1e3, "ms",
            "<=", TARGET_S * 1e3, samples=[s * 1e3 for s in samples["platform"]["seconds"]])
    res.add("np.interp baseline (5 columns)", base * 1e3, "ms",
            samples=[s * 1e3 for s in samples["np.interp"]["seconds"]])
    res.add("platform / np.interp", ours / base, "x", "<=", TARGET_RATIO)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        np.save(folder / "frames.npy", query)
        processed = pd.DataFrame({**cols, "frame": np.arange(t.size)})
        for key, value in (("recording_id", "bench"), ("model_name", "m"),
                           ("method_name", "two_ears"), ("params_name", "default"),
                           ("params_hash", "0")):
            processed[key] = value
        config = ImagingConfig(frame_times="frames.npy")
        start = pd.Timestamp("2026-01-05T10:00:00+01:00").to_pydatetime()
        step = repeat(lambda: {"seconds": timed(lambda: tracking_on_imaging(
            processed, config, folder, start, "session.yaml", FPS, None, "bench"))[0]},
            max(3, repeats // 3))
        res.add("whole step: frame times file -> table rows", median(step["seconds"]) * 1e3,
                "ms", note="no target; includes reading the .npy and building the DataFrame")
        pages = HEADER_PAGES // (10 if quick else 1)
        tifs = write_scanimage_tifs(folder / "si", "bench", np.arange(pages) / IMAGING_HZ,
                                    datetime(2026, 1, 5, 10, 0, 0), frame_rate_hz=IMAGING_HZ)
        read = repeat(lambda: {"seconds": timed(lambda: read_scanimage(tifs))[0]}, 3)
        per_s = pages / median(read["seconds"])
        res.add("ScanImage header read (tifffile)", per_s, "pages/s",
                note=f"{pages} pages; 1 h at 30 Hz: {n_img / per_s:.1f} s"
                if not quick else f"{pages} pages")
    return res
