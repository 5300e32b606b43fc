"""Imaging sessions without Dagster: ScanImage tifs (written by tifffile the way ScanImage
2016+ writes them, see dlc_tracking.synthetic.scanimage_tifs: the SI block after the
BigTIFF header, per-frame descriptions with frameNumbers / frameTimestamps_sec / epoch,
the SI.* header in Software, ROI JSON in Artist), Suite2p ops.npy, frame-times and sync
files, the clock alignment and the resampling at imaging frames."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
import tifffile
import yaml

from dlc_tracking.imaging.acquisition import load_imaging
from dlc_tracking.imaging.alignment import circular_interp_deg, resample_tracking
from dlc_tracking.imaging.clocks import align_clocks
from dlc_tracking.imaging.config import ImagingConfig
from dlc_tracking.imaging.errors import ImagingError
from dlc_tracking.imaging.scanimage import acquisition_start, read_scanimage
from dlc_tracking.imaging.start_time import start_from_tifs
from dlc_tracking.imaging.suite2p import read_suite2p
from dlc_tracking.imaging.sync import camera_frame_times, read_sync_csv
from dlc_tracking.synthetic.scanimage_tifs import write_scanimage_tifs

EPOCH = datetime(2026, 1, 5, 10, 0, 3, 250000)
CET = timezone(timedelta(hours=1))


def _times(n: int, rate: float = 30.0, jitter: float = 0.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.arange(n) / rate + rng.uniform(-jitter, jitter, n) * (np.arange(n) > 0)


def _ops(folder, nframes: int, fs: float, nplanes: int = 1):
    for p in range(nplanes):
        plane = folder / "suite2p" / f"plane{p}"
        plane.mkdir(parents=True)
        np.save(plane / "ops.npy", {"nframes": nframes, "fs": fs, "nplanes": nplanes,
                                    "nchannels": 1, "tau": 1.0}, allow_pickle=True)
    return folder / "suite2p"


def test_tifs_are_scanimage_for_tifffile(tmp_path):
    paths = write_scanimage_tifs(tmp_path, "m1", _times(10), EPOCH, frame_rate_hz=30.0)
    with tifffile.TiffFile(paths[0]) as tif:
        assert tif.is_scanimage and tif.is_bigtiff
        meta = tif.scanimage_metadata
        assert meta["version"] == 3
        assert meta["FrameData"]["SI.hRoiManager.scanFrameRate"] == 30.0
        assert "imagingRoiGroup" in meta["RoiGroups"]
        desc = tifffile.matlabstr2py(tif.pages[3].description)
        assert desc["frameNumbers"] == 4 and desc["epoch"][:5] == [2026, 1, 5, 10, 0]
        assert desc["frameTimestamps_sec"] == pytest.approx(0.1)


def test_two_files_two_channels_stitched(tmp_path):
    times = _times(25, jitter=0.002)
    paths = write_scanimage_tifs(tmp_path, "m1", times, EPOCH, frame_rate_hz=30.0,
                                 n_channels=2, frames_per_file=10)
    assert [p.name for p in paths] == ["m1_00001.tif", "m1_00002.tif", "m1_00003.tif"]
    acq = read_scanimage(paths)
    assert acq.n_frames == 25 and acq.n_channels == 2 and acq.n_planes == 1
    assert acq.pages_per_file == [20, 20, 10]  # one page per channel and frame
    np.testing.assert_allclose(acq.frame_times_s, times, atol=1e-9)
    assert list(acq.frame_numbers[:3]) == [1, 2, 3] and acq.frame_numbers[-1] == 25
    assert acq.epoch == EPOCH and acq.frame_rate_hz == 30.0
    assert acquisition_start(paths[2]) == EPOCH


def test_volume_planes_keep_their_own_times(tmp_path):
    times = _times(12, rate=90.0)  # 3 planes at 90 frames/s: 30 volumes/s
    paths = write_scanimage_tifs(tmp_path, "v", times, EPOCH, frame_rate_hz=90.0, n_planes=3)
    frames = load_imaging(ImagingConfig(scanimage=[p.name for p in paths], timezone="+01:00"),
                          tmp_path, None, "test")
    assert frames.n_planes == 3 and list(frames.plane[:6]) == [0, 1, 2, 0, 1, 2]
    assert list(frames.imaging_frame()[:6]) == [0, 0, 0, 1, 1, 1]
    np.testing.assert_allclose(frames.time_s[frames.plane == 1], times[1::3])
    assert frames.start == EPOCH.replace(tzinfo=CET)


def test_not_scanimage_is_refused_naming_the_file(tmp_path):
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, np.zeros((3, 8, 8), np.uint16), photometric="minisblack")
    with pytest.raises(ImagingError, match="plain.tif is not a ScanImage tif"):
        read_scanimage([plain])
    with pytest.raises(ImagingError, match="plain.tif is not a ScanImage tif"):
        start_from_tifs([plain], "+01:00")


def test_two_acquisitions_and_wrong_order_refused(tmp_path):
    a = write_scanimage_tifs(tmp_path / "a", "a", _times(10), EPOCH, frame_rate_hz=30.0,
                             frames_per_file=5)
    b = write_scanimage_tifs(tmp_path / "b", "b", _times(5), EPOCH + timedelta(minutes=5),
                             frame_rate_hz=30.0)
    with pytest.raises(ImagingError, match="b_00001.tif belongs to another acquisition"):
        read_scanimage([a[0], b[0]])
    with pytest.raises(ImagingError, match="another acquisition"):
        start_from_tifs([a[0], b[0]], "+01:00")
    with pytest.raises(ImagingError, match="out of acquisition order"):
        read_scanimage([a[1], a[0]])


def test_suite2p_ops_frame_count_checked_against_tifs(tmp_path):
    paths = write_scanimage_tifs(tmp_path, "m", _times(20), EPOCH, frame_rate_hz=30.0)
    ops = _ops(tmp_path, nframes=20, fs=30.0)
    assert read_suite2p(ops).n_frames == 20
    config = ImagingConfig(scanimage=[paths[0].name], suite2p="suite2p", timezone="UTC")
    frames = load_imaging(config, tmp_path, None, "test")
    assert frames.source == "scanimage" and any("ops.npy" in f for f in frames.files)
    bad = tmp_path / "other"
    _ops(bad, nframes=19, fs=30.0)
    config = ImagingConfig(scanimage=[f"../{paths[0].name}"],
                           suite2p="suite2p", timezone="UTC")
    with pytest.raises(ImagingError, match=r"ops.npy: nframes per plane is \[19\] but the tifs "
                                           r"hold \[20\]"):
        load_imaging(config, bad, None, "test")


def test_suite2p_alone_gives_evenly_spaced_times(tmp_path):
    _ops(tmp_path, nframes=10, fs=15.0, nplanes=2)
    frames = load_imaging(ImagingConfig(suite2p="suite2p"), tmp_path, None, "test")
    assert frames.n_frames == 20 and frames.header_frame_rate_hz == 30.0
    np.testing.assert_allclose(frames.time_s[frames.plane == 1][:2], [1 / 30, 3 / 30])


@pytest.mark.parametrize("suffix", [".csv", ".npy"])
def test_frame_times_not_increasing_refused(tmp_path, suffix):
    values = np.array([0.0, 0.033, 0.066, 0.05, 0.13])
    path = tmp_path / f"frames{suffix}"
    if suffix == ".npy":
        np.save(path, values)
    else:
        path.write_text("time_s\n" + "\n".join(map(str, values)) + "\n")
    with pytest.raises(ImagingError, match=rf"frames{suffix}: imaging frame times are not "
                                           "increasing: row 3"):
        load_imaging(ImagingConfig(frame_times=path.name), tmp_path, None, "test")


def test_sync_one_dropped_camera_frame(tmp_path):
    fps, n = 50.0, 100
    ttl = 12.0 + np.arange(n + 1) / fps  # DAQ clock; the camera sent 101 TTLs
    imaging = 12.5 + np.arange(60) / 30.0
    rows = [("camera", t) for t in ttl] + [("imaging", t) for t in imaging]
    path = tmp_path / "sync.csv"
    path.write_text("signal,time_s\n" + "".join(f"{s},{t:.6f}\n" for s, t in rows))
    sync = read_sync_csv(path)
    assert sync.camera_s.size == n + 1 and sync.imaging_s.size == 60
    # frame 40 dropped: the camera's own timestamps show the gap
    stamps = np.delete(np.arange(n + 1) / fps, 40) + 100.0
    located = camera_frame_times(sync.camera_s, n, stamps, str(path))
    assert located.dropped == 1 and located.located
    np.testing.assert_allclose(located.time_s, np.delete(ttl, 40))
    blind = camera_frame_times(sync.camera_s, n, None, str(path))
    assert blind.dropped == 1 and not blind.located and "could not be located" in blind.note
    np.testing.assert_allclose(blind.time_s, ttl[:n])  # never stretched over 101 TTLs
    with pytest.raises(ImagingError, match="camera TTLs for 102 video frames"):
        camera_frame_times(sync.camera_s, n + 2, None, str(path))


@pytest.mark.parametrize("drift_ppm", [-20.0, -5.0, 3.0, 30.0])
def test_dropped_frame_located_gap_by_gap_despite_drift(drift_ppm):
    # 1 h at 50 Hz on the DAQ, one frame dropped at 40,000, the DAQ recording 3 TTLs after
    # the video stopped; the camera's clock drifts against the DAQ's
    fps, n_ttl, drop, trailing = 50.0, 180_000, 40_000, 3
    rng = np.random.default_rng(1)
    ttl = 5.0 + np.arange(n_ttl) / fps + rng.normal(0, 2e-4, n_ttl)
    saved = np.delete(np.arange(n_ttl - trailing), drop)
    stamps = 1000.0 + (ttl[saved] - 5.0) * (1 + drift_ppm * 1e-6) + rng.normal(0, 2e-4,
                                                                                 saved.size)
    cam = camera_frame_times(ttl, saved.size, stamps, "sync.csv")
    assert cam.located and cam.dropped == 1 and cam.trailing == trailing
    np.testing.assert_array_equal(cam.time_s, ttl[saved])
    assert "1 dropped frame(s) located" in cam.note and "3 camera TTL(s) after" in cam.note


def test_clock_from_sync_and_from_start_times(tmp_path):
    paths = write_scanimage_tifs(tmp_path, "m", _times(60), EPOCH, frame_rate_hz=30.0)
    frames = load_imaging(ImagingConfig(scanimage=[paths[0].name]), tmp_path,
                          EPOCH.replace(tzinfo=CET), "test")
    video = np.arange(100) / 50.0
    start = EPOCH.replace(tzinfo=CET) - timedelta(seconds=0.5)  # video began 0.5 s earlier
    clock = align_clocks(frames, video, start, None, None, False)
    assert clock.clock == "start_time" and clock.offset_s == pytest.approx(0.5)
    np.testing.assert_allclose(clock.imaging_time_s, 0.5 + frames.time_s)
    assert "clocks assumed to agree" in clock.assumption

    from dlc_tracking.imaging.sync import SyncSignals

    sync = SyncSignals(7.0 + np.arange(100) / 50.0, 7.6 + np.arange(60) / 30.0, "sync.csv")
    clock = align_clocks(frames, video, start, sync, None, False)
    assert clock.clock == "sync" and clock.offset_s == pytest.approx(0.6)
    assert clock.header_offset_s == pytest.approx(0.5)


def test_sync_ttls_checked_against_the_frames(tmp_path):
    from dlc_tracking.imaging.sync import SyncSignals

    paths = write_scanimage_tifs(tmp_path, "m", _times(60), EPOCH, frame_rate_hz=30.0)
    frames = load_imaging(ImagingConfig(scanimage=[paths[0].name], timezone="+01:00"),
                          tmp_path, None, "test")
    video = np.arange(100) / 50.0
    start = EPOCH.replace(tzinfo=CET)
    imaging = 7.6 + np.arange(60) / 30.0
    # another camera's line (30 Hz) for a 50 Hz video
    wrong_camera = SyncSignals(7.0 + np.arange(200) / 30.0, imaging, "daq.csv")
    with pytest.raises(ImagingError, match="daq.csv: the camera TTLs come every 33.333 ms"):
        align_clocks(frames, video, start, wrong_camera, None, False)
    # an analog trace sampled at 1 kHz read as imaging TTLs
    analog = SyncSignals(7.0 + np.arange(100) / 50.0, 7.6 + np.arange(5000) / 1000.0,
                         "daq.nwb")
    with pytest.raises(ImagingError, match="daq.nwb: the imaging TTLs do not follow"):
        align_clocks(frames, video, start, analog, None, False)
    # one imaging TTL missing in the middle: the intervals no longer match
    missing = SyncSignals(7.0 + np.arange(100) / 50.0, np.delete(7.6 + np.arange(61) / 30.0,
                                                                 20), "daq.csv")
    with pytest.raises(ImagingError, match="between saved frames 19 and 20"):
        align_clocks(frames, video, start, missing, None, False)


def test_volume_sync_maps_ttls_by_acquisition_frame(tmp_path):
    from dlc_tracking.imaging.acquisition import ImagingFrames
    from dlc_tracking.imaging.sync import SyncSignals

    # 2 planes + 1 discarded flyback frame: saved acquisition frames 0,1,3,4,6,7...
    acq = np.array([0, 1, 3, 4, 6, 7, 9, 10])
    frames = ImagingFrames("frame_times", ["t.csv"], None, acq / 90.0, acq % 3, acq, 90.0, 2)
    ttl = 2.0 + np.arange(12) / 90.0
    clock = align_clocks(frames, np.arange(50) / 50.0, datetime(2026, 1, 5, tzinfo=CET),
                         SyncSignals(2.0 + np.arange(50) / 50.0, ttl, "s.csv"), None, False)
    np.testing.assert_allclose(clock.imaging_time_s, ttl[acq] - 2.0)


def test_offset_beyond_tolerance_without_sync_marks_every_row_invalid(tmp_path):
    from dlc_assets.assets.imaging import imaging_checks
    from dlc_tracking.imaging.on_imaging import tracking_on_imaging

    paths = write_scanimage_tifs(tmp_path, "m", np.arange(60) / 30.0, EPOCH,
                                 frame_rate_hz=30.0)
    config = ImagingConfig(scanimage=[paths[0].name], timezone="+01:00")
    declared = EPOCH.replace(tzinfo=CET) - timedelta(seconds=0.5)  # within 1 s: trusted
    ok = tracking_on_imaging(_processed(), config, tmp_path, declared, "session.yaml", 50.0,
                             None, "test")
    assert ok.rows.valid.all()
    declared = EPOCH.replace(tzinfo=CET) - timedelta(seconds=30)  # 30 s off, no sync
    bad = tracking_on_imaging(_processed(5000), config, tmp_path, declared, "session.yaml",
                              50.0, None, "test")
    assert not bad.rows.valid.any() and bad.rows[["x_cm", "head_direction_deg"]].isna().all().all()
    assert bad.alignment_row["fraction_valid"] == 0
    assert "all rows set not valid" in bad.alignment_row["notes"]
    check = {c.check_name: c for c in imaging_checks(bad, config, "session.yaml")}["clock_offset"]
    assert not check.passed and "+30.000 s apart" in check.description
    assert "every row is marked not valid" in check.description


def test_invalid_rows_have_no_values_and_need_head_direction():
    t = np.arange(0, 2, 0.02)
    x = 10 + 5 * t
    hd = np.remainder(40 * t, 360)
    speed, ahv = np.full_like(t, 5.0), np.full_like(t, 40.0)
    x_gap = x.copy()
    x_gap[60:70] = np.nan  # position lost 1.2-1.38 s; speed and angles still finite there
    hd_gap = hd.copy()
    hd_gap[20:25] = np.nan  # head direction alone lost 0.4-0.48 s
    q = np.arange(0, 1.9, 1 / 30)
    r = resample_tracking(t, x_gap, x, speed, hd_gap, ahv, q, 2 / 50)
    lost = (q > 1.18) & (q < 1.4)
    assert not r.valid[lost].any()
    for values in (r.x_cm, r.speed_cm_s, r.head_direction_deg, r.angular_head_velocity_deg_s):
        assert np.isnan(values[~r.valid]).all()
    assert not r.valid[(q > 0.41) & (q < 0.47)].any()  # no head direction: not valid
    # a method without head direction (all NaN): valid from position alone
    r2 = resample_tracking(t, x, x, speed, np.full_like(t, np.nan), ahv, q, 2 / 50)
    assert r2.valid.all()


def test_start_from_imaging_with_sync_is_the_first_camera_frame(tmp_path):
    from dlc_tracking.imaging.acquisition import recording_start_from_imaging
    from dlc_tracking.imaging.config import SyncConfig

    times = 0.004 + np.arange(60) / 30.0  # first frame 4 ms after the acquisition start
    paths = write_scanimage_tifs(tmp_path, "m", times, EPOCH, frame_rate_hz=30.0)
    camera = 10.0 + np.arange(300) / 50.0  # the camera started 2 s before the imaging
    imaging = 12.0 + np.arange(60) / 30.0
    pd_rows = [("camera", t) for t in camera] + [("imaging", t) for t in imaging]
    (tmp_path / "sync.csv").write_text(
        "signal,time_s\n" + "".join(f"{k},{t:.6f}\n" for k, t in pd_rows))
    no_sync = ImagingConfig(scanimage=[paths[0].name], timezone="+01:00")
    assert recording_start_from_imaging(no_sync, tmp_path, "t") == EPOCH.replace(tzinfo=CET)
    config = ImagingConfig(scanimage=[paths[0].name], timezone="+01:00",
                           sync=SyncConfig(file="sync.csv"))
    start = recording_start_from_imaging(config, tmp_path, "t")
    expected = EPOCH.replace(tzinfo=CET) + timedelta(seconds=0.004 - 2.0)
    assert abs((start - expected).total_seconds()) < 1e-6
    from dlc_tracking.imaging.on_imaging import tracking_on_imaging

    result = tracking_on_imaging(_processed(300), config, tmp_path, start, "imaging", 50.0,
                                 None, "t")
    assert result.rows.time_s.iloc[0] == pytest.approx(2.0)  # imaging 2 s into the video
    assert result.clock.header_offset_s == pytest.approx(1.996)  # epoch vs recording start


def test_sensor_scan_covers_the_imaging_files(tmp_path):
    import os
    import time

    from dlc_tracking.sessions.scanning import scan

    folder = tmp_path / "m1" / "s1"
    paths = write_scanimage_tifs(folder, "m", _times(10), EPOCH, frame_rate_hz=30.0)
    _ops(folder, nframes=10, fs=30.0)
    (folder / "openfield.mp4").write_bytes(b"\0" * 1000)
    (folder / "session.yaml").write_text(yaml.safe_dump({
        "tracking_type": "openfield", "camera_view": "above", "pixels_per_cm": 3.0,
        "imaging": {"scanimage": [p.name for p in paths], "suite2p": "suite2p",
                    "timezone": "+01:00"}}))

    def age(seconds):
        old = time.time() - seconds
        for p in [folder, *folder.rglob("*")]:
            os.utime(p, (old, old))

    age(120)
    now = time.time()
    first = scan(tmp_path, None, now, 30.0, 10)  # settle 30 s: seen once, then taken
    second = scan(tmp_path, first.state, now, 30.0, 10)
    assert len(second.to_process) == 1
    third = scan(tmp_path, second.state, now, 30.0, 10)
    assert third.to_process == [] and third.sessions_unchanged == 1
    # the tif is replaced (still being copied: a fresh mtime): waits, then re-runs
    with open(paths[0], "ab") as f:
        f.write(b"\0" * 16)
    copying = scan(tmp_path, third.state, time.time(), 30.0, 10)
    assert copying.to_process == [] and copying.waiting == ["m1__s1__openfield"]
    age(60)  # the copy finished a minute ago: taken once two scans see it unchanged
    seen = scan(tmp_path, copying.state, time.time(), 30.0, 10)
    settled = scan(tmp_path, seen.state, time.time(), 30.0, 10)
    assert [r.recording_id for r, _ in settled.to_process] == ["m1__s1__openfield"]
    # a Suite2p ops.npy rewritten in place (subfolder): noticed through the session cache
    unchanged = scan(tmp_path, settled.state, time.time(), 0.0, 10)
    assert unchanged.sessions_unchanged == 1
    np.save(folder / "suite2p" / "plane0" / "ops.npy", {"nframes": 10, "fs": 15.0},
            allow_pickle=True)
    age(60)
    rerun = scan(tmp_path, unchanged.state, time.time(), 0.0, 10)
    assert rerun.sessions_unchanged == 0 and len(rerun.to_process) == 1


def test_circular_interpolation_takes_the_short_way():
    out = circular_interp_deg(np.array([350.0, 10.0, 90.0]), np.array([10.0, 350.0, 200.0]),
                              np.array([0.5, 0.25, 0.5]))
    np.testing.assert_allclose(out, [0.0, 5.0, 145.0])


def test_resample_linear_circular_and_validity():
    t = np.arange(0, 2, 0.02)  # 50 Hz
    x = 10 + 5 * t
    hd = np.remainder(340 + 40 * t, 360)  # crosses 0/360 at t = 0.5 s
    speed = np.full_like(t, 5.0)
    x_gap = x.copy()
    x_gap[60:70] = np.nan  # a tracking gap 1.2-1.38 s
    q = np.arange(0, 2.5, 1 / 30)
    r = resample_tracking(t, x_gap, x, speed, hd, np.zeros_like(t), q, 2 / 50)
    inside = (q <= t[-1]) & ~((q > 1.18) & (q < 1.41))
    np.testing.assert_allclose(r.x_cm[inside], np.interp(q[inside], t, x))
    assert not r.valid[q > t[-1]].any() and np.isnan(r.x_cm[q > t[-1]]).all()
    assert not r.valid[(q > 1.2) & (q < 1.38)].any()
    expected_hd = np.remainder(340 + 40 * q, 360)
    ok = r.valid  # the gap's rows have no head direction either (NULL where not valid)
    assert ok[q < 1.0].all()
    err = np.abs((r.head_direction_deg[ok] - expected_hd[ok] + 180) % 360 - 180)
    assert err.max() < 1e-9  # never 180 deg off across the wrap
    # the nearest video frame too far (a stretch without frames): not valid
    t2 = np.r_[t[:50], t[50:] + 1.0]
    r2 = resample_tracking(t2, x, x, speed, hd, np.zeros_like(t), np.array([1.5]), 2 / 50)
    assert not r2.valid[0]


def test_session_yaml_needs_start_time_or_tifs(tmp_path):
    from dlc_tracking.errors import SessionError
    from dlc_tracking.sessions.layout import load_session_metadata

    path = tmp_path / "session.yaml"
    base = {"tracking_type": "openfield", "camera_view": "above", "pixels_per_cm": 3.0}
    path.write_text(yaml.safe_dump({**base, "imaging": {"suite2p": "suite2p"}}))
    with pytest.raises(SessionError, match="start_time is required"):
        load_session_metadata(path)
    path.write_text(yaml.safe_dump({**base, "imaging": {"scanimage": "a.tif",
                                                        "timezone": "Europe/Oslo"}}))
    meta = load_session_metadata(path)
    assert meta.start_time is None and meta.imaging.scanimage == ["a.tif"]
    path.write_text(yaml.safe_dump({**base, "imaging": {"scanimage": ["a.tif"],
                                                        "timezone": "Mars/Olympus"}}))
    with pytest.raises(SessionError, match="Mars/Olympus"):
        load_session_metadata(path)


def test_start_from_tifs_and_mismatch_warning(tmp_path):
    paths = write_scanimage_tifs(tmp_path, "m", _times(4), EPOCH, frame_rate_hz=30.0)
    start, warnings = start_from_tifs(paths, "Europe/Oslo")
    assert start.isoformat() == "2026-01-05T10:00:03.250000+01:00" and warnings == []
    declared = datetime(2026, 1, 5, 10, 0, 33, tzinfo=CET)
    start, warnings = start_from_tifs(paths, None, declared)
    assert start == declared and len(warnings) == 1
    assert "2026-01-05T10:00:33+01:00" in warnings[0]
    assert "2026-01-05T10:00:03.250000+01:00" in warnings[0] and "-29.750 s" in warnings[0]
    with pytest.raises(ImagingError, match="no time zone"):
        start_from_tifs(paths, None)


def test_predict_start_timestamp_from_tifs(tmp_path, capsys):
    from dlc_tracking.inference.manual_predict import resolve_start_timestamp

    paths = write_scanimage_tifs(tmp_path, "m", _times(4), EPOCH, frame_rate_hz=30.0)
    video = tmp_path / "openfield.mp4"
    assert resolve_start_timestamp(video, None, paths, "+01:00") == \
        "2026-01-05T10:00:03.250000+01:00"
    (tmp_path / "session.yaml").write_text(yaml.safe_dump({
        "tracking_type": "openfield", "camera_view": "above", "pixels_per_cm": 3.0,
        "start_time": "2026-01-05T10:00:00+01:00"}))
    assert resolve_start_timestamp(video, None, paths, None) == "2026-01-05T10:00:00+01:00"
    assert "differ by +3.250 s" in capsys.readouterr().err


def test_predict_start_time_skips_session_yaml_and_uses_its_tolerance(tmp_path, capsys):
    from dlc_tracking.inference.manual_predict import resolve_start_timestamp

    paths = write_scanimage_tifs(tmp_path, "m", _times(4), EPOCH, frame_rate_hz=30.0)
    video = tmp_path / "openfield.mp4"
    (tmp_path / "session.yaml").write_text("tracking_type: [unclosed\n")  # broken
    assert resolve_start_timestamp(video, "2026-01-05T10:00:00+01:00", None, None) == \
        "2026-01-05T10:00:00+01:00"
    (tmp_path / "session.yaml").write_text(yaml.safe_dump({
        "tracking_type": "openfield", "camera_view": "above", "pixels_per_cm": 3.0,
        "start_time": "2026-01-05T10:00:00+01:00",
        "imaging": {"scanimage": [paths[0].name], "max_clock_offset_s": 5.0}}))
    capsys.readouterr()
    assert resolve_start_timestamp(video, None, None, None) == "2026-01-05T10:00:00+01:00"
    assert "differ" not in capsys.readouterr().err  # 3.25 s apart, within the session's 5 s


def test_sync_from_nwb_timeseries(tmp_path):
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries

    from dlc_tracking.imaging.sync import read_sync_nwb

    nwb = NWBFile(session_description="daq", identifier="x",
                  session_start_time=datetime(2026, 1, 5, 10, tzinfo=CET))
    camera = 3.0 + np.arange(50) / 50.0
    nwb.add_acquisition(TimeSeries(name="CameraTTL", data=np.ones(50), unit="V",
                                   timestamps=camera))
    nwb.add_acquisition(TimeSeries(name="FrameTTL", data=np.ones(30), unit="V",
                                   starting_time=3.1, rate=30.0))
    path = tmp_path / "daq.nwb"
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    sync = read_sync_nwb(path, "CameraTTL", "FrameTTL")
    np.testing.assert_allclose(sync.camera_s, camera)
    np.testing.assert_allclose(sync.imaging_s, 3.1 + np.arange(30) / 30.0)
    with pytest.raises(ImagingError, match="no TimeSeries named 'Lick'"):
        read_sync_nwb(path, "Lick", "FrameTTL")


def test_unreadable_nwb_and_ops_files_name_the_file(tmp_path):
    from dlc_tracking.imaging.sync import read_sync_nwb

    (tmp_path / "daq.nwb").write_text("not hdf5")
    with pytest.raises(ImagingError, match=r"daq.nwb cannot be read as an NWB \(HDF5\) file"):
        read_sync_nwb(tmp_path / "daq.nwb", "CameraTTL", "FrameTTL")
    plane = tmp_path / "suite2p" / "plane0"
    plane.mkdir(parents=True)
    (plane / "ops.npy").write_bytes(b"\x80\x04garbage")
    with pytest.raises(ImagingError, match=r"ops.npy cannot be read as Suite2p's ops.npy"):
        read_suite2p(tmp_path / "suite2p")


def test_saved_flyback_frames_are_dropped(tmp_path):
    times = _times(12, rate=90.0)  # 2 planes + 1 saved flyback frame per volume
    paths = write_scanimage_tifs(tmp_path, "f", times, EPOCH, frame_rate_hz=90.0, n_planes=2,
                                 header_extra={"SI.hFastZ.discardFlybackFrames": False,
                                               "SI.hFastZ.numDiscardFlybackFrames": 1})
    acq = read_scanimage(paths)
    assert acq.n_flyback == 1 and list(acq.plane[:6]) == [0, 1, -1, 0, 1, -1]


def test_planes_follow_frame_numbers_and_missing_first_file_refused(tmp_path):
    # 2 planes + 1 saved flyback frame, files of 4 frames: the second file starts mid-volume
    times = _times(12, rate=90.0)
    extra = {"SI.hFastZ.discardFlybackFrames": False, "SI.hFastZ.numDiscardFlybackFrames": 1}
    paths = write_scanimage_tifs(tmp_path, "f", times, EPOCH, frame_rate_hz=90.0, n_planes=2,
                                 frames_per_file=4, header_extra=extra)
    acq = read_scanimage(paths)
    assert list(acq.plane) == [0, 1, -1] * 4
    with pytest.raises(ImagingError, match=r"f_00002.tif starts at ScanImage frame 5, not 1: "
                                           "the acquisition's first file is missing"):
        read_scanimage(paths[1:])


def test_classic_tiff_scanimage_file_is_read(tmp_path):
    times = _times(12, jitter=0.002)
    paths = write_scanimage_tifs(tmp_path, "c", times, EPOCH, frame_rate_hz=30.0,
                                 bigtiff=False)
    with tifffile.TiffFile(paths[0]) as tif:  # tifffile gives virtual frames, no description
        assert not tif.is_bigtiff and type(tif.pages[5]).__name__ == "TiffFrame"
    acq = read_scanimage(paths)
    np.testing.assert_allclose(acq.frame_times_s, times, atol=1e-9)
    assert acq.frame_rate_hz == 30.0 and acq.epoch == EPOCH
    assert acquisition_start(paths[0]) == EPOCH
    desc = tifffile.matlabstr2py(tifffile.TiffFile(paths[0]).pages.first.description)
    assert desc["acqTriggerTimestamps_sec"] == "" and desc["endOfAcquisitionMode"] == ""


def test_errors_name_the_file_of_the_bad_frame(tmp_path):
    times = _times(10)
    times[7] = times[6]  # frame 8 (in the second file) does not move on
    paths = write_scanimage_tifs(tmp_path, "m", times, EPOCH, frame_rate_hz=30.0,
                                 frames_per_file=5)
    with pytest.raises(ImagingError, match=r"m_00002.tif: frameTimestamps_sec does not "
                                           "increase at frame 8"):
        read_scanimage(paths)
    two = write_scanimage_tifs(tmp_path / "two", "t", _times(10), EPOCH, frame_rate_hz=30.0,
                               n_channels=2, frames_per_file=5)
    # the second file loses its last page: frame 10 has one channel's page only
    with tifffile.TiffFile(two[1]) as tif:
        pages = [(p.asarray(), p.description, p.software) for p in tif.pages]
    with tifffile.TiffWriter(two[1], bigtiff=True) as out:
        for image, description, software in pages[:-1]:
            out.write(image, description=description, software=software, metadata=None)
    with pytest.raises(ImagingError, match=r"t_00002.tif: the header saves 2 channels but "
                                           "frame 10 has 1 page"):
        read_scanimage(two)


@pytest.mark.parametrize(("extra", "planes"), [
    ({"SI.hStackManager.enable": True, "SI.hFastZ.enable": False,
      "SI.hStackManager.numSlices": 1}, 1),  # stack manager on, one slice: a time series
    ({"SI.hFastZ.enable": False, "SI.hStackManager.stackMode": "fast",
      "SI.hStackManager.numSlices": 5, "SI.hStackManager.actualNumSlices": 3}, 3),
])
def test_fast_z_from_the_header(tmp_path, extra, planes):
    paths = write_scanimage_tifs(tmp_path, "z", _times(6, rate=90.0), EPOCH,
                                 frame_rate_hz=90.0, header_extra=extra)
    assert read_scanimage(paths).n_planes == planes


def test_slow_stack_refused(tmp_path):
    paths = write_scanimage_tifs(tmp_path, "s", _times(6), EPOCH, frame_rate_hz=30.0,
                                 header_extra={"SI.hStackManager.enable": True,
                                               "SI.hFastZ.enable": False,
                                               "SI.hStackManager.numSlices": 3,
                                               "SI.hStackManager.framesPerSlice": 2})
    with pytest.raises(ImagingError, match=r"s_00001.tif is a slow z-stack"):
        read_scanimage(paths)


def _ops_per_plane(folder, counts, fs, nplanes):
    for p, n in enumerate(counts):
        plane = folder / "suite2p" / f"plane{p}"
        plane.mkdir(parents=True)
        np.save(plane / "ops.npy", {"nframes": n, "fs": fs, "nplanes": nplanes,
                                    "nchannels": 1}, allow_pickle=True)


def test_suite2p_stopped_mid_volume_and_flyback_planes(tmp_path):
    # 2 planes, stopped after plane 0 of the 4th volume: plane 0 has 4 frames, plane 1 has 3
    paths = write_scanimage_tifs(tmp_path, "v", _times(7, rate=60.0), EPOCH,
                                 frame_rate_hz=60.0, n_planes=2)
    _ops_per_plane(tmp_path, [4, 3], 30.0, 2)
    config = ImagingConfig(scanimage=[paths[0].name], suite2p="suite2p", timezone="UTC")
    frames = load_imaging(config, tmp_path, None, "test")
    assert list(np.bincount(frames.plane)) == [4, 3]
    # Suite2p on tifs with a saved flyback frame per volume: it counts 3 planes
    flyback = tmp_path / "fly"
    extra = {"SI.hFastZ.discardFlybackFrames": False, "SI.hFastZ.numDiscardFlybackFrames": 1}
    paths = write_scanimage_tifs(flyback, "f", _times(12, rate=90.0), EPOCH,
                                 frame_rate_hz=90.0, n_planes=2, header_extra=extra)
    _ops_per_plane(flyback, [4, 4, 4], 30.0, 3)
    config = ImagingConfig(scanimage=[paths[0].name], suite2p="suite2p", timezone="UTC")
    assert load_imaging(config, flyback, None, "test").n_planes == 2
    with pytest.raises(ImagingError, match=r"planes have frame counts \[4, 2\]"):
        _ops_per_plane(tmp_path / "bad", [4, 2], 30.0, 2)
        read_suite2p(tmp_path / "bad" / "suite2p")


def test_volume_frame_rate_checked_on_plane_0(tmp_path):
    from dlc_assets.assets.imaging import imaging_checks
    from dlc_tracking.imaging.on_imaging import tracking_on_imaging

    # 2 planes + 1 discarded flyback frame at 90 frames/s: 30 volumes/s, saved frames at
    # acquisition frames 0, 1, 3, 4, 6, 7...
    acq = np.array([k for k in range(300) if k % 3 != 2])
    paths = write_scanimage_tifs(tmp_path, "v", acq / 90.0, EPOCH, frame_rate_hz=90.0,
                                 n_planes=2, header_extra={
                                     "SI.hFastZ.numDiscardFlybackFrames": 1,
                                     "SI.hRoiManager.scanVolumeRate": 30.0})
    config = ImagingConfig(scanimage=[paths[0].name], timezone="+01:00")
    result = tracking_on_imaging(_processed(), config, tmp_path, EPOCH.replace(tzinfo=CET),
                                 "session.yaml", 50.0, None, "test")
    assert result.rate_checked[2] == "volume"
    assert result.rate_checked[0] == pytest.approx(30.0)
    checks = {c.check_name: c for c in imaging_checks(result, config, "session.yaml")}
    assert checks["imaging_frame_rate"].passed


def _processed(n: int = 250, fps: float = 50.0):
    import pandas as pd

    t = np.arange(n) / fps
    return pd.DataFrame({
        "recording_id": "r", "model_name": "m", "method_name": "two_ears",
        "params_name": "default", "params_hash": "h", "frame": np.arange(n), "time_s": t,
        "x_cm": 10 + t, "y_cm": 20 - t, "speed_cm_s": np.full(n, 1.4),
        "head_direction_deg": np.remainder(350 + 20 * t, 360),
        "angular_head_velocity_deg_s": np.full(n, 20.0)})


def test_table_rows_and_check_figures(tmp_path):
    from dlc_assets.assets.imaging import imaging_checks
    from dlc_tracking.imaging.on_imaging import tracking_on_imaging

    # 5 s of video at 50 Hz; imaging at 25 frames/s although the header says 30, and
    # lasting 8 s: the frame-rate and duration checks warn, frames past the video invalid
    times = np.arange(200) / 25.0
    paths = write_scanimage_tifs(tmp_path, "m", times, EPOCH, frame_rate_hz=30.0)
    config = ImagingConfig(scanimage=[paths[0].name], timezone="+01:00")
    start = EPOCH.replace(tzinfo=CET)
    result = tracking_on_imaging(_processed(), config, tmp_path, start, "session.yaml", 50.0,
                                 None, "test")
    rows = result.rows
    assert len(rows) == 200 and list(rows.columns[:5]) == [
        "recording_id", "model_name", "method_name", "params_name", "params_hash"]
    inside = rows.time_s <= 249 / 50
    assert rows.valid[inside].all() and not rows.valid[~inside].any()
    np.testing.assert_allclose(rows.x_cm[inside], 10 + rows.time_s[inside])
    hd = rows.head_direction_deg[inside].to_numpy()
    expected = np.remainder(350 + 20 * rows.time_s[inside].to_numpy(), 360)
    assert np.abs((hd - expected + 180) % 360 - 180).max() < 1e-9
    checks = {c.check_name: c for c in imaging_checks(result, config, "session.yaml")}
    assert not checks["imaging_frame_rate"].passed
    assert "25.0000 per second" in checks["imaging_frame_rate"].description
    assert not checks["imaging_matches_video"].passed
    assert checks["clock_offset"].passed and checks["dropped_camera_frames"].passed
    assert result.alignment_row["fraction_valid"] == pytest.approx(inside.mean())
