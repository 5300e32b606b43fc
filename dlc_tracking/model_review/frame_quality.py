"""Per-frame quality flags of one recording's predictions.

A frame is worth a labeller's look when the model is unsure (body parts below the
likelihood cutoff, or missing), when a body part jumps further between two frames than
an animal moves, when a body part is a confident mistake (it jumps away and back while
the others stay, or sits far from where the other parts place it in this recording,
whatever its likelihood: :mod:`dlc_tracking.model_review.outliers`), or when another
version of the model puts the body part somewhere else. Only flagged frames become rows
of ``frame_quality``: a good model on a clean video writes few rows, and ``models review``
reads only those.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dlc_tracking.model_review.outliers import OutlierParams, body_part_outliers

DEFAULT_JUMP_FRACTION = 0.05
"""A jump is a step longer than this share of the frame diagonal (32 px at 640 x 480:
at 10 px/cm and 50 Hz that is 160 cm/s, faster than a mouse runs; BNT removes jumps
above 150 cm/s)."""
DEFAULT_LIKELIHOOD_CUTOFF = 0.6
"""Likelihood cutoff of the flags when the recording's method gives none (DeepLabCut's
own default pcutoff); the one definition the review, the comparison and the
frame_quality asset use."""
DEFAULT_DISAGREEMENT_PX = 10.0
"""Two versions disagree on a body part when their points are further apart than this."""


@dataclass(frozen=True)
class FrameQualityParams:
    """Thresholds of the per-frame flags.

    Attributes
    ----------
    likelihood_cutoff : float
        Body parts below it (or missing) are flagged; the recording's method's cutoff.
    jump_px : float or None
        Step between consecutive frames that counts as a jump; None: ``jump_fraction``
        of the frame diagonal.
    jump_fraction : float
        See ``jump_px``.
    disagreement_px : float
        Distance between two versions' points that counts as a disagreement.
    """

    likelihood_cutoff: float = DEFAULT_LIKELIHOOD_CUTOFF
    jump_px: float | None = None
    jump_fraction: float = DEFAULT_JUMP_FRACTION
    disagreement_px: float = DEFAULT_DISAGREEMENT_PX

    def jump_threshold(self, width_px: int, height_px: int) -> float:
        """The jump threshold in px for a frame size."""
        if self.jump_px is not None:
            return float(self.jump_px)
        return float(self.jump_fraction * np.hypot(width_px, height_px))


def low_likelihood_mask(poses: np.ndarray, cutoff: float) -> np.ndarray:
    """``(n_frames, n_parts)``: below ``cutoff`` or missing (NaN x, y or likelihood)."""
    lik = poses[..., 2]
    missing = np.isnan(poses[..., 0]) | np.isnan(poses[..., 1]) | np.isnan(lik)
    with np.errstate(invalid="ignore"):
        return missing | (lik < cutoff)


def step_lengths(poses: np.ndarray) -> np.ndarray:
    """``(n_frames, n_parts)`` distance of each body part from the previous frame (px);
    NaN on the first frame and where either point is missing."""
    steps = np.full(poses.shape[:2], np.nan)
    if poses.shape[0] > 1:
        d = poses[1:, :, :2] - poses[:-1, :, :2]
        steps[1:] = np.hypot(d[..., 0], d[..., 1])
    return steps


def point_distances(poses: np.ndarray, other: np.ndarray) -> np.ndarray:
    """``(n_frames, n_parts)`` distance between two predictions of the same frames and
    body parts (px); NaN where either is missing."""
    d = poses[..., :2] - other[..., :2]
    return np.hypot(d[..., 0], d[..., 1])


def align_poses(poses: np.ndarray, body_parts: list[str], other: np.ndarray,
                other_parts: list[str]) -> np.ndarray:
    """``other`` reordered to ``body_parts`` and cut or NaN-padded to ``poses``' frames
    (parts it lacks are NaN)."""
    out = np.full(poses.shape, np.nan)
    n = min(poses.shape[0], other.shape[0])
    index = {p: i for i, p in enumerate(other_parts)}
    for j, part in enumerate(body_parts):
        if part in index:
            out[:n, j] = other[:n, index[part]]
    return out


def frame_quality(recording_id: str, model_name: str, poses: np.ndarray,
                  time_s: np.ndarray, frame_size: tuple[int, int],
                  params: FrameQualityParams, other: np.ndarray | None = None,
                  other_model: str | None = None, body_parts: list[str] | None = None,
                  individual: str | None = None,
                  identity: Mapping[str, np.ndarray] | None = None) -> pd.DataFrame:
    """The ``frame_quality`` rows of one recording: its flagged frames.

    Parameters
    ----------
    recording_id, model_name : str
        What the rows describe.
    poses : np.ndarray
        ``(n_frames, n_parts, 3)`` x, y (px), likelihood; NaN = missing.
    time_s : np.ndarray
        ``(n_frames,)`` frame times.
    frame_size : tuple of int
        ``(width_px, height_px)`` (sets the default jump threshold).
    params : FrameQualityParams
        Thresholds.
    other : np.ndarray, optional
        Another version's poses of the same frames and body parts (see
        :func:`align_poses`): adds the disagreement flags.
    other_model : str, optional
        That version's name.
    body_parts : list of str, optional
        Names of axis 1, for ``outlier_body_parts`` (default ``part<i>``).
    individual : str, optional
        The track ``poses`` belong to, in a multi-animal recording (column
        ``individual``); None for a single animal (the column is left out).
    identity : mapping, optional
        Identity flags of that track, name (``identity_swap``, ``two_tracks_one_animal``)
        -> ``(n_frames,)`` bool: each flags its frames, adds 1 to their score (every body
        part of a swapped track is on the wrong animal) and becomes a column. None for a
        single animal (no such columns).

    Returns
    -------
    pandas.DataFrame
        One row per frame with at least one flag, ordered by frame (columns of the
        ``frame_quality`` table).
    """
    n_frames, n_parts, _ = poses.shape
    jump_px = params.jump_threshold(*frame_size)
    low = low_likelihood_mask(poses, params.likelihood_cutoff)
    steps = step_lengths(poses)
    with np.errstate(invalid="ignore"):
        jumps = steps > jump_px
    outliers, outlier_px = body_part_outliers(poses, OutlierParams(offset_px=jump_px))
    lik = np.nan_to_num(poses[..., 2], nan=0.0)
    score = ((low.sum(1) + jumps.sum(1) + outliers.sum(1)) / max(n_parts, 1)
             + (1.0 - lik.mean(1)) / 2.0)
    flagged = low.any(1) | jumps.any(1) | outliers.any(1)
    disagree_parts = max_disagreement = None
    if other is not None:
        dist = point_distances(poses, other)
        with np.errstate(invalid="ignore"):
            disagree = dist > params.disagreement_px
        disagree_parts = disagree.sum(1)
        score = score + disagree_parts / max(n_parts, 1)
        flagged |= disagree.any(1)
        max_disagreement = _nanmax_rows(dist)
    marks = {name: np.asarray(mask, bool) for name, mask in (identity or {}).items()}
    for name, mask in marks.items():
        if mask.shape != (n_frames,):
            raise ValueError(f"identity flag {name!r} has shape {mask.shape}; expected "
                             f"({n_frames},), one value per frame.")
        score = score + mask
        flagged = flagged | mask
    rows = np.flatnonzero(flagged)
    out = pd.DataFrame({
        "recording_id": recording_id, "model_name": model_name,
        "frame": rows.astype(np.int64), "time_s": np.asarray(time_s, np.float64)[rows],
        "n_body_parts": np.int32(n_parts),
        "low_likelihood_parts": low.sum(1)[rows].astype(np.int32),
        "min_likelihood": lik.min(1)[rows] if n_parts else np.nan,
        "jump_parts": jumps.sum(1)[rows].astype(np.int32),
        "max_jump_px": _nanmax_rows(steps)[rows],
        "outlier_parts": outliers.sum(1)[rows].astype(np.int32),
        "outlier_body_parts": pd.array(_names(outliers[rows], body_parts), dtype="string"),
        "max_outlier_px": _nanmax_rows(np.where(outliers, outlier_px, np.nan))[rows],
        "compared_model": other_model if other is not None else None,
        "disagreement_parts": (disagree_parts[rows].astype(np.int32)
                               if disagree_parts is not None else None),
        "max_disagreement_px": (max_disagreement[rows] if max_disagreement is not None
                                else np.nan),
        "score": score[rows],
        "likelihood_cutoff": float(params.likelihood_cutoff),
        "jump_threshold_px": jump_px,
        "disagreement_threshold_px": (float(params.disagreement_px) if other is not None
                                      else np.nan),
    })
    if other is None:  # an all-NULL column, not a column of Python None objects
        out["disagreement_parts"] = pd.array([pd.NA] * len(out), dtype="Int32")
    if individual is not None:
        out["individual"] = individual
    for name, mask in marks.items():
        out[name] = mask[rows]
    return out


def summarize(rows: pd.DataFrame, n_frames: int) -> dict:
    """Figures of one recording's flags for the asset's metadata."""
    n = max(int(n_frames), 1)
    return {
        "flagged_frames": int(len(rows)),
        "flagged_fraction": round(len(rows) / n, 4),
        "low_likelihood_frames": int((rows["low_likelihood_parts"] > 0).sum()),
        "jump_frames": int((rows["jump_parts"] > 0).sum()),
        "outlier_frames": int((rows["outlier_parts"] > 0).sum()) if "outlier_parts" in rows
        else 0,
        "disagreement_frames": int((rows["disagreement_parts"].fillna(0) > 0).sum()),
        "mean_score": round(float(rows["score"].sum()) / n, 4),
        **_identity_figures(rows),
    }


def _identity_figures(rows: pd.DataFrame) -> dict:
    """A multi-animal recording's identity figures (rows per frame x individual); none
    for a single animal."""
    if "individual" not in rows:
        return {}
    out = {"flagged_frames": int(rows["frame"].nunique()),
           "flagged_rows": int(len(rows)),
           "individuals_flagged": {str(k): int(v) for k, v in
                                   rows.groupby("individual", sort=False).size().items()}}
    if "identity_swap" in rows:
        swaps = rows.loc[rows["identity_swap"].fillna(False).astype(bool), "frame"]
        out["identity_swap_frames"] = [int(f) for f in sorted(swaps.unique())[:50]]
    if "two_tracks_one_animal" in rows:
        dup = rows["two_tracks_one_animal"].fillna(False).astype(bool)
        out["two_tracks_one_animal_frames"] = int(rows.loc[dup, "frame"].nunique())
    return out


def outlier_figures(rows: pd.DataFrame, n_frames: int, body_parts: list[str]) -> dict:
    """Share of points flagged as outliers, overall and per body part, from a recording's
    ``frame_quality`` rows (for the body_part_outliers check; no second pass over the
    predictions)."""
    n = max(int(n_frames), 1)
    counts = dict.fromkeys(body_parts, 0)
    if "outlier_body_parts" in rows:
        for names in rows["outlier_body_parts"].dropna():
            for name in str(names).split(","):
                if name in counts:
                    counts[name] += 1
    total = sum(counts.values())
    return {"outlier_fraction": round(total / (n * max(len(body_parts), 1)), 4),
            "outlier_fraction_per_part": {k: round(v / n, 4) for k, v in counts.items()}}


def _names(flags: np.ndarray, body_parts: list[str] | None) -> list[str | None]:
    """Per row, the comma-joined names of the flagged body parts (None when none)."""
    names = body_parts or [f"part{j}" for j in range(flags.shape[1])]
    return [",".join(n for n, f in zip(names, row, strict=True) if f) or None for row in flags]


def _nanmax_rows(values: np.ndarray) -> np.ndarray:
    """Row maxima ignoring NaN (NaN where a row is all NaN), without warnings."""
    if values.shape[1] == 0:
        return np.full(values.shape[0], np.nan)
    filled = np.where(np.isnan(values), -np.inf, values)
    out = filled.max(1)
    out[np.isneginf(out)] = np.nan
    return out
