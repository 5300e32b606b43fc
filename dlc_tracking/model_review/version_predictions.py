"""Both versions' predictions of a recording, in the warehouse.

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
                         other_name)
