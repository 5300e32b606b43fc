"""Identity quality of multi-animal tracks: swaps, vanishing tracks, duplicates.

All checks work on image-pixel poses ``(n_frames, n_individuals, n_parts, 3)`` as read
by :mod:`dlc_tracking.io.madlc_files` (NaN = missing) and are vectorised over frames.

- **Identity swap** (found from the motion): between frames ``t-1`` and ``t``, keeping
  the labels of individuals ``a`` and ``b`` costs ``|a_t - a_{t-1}| + |b_t - b_{t-1}|``
  (their positions' steps), exchanging them costs ``|a_t - b_{t-1}| + |b_t - a_{t-1}|``.
  A swap is flagged at frame ``t`` when exchanging is cheaper than ``swap_ratio`` x
  keeping and keeping implies a step larger than ``min_jump_px`` per animal: the animals
  did not jump, their labels did. Every permutation of the individuals is tried (up to 6
  animals), so labels rotating among three animals are found too. Positions are the mean
  of each individual's body parts present (above ``likelihood_cutoff``), carried forward
  over at most ``max_gap_frames`` missing frames so that a swap across a short dropout is
  still seen.
- **Track events**: an individual's first frame after the start (``appears``), its last
  before the end (``vanishes``), and gaps longer than ``min_gap_frames`` inside
  (``vanishes`` then ``reappears``).
- **Two tracks on one animal**: runs of frames where two individuals' matching body
  parts are on average closer than ``duplicate_px`` (two animals in contact still have
  their noses, ears and tails apart).
- **Fraction with every individual present**.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from itertools import combinations, permutations
from typing import Any

import numpy as np
import pandas as pd

from dlc_tracking.errors import ProcessingError
from dlc_tracking.tracking.methods import short_hash

__all__ = ["IdentityParams", "IdentityReport", "check_identities", "individual_positions"]


@dataclass(frozen=True)
class IdentityParams:
    """Thresholds of the identity checks.

    Parameters
    ----------
    likelihood_cutoff
        Points below it count as missing (0.6, DeepLabCut's ``pcutoff``).
    min_jump_px
        A kept label must imply a step larger than this for a swap to be flagged; None =
        5 x the median step of all individuals (robust to the frame rate and image size),
        at least 2 px.
    swap_ratio
        Exchanging labels must cost less than this share of keeping them (0.5).
    max_gap_frames
        A position is carried forward over at most this many missing frames (5).
    min_gap_frames
        A track missing for more frames than this inside the recording counts as
        vanished and reappeared (25 = 0.5 s at 50 Hz).
    duplicate_px
        Mean distance of matching body parts below which two tracks sit on one animal;
        None = 10 % of the median nose-to-tail extent of the individuals, at least 2 px.
    """

    likelihood_cutoff: float = 0.6
    min_jump_px: float | None = None
    swap_ratio: float = 0.5
    max_gap_frames: int = 5
    min_gap_frames: int = 25
    duplicate_px: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.likelihood_cutoff <= 1:
            raise ProcessingError(f"identity likelihood_cutoff={self.likelihood_cutoff!r} "
                                  "must be in [0, 1].")
        if not 0 < self.swap_ratio <= 1:
            raise ProcessingError(f"identity swap_ratio={self.swap_ratio!r} must be in (0, 1].")
        for key in ("max_gap_frames", "min_gap_frames"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ProcessingError(f"identity {key}={value!r} must be a whole number >= 0.")

    @property
    def param_hash(self) -> str:
        return short_hash(asdict(self))


@dataclass
class IdentityReport:
    """Result of :func:`check_identities`.

    Attributes
    ----------
    swaps : pandas.DataFrame
        ``frame, individual_a, individual_b, keep_cost_px, swap_cost_px``: one row per
        flagged swap (``frame`` = first frame with the exchanged labels).
    track_events : pandas.DataFrame
        ``individual, event, frame, missing_frames``: ``appears`` / ``vanishes`` /
        ``reappears``.
    duplicates : pandas.DataFrame
        ``individual_a, individual_b, start_frame, stop_frame, n_frames,
        mean_distance_px``: runs of two tracks on one animal (stop exclusive).
    fraction_all_present : float
        Share of frames in which every individual has at least one body part.
    fraction_present : dict
        individual -> share of frames it is present.
    params : dict
        The thresholds used (resolved defaults included) and their hash.
    present : np.ndarray
        ``(n_frames, n_individuals)`` bool, at least one body part present.
    """

    swaps: pd.DataFrame
    track_events: pd.DataFrame
    duplicates: pd.DataFrame
    fraction_all_present: float
    fraction_present: dict[str, float]
    params: dict[str, Any] = field(default_factory=dict)
    present: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool))

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures for an asset's metadata / asset checks."""
        return {
            "n_swaps": int(len(self.swaps)),
            "swap_frames": [int(f) for f in self.swaps["frame"][:50]],
            "n_track_events": int(len(self.track_events)),
            "n_duplicate_runs": int(len(self.duplicates)),
            "duplicate_frames": int(self.duplicates["n_frames"].sum()),
            "fraction_all_present": round(float(self.fraction_all_present), 6),
            "fraction_present": {k: round(v, 6) for k, v in self.fraction_present.items()},
            "params": self.params,
        }

    def frame_flags(self, individuals: list[str], n_frames: int) -> pd.DataFrame:
        """Per frame and individual: ``identity_swap``, ``track_missing``, ``duplicate``
        (the identity flags a ``frame_quality`` table joins on (frame, individual))."""
        swap = np.zeros((n_frames, len(individuals)), bool)
        dup = np.zeros_like(swap)
        index = {ind: k for k, ind in enumerate(individuals)}
        for row in self.swaps.itertuples():
            swap[row.frame, index[row.individual_a]] = True
            swap[row.frame, index[row.individual_b]] = True
        for row in self.duplicates.itertuples():
            dup[row.start_frame:row.stop_frame, index[row.individual_a]] = True
            dup[row.start_frame:row.stop_frame, index[row.individual_b]] = True
        missing = ~self.present
        keep = swap | dup | missing
        f, k = np.nonzero(keep)
        return pd.DataFrame({"frame": f.astype(np.int64),
                             "individual": [individuals[i] for i in k],
                             "identity_swap": swap[f, k], "track_missing": missing[f, k],
                             "duplicate": dup[f, k]})


def _present(poses: np.ndarray, cutoff: float) -> np.ndarray:
    """``(n_frames, n_individuals, n_parts)`` points present above the cutoff."""
    with np.errstate(invalid="ignore"):
        return (np.isfinite(poses[..., 0]) & np.isfinite(poses[..., 1])
                & (np.nan_to_num(poses[..., 2], nan=0.0) >= cutoff))


def individual_positions(poses: np.ndarray, cutoff: float = 0.6) -> np.ndarray:
    """Mean of each individual's present body parts, ``(n_frames, n_individuals, 2)``
    px; NaN where none is present."""
    ok = _present(poses, cutoff)
    n = ok.sum(axis=2)
    out = np.empty(poses.shape[:2] + (2,))
    with np.errstate(invalid="ignore", divide="ignore"):
        for c in range(2):  # contiguous per coordinate: reductions over the last axis
            v = np.where(ok, poses[..., c], 0.0)
            out[..., c] = v.sum(axis=2) / n
    out[n == 0] = np.nan
    return out


def _carry_forward(xy: np.ndarray, max_gap: int) -> np.ndarray:
    """The last known position over at most ``max_gap`` missing frames (per individual)."""
    n = xy.shape[0]
    known = np.isfinite(xy[..., 0])
    idx = np.where(known, np.arange(n)[:, None], -1)
    last = np.maximum.accumulate(idx, axis=0)
    age = np.arange(n)[:, None] - last
    usable = (last >= 0) & (age <= max_gap)
    cols = np.arange(xy.shape[1])[None, :]
    out = xy[np.clip(last, 0, None), cols]
    out[~usable] = np.nan
    return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of the True runs of a 1-D mask (stop exclusive)."""
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _swaps(xy: np.ndarray, held: np.ndarray, individuals: list[str], min_jump: float,
           ratio: float) -> list[tuple]:
    """Relabellings between consecutive frames, found over every permutation of the
    individuals (pairs and longer cycles: with three animals, labels can rotate).

    For a permutation moving the set M of individuals, keeping the labels costs
    ``sum_{k in M} |cur_k - prev_k|`` and relabelling ``sum_{k in M} |cur_k - prev_perm(k)|``;
    it is flagged when keeping implies a jump (more than ``|M| x min_jump``) and
    relabelling costs less than ``ratio`` x keeping. Every moved individual must be known
    on both frames. Per frame the permutation with the lowest ratio is kept; it is listed
    as one row per pair (k, perm(k)) with k before perm(k) in the file's order.
    """
    n_ind = len(individuals)
    if n_ind < 2 or len(xy) < 2:
        return []
    cur, prev = xy[1:], held[:-1]
    # dist[t, i, j] = |cur_i(t) - prev_j(t)|
    dist = np.linalg.norm(cur[:, :, None, :] - prev[:, None, :, :], axis=3)
    known = np.isfinite(cur[..., 0]) & np.isfinite(prev[..., 0])
    diag = np.diagonal(dist, axis1=1, axis2=2)
    best_ratio = np.full(len(cur), np.inf)
    best: list[tuple[int, ...] | None] = [None] * len(cur)
    rows = np.arange(n_ind)
    perms = [p for p in permutations(range(n_ind)) if p != tuple(range(n_ind))]
    if n_ind > 6:  # 7! permutations per frame is too many: pairs only
        perms = [tuple(b if k == a else a if k == b else k for k in range(n_ind))
                 for a, b in combinations(range(n_ind), 2)]
    for perm in perms:
        moved = rows[np.asarray(perm) != rows]
        keep = diag[:, moved].sum(axis=1)
        relabel = dist[:, moved, np.asarray(perm)[moved]].sum(axis=1)
        valid = known[:, moved].all(axis=1) & known[:, list(np.asarray(perm)[moved])].all(
            axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = relabel / keep
            flagged = valid & (keep > len(moved) * min_jump) & (r < ratio) & (r < best_ratio)
        for t in np.flatnonzero(flagged):
            best_ratio[t] = r[t]
            best[t] = perm
    out = []
    for t in np.flatnonzero(np.isfinite(best_ratio)):
        perm = best[t]
        moved = [k for k in range(n_ind) if perm[k] != k]
        keep = float(diag[t, moved].sum())
        relabel = float(dist[t, moved, [perm[k] for k in moved]].sum())
        pairs = sorted({tuple(sorted((k, perm[k]))) for k in moved})
        for a, b in pairs:
            out.append((int(t + 1), individuals[a], individuals[b], keep, relabel))
    return out


def check_identities(poses: np.ndarray, individuals: list[str],
                     params: IdentityParams | None = None, *, source: str = ""
                     ) -> IdentityReport:
    """Run every identity check on one recording.

    Parameters
    ----------
    poses : np.ndarray
        ``(n_frames, n_individuals, n_parts, 3)`` image-pixel predictions.
    individuals : list of str
        Names of axis 1.
    params : IdentityParams, optional
        Thresholds (defaults documented there).
    source : str
        Recording named in error messages.

    Returns
    -------
    IdentityReport
    """
    params = IdentityParams() if params is None else params
    poses = np.asarray(poses, np.float64)
    if poses.ndim != 4 or poses.shape[3] != 3 or poses.shape[1] != len(individuals):
        raise ProcessingError(
            f"{source + ': ' if source else ''}multi-animal poses have shape {poses.shape}; "
            f"expected (n_frames, {len(individuals)} individuals, n_parts, 3).")
    n_frames, n_ind = poses.shape[:2]
    ok = _present(poses, params.likelihood_cutoff)
    present = ok.any(axis=2)
    xy = individual_positions(poses, params.likelihood_cutoff)
    held = _carry_forward(xy, params.max_gap_frames)

    steps = np.linalg.norm(np.diff(xy, axis=0), axis=2)
    finite = steps[np.isfinite(steps)]
    min_jump = params.min_jump_px
    if min_jump is None:
        min_jump = max(2.0, 5.0 * float(np.median(finite))) if finite.size else 2.0
    span = []
    for c in range(2):  # extent of the present parts per frame and individual
        v = np.ascontiguousarray(poses[..., c])
        hi = np.where(ok, v, -np.inf).max(axis=2)
        lo = np.where(ok, v, np.inf).min(axis=2)
        span.append(np.where(ok.any(axis=2), hi - lo, np.nan))
    extent = np.hypot(span[0], span[1])
    dup_px = params.duplicate_px
    if dup_px is None:
        ext = extent[np.isfinite(extent)]
        dup_px = max(2.0, 0.1 * float(np.median(ext))) if ext.size else 2.0

    swap_rows = _swaps(xy, held, individuals, min_jump, params.swap_ratio)
    dup_rows = []
    for a, b in combinations(range(n_ind), 2):
        both = ok[:, a] & ok[:, b]
        dist = np.linalg.norm(poses[:, a, :, :2] - poses[:, b, :, :2], axis=2)
        n_both = both.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_d = np.where(both, dist, 0.0).sum(axis=1) / n_both
        close = (n_both > 0) & (mean_d < dup_px)
        for start, stop in _runs(close):
            dup_rows.append((individuals[a], individuals[b], start, stop, stop - start,
                             float(np.mean(mean_d[start:stop]))))

    event_rows = []
    for k, ind in enumerate(individuals):
        frames = np.flatnonzero(present[:, k])
        if frames.size == 0:
            event_rows.append((ind, "never_present", 0, n_frames))
            continue
        if frames[0] > 0:
            event_rows.append((ind, "appears", int(frames[0]), int(frames[0])))
        for start, stop in _runs(~present[:, k]):
            if start > 0 and stop < n_frames and stop - start > params.min_gap_frames:
                event_rows.append((ind, "vanishes", start, stop - start))
                event_rows.append((ind, "reappears", stop, stop - start))
        if frames[-1] < n_frames - 1:
            event_rows.append((ind, "vanishes", int(frames[-1]) + 1,
                               int(n_frames - 1 - frames[-1])))

    swaps = pd.DataFrame(swap_rows, columns=["frame", "individual_a", "individual_b",
                                             "keep_cost_px", "swap_cost_px"]
                         ).sort_values("frame", kind="stable").reset_index(drop=True)
    swaps["frame"] = swaps["frame"].astype(np.int64)
    events = pd.DataFrame(event_rows, columns=["individual", "event", "frame",
                                               "missing_frames"]).sort_values(
        ["frame", "individual"], kind="stable").reset_index(drop=True)
    dups = pd.DataFrame(dup_rows, columns=["individual_a", "individual_b", "start_frame",
                                           "stop_frame", "n_frames", "mean_distance_px"])
    resolved = dict(asdict(params), min_jump_px=float(min_jump), duplicate_px=float(dup_px),
                    param_hash=params.param_hash)
    report = IdentityReport(
        swaps=swaps, track_events=events, duplicates=dups,
        fraction_all_present=float(present.all(axis=1).mean()) if n_frames else 0.0,
        fraction_present={ind: float(present[:, k].mean()) for k, ind in
                          enumerate(individuals)},
        params=resolved, present=present)
    return report
