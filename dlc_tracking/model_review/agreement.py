"""How two versions of a model differ on one recording, per body part.

Rows of ``model_agreement``: median and 95th-percentile distance between the two
versions' points, the share of frames further apart than a threshold, the change in the
share of low-likelihood frames, and the change in distance travelled (a jittery or
jumping version travels further than the animal did).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dlc_tracking.model_review.frame_quality import low_likelihood_mask, point_distances

ALL_PARTS = "all"
"""``body_part`` of the row that pools every body part."""


def distance_travelled(poses: np.ndarray, cutoff: float) -> np.ndarray:
    """``(n_parts,)`` sum of steps between consecutive frames where both are at or above
    ``cutoff`` (px)."""
    ok = ~low_likelihood_mask(poses, cutoff)
    d = poses[1:, :, :2] - poses[:-1, :, :2]
    steps = np.hypot(d[..., 0], d[..., 1])
    both = ok[1:] & ok[:-1]
    return np.where(both, steps, 0.0).sum(0) if poses.shape[0] > 1 else np.zeros(
        poses.shape[1])


def _row(distances: np.ndarray, threshold_px: float, low_old: np.ndarray,
         low_new: np.ndarray, travelled_old: float, travelled_new: float) -> dict:
    valid = distances[~np.isnan(distances)]
    has = valid.size > 0
    return {
        "n_frames": int(valid.size),
        "median_distance_px": float(np.median(valid)) if has else np.nan,
        "p95_distance_px": float(np.percentile(valid, 95)) if has else np.nan,
        "threshold_px": float(threshold_px),
        "fraction_above_threshold": float((valid > threshold_px).mean()) if has else np.nan,
        "old_low_likelihood_fraction": float(low_old.mean()) if low_old.size else np.nan,
        "new_low_likelihood_fraction": float(low_new.mean()) if low_new.size else np.nan,
        "low_likelihood_change": (float(low_new.mean() - low_old.mean())
                                  if low_old.size else np.nan),
        "old_distance_travelled_px": float(travelled_old),
        "new_distance_travelled_px": float(travelled_new),
        "distance_travelled_change": (float(travelled_new / travelled_old - 1.0)
                                      if travelled_old > 0 else np.nan),
    }


def agreement_rows(recording_id: str, old_model: str, new_model: str, body_parts: list[str],
                   old: np.ndarray, new: np.ndarray, threshold_px: float,
                   likelihood_cutoff: float, compared_at: pd.Timestamp | None = None,
                   ) -> pd.DataFrame:
    """``model_agreement`` rows of one recording: one per body part, and ``all``.

    Parameters
    ----------
    recording_id, old_model, new_model : str
        What is compared.
    body_parts : list of str
        Names of axis 1 of both arrays.
    old, new : np.ndarray
        ``(n_frames, n_parts, 3)`` predictions of the same frames and body parts (see
        :func:`dlc_tracking.model_review.frame_quality.align_poses`).
    threshold_px : float
        Distance that counts as a disagreement.
    likelihood_cutoff : float
        Cutoff of the low-likelihood fractions and of the distance travelled.
    compared_at : pandas.Timestamp, optional
        When (default: now, UTC).
    """
    if old.shape != new.shape:
        raise ValueError(f"recording {recording_id}: {old_model} has shape {old.shape}, "
                         f"{new_model} {new.shape}; align them first.")
    when = compared_at if compared_at is not None else pd.Timestamp.now(tz="UTC")
    dist = point_distances(old, new)
    low_old = low_likelihood_mask(old, likelihood_cutoff)
    low_new = low_likelihood_mask(new, likelihood_cutoff)
    t_old = distance_travelled(old, likelihood_cutoff)
    t_new = distance_travelled(new, likelihood_cutoff)
    rows = [{"body_part": part,
             **_row(dist[:, j], threshold_px, low_old[:, j], low_new[:, j], t_old[j],
                    t_new[j])} for j, part in enumerate(body_parts)]
    rows.append({"body_part": ALL_PARTS,
                 **_row(dist.ravel(), threshold_px, low_old.ravel(), low_new.ravel(),
                        t_old.sum(), t_new.sum())})
    out = pd.DataFrame(rows)
    out.insert(0, "recording_id", recording_id)
    out.insert(0, "new_model", new_model)
    out.insert(0, "old_model", old_model)
    out["likelihood_cutoff"] = float(likelihood_cutoff)
    out["compared_at"] = when
    return out
