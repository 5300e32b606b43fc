"""One recording as the warehouse holds it: the input of every export (NWB, movement,
DLC h5/csv) and of the labeled video.

Exports read the warehouse only (never the video or the DLC outputs again), so they give
exactly the numbers analysts query, and work for ingest-only recordings whose video is
elsewhere. The time zone of the session start is not in the warehouse (``start_time`` is
stored as UTC); it is read back from the session's ``session.yaml`` when that is still
next to the video, else the start is given in UTC.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from dlc_tracking.errors import SessionError, WarehouseError
from dlc_tracking.tracking.predictions import from_long
from dlc_tracking.warehouse import Warehouse
from dlc_tracking.warehouse.tables import MULTI_CAMERA_COLUMNS

__all__ = ["SUBJECT_FILE", "StoredRecording", "load_stored_recording", "read_subject_facts",
           "session_start_time"]

SUBJECT_FILE = "subject.yaml"
"""Optional file in a subject's folder (``<data root>/<subject>/subject.yaml``) with the
facts NWB and DANDI need about the animal (species, sex, age or date of birth...)."""
SUBJECT_KEYS = ("species", "sex", "age", "date_of_birth", "strain", "genotype", "weight",
                "description")
_SEXES = ("M", "F", "U", "O")

_PROCESSED_FLOATS = ("x_cm", "y_cm", "speed_cm_s", "head_direction_deg",
                     "angular_head_velocity_deg_s", "movement_direction_deg")


@dataclass
class StoredRecording:
    """A recording's rows from the warehouse.

    Attributes
    ----------
    recording_id : str
        The recording id (partition key).
    info : dict
        Its ``recordings`` row (subject, session, video_path, fps, width_px, camera_view,
        arena_*...).
    start_time : datetime.datetime
        Session start, time zone aware (session.yaml's zone when found, else UTC).
    poses : np.ndarray
        ``(n_frames, n_body_parts, 3)`` ``[x_px, y_px, likelihood]`` from ``predictions``
        (image frame, y down), NaN = missing.
    body_parts : list[str]
        Canonical body-part names, order of axis 1 of ``poses``.
    time_s : np.ndarray
        Frame times from the recording start (s).
    model_name : str
        The registered model that made the predictions.
    model : dict | None
        The model's row of the ``models`` registry table (scorer, engine, net_type...),
        None when the warehouse has no such row.
    processed : pandas.DataFrame | None
        ``processed_tracking`` rows ordered by frame; None when not processed.
    boundary : dict | None
        ``arena_boundaries`` row (left_px, right_px, top_px, bottom_px).
    skipped_reason : str | None
        Why the state vector was skipped (``skipped_recordings``), None otherwise.
    subject : dict
        Facts from the subject's ``subject.yaml`` (empty when there is none).
    on_imaging : pandas.DataFrame | None
        ``tracking_on_imaging`` rows (imaging sessions).
    source : dict | None
        The ``prediction_sources`` row: where the predictions came from (``source``,
        ``scorer`` of the files read, ``files`` as JSON, ``dlc_fps``...).
    """

    recording_id: str
    info: dict
    start_time: datetime
    poses: np.ndarray
    body_parts: list[str]
    time_s: np.ndarray
    model_name: str
    model: dict | None
    processed: pd.DataFrame | None
    boundary: dict | None
    skipped_reason: str | None
    subject: dict = field(default_factory=dict)
    on_imaging: pd.DataFrame | None = None
    source: dict | None = None

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return int(self.poses.shape[0])

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
    def scorer(self) -> str:
        """The DLC scorer of the predictions: the one in the files that were ingested (or
        that inference wrote), else the registered model's; "" when neither is known."""
        found = (self.source or {}).get("scorer")
        if isinstance(found, str) and found:
            return found
        return str((self.model or {}).get("scorer") or "")

    @property
    def source_files(self) -> list[Path]:
        """The prediction files read when the recording was processed (may be gone)."""
        raw = (self.source or {}).get("files")
        try:
            return [Path(f) for f in json.loads(raw)] if isinstance(raw, str) else []
        except ValueError:
            return []

    def dlc_body_parts(self) -> list[str] | None:
        """DeepLabCut's own names of :attr:`body_parts` (same order), or None if unknown.

        From the model's registry row (its config's ``bodyparts`` and body-part map), else
        from the header of the file that was ingested, when it is still there.
        """
        model = self.model or {}
        dlc = [p for p in str(model.get("dlc_body_parts") or "").split(",") if p]
        canonical = [p for p in str(model.get("body_parts") or "").split(",") if p]
        if dlc and len(dlc) == len(canonical):
            back = dict(zip(canonical, dlc, strict=True))
            if all(name in back for name in self.body_parts):
                return [back[name] for name in self.body_parts]
        return self._names_from_source_file()

    def _names_from_source_file(self) -> list[str] | None:
        files = [f for f in self.source_files if f.is_file()]
        if not files:
            return None
        try:
            if files[0].suffix.lower() == ".nwb":
                from dlc_tracking.io.nwb_pose import read_nwb_predictions

                names = read_nwb_predictions(files[0])[0].body_parts
            else:
                from dlc_tracking.io.dlc_files import read_predictions

                names = read_predictions(files[0]).body_parts
        except Exception:  # noqa: BLE001 - a changed file only means the names are unknown
            return None
        return list(names) if len(names) == len(self.body_parts) else None

    def require_processed(self, what: str) -> pd.DataFrame:
        """The processed tracking, or a clear error saying why there is none.

        Raises
        ------
        WarehouseError
            The recording was skipped (with the reason) or has not been processed.
        """
        if self.processed is not None and len(self.processed):
            return self.processed
        rid = self.recording_id
        if self.skipped_reason:
            raise WarehouseError(
                f"recording {rid}: cannot {what}: its state vector was skipped "
                f"({self.skipped_reason}); only its raw predictions exist. Export them with "
                "--format dlc-h5 or csv, or register a method for its tracking type.")
        raise WarehouseError(
            f"recording {rid}: cannot {what}: it has no processed_tracking rows (its "
            "processing failed or has not run). See `dlc-platform status "
            f"{rid}` for the reason, fix it and run `dlc-platform reprocess {rid}`.")


def session_start_time(info: dict) -> datetime:
    """The recording's start with the time zone of its session.yaml where available.

    Parameters
    ----------
    info : dict
        The ``recordings`` row (``start_time`` as UTC, ``video_path``).

    Returns
    -------
    datetime.datetime
        Time zone aware; the same instant as ``start_time``.
    """
    start = pd.Timestamp(info["start_time"])
    start = start.tz_localize("UTC") if start.tzinfo is None else start
    utc = start.to_pydatetime().astimezone(UTC)
    folder = _session_folder(info)
    if folder is None:
        return utc
    from dlc_tracking.sessions.layout import SESSION_FILE, load_session_metadata

    try:
        local = load_session_metadata(folder / SESSION_FILE).start_time
    except Exception:  # noqa: BLE001 - an edited session.yaml must not block exports
        return utc
    # Only trust the zone when the file still describes this instant.
    return local if local == utc else utc


def _session_folder(info: dict) -> Path | None:
    """The session folder: the one holding session.yaml above the video (if still there)."""
    from dlc_tracking.sessions.layout import SESSION_FILE

    video = info.get("video_path")
    if not video:
        return None
    folder = Path(video).parent
    for candidate in (folder, *list(folder.parents)[:2]):  # videos may sit in a sub-folder
        if (candidate / SESSION_FILE).is_file():
            return candidate
    return None


def read_subject_facts(path: Path) -> dict:
    """The facts of a ``subject.yaml`` (see :data:`SUBJECT_KEYS`), validated.

    Raises
    ------
    SessionError
        Unknown keys or a sex other than M, F, U, O; the message names the file.
    """
    from dlc_tracking.io.yaml_files import read_yaml_mapping

    raw = read_yaml_mapping(path, SessionError, missing=f"{path} is missing.",
                            not_mapping=f"{path} must hold a mapping (species: Mus musculus, "
                            "sex: F, age: P90D ...).")
    unknown = sorted(set(raw) - set(SUBJECT_KEYS))
    if unknown:
        raise SessionError(f"{path}: unknown keys {unknown}; allowed: {list(SUBJECT_KEYS)}.")
    facts = {k: str(v) for k, v in raw.items() if v is not None}
    if "sex" in facts and facts["sex"] not in _SEXES:
        raise SessionError(f"{path}: sex {facts['sex']!r} must be one of {list(_SEXES)} "
                           "(U = unknown, O = other).")
    return facts


def load_stored_recording(recording_id: str, warehouse_root: str | os.PathLike | None = None
                          ) -> StoredRecording:
    """Read one recording's rows from the warehouse.

    Parameters
    ----------
    recording_id : str
        The recording id (``dlc-platform status`` lists them).
    warehouse_root : path, optional
        Warehouse folder; default ``$DLC_PLATFORM_WAREHOUSE`` or ``demo/warehouse``.

    Returns
    -------
    StoredRecording

    Raises
    ------
    WarehouseError
        The recording is unknown, or has no predictions (its processing failed before
        them); the message says what to do.
    """
    store = Warehouse(warehouse_root) if warehouse_root is not None else Warehouse(
        os.environ.get("DLC_PLATFORM_WAREHOUSE", "demo/warehouse"))
    rid = recording_id
    if store.partition_path("recordings", rid) is None:
        known = store.partitions("recordings")
        hint = f" Known recordings: {', '.join(known[:5])}{' ...' if len(known) > 5 else ''}." \
            if known else " The warehouse holds no recordings yet."
        raise WarehouseError(f"recording {rid} is not in the warehouse {store.root}.{hint} "
                             "Check the id with `dlc-platform status`.")
    info = store.read_partition("recordings", rid).iloc[0].to_dict()
    if isinstance(info.get("cameras"), str):  # a take's 2D rows are per camera: not one pose
        raise WarehouseError(
            f"recording {rid} is a multi-camera take (cameras {info['cameras']}): its 2D "
            "predictions are one set per camera and its tracking is 3D; export its 3D rows "
            f"(`dlc-platform export {rid} --format anipose-csv|dlc-3d-h5|movement-3d`, "
            "docs/3d.md).")
    if store.partition_path("predictions", rid) is None:
        raise WarehouseError(
            f"recording {rid} has no predictions in {store.root}: its dlc_predictions step "
            f"failed or has not run. See `dlc-platform status {rid}`, fix the cause and run "
            f"`dlc-platform reprocess {rid}`.")
    pred = store.read_partition("predictions", rid)
    poses, body_parts, time_s = from_long(pred)
    model_name = str(pred["model_name"].iloc[0]) if len(pred) else str(info.get("model_name"))
    model = None
    try:  # the registry tables exist once the registry assets ran
        models = store.read_table("models")
    except WarehouseError:
        models = pd.DataFrame()
    if "model_name" in models:
        rows = models[models["model_name"] == model_name]
        model = rows.iloc[0].to_dict() if len(rows) else None
    processed = boundary = skipped = None
    if store.partition_path("processed_tracking", rid) is not None:
        processed = store.read_partition("processed_tracking", rid).sort_values(
            "frame", ignore_index=True)
        for column in _PROCESSED_FLOATS:  # NULL is NaN here (the table stores NaN as NULL)
            processed[column] = processed[column].astype(np.float64)
        # The 3D columns only a multi-camera recording fills: left out when NULL, so a
        # single-camera recording's exports (CSV, NWB, movement) are what they were.
        processed = processed.drop(columns=[c for c in MULTI_CAMERA_COLUMNS
                                            if c in processed and processed[c].isna().all()])
    if store.partition_path("arena_boundaries", rid) is not None:
        boundary = store.read_partition("arena_boundaries", rid).iloc[0].to_dict()
    if store.partition_path("skipped_recordings", rid) is not None:
        skipped = str(store.read_partition("skipped_recordings", rid)["reason"].iloc[0])
    folder = _session_folder(info)
    subject_file = folder.parent / SUBJECT_FILE if folder is not None else None
    subject = (read_subject_facts(subject_file)
               if subject_file is not None and subject_file.is_file() else {})
    on_imaging = (store.read_partition("tracking_on_imaging", rid)
                  if store.partition_path("tracking_on_imaging", rid) is not None else None)
    source = (store.read_partition("prediction_sources", rid).iloc[0].to_dict()
              if store.partition_path("prediction_sources", rid) is not None else None)
    return StoredRecording(rid, info, session_start_time(info), poses, body_parts, time_s,
                           model_name, model, processed, boundary, skipped, subject, on_imaging,
                           source)
