"""Synthetic inputs of the benchmarks: long noisy pose recordings, built quickly."""

from __future__ import annotations

import numpy as np

from dlc_tracking.synthetic.openfield import BODY_PARTS, simulate_openfield

WIDTH, HEIGHT = 640, 480
SEGMENT_FRAMES = 18_000


def long_keypoints(n_frames: int, fps: float, seed: int = 0) -> np.ndarray:
    """Ground-truth keypoints of a long recording, ``(n_frames, 4, 2)`` image pixels.

    :func:`dlc_tracking.synthetic.openfield.simulate_openfield` steps a Python loop per frame (tens
    of seconds for an hour at 50 Hz), so one segment of at most 18,000 frames is
    simulated and played forwards, backwards, forwards... The path stays continuous at
    each join (the animal turns back on its own track).

    Parameters
    ----------
    n_frames : int
        Frames wanted.
    fps : float
        Frame rate.
    seed : int
        Seed of the simulation.

    Returns
    -------
    np.ndarray
        Keypoints in :data:`dlc_tracking.synthetic.openfield.BODY_PARTS` order.
    """
    seg = min(n_frames, SEGMENT_FRAMES)
    gt = simulate_openfield(n_frames=seg, fps=fps, width=WIDTH, height=HEIGHT, seed=seed)
    pieces, total, forward = [], 0, True
    while total < n_frames:
        piece = gt.keypoints if forward else gt.keypoints[::-1]
        pieces.append(piece[: n_frames - total])
        total += pieces[-1].shape[0]
        forward = not forward
    return np.ascontiguousarray(np.concatenate(pieces, axis=0))


def noisy_poses(keypoints: np.ndarray, seed: int = 0, jitter_px: float = 1.0,
                low_fraction: float = 0.03, outlier_fraction: float = 0.002) -> np.ndarray:
    """DLC-like predictions from ground truth: jitter, low-likelihood points, outliers.

    Parameters
    ----------
    keypoints : np.ndarray
        ``(n_frames, n_parts, 2)`` ground truth.
    seed : int
        Random seed.
    jitter_px : float
        Standard deviation of the Gaussian position noise.
    low_fraction : float
        Share of points given a likelihood below 0.5 (occluded or unsure).
    outlier_fraction : float
        Share of points moved to a random place in the frame with a high likelihood
        (mislabels that jump removal must catch).

    Returns
    -------
    np.ndarray
        ``(n_frames, n_parts, 3)`` ``[x_px, y_px, likelihood]``.
    """
    rng = np.random.default_rng(seed)
    n, p, _ = keypoints.shape
    poses = np.empty((n, p, 3))
    poses[..., :2] = keypoints + rng.normal(0.0, jitter_px, size=(n, p, 2))
    poses[..., 2] = rng.uniform(0.95, 1.0, size=(n, p))
    low = rng.random((n, p)) < low_fraction
    poses[..., 2][low] = rng.uniform(0.0, 0.5, size=int(low.sum()))
    out = rng.random((n, p)) < outlier_fraction
    poses[..., 0][out] = rng.uniform(0, WIDTH - 1, size=int(out.sum()))
    poses[..., 1][out] = rng.uniform(0, HEIGHT - 1, size=int(out.sum()))
    return poses


def recording_poses(n_frames: int, fps: float, seed: int = 0
                    ) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Noisy poses, body-part names and frame times of one synthetic recording.

    Returns
    -------
    poses : np.ndarray
        ``(n_frames, 4, 3)``.
    body_parts : list of str
        :data:`dlc_tracking.synthetic.openfield.BODY_PARTS`.
    time_s : np.ndarray
        ``frame / fps``.
    """
    poses = noisy_poses(long_keypoints(n_frames, fps, seed), seed)
    return poses, list(BODY_PARTS), np.arange(n_frames, dtype=np.float64) / fps
