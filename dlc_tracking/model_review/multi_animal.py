"""``frame_quality`` of a multi-animal recording: the single-animal flags per individual,
plus its identity flags (docs/multi-animal.md, section 4; docs/models.md).

Each individual's track goes through :func:`~dlc_tracking.model_review.frame_quality.
frame_quality` like one animal's predictions (low likelihood, jumps, confident
mistakes); the identity events found by the multi-animal asset (``identity_events``:
identity swaps, two tracks on one animal) flag the frames and individuals they concern.
Rows are keyed by (recording, frame, individual), so ``models review`` picks a swap
frame like any other failure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from dlc_tracking.errors import WarehouseError
from dlc_tracking.model_review.frame_quality import FrameQualityParams, frame_quality
from dlc_tracking.tracking.predictions import from_long

__all__ = ["identity_flags", "multi_animal_frame_quality", "recording_multi_animal_quality"]

IDENTITY_FLAGS = ("identity_swap", "two_tracks_one_animal")
"""The identity flags a multi-animal frame_quality row carries (its optional columns)."""


def identity_flags(events: pd.DataFrame, individuals: Sequence[str], n_frames: int
                   ) -> dict[str, np.ndarray]:
    """Per-frame identity flags from a recording's ``identity_events`` rows.

    Parameters
    ----------
    events : pandas.DataFrame
        ``identity_events`` rows (``event, individual, other_individual, frame,
        stop_frame``).
    individuals : sequence of str
        The recording's individuals (columns of the result).
    n_frames : int
        Frames of the recording.

    Returns
    -------
    dict
        ``identity_swap`` and ``two_tracks_one_animal``, each ``(n_frames,
        n_individuals)`` bool: a swap flags both tracks at its frame (the first frame
        with the exchanged labels), a duplicate run both tracks over its frames (the same
        flags as :meth:`dlc_tracking.social.identity.IdentityReport.frame_flags`).
    """
    index = {str(ind): k for k, ind in enumerate(individuals)}
    out = {name: np.zeros((n_frames, len(index)), bool) for name in IDENTITY_FLAGS}
    for row in events.itertuples(index=False):
        if row.event not in IDENTITY_FLAGS:
            continue
        start = int(row.frame)
        stop = start + 1 if row.event == "identity_swap" else int(row.stop_frame)
        for ind in (row.individual, row.other_individual):
            if isinstance(ind, str) and ind in index:
                out[row.event][max(start, 0):min(stop, n_frames), index[ind]] = True
    return out


def multi_animal_frame_quality(recording_id: str, model_name: str, poses: np.ndarray,
                               individuals: Sequence[str], time_s: np.ndarray,
                               frame_size: tuple[int, int], params: FrameQualityParams,
                               flags: dict[str, np.ndarray],
                               body_parts: list[str] | None = None) -> pd.DataFrame:
    """The ``frame_quality`` rows of a multi-animal recording.

    Parameters
    ----------
    poses : np.ndarray
        ``(n_frames, n_individuals, n_parts, 3)`` image-pixel predictions (NaN = missing).
    individuals : sequence of str
        Names of axis 1.
    flags : dict
        From :func:`identity_flags`.
    recording_id, model_name, time_s, frame_size, params, body_parts
        As for :func:`~dlc_tracking.model_review.frame_quality.frame_quality`.

    Returns
    -------
    pandas.DataFrame
        One row per flagged frame x individual, ordered by frame then individual (file
        order), with the ``individual``, ``identity_swap`` and ``two_tracks_one_animal``
        columns.
    """
    parts = []
    for k, ind in enumerate(individuals):
        rows = frame_quality(recording_id, model_name, poses[:, k], time_s, frame_size,
                             params, body_parts=body_parts, individual=str(ind),
                             identity={name: flags[name][:, k] for name in IDENTITY_FLAGS})
        rows["_order"] = k
        parts.append(rows)
    out = pd.concat(parts, ignore_index=True)
    out = out.sort_values(["frame", "_order"], kind="stable").drop(columns="_order")
    return out.reset_index(drop=True)


def recording_multi_animal_quality(store, recording_id: str, params: FrameQualityParams,
                                   frame_size: tuple[int, int]) -> pd.DataFrame:
    """``frame_quality`` rows of a multi-animal recording from its warehouse rows
    (``individual_predictions``, ``identity_events``; written by the
    ``multi_animal_tracking`` asset).

    Raises
    ------
    WarehouseError
        The recording has no ``individual_predictions`` (the multi-animal asset did not
        write it).
    """
    if store.partition_path("individual_predictions", recording_id) is None:
        raise WarehouseError(
            f"recording {recording_id}: no individual_predictions in {store.root}, so its "
            "frames cannot be flagged; the multi_animal_tracking asset writes them (see "
            f"`dlc-platform status {recording_id}`, fix the cause and run `dlc-platform "
            f"reprocess {recording_id}`).")
    pred = store.read_partition("individual_predictions", recording_id)
    pred["individual"] = pred["individual"].astype(str)
    individuals = list(dict.fromkeys(pred["individual"]))
    model = str(pred["model_name"].iloc[0])
    stack, parts, time_s = [], None, None
    for ind in individuals:
        poses, found, time_s = from_long(pred[pred["individual"] == ind])
        if parts is not None and found != parts:
            poses = poses[:, [found.index(p) for p in parts]]
        parts = parts or found
        stack.append(poses)
    poses = np.stack(stack, axis=1)
    events = (store.read_partition("identity_events", recording_id)
              if store.partition_path("identity_events", recording_id) is not None
              else pd.DataFrame(columns=["event", "individual", "other_individual", "frame",
                                         "stop_frame"]))
    flags = identity_flags(events, individuals, poses.shape[0])
    return multi_animal_frame_quality(recording_id, model, poses, individuals, time_s,
                                      frame_size, params, flags, body_parts=parts)
