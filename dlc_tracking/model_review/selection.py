"""The N most informative frames of a model across the archive, spread out.

Reads ``frame_quality`` (flagged frames only) and ``recordings`` with DuckDB, never the
predictions: one aggregate over the flagged frames of the model, then frames of the
chosen recordings only. Memory stays bounded by the number of recordings plus the
frames picked, whatever the archive's size.

How frames are spread:

1. **Over recordings**: the N slots are dealt out one at a time to the recording with
   the highest ``weight / (2 * slots so far + 1)`` (Sainte-Lague), the weight blending
   the recording's share of the flagged score with its flagged share of frames (so a
   long recording that fails rarely does not outrank a short one that fails often):
   worse recordings get more frames, in proportion, and no recording gets more than
   ``max_share`` of N
   (50 consecutive frames of one bad video teach the network less than 50 frames of
   many).
2. **Over time**: a recording's k frames are the best frame of each of k equal time
   segments; segments without a flagged frame are made up with the recording's next
   best frames. No two frames of a recording are closer than half a segment: a
   recording whose flagged frames cannot be spaced so gives fewer frames, and its
   unused slots go to the other recordings.

A recording whose video is not here (declared by its DLC outputs, or moved) is skipped
with the reason, and its slots go to the others.
"""

from __future__ import annotations

import heapq
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

from dlc_tracking.errors import DLCPlatformError
from dlc_tracking.model_review.errors import ReviewError

MEMORY_LIMIT = "128MB"
"""DuckDB's memory limit for the per-recording queries (it spills beyond)."""
DEFAULT_MAX_SHARE = 0.5
"""No recording gets more than this share of the frames (unless no other has any)."""

FLAGGED_SHARE_WEIGHT = 0.5
"""Weight of the flagged share (flagged_frames / n_frames) in a recording's ranking,
next to its share of the flagged score: a short recording that fails often ranks with a
long one that fails now and then (see :func:`recording_weights`)."""

REASONS = ("identity_swap", "two_tracks_one_animal", "disagreement", "outlier", "jump",
           "low_likelihood")
"""Why a frame was flagged, most serious first: a picked frame's ``reason`` is the first
of these its frame_quality row(s) carry (a swap: every body part of two tracks is on the
wrong animal)."""

_REASON_SQL = """CASE WHEN coalesce(q.identity_swap, false) THEN 'identity_swap'
        WHEN coalesce(q.two_tracks_one_animal, false) THEN 'two_tracks_one_animal'
        WHEN coalesce(q.disagreement_parts, 0) > 0 THEN 'disagreement'
        WHEN coalesce(q.outlier_parts, 0) > 0 THEN 'outlier'
        WHEN q.jump_parts > 0 THEN 'jump'
        ELSE 'low_likelihood' END"""

__all__ = ["REASONS", "ReviewError", "Selection", "allocate", "recording_weights",
           "select_frames", "spread_in_time", "video_problem"]


@dataclass
class Selection:
    """Frames picked for relabelling.

    Attributes
    ----------
    frames : pandas.DataFrame
        recording_id, frame, time_s, score, video_path, n_frames, reason (the frame's most
        serious flag, :data:`REASONS`), individuals (the flagged tracks of a multi-animal
        recording, comma-separated; None for a single animal); by recording, frame.
    recordings : pandas.DataFrame
        One row per recording with flagged frames: recording_id, flagged_frames,
        total_score, n_frames, video_path, picked.
    skipped : dict
        recording_id -> why it gave no frames (e.g. its video is not here).
    """

    frames: pd.DataFrame
    recordings: pd.DataFrame
    skipped: dict[str, str] = field(default_factory=dict)


def allocate(weights: Sequence[float], capacity: Sequence[int], n: int) -> np.ndarray:
    """Deal ``n`` slots by highest averages (Sainte-Lague), at most ``capacity[i]`` each.

    Returns
    -------
    np.ndarray
        Slots per item (int); sums to ``min(n, sum(capacity))``.
    """
    w = np.asarray(weights, np.float64)
    cap = np.asarray(capacity, np.int64)
    out = np.zeros(len(w), np.int64)
    if len(w) and not np.any(w > 0):
        w = np.ones(len(w))  # nothing scored: spread evenly
    heap = [(-w[i], i) for i in range(len(w)) if cap[i] > 0]
    heapq.heapify(heap)
    for _ in range(int(n)):
        if not heap:
            break
        _, i = heapq.heappop(heap)
        out[i] += 1
        if out[i] < cap[i]:
            heapq.heappush(heap, (-w[i] / (2 * out[i] + 1), i))
    return out


def spread_in_time(frames: np.ndarray, scores: np.ndarray, k: int, n_frames: int,
                   ) -> np.ndarray:
    """Up to ``k`` of ``frames``, no two closer than half a segment (``n_frames / k / 2``).

    The best of each of ``k`` equal segments of the recording comes first (the next best
    of a segment when its best is too close to a frame already picked), then the next
    best frames anywhere, by score, at the same spacing. Fewer than ``k`` frames come
    back when the candidates cannot be spaced so (e.g. one burst of flagged frames): 50
    neighbouring frames teach the network less than a few spread ones, and the spacing is
    what ``docs/models.md`` promises. Used on one recording's candidates.
    """
    frames = np.asarray(frames, np.int64)
    scores = np.asarray(scores, np.float64)
    if k <= 0 or frames.size == 0:
        return np.zeros(0, np.int64)
    order = np.lexsort((frames, -scores))  # best first, earlier frame on ties
    segment = np.minimum((frames * k) // max(n_frames, 1), k - 1)
    gap = max(n_frames / k / 2.0, 1.0)
    chosen: list[int] = []

    def spaced(f: int) -> bool:
        return all(abs(f - c) >= gap for c in chosen)

    seen: set[int] = set()
    for i in order:
        f = int(frames[i])
        if int(segment[i]) not in seen and spaced(f):
            seen.add(int(segment[i]))
            chosen.append(f)
    for i in order:
        if len(chosen) >= k:
            break
        f = int(frames[i])
        if f not in chosen and spaced(f):
            chosen.append(f)
    return np.sort(np.asarray(chosen[:k], np.int64))


def recording_scores(store, model_name: str, recordings: Sequence[str] | None = None,
                     ) -> pd.DataFrame:
    """Per recording of ``model_name`` with flagged frames: flagged_frames, total_score,
    and from ``recordings``: n_frames, video_path, has_video."""
    where = "q.model_name = ?"
    params: list = [model_name]
    if recordings:  # a list parameter: no quoting of ids into the SQL
        where += " AND list_contains(?, q.recording_id)"
        params.append(list(recordings))
    sql = f"""
        WITH agg AS (
            SELECT q.recording_id, count(*) AS flagged_frames, sum(q.score) AS total_score,
                   max(q.frame) AS last_flagged
            FROM frame_quality q WHERE {where} GROUP BY q.recording_id)
        SELECT a.*, r.n_frames, r.video_path, r.has_video
        FROM agg a LEFT JOIN recordings r ON r.recording_id = a.recording_id
        ORDER BY a.recording_id"""
    try:
        con = store.memory_connection({"frame_quality", "recordings"})
    except DLCPlatformError as exc:
        raise ReviewError(f"model {model_name!r}: no frame_quality rows in the warehouse "
                          f"{store.root} ({exc}); process its recordings first.") from exc
    try:
        con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        return con.execute(sql, params).df()
    except duckdb.CatalogException as exc:  # frame_quality or recordings never written
        raise ReviewError(f"model {model_name!r}: no frame_quality rows in the warehouse "
                          f"{store.root} ({exc}); process its recordings first (the "
                          "frame_quality asset runs in process_recording).") from exc
    finally:
        con.close()


def video_problem(video_path, has_video) -> str | None:
    """Why a recording's video cannot give frames, or None.

    ``has_video`` is NULL (None / NaN / pd.NA) when the recording has no ``recordings``
    row (``frame_quality`` LEFT JOIN ``recordings``): skipped with that reason.
    """
    if has_video is None or pd.isna(has_video):
        return ("no recordings row in the warehouse (frame_quality rows without their "
                "recording): re-run the recording (`dlc-platform process RECORDING`)")
    if not bool(has_video):
        return (f"its video {video_path} is not in the session (recording declared by its "
                "DLC outputs): copy the video back to extract its frames")
    if video_path is None or (isinstance(video_path, float) and math.isnan(video_path)):
        return "no video path in the recordings table: re-run the recording"
    if not os.path.isfile(str(video_path)):
        return f"its video {video_path} is not there any more: copy it back"
    return None


def recording_weights(per: pd.DataFrame) -> np.ndarray:
    """How many frames each recording deserves: its share of the model's flagged score,
    blended with its flagged share (flagged_frames / n_frames) relative to the others.

    The score alone favours long recordings that fail rarely (many frames, each a little
    flagged) over short ones that fail on most frames; the flagged share alone ignores how
    bad the frames are. Both shares sum to 1 over the recordings; the blend weighs the
    second by :data:`FLAGGED_SHARE_WEIGHT`. A recording without ``n_frames`` uses its
    last flagged frame + 1.
    """
    total = per["total_score"].to_numpy(np.float64)
    last = per["last_flagged"].to_numpy(np.float64) + 1 if "last_flagged" in per \
        else per["flagged_frames"].to_numpy(np.float64)
    n_frames = pd.to_numeric(per["n_frames"], errors="coerce").to_numpy(np.float64)
    n_frames = np.where(np.isfinite(n_frames) & (n_frames > 0), n_frames, last)
    rate = per["flagged_frames"].to_numpy(np.float64) / np.maximum(n_frames, 1.0)
    score_share = total / total.sum() if total.sum() > 0 else np.zeros_like(total)
    rate_share = rate / rate.sum() if rate.sum() > 0 else np.zeros_like(rate)
    return (1 - FLAGGED_SHARE_WEIGHT) * score_share + FLAGGED_SHARE_WEIGHT * rate_share


def select_frames(store, model_name: str, n: int, *, max_share: float = DEFAULT_MAX_SHARE,
                  recordings: Sequence[str] | None = None) -> Selection:
    """Pick the ``n`` most informative frames of ``model_name`` across its recordings.

    Parameters
    ----------
    store : dlc_tracking.warehouse.Warehouse
        The warehouse (``frame_quality`` and ``recordings``).
    model_name : str
        Registered model version.
    n : int
        Frames wanted.
    max_share : float
        Largest share of ``n`` one recording may give (while others have frames).
    recordings : sequence of str, optional
        Only these recordings.

    Returns
    -------
    Selection
    """
    if n < 1:
        raise ReviewError(f"--n must be at least 1 (got {n}).")
    per = recording_scores(store, model_name, recordings)
    if per.empty:
        raise ReviewError(
            f"model {model_name!r} has no flagged frames in {store.root}: none of its "
            "recordings has frame_quality rows (not processed yet, or every frame is "
            "confident, steady and agreed). Nothing to review.")
    skipped: dict[str, str] = {}
    usable = np.ones(len(per), bool)
    for i, row in enumerate(per.itertuples(index=False)):
        problem = video_problem(row.video_path, row.has_video)
        if problem is not None:
            skipped[row.recording_id] = problem
            usable[i] = False
    cap = max(1, math.ceil(n * max_share))
    capacity = np.where(usable, np.minimum(per["flagged_frames"].to_numpy(), cap), 0)
    if capacity.sum() < n:  # too few recordings to respect the share: use what there is
        capacity = np.where(usable, per["flagged_frames"].to_numpy(), 0)
    weights = recording_weights(per)
    per["picked"] = allocate(weights, capacity, n)
    frames = _pick_in_recordings(store, model_name, per[per["picked"] > 0])
    frozen = np.zeros(len(per), bool)
    for _ in range(4):  # slots a recording cannot space out go to the others
        got = per["recording_id"].map(frames.groupby("recording_id").size()
                                      if len(frames) else {}).fillna(0).to_numpy(int)
        frozen |= got < per["picked"].to_numpy()
        left = n - int(got.sum())
        # the share limit gives way when the others cannot give more spaced frames
        room = np.where(frozen, 0, np.where(usable, per["flagged_frames"].to_numpy(), 0)
                        - per["picked"].to_numpy())
        extra = allocate(weights, np.maximum(room, 0), left) if left > 0 else room * 0
        per["picked"] = np.where(frozen, got, per["picked"].to_numpy())
        if not extra.any():
            break
        per["picked"] = per["picked"].to_numpy() + extra
        again = per[extra > 0]
        frames = pd.concat([frames[~frames["recording_id"].isin(again["recording_id"])],
                            _pick_in_recordings(store, model_name, again)],
                           ignore_index=True).sort_values(["recording_id", "frame"],
                                                          ignore_index=True)
    return Selection(frames=frames.reindex(columns=_COLUMNS), recordings=per,
                     skipped=skipped)


_COLUMNS = ["recording_id", "frame", "time_s", "score", "video_path", "n_frames", "reason",
            "individuals"]


def _pick_in_recordings(store, model_name: str, chosen: pd.DataFrame) -> pd.DataFrame:
    columns = _COLUMNS
    if chosen.empty:
        return pd.DataFrame(columns=columns)
    n_frames = {r.recording_id: int(r.n_frames) if pd.notna(r.n_frames)
                else int(r.last_flagged) + 1 for r in chosen.itertuples(index=False)}
    k = dict(zip(chosen["recording_id"], chosen["picked"].astype(int), strict=True))
    con = store.memory_connection({"frame_quality"})
    try:
        # Bounded memory whatever the archive: DuckDB otherwise keeps up to 80 % of the
        # RAM as cache of the files it read.
        con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        alloc = pd.DataFrame({"recording_id": list(k), "k": list(k.values()),
                              "n_frames": [n_frames[r] for r in k]})
        con.register("alloc", alloc)
        # Best frame per time segment, and the next best as reserve: aggregates (no sort
        # of the flagged frames), a few rows per recording whatever their number. Ties go
        # to the earlier frame.
        reserve = 4 * max(k.values())
        cand = con.execute(f"""
            WITH c AS (
                SELECT q.recording_id, q.frame, q.time_s, q.score,
                       least(floor(q.frame * a.k / greatest(a.n_frames, 1)), a.k - 1) AS seg
                FROM frame_quality q JOIN alloc a ON a.recording_id = q.recording_id
                WHERE q.model_name = ? AND list_contains(?, q.recording_id)),
            best AS (
                SELECT recording_id, arg_max({{'frame': frame, 'time_s': time_s,
                                              'score': score}},
                                             {{'s': score, 'f': -frame}}) AS p
                FROM c GROUP BY recording_id, seg),
            reserve AS (
                SELECT recording_id, unnest(arg_max({{'frame': frame, 'time_s': time_s,
                                                     'score': score}},
                                                    {{'s': score, 'f': -frame}},
                                                    {reserve})) AS p
                FROM c GROUP BY recording_id)
            SELECT DISTINCT recording_id, p.frame AS frame, p.time_s AS time_s,
                   p.score AS score
            FROM (SELECT * FROM best UNION ALL SELECT * FROM reserve)""",
                           [model_name, list(k)]).df()
    finally:
        con.close()
    video = dict(zip(chosen["recording_id"], chosen["video_path"], strict=True))
    out = []
    for rid, group in cand.groupby("recording_id", sort=True):
        # a multi-animal frame has a row per flagged individual: its best row speaks for it
        group = group.sort_values(["score", "frame"], ascending=[False, True], kind="stable")
        picked = spread_in_time(group["frame"].to_numpy(), group["score"].to_numpy(), k[rid],
                                n_frames[rid])
        rows = group.drop_duplicates("frame").set_index("frame").loc[picked]
        out.append(pd.DataFrame({"recording_id": rid, "frame": picked,
                                 "time_s": rows["time_s"].to_numpy(),
                                 "score": rows["score"].to_numpy(),
                                 "video_path": video[rid], "n_frames": n_frames[rid]}))
    if not out:
        return pd.DataFrame(columns=columns)
    return _with_reasons(store, model_name, pd.concat(out, ignore_index=True))


def _with_reasons(store, model_name: str, frames: pd.DataFrame) -> pd.DataFrame:
    """``reason`` and ``individuals`` of the picked frames, from all their frame_quality
    rows (one per flagged individual in a multi-animal recording); a few rows per picked
    frame, whatever the archive."""
    con = store.memory_connection({"frame_quality"})
    try:
        con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        con.register("picked", frames[["recording_id", "frame"]])
        flags = con.execute(f"""
            SELECT q.recording_id, q.frame, q.individual, {_REASON_SQL} AS reason
            FROM frame_quality q JOIN picked p
                ON p.recording_id = q.recording_id AND p.frame = q.frame
            WHERE q.model_name = ?""", [model_name]).df()
    finally:
        con.close()
    rank = {r: i for i, r in enumerate(REASONS)}
    reason, individuals = {}, {}
    for key, group in flags.groupby(["recording_id", "frame"], sort=False):
        reason[key] = min(group["reason"], key=rank.__getitem__)
        named = sorted({str(i) for i in group["individual"] if isinstance(i, str)})
        individuals[key] = ",".join(named) or None
    keys = list(zip(frames["recording_id"], frames["frame"].astype(int), strict=True))
    return frames.assign(reason=[reason.get(key, "low_likelihood") for key in keys],
                         individuals=[individuals.get(key) for key in keys])
