"""Confident mistakes: body-part points that are wrong whatever their likelihood.

A model can put a body part far off with a likelihood of 0.9 or more (seen: the tail
base more than 50 px off in 175 frames of a real recording, flagged only through *other*
body parts' low likelihood). Two signs give such a point away without any ground truth:

- **temporal outlier**: the point jumps away and comes back while the other body parts
  stay where they were (its distance to the median of its own neighbouring frames is
  large, the other parts' is not);
- **geometry outlier**: the point breaks the animal's own geometry: its distances to
  most of the other body parts lie far outside what this recording shows for those
  pairs (robust centre and spread of each pair's distance over the recording, so each
  animal, camera and model is judged by its own footage).

A point is blamed only when most of its pairs are off: when the tail base is wrong,
every pair with the tail base is off, while each other part has one bad pair of several.
Likelihood is never used, so confident mistakes are found as well as unsure ones.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["OutlierParams", "OutlierSummary", "body_part_outliers", "geometry_outliers",
           "outlier_summary", "temporal_outliers"]

TEMPORAL_WINDOW = 7
"""Frames on each side whose median is the point's expected place (half a second at
30 fps: a wrong stretch of up to 7 frames still stands out)."""
GEOMETRY_SPREAD_Z = 3.0
"""A pair's distance is off when it is more than this many robust spreads (1.4826 x
median absolute deviation) from the pair's median distance in the recording."""
GEOMETRY_SPREAD_FLOOR = 0.1
"""Spread of a pair never taken below this share of its median distance (a rigid pair,
e.g. the two ears, would otherwise flag sub-pixel noise)."""
MIN_PARTS_FOR_GEOMETRY = 3
"""With fewer body parts a bad pair cannot be blamed on one of its two points."""


@dataclass(frozen=True)
class OutlierParams:
    """Thresholds of the body-part outlier flags.

    Attributes
    ----------
    offset_px : float
        How far (px) a point must lie from where it is expected (the median of its
        neighbouring frames; or, for geometry, the pair's usual distance) to count; the
        frame-quality jump threshold (5 % of the frame diagonal, 32 px at 640 x 480) by
        default.
    spread_z : float
        See :data:`GEOMETRY_SPREAD_Z`.
    window : int
        See :data:`TEMPORAL_WINDOW`.
    """

    offset_px: float
    spread_z: float = GEOMETRY_SPREAD_Z
    window: int = TEMPORAL_WINDOW


def _nanmedian(values: np.ndarray, axis: int) -> np.ndarray:
    """NaN-ignoring median; NaN (without a warning) where all values are NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(values, axis=axis)


def _rolling_median(xy: np.ndarray, window: int) -> np.ndarray:
    """Median over frames t-window..t+window excluding t itself, NaN-aware.

    ``xy`` (n_frames, n_parts, 2) -> same shape."""
    n = xy.shape[0]
    pad = np.full((window, *xy.shape[1:]), np.nan)
    padded = np.concatenate([pad, xy, pad])
    offsets = [k for k in range(-window, window + 1) if k != 0]
    stack = np.stack([padded[window + k: window + k + n] for k in offsets])
    return _nanmedian(stack, axis=0)


def temporal_outliers(poses: np.ndarray, params: OutlierParams) -> tuple[np.ndarray, np.ndarray]:
    """Points that jump away from their neighbouring frames while the others stay.

    Parameters
    ----------
    poses : np.ndarray
        ``(n_frames, n_parts, 3)`` x, y (px), likelihood; NaN = missing.
    params : OutlierParams

    Returns
    -------
    tuple[np.ndarray, np.ndarray]
        ``(n_frames, n_parts)`` bool flags, and the offset (px) of each point from its
        expected place minus the median offset of the frame's other parts (NaN where
        missing).
    """
    xy = poses[..., :2]
    expected = _rolling_median(xy, params.window)
    offset = np.hypot(*(xy - expected).transpose(2, 0, 1))
    n_parts = poses.shape[1]
    if n_parts > 1:  # the animal as a whole may move fast: judge each part against the rest
        others = np.empty_like(offset)
        for j in range(n_parts):
            rest = np.delete(offset, j, axis=1)
            others[:, j] = _nanmedian(rest, axis=1)
        relative = offset - np.nan_to_num(others, nan=0.0)
    else:
        relative = offset
    with np.errstate(invalid="ignore"):
        flags = relative > params.offset_px
    return flags, relative


def geometry_outliers(poses: np.ndarray, params: OutlierParams
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Points that sit far from where the other body parts place them in this recording.

    For each body part and each pair of other body parts (the reference), the point is
    written in the reference's own frame (origin at the pair's midpoint, x along the
    pair); the median over the recording is where the animal usually has it. A point is
    an outlier when it lies far from that usual place for *every* reference pair (so a
    wrong reference point, which spoils only the pairs it belongs to, never blames
    another part): further than ``spread_z`` robust spreads of its usual scatter and
    than ``offset_px``.

    Parameters
    ----------
    poses : np.ndarray
        ``(n_frames, n_parts, 3)``; NaN = missing. Needs at least
        :data:`MIN_PARTS_FOR_GEOMETRY` body parts (else nothing is flagged).
    params : OutlierParams

    Returns
    -------
    tuple[np.ndarray, np.ndarray]
        ``(n_frames, n_parts)`` bool flags, and each point's distance (px) from its usual
        place (the smallest over the reference pairs; NaN where unknown).
    """
    n_frames, n_parts, _ = poses.shape
    flags = np.zeros((n_frames, n_parts), bool)
    distance = np.full((n_frames, n_parts), np.nan)
    if n_parts < MIN_PARTS_FOR_GEOMETRY or n_frames == 0:
        return flags, distance
    xy = poses[..., :2]
    for j in range(n_parts):
        others = [k for k in range(n_parts) if k != j]
        every_bad = np.ones(n_frames, bool)
        nearest = np.full(n_frames, np.inf)
        used = 0
        for ia, a in enumerate(others):
            for b in others[ia + 1:]:
                axis = xy[:, b] - xy[:, a]
                angle = np.arctan2(axis[:, 1], axis[:, 0])
                cos, sin = np.cos(angle), np.sin(angle)
                rel = xy[:, j] - (xy[:, a] + xy[:, b]) / 2
                local = np.column_stack([cos * rel[:, 0] + sin * rel[:, 1],
                                         -sin * rel[:, 0] + cos * rel[:, 1]])
                ok = np.isfinite(local).all(1)
                if ok.sum() < 10:  # too few frames to know where the part usually is
                    continue
                usual = np.median(local[ok], axis=0)
                expected = np.column_stack([cos * usual[0] - sin * usual[1],
                                            sin * usual[0] + cos * usual[1]])
                miss = np.hypot(*(rel - expected).T)
                centre = float(np.median(miss[ok]))
                spread = max(1.4826 * float(np.median(np.abs(miss[ok] - centre))), 1.0)
                limit = max(centre + params.spread_z * spread, params.offset_px)
                with np.errstate(invalid="ignore"):
                    every_bad &= miss > limit  # NaN (unknown) is never bad
                nearest = np.fmin(nearest, miss)
                used += 1
        if used:
            flags[:, j] = every_bad
            distance[:, j] = np.where(np.isfinite(nearest), nearest, np.nan)
    return flags, distance


def body_part_outliers(poses: np.ndarray, params: OutlierParams
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Temporal or geometry outliers (see the module), and how far off they are.

    Returns
    -------
    tuple[np.ndarray, np.ndarray]
        ``(n_frames, n_parts)`` bool flags, and ``(n_frames, n_parts)`` offset in px (the
        larger of the temporal and geometry measures; NaN where missing).
    """
    t_flags, t_off = temporal_outliers(poses, params)
    g_flags, g_off = geometry_outliers(poses, params)
    with np.errstate(invalid="ignore"):
        offset = np.fmax(t_off, g_off)
    return t_flags | g_flags, offset


@dataclass(frozen=True)
class OutlierSummary:
    """Figures of a recording's body-part outliers (for an asset check).

    Attributes
    ----------
    fraction : float
        Flagged points / tracked points (0 when nothing is tracked).
    frames : int
        Frames with at least one flagged point.
    per_part : dict[str, float]
        Flagged fraction of each body part's tracked points.
    confident : int
        Flagged points with likelihood >= the cutoff given (confident mistakes).
    """

    fraction: float
    frames: int
    per_part: dict[str, float]
    confident: int


def outlier_summary(poses: np.ndarray, body_parts: list[str], params: OutlierParams,
                    likelihood_cutoff: float = 0.9) -> OutlierSummary:
    """The share of a recording's points that are outliers, overall and per body part.

    Parameters
    ----------
    poses : np.ndarray
        ``(n_frames, n_parts, 3)``.
    body_parts : list[str]
        Names of axis 1.
    params : OutlierParams
    likelihood_cutoff : float
        Flagged points at or above it are counted as ``confident``.
    """
    flags, _ = body_part_outliers(poses, params)
    tracked = np.isfinite(poses[..., :2]).all(-1)
    n = int(tracked.sum())
    per_part = {name: round(float(flags[:, j].sum() / max(tracked[:, j].sum(), 1)), 4)
                for j, name in enumerate(body_parts)}
    with np.errstate(invalid="ignore"):
        confident = int((flags & (poses[..., 2] >= likelihood_cutoff)).sum())
    return OutlierSummary(round(float(flags.sum() / n), 4) if n else 0.0,
                          int(flags.any(1).sum()), per_part, confident)
