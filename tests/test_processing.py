"""Raw state vectors and processed tracking against analytic ground truth."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dlc_tracking.errors import ProcessingError
from dlc_tracking.tracking.arena import Boundary, arena_boundary
from dlc_tracking.tracking.calibration import calibrate
from dlc_tracking.tracking.cleaning import interpolate_gaps, remove_jumps, smooth_nan
from dlc_tracking.tracking.kinematics import speed
from dlc_tracking.tracking.methods import BUILTIN_METHODS, StateVectorMethod
from dlc_tracking.tracking.params import ProcessingParams
from dlc_tracking.tracking.processed import (
    ProcessedTracking,
    body_parts_to_frame,
    process_body_parts,
    process_tracking,
)
from dlc_tracking.tracking.raw_state import RawStateVector, raw_state_vector

W, H = 640.0, 480.0
FPS = 50.0
PPCM = 5.0
PARTS = ["nose", "left_ear", "right_ear", "tail_base"]
TWO_EARS = BUILTIN_METHODS["two_ears"]
NO_SMOOTHING = ProcessingParams(
    name="raw", pixels_per_cm=PPCM, sigma_position_s=0.0, sigma_speed_s=0.0, sigma_head_s=0.0
)


# ------------------------------------------------------------------ ground truth


def figure_eight(n: int = 3000, fps: float = FPS):
    """Head point (arena frame, px, y up), heading = direction of motion, and speed.

    A figure eight spanning 400 x 300 px (80 x 60 cm at 5 px/cm) whose speed never
    drops below ~30 px/s, so the heading turns at most ~50 deg/s (a Lissajous curve with
    near-stops would turn at 1000+ deg/s, which no animal's body does).
    """
    t = np.arange(n) / fps
    w = 2 * np.pi / 30.0
    x = 320 + 200 * np.sin(w * t)
    y = 240 + 150 * np.sin(2 * w * t)
    vx, vy = 200 * w * np.cos(w * t), 300 * w * np.cos(2 * w * t)
    return t, x, y, np.arctan2(vy, vx), np.hypot(vx, vy)


def circle(n: int = 3000, fps: float = FPS, radius: float = 150.0, period: float = 20.0):
    t = np.arange(n) / fps
    w = 2 * np.pi / period
    x = 320 + radius * np.cos(w * t)
    y = 240 + radius * np.sin(w * t)
    return t, x, y, w * t + np.pi / 2, np.full(n, radius * w)


def body(x, y, heading):
    c, s = np.cos(heading), np.sin(heading)
    lc, ls = np.cos(heading + np.pi / 2), np.sin(heading + np.pi / 2)
    return {
        "nose": (x + 14 * c, y + 14 * s),
        "left_ear": (x + 9 * lc, y + 9 * ls),
        "right_ear": (x - 9 * lc, y - 9 * ls),
        "tail_base": (x - 45 * c, y - 45 * s),
    }


def to_image(x, y, camera_view):
    return (x if camera_view == "above" else W - x), H - y


def to_poses(parts, camera_view, likelihood=0.99):
    n = parts["nose"][0].shape[0]
    poses = np.empty((n, len(PARTS), 3))
    for j, name in enumerate(PARTS):
        xi, yi = to_image(*parts[name], camera_view)
        poses[:, j, 0], poses[:, j, 1], poses[:, j, 2] = xi, yi, likelihood
    return poses


def ang_err_deg(a_deg, b_deg):
    d = np.mod(np.asarray(a_deg) - np.asarray(b_deg) + 180.0, 360.0) - 180.0
    return np.abs(d)


def expected_cm(x, y, tracking: ProcessedTracking):
    """Arena-frame px -> cm with the processed tracking's origin."""
    cal = tracking.calibration
    return (x - cal.origin_x_px) / cal.pixels_per_cm, (y - cal.origin_y_px) / cal.pixels_per_cm


def run(path=figure_eight, camera_view="above", params=None, n=3000, poses_hook=None, **kw):
    t, x, y, heading, spd = path(n)
    poses = to_poses(body(x, y, heading), camera_view)
    if poses_hook:
        poses_hook(poses)
    raw = raw_state_vector(TWO_EARS, poses, PARTS, t, camera_view, (W, H))
    tracking = process_tracking(raw, params or ProcessingParams(pixels_per_cm=PPCM), **kw)
    return (t, x, y, heading, spd), poses, raw, tracking


# ------------------------------------------------------------------ kinematics


def test_speed_matches_gradient_and_is_nan_aware():
    t = np.cumsum(np.r_[0.0, np.random.default_rng(0).uniform(0.02, 0.03, 199)])
    x, y = np.sin(t) * 50, np.cos(2 * t) * 30
    expected = np.hypot(np.gradient(x, t), np.gradient(y, t))
    assert np.allclose(speed(x, y, t), expected)
    x[50] = np.nan
    s = speed(x, y, t)
    assert np.isnan(s[50])
    # neighbours of a missing sample use the one-sided difference
    assert s[49] == pytest.approx(
        np.hypot((x[49] - x[48]) / (t[49] - t[48]), (y[49] - y[48]) / (t[49] - t[48]))
    )
    assert np.isfinite(s[51]) and np.isfinite(s).sum() == 199
    with pytest.raises(ProcessingError, match="strictly increasing"):
        speed(x, y, t[::-1])
    assert speed(np.array([1.0]), np.array([1.0]), np.array([0.0])).shape == (1,)


def test_arena_boundary_is_robust_to_outliers():
    rng = np.random.default_rng(2)
    x = rng.uniform(100, 500, 20000)
    y = rng.uniform(50, 350, 20000)
    x[:20], y[:20] = 5000.0, -4000.0  # 0.1 % wild outliers
    x[100:200] = np.nan
    b = arena_boundary(x, y)
    assert b.left == pytest.approx(100, abs=5) and b.right == pytest.approx(500, abs=5)
    # image coordinates: top is the smaller y
    assert b.top == pytest.approx(50, abs=5) and b.bottom == pytest.approx(350, abs=5)
    assert b.width == pytest.approx(400, abs=10) and b.height == pytest.approx(300, abs=10)
    with pytest.raises(ProcessingError, match="no frame has a position"):
        arena_boundary(np.full(5, np.nan), np.full(5, np.nan))


def test_raw_state_vector_and_frame():
    (t, x, y, heading, spd), poses, raw, _ = run(n=1000)
    assert isinstance(raw, RawStateVector)
    assert raw.method_name == "two_ears" and raw.method_hash == TWO_EARS.param_hash
    interior = slice(1, -1)
    assert np.allclose(raw.speed_px_s[interior], spd[interior], rtol=1e-3)
    df = raw.to_frame()
    assert list(df.columns) == [
        "frame",
        "time_s",
        "x_px",
        "y_px",
        "head_angle_rad",
        "speed_px_s",
        "valid",
    ]
    assert df["frame"].tolist() == list(range(1000))
    json.dumps(df.attrs)
    with pytest.raises(ProcessingError, match="time_s has 999 values"):
        raw_state_vector(TWO_EARS, poses, PARTS, t[:-1], "above", (W, H))
    t_bad = t.copy()
    t_bad[10] = t_bad[9]
    with pytest.raises(ProcessingError, match="strictly increasing"):
        raw_state_vector(TWO_EARS, poses, PARTS, t_bad, "above", (W, H))


# ------------------------------------------------------------------ processed tracking


@pytest.mark.parametrize("camera_view", ["above", "below"])
def test_processed_position_and_head_direction_without_smoothing(camera_view):
    (t, x, y, heading, _), _, _, tr = run(camera_view=camera_view, params=NO_SMOOTHING)
    ex, ey = expected_cm(x, y, tr)
    assert np.max(np.hypot(tr.x_cm - ex, tr.y_cm - ey)) < 0.5 / PPCM
    assert np.max(ang_err_deg(tr.head_direction_deg, np.degrees(heading))) < 2.0
    # heading = motion direction on this path
    assert np.max(ang_err_deg(tr.movement_direction_deg[1:-1], np.degrees(heading[1:-1]))) < 2
    # a known px/cm needs no tracking: origin at the image's lower-left corner (arena
    # frame), so the path keeps its place in the image and spans 80 x 60 cm
    assert (tr.calibration.origin_x_px, tr.calibration.origin_y_px) == (0.0, 0.0)
    assert np.nanmax(tr.x_cm) - np.nanmin(tr.x_cm) == pytest.approx(80.0, abs=0.1)
    assert np.nanmax(tr.y_cm) - np.nanmin(tr.y_cm) == pytest.approx(60.0, abs=0.1)
    assert np.nanmin(tr.x_cm) == pytest.approx(np.nanmin(x) / PPCM, abs=0.1)
    assert np.all((tr.head_direction_deg >= 0) & (tr.head_direction_deg < 360))
    assert np.all((tr.movement_direction_deg >= 0) & (tr.movement_direction_deg < 360))


@pytest.mark.parametrize("camera_view", ["above", "below"])
def test_processed_with_default_smoothing_stays_close(camera_view):
    (t, x, y, heading, _), _, _, tr = run(camera_view=camera_view)
    ex, ey = expected_cm(x, y, tr)
    inner = slice(50, -50)
    assert np.max(np.hypot(tr.x_cm - ex, tr.y_cm - ey)[inner]) < 0.5 / PPCM
    assert np.max(ang_err_deg(tr.head_direction_deg, np.degrees(heading))[inner]) < 2.0


@pytest.mark.parametrize("camera_view", ["above", "below"])
def test_speed_within_two_percent_on_smooth_path(camera_view):
    (t, x, y, heading, spd), _, _, tr = run(path=circle, camera_view=camera_view)
    inner = slice(int(FPS), -int(FPS))  # away from the edges
    truth = spd / PPCM
    assert np.max(np.abs(tr.speed_cm_s[inner] / truth[inner] - 1)) < 0.02
    (t, x, y, heading, spd), _, _, tr = run(path=figure_eight, camera_view=camera_view)
    truth = spd / PPCM
    assert np.max(np.abs(tr.speed_cm_s[inner] - truth[inner])) < 0.02 * truth.mean()


def test_angular_head_velocity():
    # counter-clockwise circle: heading turns at +w rad/s
    (t, x, y, heading, spd), _, _, tr = run(path=circle)
    inner = slice(int(FPS), -int(FPS))
    w_deg = 360.0 / 20.0
    assert np.allclose(tr.angular_head_velocity_deg_s[inner], w_deg, rtol=0.01)
    # clockwise (time reversed): negative
    n = 3000
    t, x, y, heading, _ = circle(n)
    x, y, heading = x[::-1], y[::-1], heading[::-1] + np.pi
    raw = raw_state_vector(
        TWO_EARS, to_poses(body(x, y, heading), "below"), PARTS, t, "below", (W, H)
    )
    tr = process_tracking(raw, ProcessingParams(pixels_per_cm=PPCM))
    assert np.allclose(tr.angular_head_velocity_deg_s[inner], -w_deg, rtol=0.01)


def test_arena_frame_orientation_per_camera_view():
    """Moving right and up in the arena is +x/+y whatever the camera sees."""
    n = 200
    t = np.arange(n) / FPS
    x = 100 + 2 * np.arange(n) * 0.5
    y = 100 + 1 * np.arange(n) * 0.5
    heading = np.full(n, np.arctan2(1, 2))
    for view in ("above", "below"):
        raw = raw_state_vector(
            TWO_EARS, to_poses(body(x, y, heading), view), PARTS, t, view, (W, H)
        )
        tr = process_tracking(raw, NO_SMOOTHING)
        assert np.all(np.diff(tr.x_cm) > 0) and np.all(np.diff(tr.y_cm) > 0)
        assert np.allclose(tr.movement_direction_deg, np.degrees(np.arctan2(1, 2)))
        assert np.allclose(tr.head_direction_deg, np.degrees(np.arctan2(1, 2)))


def test_jumps_removed_and_gaps_interpolated():
    jump_frames = [0, 500, 1200, 2000, 2001, 2002, 2003, 2004]  # start, singles, a plateau
    short_gap = np.arange(800, 821)  # 0.42 s
    long_gap = np.arange(1500, 1700)  # 4 s

    def corrupt(poses):
        for f in jump_frames:
            poses[f, :, 0] += 80.0  # 80 px = 16 cm in 20 ms
        poses[short_gap] = np.nan
        poses[long_gap] = np.nan

    (t, x, y, heading, _), _, raw, tr = run(params=NO_SMOOTHING, poses_hook=corrupt)
    assert np.flatnonzero(tr.jump_removed).tolist() == jump_frames
    assert tr.stats["n_jumps_removed"] == len(jump_frames)
    # frame 0 is a leading gap: removed, not extrapolated
    assert np.isnan(tr.x_cm[0]) and not tr.interpolated[0]
    filled = np.r_[jump_frames[1:], short_gap]
    assert tr.interpolated[filled].all()
    assert tr.interpolated.sum() == len(filled)
    ex, ey = expected_cm(x, y, tr)
    err = np.hypot(tr.x_cm - ex, tr.y_cm - ey)
    assert np.nanmax(err[filled]) < 1.0 / PPCM
    assert np.nanmax(ang_err_deg(tr.head_direction_deg[filled], np.degrees(heading[filled]))) < 2
    # long gaps stay missing, in every output
    assert np.isnan(tr.x_cm[long_gap]).all() and np.isnan(tr.speed_cm_s[long_gap]).all()
    assert np.isnan(tr.head_direction_deg[long_gap]).all()
    assert not tr.interpolated[long_gap].any()
    ok = np.ones(len(t), bool)
    ok[0] = False
    ok[long_gap] = False
    assert np.isfinite(tr.x_cm[ok]).all() and np.isfinite(tr.head_direction_deg[ok]).all()
    # with default smoothing the spikes leave no trace either
    (t, x, y, heading, spd), _, _, tr = run(poses_hook=corrupt)
    ex, ey = expected_cm(x, y, tr)
    err = np.hypot(tr.x_cm - ex, tr.y_cm - ey)
    assert np.nanmax(err[60:1450]) < 0.5 / PPCM
    assert np.nanmax(tr.speed_cm_s) < 1.05 * spd.max() / PPCM


def test_low_likelihood_is_missing_then_interpolated():
    def low(poses):
        poses[300:310, PARTS.index("left_ear"), 2] = 0.3

    _, _, raw, tr = run(params=NO_SMOOTHING, poses_hook=low)
    assert not raw.valid[300:310].any() and np.isnan(raw.x_px[300:310]).all()
    assert tr.interpolated[300:310].all() and tr.interpolated.sum() == 10
    assert tr.stats["n_missing_raw"] == 10 and tr.stats["n_missing"] == 0


def test_circular_smoothing_across_the_wrap():
    n = 1500
    t, x, y, _, _ = figure_eight(n)
    heading = 0.3 * np.sin(np.pi * t)  # wobbles across 0/360
    raw = raw_state_vector(
        TWO_EARS, to_poses(body(x, y, heading), "above"), PARTS, t, "above", (W, H)
    )
    assert (raw.head_angle_rad > np.pi).any() and (raw.head_angle_rad < np.pi).any()
    params = ProcessingParams(pixels_per_cm=PPCM, sigma_head_s=0.1)
    tr = process_tracking(raw, params)
    err = ang_err_deg(tr.head_direction_deg, np.degrees(heading))
    assert np.max(err) < 5.0  # the one-sided kernel at the two ends lags a little
    assert np.max(err[15:-15]) < 2.0
    ahv_truth = np.degrees(0.3 * np.pi * np.cos(np.pi * t))
    inner = slice(50, -50)
    assert np.max(np.abs(tr.angular_head_velocity_deg_s - ahv_truth)[inner]) < 3.5
    # heavier smoothing damps the wobble but never flips the direction
    tr = process_tracking(raw, ProcessingParams(pixels_per_cm=PPCM, sigma_head_s=0.4))
    assert np.max(ang_err_deg(tr.head_direction_deg, np.degrees(heading))) < 20.0
    # whereas smoothing the angle values themselves would (the test is not vacuous)
    naive = smooth_nan(np.degrees(raw.head_angle_rad), 0.1 * FPS)
    assert np.max(ang_err_deg(naive, np.degrees(heading))) > 90.0


def test_single_point_method_keeps_head_direction_missing():
    t, x, y, heading, _ = figure_eight(500)
    raw = raw_state_vector(
        BUILTIN_METHODS["nose"], to_poses(body(x, y, heading), "above"), PARTS, t, "above", (W, H)
    )
    assert np.isnan(raw.head_angle_rad).all() and not raw.has_head_direction
    tr = process_tracking(raw, ProcessingParams(pixels_per_cm=PPCM))
    df = tr.to_frame()
    assert df["head_direction_deg"].isna().all()
    assert df["angular_head_velocity_deg_s"].isna().all()
    assert df["x_cm"].notna().all() and df["speed_cm_s"].notna().all()
    assert not tr.has_head_direction


def test_calibration_by_pixels_per_cm_and_by_arena_size():
    # the Lissajous path spans 400 x 300 px = 80 x 60 cm at 5 px/cm
    _, _, raw, tr = run(params=ProcessingParams(pixels_per_cm=PPCM))
    assert tr.calibration.source == "pixels_per_cm" and tr.calibration.pixels_per_cm == PPCM
    for kw, source in [
        (dict(arena_width_cm=80.0), "arena_width"),
        (dict(arena_height_cm=60.0), "arena_height"),
        (dict(arena_width_cm=80.0, arena_height_cm=60.0), "arena_size"),
    ]:
        tr = process_tracking(raw, ProcessingParams(**kw))
        assert tr.calibration.source == source
        assert tr.calibration.pixels_per_cm == pytest.approx(PPCM, rel=0.002)
        tr2 = process_tracking(raw, ProcessingParams(), **kw)  # per-session arguments
        assert tr2.calibration.pixels_per_cm == tr.calibration.pixels_per_cm
        assert np.nanmax(tr.x_cm) == pytest.approx(80.0, rel=0.005)
    # session arguments win over the parameter set; a scale wins over a size
    tr = process_tracking(raw, ProcessingParams(pixels_per_cm=4.0), arena_width_cm=80.0)
    assert tr.calibration.source == "arena_width"
    tr = process_tracking(
        raw, ProcessingParams(arena_width_cm=80.0), pixels_per_cm=4.0, arena_width_cm=100.0
    )
    assert tr.calibration.source == "pixels_per_cm" and tr.calibration.pixels_per_cm == 4.0
    with pytest.raises(ProcessingError, match="pixels_per_cm") as err:
        process_tracking(raw, ProcessingParams(), source="rec-1")
    assert "rec-1" in str(err.value) and "arena" in str(err.value)
    d = json.loads(json.dumps(tr.calibration.to_dict()))
    assert d["source"] == "pixels_per_cm" and set(d["boundary_px"]) == {
        "left",
        "right",
        "top",
        "bottom",
    }


def test_calibrate_origin_is_lower_left_corner():
    b = Boundary(left=100.0, right=500.0, top=50.0, bottom=350.0)
    above = calibrate(b, "above", (W, H), arena_width_cm=80.0, arena_height_cm=60.0)
    assert above.pixels_per_cm == 5.0 and above.source == "arena_size"
    assert (above.origin_x_px, above.origin_y_px) == (100.0, H - 350.0)
    # the image's lower-left corner (100, 350) is the arena origin seen from above
    assert above.to_cm(np.array([100.0]), np.array([350.0])) == (0.0, 0.0)
    below = calibrate(b, "below", (W, H), arena_width_cm=80.0, arena_height_cm=60.0)
    # seen from below the arena's left is the image's right: (500, 350) is the origin
    x_cm, y_cm = below.to_cm(np.array([500.0, 100.0]), np.array([350.0, 50.0]))
    assert np.allclose(x_cm, [0.0, 80.0]) and np.allclose(y_cm, [0.0, 60.0])
    assert below.arena_extent_cm == (80.0, 60.0)
    # a given px/cm: origin at the image's own lower-left corner (arena frame)
    fixed = calibrate(b, "below", (W, H), pixels_per_cm=5.0)
    assert (fixed.origin_x_px, fixed.origin_y_px) == (0.0, 0.0)
    x_cm, y_cm = fixed.to_cm(np.array([500.0]), np.array([350.0]))
    assert np.allclose(x_cm, (W - 500.0) / 5.0) and np.allclose(y_cm, (H - 350.0) / 5.0)
    with pytest.raises(ProcessingError, match="no horizontal extent"):
        calibrate(Boundary(1.0, 1.0, 0.0, 10.0), "above", (W, H), arena_width_cm=50.0)
    with pytest.raises(ProcessingError, match="pixels_per_cm"):
        calibrate(b, "above", (W, H), pixels_per_cm=-1.0)


def test_processing_params_hash_and_validation():
    p = ProcessingParams()
    assert p.param_hash == "2ddbda4220e3723c"  # stable: stored results refer to it
    assert ProcessingParams(name="renamed").param_hash == p.param_hash
    assert ProcessingParams(max_gap_s=1).param_hash == p.param_hash  # 1 == 1.0
    variants = [
        ProcessingParams(max_speed_cm_s=150.0),
        ProcessingParams(max_gap_s=0.5),
        ProcessingParams(sigma_position_s=0.2),
        ProcessingParams(sigma_speed_s=0.2),
        ProcessingParams(sigma_head_s=0.2),
        ProcessingParams(pixels_per_cm=5.0),
        ProcessingParams(arena_width_cm=80.0),
        ProcessingParams(max_speed_cm_s=None),
    ]
    assert len({p.param_hash} | {v.param_hash for v in variants}) == 1 + len(variants)
    d = json.loads(json.dumps(p.to_dict()))
    assert ProcessingParams.from_dict(d) == p
    d["max_gap_s"] = 3.0
    with pytest.raises(ProcessingError, match="param_hash"):
        ProcessingParams.from_dict(d)
    with pytest.raises(ProcessingError, match="unknown keys"):
        ProcessingParams.from_dict({"sigma": 0.1})
    for bad in (
        dict(max_gap_s=-1),
        dict(sigma_head_s=float("nan")),
        dict(pixels_per_cm=0),
        dict(max_speed_cm_s=0),
        dict(arena_width_cm="80"),
    ):
        with pytest.raises(ProcessingError, match="processing parameter"):
            ProcessingParams(**bad)


def test_processed_frame_columns_and_metadata():
    _, _, _, tr = run(n=500)
    df = tr.to_frame()
    assert list(df.columns) == [
        "frame",
        "time_s",
        "x_cm",
        "y_cm",
        "speed_cm_s",
        "head_direction_deg",
        "angular_head_velocity_deg_s",
        "movement_direction_deg",
        "interpolated",
    ]
    assert df["interpolated"].dtype == bool
    meta = json.loads(json.dumps(tr.metadata()))
    assert meta["params"]["param_hash"] == tr.params.param_hash
    assert meta["calibration"]["source"] == "pixels_per_cm"
    assert meta["method_hash"] == TWO_EARS.param_hash


def test_process_body_parts():
    def corrupt(poses):
        poses[700, PARTS.index("nose"), 0] += 100.0
        poses[900:905, PARTS.index("tail_base"), 2] = 0.1

    (t, x, y, heading, _), poses, _, tr = run(
        params=NO_SMOOTHING, camera_view="below", poses_hook=corrupt
    )
    parts = process_body_parts(
        poses, PARTS, t, "below", (W, H), tr.calibration, NO_SMOOTHING, TWO_EARS.likelihood_cutoff
    )
    assert list(parts) == PARTS
    truth = body(x, y, heading)
    for name in PARTS:
        ex, ey = expected_cm(*truth[name], tr)
        px, py = parts[name]
        assert np.max(np.hypot(px - ex, py - ey)) < 0.5 / PPCM, name
    # the ears' midpoint is the subject position
    (lx, ly), (rx, ry) = parts["left_ear"], parts["right_ear"]
    assert np.allclose((lx + rx) / 2, tr.x_cm) and np.allclose((ly + ry) / 2, tr.y_cm)
    df = body_parts_to_frame(parts, t)
    assert list(df.columns) == ["frame", "time_s", "body_part", "x_cm", "y_cm"]
    assert len(df) == len(t) * len(PARTS)
    with pytest.raises(ProcessingError, match="calibration was made for camera"):
        process_body_parts(poses, PARTS, t, "above", (W, H), tr.calibration)


def test_remove_jumps_relative_to_last_good_point():
    t = np.arange(10) / 10.0
    x = np.array([0, 1, 2, 50, 51, 52, 6, 7, np.nan, 9], dtype=float)
    y = np.zeros(10)
    removed = remove_jumps(t, x, y, max_speed=20.0)
    assert removed.tolist() == [False] * 3 + [True] * 3 + [False] * 4
    assert not remove_jumps(t, x, y, None).any()


def test_interpolate_gaps_max_gap():
    t = np.arange(200) / FPS
    v = t * 3.0
    v1 = v.copy()
    v1[10:59] = np.nan  # 49 missing: bracketing samples 1.0 s apart -> filled
    v1[100:150] = np.nan  # 50 missing: 1.02 s -> stays missing
    filled, interpolated = interpolate_gaps(t, v1, 1.0)
    assert np.allclose(filled[10:59], v[10:59]) and interpolated[10:59].all()
    assert np.isnan(filled[100:150]).all() and not interpolated[100:150].any()
    v2 = v.copy()
    v2[:5] = v2[-5:] = np.nan  # edges: never extrapolated
    filled, interpolated = interpolate_gaps(t, v2, 1.0)
    assert np.isnan(filled[:5]).all() and np.isnan(filled[-5:]).all()
    assert not interpolated.any()


def test_smooth_nan_does_not_pull_missing_to_zero():
    v = np.full(100, 10.0)
    v[40:45] = np.nan
    s = smooth_nan(v, 3.0)
    assert np.allclose(s[np.isfinite(v)], 10.0)  # neighbours of the gap and edges too
    assert np.isnan(s[40:45]).all()
    xy = np.column_stack((np.arange(100.0), np.arange(100.0) * 2))
    assert np.allclose(smooth_nan(xy, 2.0)[10:-10], xy[10:-10])  # linear trend kept inside


def test_an_hour_at_50_hz_processes():
    """Speed is measured by ``python -m bench --processing``; this checks the result."""
    n = 180_000  # one hour at 50 Hz
    t, x, y, heading, _ = figure_eight(n)
    poses = to_poses(body(x, y, heading), "above")
    poses[500::997, 1] = np.nan
    raw = raw_state_vector(TWO_EARS, poses, PARTS, t, "above", (W, H))
    tr = process_tracking(raw, ProcessingParams(pixels_per_cm=PPCM))
    assert tr.n_frames == n and tr.stats["n_interpolated"] == len(range(500, n, 997))


def test_centroid_method_processes():
    t, x, y, heading, _ = figure_eight(500)
    m = StateVectorMethod("c", "centroid", ("left_ear", "right_ear"))
    raw = raw_state_vector(m, to_poses(body(x, y, heading), "above"), PARTS, t, "above", (W, H))
    tr = process_tracking(raw, NO_SMOOTHING)
    ex, ey = expected_cm(x, y, tr)
    assert np.max(np.hypot(tr.x_cm - ex, tr.y_cm - ey)) < 1e-6
    assert np.isnan(tr.head_direction_deg).all()


def _reference_jump_keep(t, x, y, vmax):
    """Frame-by-frame reference of the rule, anchored on the longest clean run."""
    n = len(t)
    step = np.hypot(np.diff(x), np.diff(y)) / np.diff(t)
    starts = [0] + [i + 1 for i in range(n - 1) if step[i] > vmax]
    ends = starts[1:] + [n]
    k = int(np.argmax(np.subtract(ends, starts)))
    keep = np.zeros(n, bool)
    keep[starts[k] : ends[k]] = True
    for order in (range(ends[k], n), range(starts[k] - 1, -1, -1)):
        g = ends[k] - 1 if order.step == 1 else starts[k]
        for i in order:
            if np.hypot(x[i] - x[g], y[i] - y[g]) / abs(t[i] - t[g]) <= vmax:
                keep[i] = True
                g = i
    return keep


def test_remove_jumps_matches_frame_by_frame_reference():
    rng = np.random.default_rng(7)
    for trial in range(30):
        n = int(rng.integers(2, 400))
        t = np.cumsum(rng.uniform(0.02, 0.03, n))
        x = np.cumsum(rng.normal(0, 0.5, n))
        y = np.cumsum(rng.normal(0, 0.5, n))
        bad = rng.random(n) < rng.uniform(0, 0.3)
        x[bad] += rng.normal(0, 30, bad.sum())  # isolated spikes and runs of them
        if trial % 3 == 0:
            x[: n // 10] += 40  # a wrong start
        removed = remove_jumps(t, x, y, 100.0)
        assert np.array_equal(~removed, _reference_jump_keep(t, x, y, 100.0)), trial


def test_tiny_recordings():
    for n in (1, 2, 3):
        t, x, y, heading, _ = figure_eight(n)
        raw = raw_state_vector(
            TWO_EARS, to_poses(body(x, y, heading), "above"), PARTS, t, "above", (W, H)
        )
        tr = process_tracking(raw, ProcessingParams(pixels_per_cm=PPCM))
        assert tr.n_frames == n and len(tr.to_frame()) == n
        assert np.isfinite(tr.x_cm).all() and np.isfinite(tr.head_direction_deg).all()
