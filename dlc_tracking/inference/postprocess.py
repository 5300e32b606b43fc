"""DeepLabCut's heatmap peak + location refinement, vectorised over a batch in numpy.

The same arithmetic as DLC 3.0.2's ``HeatmapPredictor`` (models/predictors/
single_predictor.py), in the same order and the same float32 precision, so the engine's
keypoints equal DLC's:

- optional sigmoid on the heatmaps;
- the peak is the *first* maximum of each flattened (row-major) map, ``argmax``;
- ``x = col * stride + stride / 2 + locref_x * locref_std`` (``y`` likewise with the row),
  where the locref maps are interleaved per keypoint: channel ``2k`` is x, ``2k + 1`` is y;
- the likelihood is the heatmap value at the peak, optionally clipped to [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HeatmapDecoding:
    """How one DLC heatmap head turns maps into keypoints (from ``pytorch_config.yaml``).

    Attributes
    ----------
    stride : float
        Input pixels per heatmap cell (``PoseModel.get_stride(head)``).
    locref_std : float
        Scale of the location-refinement maps.
    apply_sigmoid : bool
        Apply a sigmoid to the heatmaps before the peak.
    clip_scores : bool
        Clip the likelihoods to [0, 1] (DLC does it only when there is no sigmoid).
    location_refinement : bool
        Add the locref offset at the peak.
    """

    stride: float
    locref_std: float = 7.2801
    apply_sigmoid: bool = True
    clip_scores: bool = False
    location_refinement: bool = True


def decoding_from_config(predictor_cfg: dict, stride: float) -> HeatmapDecoding:
    """The decoding of a ``HeatmapPredictor`` config (defaults as DLC's constructor)."""
    return HeatmapDecoding(
        stride=float(stride),
        locref_std=float(predictor_cfg.get("locref_std", 7.2801)),
        apply_sigmoid=bool(predictor_cfg.get("apply_sigmoid", True)),
        clip_scores=bool(predictor_cfg.get("clip_scores", False)),
        location_refinement=bool(predictor_cfg.get("location_refinement", True)),
    )


def heatmap_poses(heatmaps: np.ndarray, locrefs: np.ndarray | None,
                  decoding: HeatmapDecoding) -> np.ndarray:
    """Keypoints of a batch of heatmaps, as DLC's ``HeatmapPredictor``.

    Parameters
    ----------
    heatmaps : ndarray, shape (batch, keypoints, height, width)
        Raw head output (before any sigmoid).
    locrefs : ndarray, shape (batch, 2 * keypoints, height, width), or None
        Location-refinement maps, x and y interleaved per keypoint.
    decoding : HeatmapDecoding

    Returns
    -------
    ndarray, shape (batch, keypoints, 3), float32
        x, y (input pixels) and likelihood per keypoint.
    """
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    batch, n_kpts, height, width = heatmaps.shape
    if decoding.apply_sigmoid:
        # torch.sigmoid in float32; the peak only depends on the order, which it keeps
        heatmaps = (1.0 / (1.0 + np.exp(-heatmaps))).astype(np.float32)
    flat = heatmaps.reshape(batch, n_kpts, height * width)
    peak = flat.argmax(axis=2)  # first maximum, as torch.argmax over the flattened map
    rows, cols = peak // width, peak % width
    b_idx = np.arange(batch)[:, None]
    k_idx = np.arange(n_kpts)[None, :]
    scores = flat[b_idx, k_idx, peak]
    dx = np.zeros((batch, n_kpts), dtype=np.float32)
    dy = np.zeros((batch, n_kpts), dtype=np.float32)
    if decoding.location_refinement and locrefs is not None:
        loc = np.asarray(locrefs, dtype=np.float32).reshape(batch, n_kpts, 2, height * width)
        std = np.float32(decoding.locref_std)
        dx = loc[b_idx, k_idx, 0, peak] * std
        dy = loc[b_idx, k_idx, 1, peak] * std
    stride = np.float32(decoding.stride)
    half = np.float32(0.5) * stride
    poses = np.empty((batch, n_kpts, 3), dtype=np.float32)
    poses[..., 0] = cols.astype(np.float32) * stride + half + dx
    poses[..., 1] = rows.astype(np.float32) * stride + half + dy
    poses[..., 2] = np.clip(scores, 0.0, 1.0) if decoding.clip_scores else scores
    return poses
