"""QC pictures: valid PNGs of non-trivial content (not blank), inline as Markdown."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest

from dlc_tracking.qc import plots
from dlc_tracking.tracking.occupancy import occupancy_grid


def assert_informative_png(png: bytes, min_colours: int = 8, min_ink: float = 0.02) -> None:
    """A decodable PNG with enough distinct colours and non-background pixels."""
    from PIL import Image

    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    Image.open(io.BytesIO(png)).verify()  # a valid, complete file
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert img.shape[0] > 100 and img.shape[1] > 100
    colours = np.unique(img.reshape(-1, 3), axis=0)
    assert len(colours) >= min_colours, f"only {len(colours)} colours: blank picture"
    ink = (img.astype(int).sum(axis=-1) < 3 * 250).mean()
    assert ink >= min_ink, f"only {ink:.3%} of pixels drawn"


def png_from_md(md: str) -> bytes:
    match = re.fullmatch(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", md)
    assert match, md[:80]
    return base64.b64decode(match.group(1))


@pytest.fixture
def walk():
    rng = np.random.default_rng(1)
    n = 3000
    t = np.arange(n) / 50.0
    x = np.clip(25 + np.cumsum(rng.normal(0, 0.4, n)), 0, 50)
    y = np.clip(25 + np.cumsum(rng.normal(0, 0.4, n)), 0, 50)
    speed = np.abs(rng.normal(8, 4, n))
    hd = np.mod(np.cumsum(rng.normal(0, 5, n)), 360)
    x[100:150] = np.nan  # a gap
    return t, x, y, speed, hd


def test_per_recording_pictures_are_informative(walk):
    t, x, y, speed, hd = walk
    seconds, _ = occupancy_grid(x, y, t, 2.5, 50, 50)
    poses = np.random.default_rng(2).uniform(0, 1, (len(t), 3, 3))
    for png in (plots.trajectory_png(x, y, speed, 50, 50), plots.occupancy_png(seconds, 2.5),
                plots.speed_histogram_png(speed), plots.head_direction_png(hd),
                plots.likelihood_png(poses, ["nose", "left_ear", "right_ear"], t, 0.5)):
        assert_informative_png(png)


def test_overview_picture_highlights_flagged():
    from PIL import Image

    png = plots.overview_png(["a", "b", "c"], [1200.0, 300.0, float("nan")], [0.99, 0.4, 0.0],
                             [False, True, True])
    assert_informative_png(png)
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    red = (img[..., 0] > 180) & (img[..., 1] < 80) & (img[..., 2] < 80)
    assert red.sum() > 50  # the flagged bars are drawn in red


def test_no_head_direction_still_a_picture():
    png = plots.head_direction_png(np.full(100, np.nan))
    assert_informative_png(png, min_colours=4, min_ink=0.005)


def test_inline_markdown_carries_the_png(walk):
    from dlc_assets.assets.qc_plots import png_md

    t, x, y, speed, _ = walk
    png = plots.speed_histogram_png(speed)
    value = png_md(png, "speed histogram")
    assert png_from_md(value.value) == png
