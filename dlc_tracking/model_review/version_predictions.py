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

from pathlib import Path

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


def compare_output(store, recording_id: str, model_name: str, output_dir: Path,
                   video: Path, scorer: str) -> Path | None:
    """The predictions file ``models compare`` wrote for this recording x version, when
    re-running the recording with that version may read it instead of running the model
    again (``models promote`` right after ``compare``), else None.

    Only when ``model_predictions`` holds the version's rows with source 'compare' and
    the file DLC wrote (``<output_dir>/<video stem><scorer>.h5``) is newer than the video:
    a video replaced since the comparison runs the model again.
    """
    path = store.partition_path("model_predictions", version_key(recording_id, model_name))
    if path is None:
        return None
    if set(pd.read_parquet(path, columns=["source"])["source"].unique()) != {"compare"}:
        return None
    h5 = Path(output_dir) / f"{Path(video).stem}{scorer}.h5"
    try:
        if h5.stat().st_mtime <= Path(video).stat().st_mtime:
            return None
    except OSError:
        return None
    return h5


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


def model_of_scorer(registry, scorer: str):
    """The registered model whose outputs carry ``scorer`` (DLC's legacy ``DeepCut_``
    spelling too), or None."""
    for model in registry.models.values():
        if scorer in (model.scorer, model.scorer.replace("DLC", "DeepCut", 1)):
            return model
    return None


def keep_alternative_outputs(store, registry, recording_id: str, folder, current_model: str,
                             alternatives: dict[str, list[str]], time_s: np.ndarray,
                             frame_size: tuple[int, int], tolerance: int
                             ) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Keep other models' outputs of a recording's video (found beside the assigned
    model's in its ``dlc_<video stem>/`` folder) in ``model_predictions``, source
    'manual', one partition per recording x model, so ``models compare`` and
    ``frame_quality`` use them as that model's predictions of the recording.

    Parameters
    ----------
    alternatives : dict
        ``{scorer: predictions files}`` (:class:`~dlc_tracking.tracking.predictions.
        ManualOutputs`.alternatives).
    time_s : np.ndarray
        ``(n_frames,)`` the recording's frame times (the outputs are fitted to them).
    frame_size : tuple of int
        (width, height) of the video in px.
    tolerance : int
        The recording's ``frame_count_tolerance``.

    Returns
    -------
    kept : dict
        ``{model name: files}`` of the outputs kept.
    not_kept : dict
        ``{scorer: why}``: no registered model has the scorer, or the files do not fit the
        model or the video. Never an error: the recording's own predictions are fine.
    """
    from dlc_tracking.errors import DLCPlatformError
    from dlc_tracking.io.dlc_files import load_output_folder

    kept, not_kept = {}, {}
    for scorer, files in sorted(alternatives.items()):
        model = model_of_scorer(registry, scorer)
        if model is None:
            not_kept[scorer] = (
                f"no registered model writes scorer {scorer!r}; register it (`dlc-platform "
                f"models add --name NAME --from-outputs {files[0]}`) to keep these outputs "
                "as that model's predictions of the recording")
            continue
        if model.name == current_model:
            continue
        where = f"{files[0]} (recording {recording_id}, model {model.name})"
        try:
            loaded = load_output_folder(folder, model.scorer, skip_other_scorers=True)
            parts = preds.map_body_parts(list(loaded.body_parts), model.to_canonical(), where)
            poses, _ = preds.fit_frame_count(loaded.poses, len(time_s), tolerance, where)
        except DLCPlatformError as exc:
            not_kept[scorer] = str(exc)
            continue
        outside = preds.outside_frame(poses, *frame_size)
        df = preds.to_long(recording_id, model.name, poses, parts, time_s,
                           outside).assign(source="manual")
        store.write_partition("model_predictions", version_key(recording_id, model.name), df)
        kept[model.name] = list(files)
    return kept, not_kept


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
                            frame_size: tuple[int, int], compare_with: str | None = None
                            ) -> pd.DataFrame:
    """``frame_quality`` rows of a recording's current predictions, compared with
    ``compare_with``'s predictions kept in ``model_predictions`` (default: the newest
    other version kept, if any: one another model made anywhere, inferred by ``models
    compare``, kept by a promotion, or found beside the outputs on disk)."""
    model, poses, parts, time_s = current_predictions(store, recording_id)
    other = other_name = None
    others = [m for m in stored_versions(store, recording_id) if m != model]
    if compare_with is not None and compare_with in others:
        others = [compare_with]
    if others:
        other_name = others[-1]
        found = version_predictions(store, recording_id, other_name)
        if found is not None:
            other = align_poses(poses, parts, found[0], found[1])
    return frame_quality(recording_id, model, poses, time_s, frame_size, params, other,
                         other_name, body_parts=list(parts))
