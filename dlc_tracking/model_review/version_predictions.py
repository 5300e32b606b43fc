"""Both versions' rows of a recording, in the warehouse.

``predictions`` holds each recording's CURRENT predictions (partition = recording id;
re-running a recording with another model replaces them). ``model_predictions`` keeps
the others, one partition per recording x version (``<recording_id>__<model_name>``):
the new version's predictions on the sample ``models compare`` ran, and the old
version's predictions that ``models promote`` copies before the backfill replaces
them. Nothing a version predicted is lost; query both with::

    SELECT * FROM predictions WHERE recording_id = ?
    UNION ALL BY NAME
    SELECT * EXCLUDE (source) FROM model_predictions WHERE recording_id = ?
      AND model_name NOT IN (SELECT model_name FROM predictions WHERE recording_id = ?)

(a version compared before it was promoted is in both: its kept copy stays as written).

The processed numbers of a replaced version are kept the same way by ``models promote``:
``model_processed_tracking`` (frames) and ``model_recording_summaries`` (distance, speed,
coverage, ...), keyed ``<recording_id>__<model_name>``; :data:`SUMMARY_VERSIONS_SQL`
gives every version's summary of each recording, the current one marked.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dlc_tracking.model_review.frame_quality import (
    FrameQualityParams,
    align_poses,
    frame_quality,
)
from dlc_tracking.tracking import predictions as preds

SEPARATOR = "__"


def version_key(recording_id: str, model_name: str) -> str:
    """Partition key of a recording x version in ``model_predictions``."""
    return f"{recording_id}{SEPARATOR}{model_name}"


def stored_versions(store, recording_id: str) -> dict[str, str]:
    """``{model_name: partition key}`` of a recording's other versions, oldest first."""
    prefix = f"{recording_id}{SEPARATOR}"
    keys = [k for k in store.partitions("model_predictions") if k.startswith(prefix)]
    paths = {k: store.partition_path("model_predictions", k) for k in keys}
    keys.sort(key=lambda k: paths[k].name.split("@", 1)[1] if paths[k] else "")
    return {k[len(prefix):]: k for k in keys}


def current_predictions(store, recording_id: str) -> tuple[str, np.ndarray, list[str],
                                                           np.ndarray]:
    """A recording's current predictions: (model, poses, body parts, time_s)."""
    df = store.read_partition("predictions", recording_id)
    poses, parts, time_s = preds.from_long(df)
    return str(df["model_name"].iloc[0]), poses, parts, time_s


def version_predictions(store, recording_id: str, model_name: str
                        ) -> tuple[np.ndarray, list[str], np.ndarray] | None:
    """A version's stored predictions of a recording (current or kept), or None."""
    if store.partition_path("predictions", recording_id) is not None:
        current, poses, parts, time_s = current_predictions(store, recording_id)
        if current == model_name:
            return poses, parts, time_s
    key = version_key(recording_id, model_name)
    if store.partition_path("model_predictions", key) is None:
        return None
    df = store.read_partition("model_predictions", key)
    return preds.from_long(df.drop(columns=["source"]))


def keep_current_predictions(store, recording_id: str) -> str | None:
    """Copy a recording's current predictions into ``model_predictions`` (source
    'promote') unless that version is kept already; returns the version kept."""
    if store.partition_path("predictions", recording_id) is None:
        return None
    df = store.read_partition("predictions", recording_id)
    model = str(df["model_name"].iloc[0])
    key = version_key(recording_id, model)
    if store.partition_path("model_predictions", key) is None:
        store.write_partition("model_predictions", key, df.assign(source="promote"))
    return model


KEPT_TABLES = {"processed_tracking": "model_processed_tracking",
               "recording_summaries": "model_recording_summaries"}
"""Current table -> the table keeping a replaced version's rows (besides predictions)."""

SUMMARY_VERSIONS_SQL = """
SELECT *, true AS current FROM recording_summary
UNION ALL BY NAME
SELECT r.subject, r.session, k.recording_id, k.model_name, k.method_name, k.params_name,
    k.n_frames, k.duration_s, k.distance_cm, k.mean_speed_cm_s, k.tracked_fraction,
    k.interpolated_fraction, k.coverage, false AS current
FROM model_recording_summaries k LEFT JOIN recordings r ON r.recording_id = k.recording_id
WHERE k.n_frames > 0 AND NOT EXISTS (
    SELECT 1 FROM recording_summary c
    WHERE c.recording_id = k.recording_id AND c.model_name = k.model_name)
"""
"""Every version's summary of each recording: recording_summary's columns plus
``current`` (true: the recording's current numbers; false: a replaced version's, kept by
``models promote``). Needs model_recording_summaries (written by the first promotion)."""


def keep_current_version(store, recording_id: str) -> str | None:
    """Keep a recording's current rows before a re-run with another version replaces
    them: predictions into ``model_predictions`` (:func:`keep_current_predictions`),
    processed_tracking frames and recording_summaries rows into
    ``model_processed_tracking`` / ``model_recording_summaries``, one partition per
    recording x model of the rows; versions kept already are left as written. Returns
    the version of the predictions kept (None when the recording has none)."""
    model = keep_current_predictions(store, recording_id)
    packed = {t: recording_id in store.pack_index(t) for t in KEPT_TABLES}
    for table, kept_table in KEPT_TABLES.items():
        if store.partition_path(table, recording_id) is None and not packed[table]:
            continue
        df = store.read_partition(table, recording_id)
        for name, rows in df.groupby("model_name", sort=True):
            key = version_key(recording_id, str(name))
            if store.partition_path(kept_table, key) is None:
                store.write_partition(kept_table, key, rows.reset_index(drop=True))
    return model


def summary_versions(store, recording_id: str | None = None) -> pd.DataFrame:
    """:data:`SUMMARY_VERSIONS_SQL` (of one recording, if given), by recording and
    current version first; only the current summaries while nothing was promoted."""
    sql = SUMMARY_VERSIONS_SQL
    if not store.partitions("model_recording_summaries"):
        sql = "SELECT *, true AS current FROM recording_summary"
    where = " WHERE recording_id = ?" if recording_id is not None else ""
    return store.query(f"SELECT * FROM ({sql}){where} ORDER BY recording_id, current DESC, "
                       "model_name", [recording_id] if recording_id is not None else None)


def recording_frame_quality(store, recording_id: str, params: FrameQualityParams,
                            frame_size: tuple[int, int]) -> pd.DataFrame:
    """``frame_quality`` rows of a recording's current predictions, compared with the
    newest other version kept in ``model_predictions`` (if any)."""
    model, poses, parts, time_s = current_predictions(store, recording_id)
    other = other_name = None
    others = [m for m in stored_versions(store, recording_id) if m != model]
    if others:
        other_name = others[-1]
        found = version_predictions(store, recording_id, other_name)
        if found is not None:
            other = align_poses(poses, parts, found[0], found[1])
    return frame_quality(recording_id, model, poses, time_s, frame_size, params, other,
                         other_name, body_parts=list(parts))
