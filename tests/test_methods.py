"""State-vector methods against analytic ground truth (dlc_tracking.tracking.methods)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dlc_tracking.errors import ProcessingError
from dlc_tracking.tracking.methods import (
    BUILTIN_METHODS,
    DEFAULT_LIKELIHOOD_CUTOFF,
    StateVectorMethod,
    arena_to_image,
    compute_state_vector,
    image_to_arena,
)

W, H = 640.0, 480.0
FPS = 50.0
EAR_HALF_SPACING = 9.0  # px from the head point to each ear
NOSE_AHEAD = 14.0  # px
TAIL_BEHIND = 45.0  # px
PARTS = ["nose", "left_ear", "right_ear", "tail_base"]


def lissajous(n: int = 3000, fps: float = FPS):
    """Head point path in the arena frame (px, y up) and its analytic heading."""
    t = np.arange(n) / fps
    wx, wy = 2 * np.pi / 37.0, 2 * np.pi / 23.0
    x = 320 + 200 * np.sin(wx * t)
    y = 240 + 150 * np.sin(wy * t + 0.3)
    heading = np.arctan2(150 * wy * np.cos(wy * t + 0.3), 200 * wx * np.cos(wx * t))
    return t, x, y, heading


def body(x, y, heading):
    """Arena-frame body parts around the head point: ears at +-90 deg, nose, tail."""
    c, s = np.cos(heading), np.sin(heading)
    left = heading + np.pi / 2  # the animal's left, counter-clockwise in a y-up frame
    return {
        "nose": (x + NOSE_AHEAD * c, y + NOSE_AHEAD * s),
        "left_ear": (x + EAR_HALF_SPACING * np.cos(left), y + EAR_HALF_SPACING * np.sin(left)),
        "right_ear": (x - EAR_HALF_SPACING * np.cos(left), y - EAR_HALF_SPACING * np.sin(left)),
        "tail_base": (x - TAIL_BEHIND * c, y - TAIL_BEHIND * s),
    }


def to_poses(parts: dict, camera_view: str, likelihood: float = 0.99) -> np.ndarray:
    """Arena-frame parts -> (n, n_parts, 3) image-coordinate poses as the camera sees them."""
    n = next(iter(parts.values()))[0].shape[0]
    poses = np.empty((n, len(PARTS), 3))
    for j, name in enumerate(PARTS):
        if camera_view == "above":
            xi, yi = parts[name][0], H - parts[name][1]
        else:  # below: mirrored left/right
            xi, yi = W - parts[name][0], H - parts[name][1]
        poses[:, j, 0], poses[:, j, 1], poses[:, j, 2] = xi, yi, likelihood
    return poses


def ang_err_deg(a_rad, b_rad):
    return np.degrees(np.abs(np.angle(np.exp(1j * (np.asarray(a_rad) - np.asarray(b_rad))))))


@pytest.mark.parametrize("camera_view", ["above", "below"])
def test_two_ears_position_and_head_direction(camera_view):
    t, x, y, heading = lissajous()
    poses = to_poses(body(x, y, heading), camera_view)
    sv = compute_state_vector(BUILTIN_METHODS["two_ears"], poses, PARTS, camera_view, (W, H))
    # position is in image pixels, unflipped
    xi, yi = arena_to_image(x, y, camera_view, (W, H))
    assert np.max(np.hypot(sv.x_px - xi, sv.y_px - yi)) < 0.5
    assert np.max(ang_err_deg(sv.head_angle_rad, heading)) < 2.0
    assert sv.valid.all()
    assert np.all((sv.head_angle_rad >= 0) & (sv.head_angle_rad < 2 * np.pi))
    assert sv.method_name == "two_ears" and sv.camera_view == camera_view


def test_wrong_camera_view_mirrors_head_direction():
    """Seen from below, the ears swap sides in the image; the view must be given."""
    t, x, y, heading = lissajous()
    poses = to_poses(body(x, y, heading), "below")
    wrong = compute_state_vector(BUILTIN_METHODS["two_ears"], poses, PARTS, "above", (W, H))
    # read as seen from above, the path is mirrored (moving at 180 - heading) but the ears
    # swap sides, so the head points at -heading: backwards relative to the motion
    assert np.max(ang_err_deg(wrong.head_angle_rad, -heading)) < 1e-6
    assert np.min(ang_err_deg(wrong.head_angle_rad, np.pi - heading)) > 179.9
    assert np.median(ang_err_deg(wrong.head_angle_rad, heading)) > 20
    for bad in (None, "top", ""):
        with pytest.raises(ProcessingError, match="camera_view"):
            compute_state_vector(BUILTIN_METHODS["two_ears"], poses, PARTS, bad, (W, H))


def test_two_ears_formula_in_arena_frame():
    """HD = atan2(yL - yR, xL - xR) - 90 deg with arena-frame (y up) coordinates."""
    # facing +y (up, 90 deg): left ear at -x, right ear at +x
    poses = np.array([[[100.0, 200.0, 1.0], [120.0, 200.0, 1.0]]])  # image coords
    m = StateVectorMethod("e", "two_ears", ("left_ear", "right_ear"))
    sv = compute_state_vector(m, poses, ["left_ear", "right_ear"], "above", (W, H))
    assert np.degrees(sv.head_angle_rad[0]) == pytest.approx(90.0)
    assert (sv.x_px[0], sv.y_px[0]) == (110.0, 200.0)
    # the same image seen from below: the arena x axis is flipped, the animal faces -y
    sv = compute_state_vector(m, poses, ["left_ear", "right_ear"], "below", (W, H))
    assert np.degrees(sv.head_angle_rad[0]) == pytest.approx(270.0)


@pytest.mark.parametrize("camera_view", ["above", "below"])
@pytest.mark.parametrize(
    ("position", "fraction"),
    [("midpoint", 0.5), ("front", 1.0), ("back", 0.0), (0.25, 0.25), (None, 0.5)],
)
def test_front_back(camera_view, position, fraction):
    t, x, y, heading = lissajous(1000)
    parts = body(x, y, heading)
    poses = to_poses(parts, camera_view)
    params = {} if position is None else {"position": position}
    m = StateVectorMethod("nb", "front_back", ("nose", "tail_base"), params=params)
    sv = compute_state_vector(m, poses, PARTS, camera_view, (W, H))
    (nx, ny), (bx, by) = parts["nose"], parts["tail_base"]
    ex, ey = arena_to_image(
        bx + fraction * (nx - bx), by + fraction * (ny - by), camera_view, (W, H)
    )
    assert np.max(np.hypot(sv.x_px - ex, sv.y_px - ey)) < 0.5
    assert np.max(ang_err_deg(sv.head_angle_rad, heading)) < 2.0


def test_front_back_position_needs_only_the_parts_it_uses():
    t, x, y, heading = lissajous(50)
    poses = to_poses(body(x, y, heading), "above")
    poses[10, PARTS.index("tail_base")] = np.nan
    front = StateVectorMethod(
        "f", "front_back", ("nose", "tail_base"), params={"position": "front"}
    )
    mid = StateVectorMethod("m", "front_back", ("nose", "tail_base"))
    sv_front = compute_state_vector(front, poses, PARTS, "above", (W, H))
    sv_mid = compute_state_vector(mid, poses, PARTS, "above", (W, H))
    assert np.isfinite(sv_front.x_px[10]) and np.isnan(sv_front.head_angle_rad[10])
    assert not sv_front.valid[10]
    assert np.isnan(sv_mid.x_px[10]) and np.isnan(sv_mid.head_angle_rad[10])


def test_single_point_has_no_head_direction():
    t, x, y, heading = lissajous(500)
    poses = to_poses(body(x, y, heading), "above")
    m = BUILTIN_METHODS["nose"]
    assert m.has_head_direction is False
    assert m.to_dict()["has_head_direction"] is False
    sv = compute_state_vector(m, poses, PARTS, "above", (W, H))
    assert np.all(np.isnan(sv.head_angle_rad))
    nx, ny = body(x, y, heading)["nose"]
    assert np.allclose(sv.x_px, nx) and np.allclose(sv.y_px, H - ny)
    assert BUILTIN_METHODS["two_ears"].has_head_direction
    assert BUILTIN_METHODS["nose_tail_base"].has_head_direction
    assert not BUILTIN_METHODS["centroid_all"].has_head_direction


def test_centroid_is_likelihood_weighted_over_parts_above_cutoff():
    poses = np.array(
        [
            [[0.0, 0.0, 1.0], [10.0, 0.0, 1.0], [0.0, 10.0, 1.0]],  # all equal weights
            [[0.0, 0.0, 1.0], [10.0, 0.0, 0.95], [0.0, 10.0, 0.5]],  # third below cutoff
            [[0.0, 0.0, 0.2], [10.0, 0.0, 0.3], [np.nan] * 3],  # nothing usable
            [[0.0, 0.0, 0.99], [np.nan] * 3, [np.nan] * 3],  # one part only
        ]
    )
    names = ["a", "b", "c"]
    m = StateVectorMethod("c3", "centroid", ("a", "b", "c"), likelihood_cutoff=0.9)
    sv = compute_state_vector(m, poses, names, "above", (W, H))
    assert sv.x_px[0] == pytest.approx(10 / 3) and sv.y_px[0] == pytest.approx(10 / 3)
    assert sv.x_px[1] == pytest.approx(10 * 0.95 / 1.95) and sv.y_px[1] == pytest.approx(0.0)
    assert np.isnan(sv.x_px[2]) and np.isnan(sv.y_px[2])
    assert (sv.x_px[3], sv.y_px[3]) == (0.0, 0.0)
    assert sv.valid.tolist() == [True, False, False, False]
    assert np.all(np.isnan(sv.head_angle_rad))
    strict = StateVectorMethod("c3s", "centroid", ("a", "b", "c"), params={"min_parts": 2})
    sv = compute_state_vector(strict, poses, names, "above", (W, H))
    assert np.isfinite(sv.x_px[:2]).all() and np.isnan(sv.x_px[2:]).all()


def test_likelihood_below_cutoff_counts_as_missing():
    t, x, y, heading = lissajous(400)
    poses = to_poses(body(x, y, heading), "above")
    poses[100:110, PARTS.index("left_ear"), 2] = 0.5
    poses[200, PARTS.index("right_ear")] = np.nan  # DLC missing
    poses[300, PARTS.index("right_ear"), 2] = np.nan  # likelihood unknown
    m = BUILTIN_METHODS["two_ears"]
    assert m.likelihood_cutoff == DEFAULT_LIKELIHOOD_CUTOFF
    sv = compute_state_vector(m, poses, PARTS, "above", (W, H))
    bad = np.zeros(400, bool)
    bad[100:110] = bad[200] = bad[300] = True
    assert np.array_equal(~sv.valid, bad)
    assert np.isnan(sv.x_px[bad]).all() and np.isnan(sv.head_angle_rad[bad]).all()
    assert np.isfinite(sv.x_px[~bad]).all()
    lenient = StateVectorMethod(
        "lenient", "two_ears", ("left_ear", "right_ear"), likelihood_cutoff=0.4
    )
    sv = compute_state_vector(lenient, poses, PARTS, "above", (W, H))
    assert sv.valid[100:110].all()
    assert not sv.valid[200] and not sv.valid[300]


def test_missing_body_parts_are_named():
    poses = np.zeros((5, 2, 3))
    with pytest.raises(ProcessingError) as err:
        compute_state_vector(
            BUILTIN_METHODS["two_ears"],
            poses,
            ["nose", "left_ear"],
            "above",
            (W, H),
            source="s1/video.h5",
        )
    msg = str(err.value)
    assert "right_ear" in msg and "two_ears" in msg and "s1/video.h5" in msg
    assert "'left_ear'" not in msg.split("they have")[0]
    with pytest.raises(ProcessingError, match="tail_base"):
        compute_state_vector(
            BUILTIN_METHODS["centroid_all"],
            np.zeros((5, 3, 3)),
            ["nose", "left_ear", "right_ear"],
            "above",
            (W, H),
        )


def test_bad_input_arrays():
    m = BUILTIN_METHODS["nose"]
    with pytest.raises(ProcessingError, match="shape"):
        compute_state_vector(m, np.zeros((5, 1, 2)), ["nose"], "above", (W, H))
    with pytest.raises(ProcessingError, match="names"):
        compute_state_vector(m, np.zeros((5, 2, 3)), ["nose"], "above", (W, H))
    with pytest.raises(ProcessingError, match="repeated"):
        compute_state_vector(m, np.zeros((5, 2, 3)), ["nose", "nose"], "above", (W, H))
    with pytest.raises(ProcessingError, match="frame_size"):
        compute_state_vector(m, np.zeros((5, 1, 3)), ["nose"], "above", (0, 480))
    with pytest.raises(ProcessingError, match="frame_size"):
        compute_state_vector(m, np.zeros((5, 1, 3)), ["nose"], "above", None)
    wheel = StateVectorMethod("wheel_nose", "single_point", ("nose",), tracking_type="wheel")
    with pytest.raises(ProcessingError, match="openfield"):
        compute_state_vector(wheel, np.zeros((5, 1, 3)), ["nose"], "above", (W, H))
    empty = compute_state_vector(m, np.zeros((0, 1, 3)), ["nose"], "below", (W, H))
    assert empty.n_frames == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(kind="three_ears", body_parts=("a", "b")), "unknown kind"),
        (dict(kind="two_ears", body_parts=("left_ear",)), "needs 2 body part"),
        (dict(kind="two_ears", body_parts=("l", "r", "x")), "needs 2 body part"),
        (dict(kind="single_point", body_parts=("a", "b")), "needs 1 body part"),
        (dict(kind="centroid", body_parts=()), "at least one"),
        (dict(kind="two_ears", body_parts=("a", "a")), "repeat"),
        (dict(kind="two_ears", body_parts=("LeftEar", "right_ear")), "snake_case"),
        (dict(kind="two_ears", body_parts=("l", "r"), params={"x": 1}), "takes no params"),
        (dict(kind="front_back", body_parts=("n", "b"), params={"position": 1.5}), "0..1"),
        (dict(kind="front_back", body_parts=("n", "b"), params={"position": "middle"}), "midpoint"),
        (dict(kind="front_back", body_parts=("n", "b"), params={"pos": 0.5}), "unknown params"),
        (dict(kind="centroid", body_parts=("a", "b"), params={"min_parts": 3}), "min_parts"),
        (dict(kind="two_ears", body_parts=("l", "r"), likelihood_cutoff=1.5), "likelihood"),
        (dict(kind="two_ears", body_parts=("l", "r"), tracking_type="Open Field"), "tracking_type"),
    ],
)
def test_method_validation_names_method_and_fix(kwargs, match):
    with pytest.raises(ProcessingError, match=match) as err:
        StateVectorMethod(name="my_method", **kwargs)
    assert "my_method" in str(err.value)


def test_param_hash_stable_and_sensitive():
    m = BUILTIN_METHODS["two_ears"]
    # stable across processes and versions: a changed value invalidates stored results
    assert m.param_hash == "a894be839b89dd7b"
    assert len(m.param_hash) == 16
    same = StateVectorMethod(
        "other_name", "two_ears", ["left_ear", "right_ear"], description="different text"
    )
    assert same.param_hash == m.param_hash
    variants = [
        StateVectorMethod("v", "two_ears", ("left_ear", "right_ear"), likelihood_cutoff=0.95),
        StateVectorMethod("v", "two_ears", ("right_ear", "left_ear")),
        StateVectorMethod("v", "front_back", ("left_ear", "right_ear")),
        StateVectorMethod("v", "front_back", ("left_ear", "right_ear"), params={"position": 0.3}),
    ]
    hashes = {m.param_hash} | {v.param_hash for v in variants}
    assert len(hashes) == 1 + len(variants)
    # defaults filled before hashing: the same computation has the same hash
    a = StateVectorMethod("a", "front_back", ("nose", "neck"))
    b = StateVectorMethod("b", "front_back", ("nose", "neck"), params={"position": "midpoint"})
    c = StateVectorMethod("c", "front_back", ("nose", "neck"), params={"position": 0.5})
    assert a.param_hash == b.param_hash == c.param_hash
    assert (
        StateVectorMethod("x", "two_ears", ("l", "r"), likelihood_cutoff=1).param_hash
        == StateVectorMethod("x", "two_ears", ("l", "r"), likelihood_cutoff=1.0).param_hash
    )


def test_to_dict_from_dict_round_trip():
    for m in BUILTIN_METHODS.values():
        d = json.loads(json.dumps(m.to_dict()))
        back = StateVectorMethod.from_dict(d)
        assert back == m and back.param_hash == m.param_hash
        assert hash(back) == hash(m)
    minimal = StateVectorMethod.from_dict(
        {"name": "ears", "kind": "two_ears", "body_parts": ["left_ear", "right_ear"]}
    )
    assert minimal.likelihood_cutoff == DEFAULT_LIKELIHOOD_CUTOFF
    assert minimal.tracking_type == "openfield"
    stale = BUILTIN_METHODS["two_ears"].to_dict()
    stale["likelihood_cutoff"] = 0.8
    with pytest.raises(ProcessingError, match="param_hash"):
        StateVectorMethod.from_dict(stale)
    with pytest.raises(ProcessingError, match="unknown keys"):
        StateVectorMethod.from_dict({**minimal.to_dict(), "cutoff": 0.5})
    with pytest.raises(ProcessingError, match="missing keys"):
        StateVectorMethod.from_dict({"name": "x", "kind": "two_ears"})
    with pytest.raises(ProcessingError, match="has_head_direction"):
        StateVectorMethod.from_dict({**minimal.to_dict(), "has_head_direction": False})


def test_builtin_methods():
    assert set(BUILTIN_METHODS) >= {"two_ears", "nose_tail_base", "nose", "centroid_all"}
    assert BUILTIN_METHODS["two_ears"].body_parts == ("left_ear", "right_ear")
    assert BUILTIN_METHODS["nose_tail_base"].kind == "front_back"
    assert BUILTIN_METHODS["nose"].kind == "single_point"
    assert set(BUILTIN_METHODS["centroid_all"].body_parts) == {
        "nose",
        "left_ear",
        "right_ear",
        "tail_base",
    }
    for name, m in BUILTIN_METHODS.items():
        assert m.name == name and m.tracking_type == "openfield" and m.description


def test_image_arena_maps_are_involutions():
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, W, 10), rng.uniform(0, H, 10)
    for view in ("above", "below"):
        bx, by = image_to_arena(x, y, view, (W, H))
        assert np.allclose(by, H - y)
        assert np.allclose(bx, x if view == "above" else W - x)
        rx, ry = arena_to_image(bx, by, view, (W, H))
        assert np.allclose(rx, x) and np.allclose(ry, y)
