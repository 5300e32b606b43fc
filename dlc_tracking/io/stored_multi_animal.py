"""One multi-animal recording as the warehouse holds it: the input of its exports
(maDLC ``.h5``, movement, NWB; docs/exports.md).

The per-individual tables hold canonical body-part names; the maDLC file's scorer and own
names come from ``multi_animal_sources``, so an export writes DeepLabCut's names back
without the DLC files. Like :mod:`dlc_tracking.io.stored_recording`, nothing but the
warehouse (and the subjects' ``subject.yaml``) is read.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from dlc_tracking.errors import WarehouseError
from dlc_tracking.io.madlc_files import MultiAnimalPredictions
from dlc_tracking.io.stored_recording import (
    SUBJECT_FILE,
    _session_folder,
    read_subject_facts,
    session_start_time,
)
from dlc_tracking.tracking.predictions import from_long
from dlc_tracking.warehouse import Warehouse

__all__ = ["StoredMultiAnimal", "is_multi_animal_recording", "load_stored_multi_animal"]


@dataclass
class StoredMultiAnimal:
    """A multi-animal recording's rows from the warehouse.

    Attributes
    ----------
    recording_id : str
        The recording id.
    info : dict
        Its ``recordings`` row.
    start_time : datetime.datetime
        Session start, time zone aware (session.yaml's zone when found, else UTC).
    predictions : MultiAnimalPredictions
        Under the maDLC file's own names: ``scorer``, ``individuals``, ``body_parts``
        (DeepLabCut's), ``unique_body_parts``; ``poses`` ``(n_frames, n_individuals,
        n_body_parts, 3)`` and ``unique_poses`` ``(n_frames, n_unique, 3)``
        ``[x_px, y_px, likelihood]`` (image frame, NaN = missing); ``frames`` 0..n-1.
    body_parts : list[str]
        Canonical names of ``predictions.body_parts`` (same order).
    subjects : dict
        individual -> subject id, None for an anonymous track (file order).
    time_s : np.ndarray
        ``(n_frames,)`` frame times from the recording start (s).
    model_name : str
        The registered model.
    subject_facts : dict
        subject id -> facts of its ``subject.yaml`` (empty when there is none), for the
        mapped subjects and the session's own subject (``info["subject"]``).
    source : dict
        The ``multi_animal_sources`` row.
    tracking : pandas.DataFrame or None
        The ``individual_tracking`` rows (processed tracking per individual, arena frame,
        cm), by individual then frame; None when the warehouse has none.
    """

    recording_id: str
    info: dict
    start_time: datetime
    predictions: MultiAnimalPredictions
    body_parts: list[str]
    subjects: dict[str, str | None]
    time_s: np.ndarray
    model_name: str
    subject_facts: dict[str, dict] = field(default_factory=dict)
    source: dict = field(default_factory=dict)
    tracking: pd.DataFrame | None = None

    def individual_tracking(self, individual: str) -> pd.DataFrame | None:
        """One individual's processed tracking rows, by frame (None without any)."""
        if self.tracking is None:
            return None
        rows = self.tracking[self.tracking["individual"].astype(str) == individual]
        return rows.sort_values("frame", kind="stable") if len(rows) else None

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return self.predictions.n_frames

    @property
    def fps(self) -> float:
        """Nominal frame rate of the video (Hz)."""
        return float(self.info["fps"])

    @property
    def video_path(self) -> Path | None:
        """The recording's video (may no longer exist)."""
        value = self.info.get("video_path")
        return Path(value) if isinstance(value, str) and value else None

    @property
    def named_subjects(self) -> list[str]:
        """The subject ids of the mapped tracks, in file order (no anonymous ones)."""
        return [s for s in self.subjects.values() if s]


def _store(warehouse_root: str | os.PathLike | None) -> Warehouse:
    return Warehouse(warehouse_root) if warehouse_root is not None else Warehouse(
        os.environ.get("DLC_PLATFORM_WAREHOUSE", "demo/warehouse"))


def is_multi_animal_recording(recording_id: str,
                              warehouse_root: str | os.PathLike | None = None) -> bool:
    """Whether the warehouse holds the recording as a multi-animal one
    (``individual_predictions`` rows and no single-animal ``predictions``)."""
    store = _store(warehouse_root)
    return (store.partition_path("individual_predictions", recording_id) is not None
            and store.partition_path("predictions", recording_id) is None)


def _poses_of(df: pd.DataFrame, parts: list[str], n_frames: int, what: str
              ) -> tuple[np.ndarray, np.ndarray]:
    """``(n_frames, len(parts), 3)`` in the order of ``parts`` and the frame times."""
    if not parts:
        return np.zeros((n_frames, 0, 3)), np.zeros(n_frames)
    poses, found, time_s = from_long(df)
    if sorted(found) != sorted(parts) or len(poses) != n_frames:
        raise WarehouseError(f"{what}: rows for body parts {found} x {len(poses)} frames, "
                             f"expected {parts} x {n_frames}. Re-run the recording "
                             "(`dlc-platform reprocess`).")
    return poses[:, [found.index(p) for p in parts]], time_s


def load_stored_multi_animal(recording_id: str,
                             warehouse_root: str | os.PathLike | None = None
                             ) -> StoredMultiAnimal:
    """Read one multi-animal recording's rows from the warehouse.

    Parameters
    ----------
    recording_id : str
        The recording id (``dlc-platform status`` lists them).
    warehouse_root : path, optional
        Warehouse folder; default ``$DLC_PLATFORM_WAREHOUSE`` or ``demo/warehouse``.

    Returns
    -------
    StoredMultiAnimal

    Raises
    ------
    WarehouseError
        Not a multi-animal recording of this warehouse, or one processed before the
        warehouse recorded its maDLC names (no ``multi_animal_sources`` row); the message
        says what to do.
    """
    store = _store(warehouse_root)
    rid = recording_id
    if store.partition_path("individual_predictions", rid) is None:
        raise WarehouseError(
            f"recording {rid} has no multi-animal predictions in {store.root} (no "
            "individual_predictions rows). See `dlc-platform status "
            f"{rid}`; fix the cause and run `dlc-platform reprocess {rid}`.")
    if store.partition_path("multi_animal_sources", rid) is None:
        raise WarehouseError(
            f"recording {rid}: the warehouse {store.root} has no multi_animal_sources row "
            "for it (it was processed before the platform recorded the maDLC file's scorer "
            "and names), and an export carries DeepLabCut's own names. Run "
            f"`dlc-platform reprocess {rid}`, then export again.")
    info = store.read_partition("recordings", rid).iloc[0].to_dict()
    source = store.read_partition("multi_animal_sources", rid).iloc[0].to_dict()
    individuals = json.loads(source["individuals"])
    dlc_parts, parts = json.loads(source["dlc_body_parts"]), json.loads(source["body_parts"])
    unique = json.loads(source.get("unique_body_parts") or "[]")
    pred = store.read_partition("individual_predictions", rid)
    pred["individual"] = pred["individual"].astype(str)
    per_individual, subjects, time_s = [], {}, None
    n_frames = int(pred["frame"].nunique())
    for ind in individuals:
        rows = pred[pred["individual"] == ind]
        if not len(rows):
            raise WarehouseError(f"recording {rid}: no individual_predictions rows for "
                                 f"{ind!r}; re-run it (`dlc-platform reprocess {rid}`).")
        subject = rows["subject"].iloc[0]
        subjects[ind] = str(subject) if isinstance(subject, str) and subject else None
        poses, time_s = _poses_of(rows.drop(columns=["individual", "subject"]), parts,
                                  n_frames, f"recording {rid}, individual {ind}")
        per_individual.append(poses)
    unique_poses = np.zeros((n_frames, 0, 3))
    if unique:
        if store.partition_path("unique_body_parts", rid) is None:
            raise WarehouseError(f"recording {rid}: no unique_body_parts rows for {unique}; "
                                 f"re-run it (`dlc-platform reprocess {rid}`).")
        unique_poses, _ = _poses_of(store.read_partition("unique_body_parts", rid), unique,
                                    n_frames, f"recording {rid}, unique body parts")
    predictions = MultiAnimalPredictions(
        scorer=str(source["scorer"]), individuals=individuals, body_parts=dlc_parts,
        poses=np.stack(per_individual, axis=1), unique_body_parts=unique,
        unique_poses=unique_poses, frames=np.arange(n_frames, dtype=np.int64),
        sources=[Path(f) for f in json.loads(source.get("files") or "[]")],
        tracker=source.get("tracker"), filtered=bool(source.get("filtered")))
    folder = _session_folder(info)
    facts: dict[str, dict] = {}
    for subject in dict.fromkeys([str(info["subject"]), *filter(None, subjects.values())]):
        path = folder.parent.parent / subject / SUBJECT_FILE if folder is not None else None
        facts[subject] = read_subject_facts(path) if path is not None and path.is_file() \
            else {}
    tracking = (store.read_partition("individual_tracking", rid)
                if store.partition_path("individual_tracking", rid) is not None else None)
    return StoredMultiAnimal(rid, info, session_start_time(info), predictions, parts,
                             subjects, np.asarray(time_s, np.float64),
                             str(pred["model_name"].iloc[0]), facts, source, tracking)
