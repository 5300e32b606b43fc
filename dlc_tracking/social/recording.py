"""One multi-animal recording from its maDLC outputs to every table, in one call.

This is what the Dagster asset of a multi-animal recording runs (see
docs/multi-animal.md): it reads the outputs in the session's ``dlc_<video stem>/``
folder (tracked ``.h5``/``.csv``, else the pickles, re-tracked with DeepLabCut's own
functions), checks them against the registered model and the session's
``individuals:`` mapping, and returns the rows of the multi-animal tables
(:data:`dlc_tracking.warehouse.multi_animal_tables.MULTI_ANIMAL_TABLES`). Nothing is
written; every check runs before any table is built, so a refusal leaves nothing half
done.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlc_tracking.errors import DLCFileError
from dlc_tracking.io.madlc_files import (
    MultiAnimalPredictions,
    find_madlc_outputs,
    read_madlc,
    read_madlc_pickles,
)
from dlc_tracking.social.identity import IdentityParams, check_identities
from dlc_tracking.social.individuals import individual_frames, process_individuals
from dlc_tracking.social.measures import SocialParams, social_frames, social_summary
from dlc_tracking.social.subjects import (
    check_individuals_match,
    check_method_for_multi_animal,
    map_subjects,
)
from dlc_tracking.tracking.methods import StateVectorMethod
from dlc_tracking.tracking.params import ProcessingParams
from dlc_tracking.tracking.predictions import fit_frame_count, map_body_parts

__all__ = ["MultiAnimalResult", "identity_event_rows", "load_multi_animal_outputs",
           "madlc_outputs_present", "process_multi_animal_recording"]

SOURCES = ("manual", "inference")
"""Where a recording's maDLC outputs came from: the session's ``dlc_<video stem>/``
folder (``manual``) or the platform's inference in its work area (``inference``)."""


@dataclass
class MultiAnimalResult:
    """Rows of every multi-animal table of one recording, and figures for metadata.

    Attributes
    ----------
    tables : dict
        Table name -> DataFrame (``individual_predictions``, ``unique_body_parts``,
        ``individual_state_vectors``, ``individual_tracking``, ``individual_body_parts``,
        ``identity_events``, ``social``, ``social_summary``, ``multi_animal_sources``).
    subjects : dict
        individual -> subject id or None.
    identity : dict
        :meth:`~dlc_tracking.social.identity.IdentityReport.summary`.
    notes : list[str]
        What the readers did or tolerated.
    files : list[str]
        Files read.
    """

    tables: dict[str, pd.DataFrame]
    subjects: dict[str, str | None]
    identity: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def madlc_outputs_present(folder: Path) -> bool:
    """Whether ``folder`` holds maDLC outputs to read (a tracked ``.h5``/``.csv``, any
    ``.h5``/``.csv`` such as a prefix-encoded file, or DeepLabCut's pickles)."""
    folder = Path(folder)
    if not folder.is_dir():
        return False
    return bool(find_madlc_outputs(folder)) or any(
        p.suffix.lower() in (".h5", ".csv") and not p.name.startswith(".")
        for p in folder.iterdir())


def load_multi_animal_outputs(folder: Path, layout: Mapping[str, Any], recording_id: str,
                              prefixes: Mapping[str, str] | None = None,
                              ) -> MultiAnimalPredictions:
    """The maDLC predictions of a recording: the tracked file, else the pickles."""
    found = find_madlc_outputs(folder)
    if "tracks" in found:
        return read_madlc(found["tracks"], prefix_individuals=prefixes,
                          recording=recording_id)
    plain = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".h5", ".csv")
                   and not p.name.startswith("."))
    if plain and prefixes:  # prefix-encoded files carry no tracker suffix
        return read_madlc(plain[0], prefix_individuals=prefixes, recording=recording_id)
    if plain:
        return read_madlc(plain[0], recording=recording_id)
    return read_madlc_pickles(folder, layout["individuals"],
                              body_parts=layout["multianimalbodyparts"],
                              unique_body_parts=layout.get("uniquebodyparts") or (),
                              track_method=layout.get("default_track_method") or "ellipse",
                              recording=recording_id)


def process_multi_animal_recording(
    folder: Path, *, recording_id: str, model_name: str, layout: Mapping[str, Any],
    to_canonical: Mapping[str, str], method: StateVectorMethod, time_s: np.ndarray,
    camera_view: str, frame_size: tuple[float, float],
    individuals: Mapping[str, str] | None = None,
    individual_prefixes: Mapping[str, str] | None = None,
    params: ProcessingParams | None = None, social: SocialParams | None = None,
    identity: IdentityParams | None = None, arena_width_cm: float | None = None,
    arena_height_cm: float | None = None, pixels_per_cm: float | None = None,
    source: str = "manual",
) -> MultiAnimalResult:
    """Every multi-animal table of one recording.

    Parameters
    ----------
    folder
        The session's ``dlc_<video stem>/`` folder.
    recording_id, model_name
        Keys of the rows.
    layout
        The registered model's ``multi_animal`` layout (individuals, body parts, unique
        body parts, tracker).
    to_canonical
        DLC body-part name -> canonical name (the registry's vocabulary).
    method
        State-vector method, applied to each individual.
    time_s
        ``(n_video_frames,)`` frame times.
    camera_view, frame_size
        From the session and the video.
    individuals, individual_prefixes
        session.yaml's ``individuals:`` and ``individual_prefixes:``.
    params, social, identity
        Processing, social and identity parameters.
    arena_width_cm, arena_height_cm, pixels_per_cm
        Calibration, as for the single-animal pipeline.
    source
        ``manual`` (``folder`` is the session's ``dlc_<video stem>/``) or ``inference``
        (the platform ran DeepLabCut's multi-animal path into ``folder``); recorded in
        ``multi_animal_sources``.

    Raises
    ------
    DLCFileError
        Outputs missing or of another model (individuals, body parts), a mapping naming a
        track the file lacks or two tracks on one subject, missing unique body parts.
    ProcessingError
        A state-vector method that cannot apply per individual.
    """
    where = f"{folder} (recording {recording_id})"
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    params = params or ProcessingParams()
    social = social or SocialParams()
    pred = load_multi_animal_outputs(folder, layout, recording_id, individual_prefixes)
    check_individuals_match(pred.individuals, layout["individuals"], where)
    parts = map_body_parts(pred.body_parts, {k: v for k, v in to_canonical.items()
                                             if k in layout["multianimalbodyparts"]}, where)
    missing_unique = [u for u in layout.get("uniquebodyparts") or []
                      if u not in pred.unique_body_parts]
    if missing_unique:
        raise DLCFileError(
            f"{where}: the model's unique body parts {missing_unique} are missing from "
            f"{pred.sources[0].name if pred.sources else 'the outputs'} (it has "
            f"{pred.unique_body_parts}). The file was cut or comes from another model: "
            "re-run DeepLabCut's analyze_videos with this model.")
    check_method_for_multi_animal(method.name, method.body_parts, parts,
                                  [to_canonical.get(u, u) for u in pred.unique_body_parts],
                                  where)
    subjects = map_subjects(pred.individuals, individuals, where)
    n = len(time_s)
    notes = list(pred.notes)
    tolerance = params.frame_count_tolerance
    analysed = _analysed_frames(folder)
    if pred.n_frames < n and analysed == n:
        # DeepLabCut's stitcher ends the table at the last frame with a track; its
        # _meta.pickle says the whole video was analysed, so the rest is "no animal".
        notes.append(f"tracks end at frame {pred.n_frames - 1} of {n}: the last "
                     f"{n - pred.n_frames} frames have no animal (DLC's stitcher drops them)")
        tolerance = n - pred.n_frames
    flat = pred.poses.reshape(pred.n_frames, -1, 3)
    flat, _ = fit_frame_count(flat, n, tolerance, where)
    poses = flat.reshape(n, len(pred.individuals), len(parts), 3)
    unique, _ = fit_frame_count(pred.unique_poses, n, tolerance, where)

    # --- every check passed: build the tables
    report = check_identities(poses, pred.individuals, identity, source=where)
    tracks = process_individuals(method, poses, pred.individuals, parts, time_s, camera_view,
                                 frame_size, params, subjects, arena_width_cm=arena_width_cm,
                                 arena_height_cm=arena_height_cm, pixels_per_cm=pixels_per_cm,
                                 source=f"recording {recording_id}")
    raw, processed, body = individual_frames(tracks)
    pred_view = MultiAnimalPredictions(pred.scorer, pred.individuals, parts, poses,
                                       pred.unique_body_parts, unique)
    long = pred_view.to_long(recording_id, model_name, time_s)
    long.insert(3, "subject", long["individual"].astype(str).map(subjects))
    uniq = pred_view.unique_to_long(recording_id, model_name, time_s)
    keys = {"recording_id": recording_id, "model_name": model_name}
    tables = {
        "individual_predictions": long,
        "unique_body_parts": uniq,
        "individual_state_vectors": _keyed(raw, keys | {
            "method_name": method.name, "method_hash": method.param_hash,
            "params_name": params.name, "params_hash": params.param_hash}),
        "individual_tracking": _keyed(processed, keys | {
            "method_name": method.name, "params_name": params.name,
            "params_hash": params.param_hash}),
        "individual_body_parts": _keyed(body, keys),
        "identity_events": identity_event_rows(report, recording_id, subjects),
        "multi_animal_sources": _source_row(pred, parts, notes, keys, source),
    }
    if len(pred.individuals) >= 2:
        frames = social_frames(tracks, social, recording_id=recording_id)
        tables["social"] = frames
        summary = social_summary(tracks, frames, social)
        summary.insert(0, "recording_id", recording_id)
        tables["social_summary"] = summary
    return MultiAnimalResult(tables=tables, subjects=subjects, identity=report.summary(),
                             notes=notes, files=[str(p) for p in pred.sources])


def _source_row(pred: MultiAnimalPredictions, parts: list[str], notes: list[str],
                keys: Mapping[str, str], source: str) -> pd.DataFrame:
    """``multi_animal_sources``: the file's scorer and own names, which the exports write
    back (the other tables hold canonical body-part names)."""
    import json

    return pd.DataFrame([{
        **keys, "scorer": pred.scorer, "individuals": json.dumps(list(pred.individuals)),
        "dlc_body_parts": json.dumps(list(pred.body_parts)),
        "body_parts": json.dumps(list(parts)),
        "unique_body_parts": json.dumps(list(pred.unique_body_parts)),
        "tracker": pred.tracker, "filtered": bool(pred.filtered),
        "files": json.dumps([str(p) for p in pred.sources]), "notes": json.dumps(notes),
        "source": source}])


def _analysed_frames(folder: Path) -> int | None:
    """``nframes`` of the ``_meta.pickle`` DeepLabCut wrote beside the outputs, if one."""
    from dlc_tracking.io.dlc_files import read_metadata

    metas = sorted(Path(folder).glob("*_meta.pickle"))
    if len(metas) != 1:
        return None
    value = read_metadata(metas[0]).get("nframes")
    return int(value) if value is not None else None


def _keyed(df: pd.DataFrame, keys: Mapping[str, str]) -> pd.DataFrame:
    out = df.copy()
    for k, (name, value) in enumerate(keys.items()):
        out.insert(k, name, value)
    return out


def identity_event_rows(report, recording_id: str, subjects: Mapping[str, str | None]
                        ) -> pd.DataFrame:
    """``identity_events`` rows: swaps, track events and duplicate runs, by frame."""
    rows = []
    for r in report.swaps.itertuples():
        rows.append(("identity_swap", r.individual_a, r.individual_b, r.frame, r.frame + 1,
                     r.keep_cost_px, r.swap_cost_px))
    for r in report.track_events.itertuples():
        rows.append((r.event, r.individual, None, r.frame, r.frame + r.missing_frames
                     if r.event == "vanishes" else r.frame + 1, np.nan, np.nan))
    for r in report.duplicates.itertuples():
        rows.append(("two_tracks_one_animal", r.individual_a, r.individual_b, r.start_frame,
                     r.stop_frame, r.mean_distance_px, np.nan))
    df = pd.DataFrame(rows, columns=["event", "individual", "other_individual", "frame",
                                     "stop_frame", "value_px", "other_value_px"])
    df.insert(0, "recording_id", recording_id)
    df.insert(3, "subject", df["individual"].map(subjects))
    df["frame"] = df["frame"].astype(np.int64)
    df["stop_frame"] = df["stop_frame"].astype(np.int64)
    return df.sort_values(["frame", "event"], kind="stable").reset_index(drop=True)
