"""Per-individual state vectors and processed tracking of a multi-animal recording.

Every individual goes through exactly the single-animal code
(:func:`~dlc_tracking.tracking.raw_state.raw_state_vector`,
:func:`~dlc_tracking.tracking.processed.process_tracking`,
:func:`~dlc_tracking.tracking.processed.process_body_parts`) in a loop. One difference,
on purpose: the arena boundary (and so the px -> cm calibration and the origin) is the
extent of *all* individuals' positions, so that every animal of a video shares one arena
frame and inter-animal distances are meaningful. With one individual the shared
boundary is its own, so the rows equal the single-animal pipeline's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from dlc_tracking.errors import ProcessingError
from dlc_tracking.tracking.arena import arena_boundary
from dlc_tracking.tracking.calibration import Calibration
from dlc_tracking.tracking.methods import StateVectorMethod
from dlc_tracking.tracking.params import ProcessingParams
from dlc_tracking.tracking.processed import (
    ProcessedTracking,
    body_parts_to_frame,
    process_body_parts,
    process_tracking,
)
from dlc_tracking.tracking.raw_state import RawStateVector, raw_state_vector

__all__ = ["IndividualTracking", "individual_frames", "process_individuals"]


@dataclass
class IndividualTracking:
    """One individual's tracking.

    Attributes
    ----------
    individual : str
        Name in the file (``mus1``).
    subject : str or None
        Subject id from session.yaml ``individuals:``; None = anonymous.
    raw : RawStateVector
    processed : ProcessedTracking
    parts : dict
        ``{body_part: (x_cm, y_cm)}`` processed body parts (arena frame, cm).
    """

    individual: str
    subject: str | None
    raw: RawStateVector
    processed: ProcessedTracking
    parts: dict[str, tuple[np.ndarray, np.ndarray]]


def process_individuals(
    method: StateVectorMethod,
    poses: np.ndarray,
    individuals: Sequence[str],
    body_parts: Sequence[str],
    time_s: np.ndarray,
    camera_view: str,
    frame_size: Sequence[float],
    params: ProcessingParams | None = None,
    subjects: Mapping[str, str | None] | None = None,
    *,
    arena_width_cm: float | None = None,
    arena_height_cm: float | None = None,
    pixels_per_cm: float | None = None,
    calibration: Calibration | None = None,
    source: str | None = None,
) -> dict[str, IndividualTracking]:
    """Raw state vector, processed tracking and processed body parts per individual.

    Parameters
    ----------
    method
        State-vector method, applied to each individual.
    poses
        ``(n_frames, n_individuals, n_parts, 3)`` image-pixel predictions.
    individuals
        Names of axis 1.
    body_parts
        Canonical names of axis 2.
    time_s, camera_view, frame_size, params, arena_width_cm, arena_height_cm,
    pixels_per_cm, calibration
        As for the single-animal functions.
    subjects
        individual -> subject id (None = anonymous), see
        :func:`dlc_tracking.social.subjects.map_subjects`.
    source
        Recording named in error messages.

    Returns
    -------
    dict
        individual -> :class:`IndividualTracking`, in the order of ``individuals``. An
        individual without a single position is kept, all missing.
    """
    poses = np.asarray(poses, np.float64)
    if poses.ndim != 4 or poses.shape[1] != len(individuals):
        raise ProcessingError(f"{source + ': ' if source else ''}poses have shape "
                              f"{poses.shape}; expected (n_frames, {len(individuals)}, "
                              "n_parts, 3).")
    subjects = dict(subjects or {})
    raws: dict[str, RawStateVector] = {}
    empty: list[str] = []
    for k, ind in enumerate(individuals):
        where = f"{source} individual {ind}" if source else f"individual {ind}"
        try:
            raws[ind] = raw_state_vector(method, poses[:, k], body_parts, time_s,
                                         camera_view, frame_size, source=where)
        except ProcessingError:
            if np.isfinite(poses[:, k, :, :2]).any():
                raise
            empty.append(ind)  # never present: kept below, all missing
    if not raws:
        raise ProcessingError(f"{source + ': ' if source else ''}no individual has a "
                              "position; check the predictions or the likelihood cutoff.")
    xs = np.concatenate([r.x_px for r in raws.values()])
    ys = np.concatenate([r.y_px for r in raws.values()])
    shared = arena_boundary(xs, ys, source=source)
    template = next(iter(raws.values()))
    for ind in empty:
        nan = np.full(template.n_frames, np.nan)
        raws[ind] = replace(template, x_px=nan, y_px=nan, head_angle_rad=nan,
                            speed_px_s=nan, valid=np.zeros(template.n_frames, bool))
    out: dict[str, IndividualTracking] = {}
    for k, ind in enumerate(individuals):
        raw = replace(raws[ind], boundary=shared)
        where = f"{source} individual {ind}" if source else f"individual {ind}"
        processed = process_tracking(raw, params, arena_width_cm, arena_height_cm,
                                     pixels_per_cm, calibration=calibration,
                                     head_perpendicular=method.kind == "two_ears",
                                     source=where)
        parts = process_body_parts(poses[:, k], body_parts, time_s, camera_view, frame_size,
                                   processed.calibration, params, method.likelihood_cutoff,
                                   source=where)
        out[ind] = IndividualTracking(ind, subjects.get(ind), raw, processed, parts)
    return out


def individual_frames(tracks: Mapping[str, IndividualTracking]
                      ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Long tables of all individuals: raw state vector, processed tracking and processed
    body parts, each the single-animal table with ``individual`` and ``subject`` first."""
    raw, processed, parts = [], [], []
    for t in tracks.values():
        for frames, df in ((raw, t.raw.to_frame()), (processed, t.processed.to_frame()),
                           (parts, body_parts_to_frame(t.parts, t.processed.time_s))):
            df.insert(0, "subject", t.subject)
            df.insert(0, "individual", t.individual)
            frames.append(df)
    return (pd.concat(raw, ignore_index=True), pd.concat(processed, ignore_index=True),
            pd.concat(parts, ignore_index=True))
