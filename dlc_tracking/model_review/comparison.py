"""Run a new version on a sample of an old version's recordings and compare them.

The new version's predictions go to ``model_predictions`` (the recording's current
predictions stay those of the old version until a promotion), the comparison to
``model_agreement``, and the old version's ``frame_quality`` rows of those recordings
gain the disagreement flags, so ``models review OLD`` sees where the two differ.
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
                           "model_name = ? "
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


def _compare_one(store, registry: Registry, rec, old: str, new: str, new_entry: ModelEntry,
                 infer: InferFn, threshold_px: float, rows: list, inferred: list
                 ) -> str | None:
    """Compare one recording (appends to ``rows`` / ``inferred``); why not, or None."""
    rid = rec.recording_id
    old_found = version_predictions(store, rid, old)
    if old_found is None:
        return f"no predictions by {old!r} kept for it"
    old_poses, old_parts, time_s = old_found
    new_found = version_predictions(store, rid, new)
    if new_found is None:
        df = infer_version(store, new_entry, rid, Path(rec.video_path), time_s,
                           (int(rec.width_px), int(rec.height_px)), infer)
        new_found = preds.from_long(df)
        inferred.append(rid)
    new_poses = align_poses(old_poses, old_parts, new_found[0], new_found[1])
    cutoff = likelihood_cutoff(registry, rec.method_name)
    rows.append(agreement_rows(rid, old, new, old_parts, old_poses, new_poses,
                               threshold_px, cutoff))
    if rec.model_name == old:  # the old version's flags gain the disagreement with the new
        params = FrameQualityParams(likelihood_cutoff=cutoff, disagreement_px=threshold_px)
        store.write_partition("frame_quality", rid, recording_frame_quality(
            store, rid, params, (int(rec.width_px), int(rec.height_px))))
    return None


def compare_models(store, registry: Registry, old: str, new: str, infer: InferFn, *,
                   recordings: Sequence[str] | None = None, sample: int | None = None,
                   threshold_px: float = DEFAULT_DISAGREEMENT_PX,
                   progress: Callable[[str], None] | None = None) -> Comparison:
    """Run ``new`` on a sample of ``old``'s recordings and write ``model_agreement``.

    Parameters
    ----------
    store : dlc_tracking.warehouse.Warehouse
        The warehouse.
    registry : Registry
        Both versions must be registered; ``new`` must be able to run here.
    old, new : str
        Model versions.
    infer : InferFn
        Runs a model on a video (the platform's inference resource).
    recordings : sequence of str, optional
        Exactly these recordings (each must have predictions by ``old``).
    sample : int, optional
        Otherwise this many of ``old``'s recordings (default: all).
    threshold_px : float
        Distance counted as a disagreement.
    progress : callable, optional
        Called with each recording id when it is done.

    A recording that fails (its video unreadable, inference failing on it, ...) is
    skipped with the reason in ``Comparison.skipped``; the others are compared.

    Raises
    ------
    ReviewError
        Unknown or identical versions, no recordings of ``old``, a named recording without
        ``old``'s predictions.
    """
    if old == new:
        raise ReviewError(f"compare needs two different versions (got {old!r} twice).")
    registry.model(old)
    new_entry = registry.model(new)
    new_entry.check_available()  # fail before anything runs: files missing, ingest-only
    table = old_recordings(store, old)
    if recordings:
        known = set(table["recording_id"])
        for rid in recordings:
            if rid not in known and version_predictions(store, rid, old) is None:
                raise ReviewError(
                    f"recording {rid!r} has no predictions by {old!r} in {store.root}; "
                    f"`dlc-platform query \"SELECT recording_id FROM recordings WHERE "
                    f"model_name = '{old}'\"` lists the recordings of {old}.")
        wanted = list(dict.fromkeys(recordings))
        extra = store.query("SELECT recording_id, video_path, has_video, n_frames, width_px, "
                            "height_px, method_name, model_name FROM recordings") \
            if set(wanted) - known \
            else table
        table = pd.concat([table, extra]).drop_duplicates("recording_id")
        table = table[table["recording_id"].isin(wanted)]
    else:
        if table.empty:
            raise ReviewError(f"no recording in {store.root} is processed with {old!r} now; "
                              "nothing to compare.")
        table = table[table["recording_id"].isin(sample_recordings(table["recording_id"],
                                                                   sample))]
    rows, inferred, skipped = [], [], {}
    for rec in table.itertuples(index=False):
        rid = rec.recording_id
        try:
            problem = video_problem(rec.video_path, rec.has_video)
            if problem is None:
                problem = _compare_one(store, registry, rec, old, new, new_entry, infer,
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
