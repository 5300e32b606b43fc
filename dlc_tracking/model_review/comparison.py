"""Compare two models' predictions of the same recordings.

Stored predictions are used wherever both models have them (a recording's current ones,
the ones kept in ``model_predictions``: an earlier comparison, a promotion, or another
model's outputs found beside the current ones on disk), for ingest-only models too; a
model runs only where its predictions are missing and it can run here. What a model
predicted now goes to ``model_predictions`` (the recording's current predictions stay
as they are until a promotion), the comparison to ``model_agreement``, and the current
model's ``frame_quality`` rows of those recordings gain the disagreement flags, so
``models review`` sees where the two differ.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dlc_tracking.errors import DLCPlatformError
from dlc_tracking.model_review.agreement import agreement_rows
from dlc_tracking.model_review.errors import ReviewError
from dlc_tracking.model_review.frame_quality import (
    DEFAULT_DISAGREEMENT_PX,
    DEFAULT_LIKELIHOOD_CUTOFF,
    FrameQualityParams,
    align_poses,
)
from dlc_tracking.model_review.selection import video_problem
from dlc_tracking.model_review.version_predictions import (
    recording_frame_quality,
    version_key,
    version_predictions,
)
from dlc_tracking.registry.registry_file import ModelEntry, Registry
from dlc_tracking.tracking import predictions as preds

InferFn = Callable[[ModelEntry, Path, str], Path]
"""``infer(model, video, recording_id) -> DLC .h5`` (the platform's inference resource)."""

FRAME_TOLERANCE = 5


def agreement_key(old: str, new: str) -> str:
    """Partition key of a comparison in ``model_agreement``."""
    return f"{old}__vs__{new}"


@dataclass
class Comparison:
    """Result of :func:`compare_models`.

    Attributes
    ----------
    agreement : pandas.DataFrame
        The ``model_agreement`` rows of the recordings compared now.
    inferred : list of str
        Recordings the new version ran on now (others reused kept predictions).
    skipped : dict
        recording_id -> why it was not compared.
    """

    agreement: pd.DataFrame
    inferred: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def sample_recordings(recording_ids: Sequence[str], n: int | None) -> list[str]:
    """``n`` of the recordings, the same ones every time (ordered by a hash of the id,
    so the sample does not follow subjects or dates); all when ``n`` is None."""
    ids = sorted(set(recording_ids))
    if n is None or n >= len(ids):
        return ids
    return sorted(sorted(ids, key=lambda r: hashlib.sha1(r.encode()).hexdigest())[:n])


def old_recordings(store, old: str) -> pd.DataFrame:
    """Recordings processed with ``old`` now (``recordings.model_name``)."""
    try:
        return store.query("SELECT recording_id, video_path, has_video, n_frames, width_px, "
                           "height_px, method_name, model_name FROM recordings WHERE "
                           "model_name = ? AND cameras IS NULL "  # not multi-camera takes
                           "ORDER BY recording_id", [old])
    except DLCPlatformError as exc:
        raise ReviewError(f"no recordings in the warehouse {store.root} ({exc}).") from exc


def likelihood_cutoff(registry: Registry, method_name) -> float:
    """The likelihood cutoff of a recording's method (the default when it has none)."""
    method = registry.methods.get(method_name) if isinstance(method_name, str) else None
    return float(method.likelihood_cutoff) if method is not None else DEFAULT_LIKELIHOOD_CUTOFF


def infer_version(store, model: ModelEntry, recording_id: str, video: Path,
                  time_s: np.ndarray, size: tuple[int, int], infer: InferFn) -> pd.DataFrame:
    """Run ``model`` on a recording's video and keep its predictions in
    ``model_predictions`` (source 'compare'); returns the long rows written."""
    from dlc_tracking.io.dlc_files import read_predictions

    h5 = infer(model, video, recording_id)
    loaded = read_predictions(h5)
    where = f"{h5} (recording {recording_id}, model {model.name})"
    parts = preds.map_body_parts(list(loaded.body_parts), model.to_canonical(), where)
    poses, _ = preds.fit_frame_count(loaded.poses, len(time_s), FRAME_TOLERANCE, where)
    outside = preds.outside_frame(poses, *size)
    df = preds.to_long(recording_id, model.name, poses, parts, time_s,
                       outside).assign(source="compare")
    store.write_partition("model_predictions", version_key(recording_id, model.name), df)
    return df


def kept_recordings(store, model: str) -> set[str]:
    """Recordings with ``model``'s predictions kept in ``model_predictions``."""
    suffix = f"__{model}"
    return {k[: -len(suffix)] for k in store.partitions("model_predictions")
            if k.endswith(suffix)}


def cannot_run(entry: ModelEntry) -> str | None:
    """Why a model cannot run inference here (ingest-only, files missing), or None."""
    try:
        entry.check_available()
    except DLCPlatformError as exc:
        return str(exc)
    return None


# Multi-camera takes (recordings.cameras) are left out: their 2D rows are per camera and
# one video per take cannot be compared (docs/3d.md).
_COLUMNS = ("SELECT recording_id, video_path, has_video, n_frames, width_px, height_px, "
            "method_name, model_name FROM recordings WHERE cameras IS NULL")


@dataclass
class ComparisonPlan:
    """Which recordings :func:`compare_models` compares, and which it cannot.

    Attributes
    ----------
    table : pandas.DataFrame
        ``recordings`` rows to compare (both versions' predictions exist, or the missing
        one can run on the video).
    skipped : dict
        recording_id -> why it cannot be compared (named recordings only).
    both : int
        Recordings (of all candidates) with both versions' predictions stored.
    unreachable : int
        Candidates left out because the missing version cannot run here.
    """

    table: pd.DataFrame
    skipped: dict[str, str] = field(default_factory=dict)
    both: int = 0
    unreachable: int = 0


def plan_comparison(store, registry: Registry, old: str, new: str, *,
                    recordings: Sequence[str] | None = None, sample: int | None = None
                    ) -> ComparisonPlan:
    """The recordings to compare: those with predictions by ``old`` or ``new`` (current or
    kept in ``model_predictions``, wherever they were made) where the other version's
    predictions exist too or that version can run here.

    With ``sample``, recordings holding both versions' predictions come first (no
    inference), the rest of the sample from those the missing version can run on.

    Raises
    ------
    ReviewError
        Unknown or identical versions; a named recording with neither version's
        predictions; nothing comparable (with the reason).
    """
    if old == new:
        raise ReviewError(f"compare needs two different versions (got {old!r} twice).")
    entries = {old: registry.model(old), new: registry.model(new)}
    why_not = {m: cannot_run(e) for m, e in entries.items()}
    try:
        table = store.query(f"{_COLUMNS} ORDER BY recording_id")
    except DLCPlatformError as exc:
        raise ReviewError(f"no recordings in the warehouse {store.root} ({exc}).") from exc
    kept = {m: kept_recordings(store, m) for m in entries}
    has = {m: set(table.loc[table["model_name"] == m, "recording_id"]) | kept[m]
           for m in entries}
    both = has[old] & has[new]
    runnable = {rid for m, other in ((new, old), (old, new)) if why_not[m] is None
                for rid in has[other] - has[m]}
    candidates = has[old] | has[new]
    skipped: dict[str, str] = {}
    if recordings:
        wanted = list(dict.fromkeys(recordings))
        for rid in wanted:
            if rid not in candidates:
                raise ReviewError(
                    f"recording {rid!r} has no predictions by {old!r} nor by {new!r} in "
                    f"{store.root}; `dlc-platform query \"SELECT recording_id FROM "
                    f"recordings WHERE model_name = '{old}'\"` lists the recordings of {old}.")
            if rid not in both and rid not in runnable:
                missing = new if rid in has[old] else old
                skipped[rid] = (f"no predictions by {missing!r} stored for it, and "
                                f"{missing!r} cannot run here: {why_not[missing]}")
        chosen = [r for r in wanted if r not in skipped]
    else:
        if not candidates:
            raise ReviewError(f"no recording in {store.root} has predictions by {old!r} or "
                              f"{new!r}; nothing to compare.")
        n = None if sample is None else max(sample - len(both), 0)
        chosen = sample_recordings(sorted(both), sample) + (
            sample_recordings(sorted(runnable), n) if n != 0 else [])
        if not chosen:
            lacking = new if why_not[new] else old
            raise ReviewError(
                f"no recording has predictions by both {old!r} and {new!r}, and "
                f"{lacking!r} cannot run here ({why_not[lacking]}). Put {lacking}'s outputs "
                "of those videos in their sessions' dlc_<video stem>/ folders (beside the "
                "current ones) and re-run the recordings, or compare with a model that can "
                "run.")
    rows = table[table["recording_id"].isin(chosen)]
    return ComparisonPlan(rows, skipped, len(both), len(candidates - both - runnable))


def _compare_one(store, registry: Registry, rec, old: str, new: str,
                 entries: dict[str, ModelEntry], infer: InferFn, threshold_px: float,
                 rows: list, inferred: list) -> str | None:
    """Compare one recording (appends to ``rows`` / ``inferred``); why not, or None."""
    rid = rec.recording_id
    found = {m: version_predictions(store, rid, m) for m in (old, new)}
    for missing, other in ((new, old), (old, new)):
        if found[missing] is not None:
            continue
        if found[other] is None:
            return f"no predictions by {old!r} nor {new!r} stored for it"
        problem = cannot_run(entries[missing]) or video_problem(rec.video_path, rec.has_video)
        if problem is not None:
            return problem
        df = infer_version(store, entries[missing], rid, Path(rec.video_path),
                           found[other][2], (int(rec.width_px), int(rec.height_px)), infer)
        found[missing] = preds.from_long(df)
        inferred.append(rid)
    old_poses, old_parts, _ = found[old]
    new_poses = align_poses(old_poses, old_parts, found[new][0], found[new][1])
    cutoff = likelihood_cutoff(registry, rec.method_name)
    rows.append(agreement_rows(rid, old, new, old_parts, old_poses, new_poses,
                               threshold_px, cutoff))
    if rec.model_name in (old, new):  # the current version's flags gain the disagreement
        params = FrameQualityParams(likelihood_cutoff=cutoff, disagreement_px=threshold_px)
        store.write_partition("frame_quality", rid, recording_frame_quality(
            store, rid, params, (int(rec.width_px), int(rec.height_px)),
            compare_with=new if rec.model_name == old else old))
    return None


def compare_models(store, registry: Registry, old: str, new: str, infer: InferFn, *,
                   recordings: Sequence[str] | None = None, sample: int | None = None,
                   threshold_px: float = DEFAULT_DISAGREEMENT_PX,
                   progress: Callable[[str], None] | None = None) -> Comparison:
    """Compare two models' predictions of the same recordings and write
    ``model_agreement``.

    Existing predictions are used wherever both versions have them (current ones, kept
    ones, outputs made elsewhere and ingested, of ingest-only models too); a version runs
    (``infer``) only where its predictions are missing and it can run here.

    Parameters
    ----------
    store : dlc_tracking.warehouse.Warehouse
        The warehouse.
    registry : Registry
        Both versions must be registered.
    old, new : str
        Model versions.
    infer : InferFn
        Runs a model on a video (the platform's inference resource).
    recordings : sequence of str, optional
        Exactly these recordings (each must have predictions by ``old`` or ``new``).
    sample : int, optional
        Otherwise this many recordings (see :func:`plan_comparison`; default: all).
    threshold_px : float
        Distance counted as a disagreement.
    progress : callable, optional
        Called with each recording id when it is done.

    A recording that fails (its video unreadable, inference failing on it, ...) is
    skipped with the reason in ``Comparison.skipped``; the others are compared.

    Raises
    ------
    ReviewError
        See :func:`plan_comparison`.
    """
    plan = plan_comparison(store, registry, old, new, recordings=recordings, sample=sample)
    entries = {old: registry.model(old), new: registry.model(new)}
    rows, inferred, skipped = [], [], dict(plan.skipped)
    for rec in plan.table.itertuples(index=False):
        rid = rec.recording_id
        try:
            problem = _compare_one(store, registry, rec, old, new, entries, infer,
                                   threshold_px, rows, inferred)
        except (DLCPlatformError, OSError, ValueError) as exc:
            # One bad recording (a broken video, files of another model) must not cost
            # the others their comparison: skipped with the reason, the rest go on.
            problem = f"failed: {exc}"
        if problem is not None:
            skipped[rid] = problem
        if progress:
            progress(rid)
    agreement = (pd.concat(rows, ignore_index=True) if rows else pd.DataFrame())
    if rows:
        key = agreement_key(old, new)
        merged = agreement
        if store.partition_path("model_agreement", key) is not None:
            before = store.read_partition("model_agreement", key)
            before = before[~before["recording_id"].isin(agreement["recording_id"])]
            merged = pd.concat([before, agreement], ignore_index=True)
        store.write_partition("model_agreement", key, merged)
    return Comparison(agreement, inferred, skipped)
