"""An imaging session through the real Dagster materialization (process_recording, a real
instance, the real warehouse): a synthetic open-field video whose trajectory is known, its
DLC outputs in dlc_openfield/ (the ground truth written as the registered model's output,
so no inference runs), and ScanImage tifs (dlc_tracking.synthetic.scanimage_tifs: written
by tifffile the way ScanImage 2016+ writes them). tracking_on_imaging must hold one row per
imaging frame at the right times, matching the ground truth sampled at those times."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from dlc_tracking.imaging.alignment import circular_interp_deg
from dlc_tracking.synthetic.openfield import GROUND_TRUTH_NAME, read_ground_truth
from dlc_tracking.synthetic.scanimage_tifs import write_scanimage_tifs
from dlc_tracking.warehouse import Warehouse
from tests.pipeline_helpers import (
    failure_messages,
    rid_of,
    run_recording,
    session_with_manual_outputs,
)

pytestmark = pytest.mark.slow

PARTS = ["nose", "left_ear", "right_ear", "tail_base"]
FPS, N_VIDEO = 50.0, 150  # 3 s of video
EPOCH = datetime(2026, 1, 5, 10, 0, 0, 500000)  # microscope clock, no zone (+01:00)
CET = timezone(timedelta(hours=1))


def _edit_yaml(folder, **changes) -> None:
    path = folder / "session.yaml"
    meta = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    path.write_text(yaml.safe_dump(meta, sort_keys=False))


def _imaging_times(n: int, first: float = 0.0) -> np.ndarray:
    jitter = np.random.default_rng(1).uniform(-2e-4, 2e-4, n)  # scanner timing jitter
    return first + np.arange(n) / 30.0 + jitter


def _gt_at(gt, tau: np.ndarray, processed: pd.DataFrame):
    """Ground-truth head position (cm) and head direction at times ``tau``.

    Pixels -> cm by the affine map the recording's calibration applied (fitted on the
    frames: the synthetic arena is axis-aligned, so x and y are each a scale + offset)."""
    valid = processed["x_cm"].notna().to_numpy()
    px = gt.head_xy_px
    fit_x = np.polyfit(px[valid, 0], processed["x_cm"].to_numpy()[valid], 1)
    fit_y = np.polyfit(px[valid, 1], processed["y_cm"].to_numpy()[valid], 1)
    x = np.polyval(fit_x, np.interp(tau, gt.time_s, px[:, 0]))
    y = np.polyval(fit_y, np.interp(tau, gt.time_s, px[:, 1]))
    right = np.clip(np.searchsorted(gt.time_s, tau, side="right"), 1, gt.n_frames - 1)
    frac = (tau - gt.time_s[right - 1]) / (gt.time_s[right] - gt.time_s[right - 1])
    hd = circular_interp_deg(gt.head_direction_deg[right - 1], gt.head_direction_deg[right],
                             frac)
    frame_err = np.hypot(processed["x_cm"] - np.polyval(fit_x, px[:, 0]),
                         processed["y_cm"] - np.polyval(fit_y, px[:, 1])).to_numpy()
    return x, y, hd, frame_err


def _angle_error(a, b):
    return np.abs((np.asarray(a) - np.asarray(b) + 180) % 360 - 180)


def test_scanimage_session_to_tracking_on_imaging(instance, resources, platform_dirs,
                                                  registry):
    model = registry.model("tiny_openfield")
    folder = session_with_manual_outputs(platform_dirs["data_root"], "mouse1", "img",
                                         model.scorer, PARTS, n_frames=N_VIDEO, fps=FPS, seed=3)
    times = _imaging_times(90)  # 30 Hz over the 3 s of video, split in two files
    tifs = write_scanimage_tifs(folder, "mouse1_img", times, EPOCH, frame_rate_hz=30.0,
                                n_channels=2, frames_per_file=50)
    # No start_time: the recording starts when the acquisition did (ScanImage epoch).
    _edit_yaml(folder, start_time=None, imaging={
        "scanimage": [p.name for p in tifs], "timezone": "+01:00"})
    rid = rid_of(folder)
    result = run_recording(instance, resources, rid)
    assert result.success, failure_messages(result)

    store = Warehouse(platform_dirs["warehouse"])
    rec = store.read_partition("recordings", rid).iloc[0]
    assert pd.Timestamp(rec.start_time) == pd.Timestamp(EPOCH.replace(tzinfo=CET))
    rows = store.query("SELECT * FROM tracking_on_imaging(?)", [rid])
    assert len(rows) == 90 and set(rows.plane) == {0}
    assert list(rows.imaging_frame) == list(range(90))
    np.testing.assert_allclose(rows.imaging_time_s, times, atol=1e-9)
    np.testing.assert_allclose(rows.time_s, times, atol=1e-9)  # same start: no offset
    assert rows.valid.all()
    processed = store.query("SELECT * FROM tracking(?)", [rid])
    gt = read_ground_truth(folder / GROUND_TRUTH_NAME)
    x, y, hd, frame_err = _gt_at(gt, rows.time_s.to_numpy(), processed)
    err = np.hypot(rows.x_cm - x, rows.y_cm - y).to_numpy()
    inner = (rows.time_s > 0.2) & (rows.time_s < 2.8)  # smoothing edges
    # the true head direction crosses 0/360 between imaging frames of the compared window,
    # so the angle comparison below covers the wrap
    assert (np.abs(np.diff(hd[inner.to_numpy()])) > 180).any()
    # at the imaging times as close to the truth as the tracking is at its own frames
    assert np.percentile(err[inner], 95) <= np.percentile(frame_err[5:-5], 95) + 0.05
    assert np.median(_angle_error(rows.head_direction_deg[inner], hd[inner])) < 3
    nearest = processed.set_index("frame").loc[rows.nearest_frame]
    assert np.all(np.abs(nearest.time_s.to_numpy() - rows.time_s.to_numpy()) <= 0.5 / FPS + 1e-9)

    # docs/imaging.md's head-direction tuning query runs as written
    doc = (Path(__file__).parents[1] / "docs" / "imaging.md").read_text()
    sql = doc.split("### Example: head-direction tuning", 1)[1].split("```sql", 1)[1]
    sql = sql.split("```", 1)[0].replace("mouse01__2026-01-05_openfield__openfield", rid)
    tuning = store.query(sql)
    moving = rows[rows.valid & (rows.speed_cm_s > 2.5)]
    assert tuning.imaging_frames.sum() == len(moving) > 0
    assert tuning.fraction_of_frames.sum() == pytest.approx(1.0)
    assert tuning.hd_bin_deg.between(0, 350).all()

    al = store.read_partition("imaging_alignments", rid).iloc[0]
    assert al.imaging_source == "scanimage" and al.start_time_source == "imaging"
    assert al.clock == "start_time" and al.n_channels == 2 and al.clock_offset_s == 0
    assert "clocks assumed to agree" in al.assumption
    from dlc_assets.status import recording_status

    status = recording_status(str(platform_dirs["warehouse"]), rid, instance)[0]
    assert status["status"] == "processed", status
    # the NWB file carries the behaviour on the imaging timestamps
    from pynwb import NWBHDF5IO

    from dlc_assets.assets.exports import nwb_path

    with NWBHDF5IO(str(nwb_path(platform_dirs["warehouse"], rid)), "r") as io:
        behavior = io.read().processing["behavior"]
        series = behavior["position_on_imaging_plane0"].spatial_series["position"]
        np.testing.assert_allclose(series.timestamps[:], times, atol=1e-9)
        np.testing.assert_allclose(series.data[:, 0], rows.x_cm, rtol=1e-12)


def test_sync_with_dropped_frame_and_clock_offset_warn(instance, resources, platform_dirs,
                                                       registry):
    model = registry.model("tiny_openfield")
    folder = session_with_manual_outputs(platform_dirs["data_root"], "mouse2", "sync",
                                         model.scorer, PARTS, n_frames=N_VIDEO, fps=FPS, seed=5)
    times = _imaging_times(84)
    tifs = write_scanimage_tifs(folder, "m2", times, EPOCH, frame_rate_hz=30.0)
    # The camera sent 151 TTLs for 150 saved frames (its last one dropped); the imaging
    # started 0.1 s after the video's first frame on the DAQ clock.
    daq0 = 12.0
    camera = daq0 + np.arange(N_VIDEO + 1) / FPS
    imaging = daq0 + 0.1 + times
    pd.DataFrame({"signal": ["camera"] * camera.size + ["imaging"] * imaging.size,
                  "time_s": np.r_[camera, imaging]}).to_csv(folder / "sync.csv", index=False)
    # start_time 30 s off the microscope's epoch: a warning with both values
    _edit_yaml(folder, start_time="2026-01-05T09:59:30.5+01:00", imaging={
        "scanimage": [p.name for p in tifs], "sync": {"file": "sync.csv"}})
    rid = rid_of(folder)
    result = run_recording(instance, resources, rid)
    assert result.success, failure_messages(result)
    store = Warehouse(platform_dirs["warehouse"])
    rows = store.query("SELECT * FROM tracking_on_imaging(?)", [rid])
    np.testing.assert_allclose(rows.time_s, 0.1 + times, atol=1e-9)  # the DAQ's times
    al = store.read_partition("imaging_alignments", rid).iloc[0]
    assert al.clock == "sync" and al.dropped_camera_frames == 1 and al.camera_ttls == 151
    assert al.clock_offset_s == pytest.approx(0.1) and al.header_offset_s == pytest.approx(30)
    from dlc_assets.status import recording_status

    status = recording_status(str(platform_dirs["warehouse"]), rid, instance)[0]
    assert status["status"] == "processed with warnings", status
    text = " | ".join(status["warnings"])
    assert "dropped_camera_frames" in text and "1 dropped camera frame" in text
    assert "clock_offset" in text and "2026-01-05T09:59:30.500000+01:00" in text
    assert "2026-01-05T10:00:00.500000+01:00" in text


def test_no_imaging_passes_and_a_bad_tif_fails_writing_nothing(instance, resources,
                                                               platform_dirs, registry):
    import dagster as dg
    import tifffile

    model = registry.model("tiny_openfield")
    folder = session_with_manual_outputs(platform_dirs["data_root"], "mouse3", "plain",
                                         model.scorer, PARTS, n_frames=60, seed=2)
    rid = rid_of(folder)
    assert run_recording(instance, resources, rid).success
    event = instance.get_latest_materialization_event(dg.AssetKey("tracking_on_imaging"))
    assert event.asset_materialization.metadata["imaging"].value == "no imaging"
    store = Warehouse(platform_dirs["warehouse"])
    assert store.partition_path("tracking_on_imaging", rid) is None
    # a good imaging run first: its rows must survive the bad one below
    tifs = write_scanimage_tifs(folder, "m3", _imaging_times(30), EPOCH, frame_rate_hz=30.0)
    _edit_yaml(folder, imaging={"scanimage": [p.name for p in tifs], "timezone": "+01:00"})
    assert run_recording(instance, resources, rid).success
    before = store.query("SELECT * FROM tracking_on_imaging(?)", [rid])
    alignment_before = store.read_partition("imaging_alignments", rid)
    assert len(before) == 30
    # a tif that is not ScanImage: the imaging step fails naming it; the rows stay as they were
    tifffile.imwrite(folder / "export.tif", np.zeros((4, 8, 8), np.uint16),
                     photometric="minisblack")
    _edit_yaml(folder, imaging={"scanimage": ["export.tif"], "timezone": "+01:00"})
    result = run_recording(instance, resources, rid)
    assert not result.success
    message = failure_messages(result)
    assert f"recording {rid}" in message and "export.tif is not a ScanImage tif" in message
    pd.testing.assert_frame_equal(store.query("SELECT * FROM tracking_on_imaging(?)", [rid]),
                                  before)
    pd.testing.assert_frame_equal(store.read_partition("imaging_alignments", rid),
                                  alignment_before)
