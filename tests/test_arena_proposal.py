"""`arena propose` on footage like the real open field that fooled it (issue 21, D2): a
bright floor against dark walls with a visible bright wall top used to give an outline
45-60 px off; shadows, low-contrast walls, rotation and keystone are rendered too. The
outline's aspect ratio is checked against the declared shape, and positions outside the
calibrated arena are measured for a check."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dlc_tracking.errors import VideoError
from dlc_tracking.synthetic.arena_render import render_arena
from dlc_tracking.tracking.arena_detection import outline_side_ratio, propose_corners, shape_warning
from dlc_tracking.tracking.outside_arena import outside_arena

SQUARE = np.array([[150, 70], [490, 70], [490, 410], [150, 410]], float)


def _rotated(corners: np.ndarray, degrees: float) -> np.ndarray:
    t = math.radians(degrees)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    centre = corners.mean(axis=0)
    return (corners - centre) @ rot.T + centre


CASES = {
    "bright floor, dark walls, visible wall top": {},
    "shadow along two walls": dict(shadow_px=60, shadow_depth=110),
    "low-contrast walls": dict(floor_level=120, wall_level=95, rim_level=140),
    "low contrast and shadow": dict(floor_level=140, wall_level=90, rim_level=150,
                                    shadow_px=50, shadow_depth=25),
    "dark floor, light walls": dict(floor_level=40, wall_level=170, rim_level=90),
    "rotated 8 degrees, shadow": dict(floor_corners=_rotated(SQUARE, 8), shadow_px=50,
                                      shadow_depth=80),
    "keystone (camera off-axis)": dict(floor_corners=np.array(
        [[170, 70], [470, 70], [500, 410], [140, 410]], float)),
    "rectangle off-centre": dict(floor=(60.0, 120.0, 520.0, 400.0)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_proposal_finds_the_floor_edge(case):
    arena = render_arena(**CASES[case])
    corners, share = propose_corners(arena.image)
    assert np.abs(corners - arena.floor_corners).max() <= 1.5, corners.round(1).tolist()
    assert share > 0.2


def test_no_floor_edge_refused_clearly():
    flat = np.full((480, 640, 3), 128, np.uint8)
    with pytest.raises(VideoError, match="no floor edge found.*by hand"):
        propose_corners(flat)


def test_aspect_ratio_contradicting_the_declared_shape_warns():
    wrong = np.array([[100, 140], [560, 140], [560, 410], [100, 410]], float)  # 1.7:1
    assert outline_side_ratio(wrong) == pytest.approx(460 / 270)
    text = shape_warning(wrong, "square")
    assert text is not None and "1.70:1" in text and "square" in text
    assert shape_warning(SQUARE, "square") is None
    assert shape_warning(wrong, "rectangle", 60.0, 35.0) is None  # 1.71:1 declared
    assert "60 x 30 cm" in shape_warning(SQUARE, "rectangle", 60.0, 30.0)


def test_positions_outside_the_calibrated_arena():
    x = np.array([1.0, 25.0, 49.5, 50.5, 53.0, -4.0, np.nan])
    y = np.array([1.0, 25.0, 10.0, 10.0, 10.0, 60.0, 5.0])
    found = outside_arena(x, y, 50.0, 50.0, margin_cm=1.0)
    assert found.n_outside == 2 and found.fraction == pytest.approx(2 / 6, abs=1e-4)
    assert found.worst_cm == pytest.approx(math.hypot(4, 10), abs=0.01)
    circle = outside_arena(np.array([25.0, 25.0]), np.array([25.0, 53.0]), 50.0, 50.0,
                           "circle")
    assert circle.n_outside == 1 and circle.worst_cm == pytest.approx(3.0)
    assert outside_arena(np.array([np.nan]), np.array([np.nan]), 50, 50).fraction == 0.0


def test_arena_propose_command_warns_on_a_contradicting_shape(tmp_path, capsys):
    """The command on a video of a 1.7:1 floor declared square: proposal written, and a
    warning naming both ratios (the outline that fooled users was accepted silently)."""
    import cv2

    from dlc_assets.cli.main import main

    arena = render_arena(floor=(60.0, 140.0, 580.0, 445.0), shadow_px=40, shadow_depth=60)
    session = tmp_path / "m1" / "s1"
    session.mkdir(parents=True)
    video = session / "openfield.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
    for _ in range(5):
        writer.write(arena.image)
    writer.release()
    main(["arena", "propose", str(video), "--width-cm", "50"])
    captured = capsys.readouterr()
    assert "calibration.proposed.yaml" in captured.out
    assert "1.70:1" in captured.err and "square" in captured.err
    assert "WARNING" in (tmp_path / "m1" / "calibration.proposed.yaml").read_text()
