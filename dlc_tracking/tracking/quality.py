"""Quality figures of one recording, for the asset checks: gaps, tracked share, body parts
stuck away from the others, frame-rate agreement. Arrays in, numbers out."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` index pairs of the runs of True in a 1-D boolean array."""
    m = np.concatenate(([False], np.asarray(mask, bool), [False]))
    edges = np.flatnonzero(np.diff(m.astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def longest_gap_s(time_s: np.ndarray, tracked: np.ndarray) -> float:
    """Longest stretch without a position (s): from the last tracked frame before a gap
    to the first after it (to the recording's ends for gaps at either end)."""
    t = np.asarray(time_s, np.float64)
    longest = 0.0
    for start, stop in runs(~np.asarray(tracked, bool)):
        t0 = t[start - 1] if start > 0 else t[0]
        t1 = t[stop] if stop < t.size else t[-1]
        longest = max(longest, float(t1 - t0))
    return longest


def tracked_fraction(tracked: np.ndarray) -> float:
    """Share of frames with a position."""
    tracked = np.asarray(tracked, bool)
    return float(tracked.mean()) if tracked.size else 0.0


@dataclass(frozen=True)
class StrayPart:
    """A body part far from the others for a sustained stretch."""

    body_part: str
    longest_s: float
    start_s: float
    frames: int
    median_distance_px: float


def stray_body_parts(poses: np.ndarray, body_parts: list[str], time_s: np.ndarray, *,
                     factor: float, min_s: float, likelihood_cutoff: float
                     ) -> list[StrayPart]:
    """Body parts farther than ``factor`` x their median distance from the centre of the
    other parts, for longer than ``min_s`` without interruption.

    A DLC keypoint stuck on a wrong spot (a reflection, a cable) moves little, so the
    jump filter passes it; its distance to the rest of the body gives it away. Only frames
    where the part and at least one other are above ``likelihood_cutoff`` count.
    """
    p = np.asarray(poses, np.float64)
    t = np.asarray(time_s, np.float64)
    if p.shape[1] < 2:
        return []
    ok = np.isfinite(p[..., 0]) & np.isfinite(p[..., 1]) & (p[..., 2] >= likelihood_cutoff)
    xy = np.where(ok[..., None], p[..., :2], np.nan)
    found = []
    for k, name in enumerate(body_parts):
        others = np.delete(xy, k, axis=1)
        with warnings.catch_warnings():  # frames where no other part is seen: NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            centre = np.nanmean(others, axis=1)
        d = np.hypot(xy[:, k, 0] - centre[:, 0], xy[:, k, 1] - centre[:, 1])
        valid = np.isfinite(d)
        if valid.sum() < 10:
            continue
        median = float(np.median(d[valid]))
        if median <= 0:
            continue
        far = valid & (d > factor * median)
        best = None
        for start, stop in runs(far):
            length = float(t[stop - 1] - t[start]) + (float(np.median(np.diff(t)))
                                                       if t.size > 1 else 0.0)
            if length > min_s and (best is None or length > best.longest_s):
                best = StrayPart(name, round(length, 3), round(float(t[start]), 3),
                                 stop - start, round(median, 2))
        if best is not None:
            found.append(best)
    return found


def fps_disagreement(dlc_fps: float | None, video_fps: float) -> float | None:
    """Relative difference between DLC's metadata frame rate and the video's (None when
    DLC's is unknown)."""
    if dlc_fps is None or not np.isfinite(dlc_fps) or dlc_fps <= 0:
        return None
    return abs(float(dlc_fps) - float(video_fps)) / float(video_fps)
