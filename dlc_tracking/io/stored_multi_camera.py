"""One multi-camera recording as the warehouse holds it: the input of its NWB export.

A multi-camera take (docs/3d.md) has no ``recordings`` row: the ``pose_3d`` asset writes
``pose_3d``, ``pose_3d_calibrations``, the per-camera ``predictions`` /
``prediction_sources`` rows (column ``camera``) and ``processed_tracking``. The export
reads those rows (the numbers analysts query), and from disk only what the warehouse
does not hold: the session's ``session.yaml`` (start time, camera videos), the subject's
``subject.yaml`` and the calibration file the rows name (intrinsics and extrinsics),
checked against the SHA-256 recorded when the take was triangulated.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlc_tracking.errors import WarehouseError
from dlc_tracking.warehouse import Warehouse

__all__ = ["StoredMultiCamera", "is_multi_camera_recording", "load_stored_multi_camera"]


@dataclass(frozen=True)
class StoredMultiCamera:
    """A multi-camera recording's warehouse rows and the files they name.

    Attributes
    ----------
    recording_id, subject_id, session : str
    start_time : datetime.datetime
        From session.yaml (time zone aware).
    session_dir : Path
    meta : SessionMetadata
        The session's session.yaml.
    pose : pandas.DataFrame
        ``pose_3d`` rows sorted by frame and body part (body parts in their stored order).
    body_parts : list of str
        As stored in ``pose_3d``.
    calibrations : pandas.DataFrame
        ``pose_3d_calibrations`` rows, one per camera (camera order of the triangulation).
    calibration : RigCalibration
        The calibration file those rows name, read again (its SHA-256 checked).
    predictions : pandas.DataFrame
        ``predictions`` rows (one camera per row).
    sources : pandas.DataFrame
        ``prediction_sources`` rows, one per camera.
    processed : pandas.DataFrame
        ``processed_tracking`` rows sorted by frame.
    videos : dict
        Camera -> its video file (None where session.yaml's file is not there).
    subject : dict
        Facts of the subject's ``subject.yaml`` (empty when there is none).
    models : pandas.DataFrame
        The registry's ``models`` rows of the cameras' models (may be empty).
    """

    recording_id: str
    subject_id: str
    session: str
    start_time: datetime
    session_dir: Path
    meta: Any
    pose: pd.DataFrame
    body_parts: list[str]
    calibrations: pd.DataFrame
    calibration: Any
    predictions: pd.DataFrame
    sources: pd.DataFrame
    processed: pd.DataFrame
    videos: dict[str, Path | None]
    subject: dict = field(default_factory=dict)
    models: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def cameras(self) -> list[str]:
        """Camera names in the order of ``pose_3d_calibrations`` (the triangulation's)."""
        return [str(c) for c in self.calibrations["camera"]]

    @property
    def n_frames(self) -> int:
        return int(self.pose["frame"].nunique())

    @property
    def time_s(self) -> np.ndarray:
        """``(n_frames,)`` frame times (s)."""
        return self.pose.drop_duplicates("frame")["time_s"].to_numpy(np.float64)

    @property
    def fps(self) -> float:
        """session.yaml's ``fps:``, else the frame times' median step."""
        if getattr(self.meta, "fps", None):
            return float(self.meta.fps)
        t = self.time_s
        return float(1.0 / np.median(np.diff(t))) if t.size > 1 else float("nan")

    def grid(self, column: str) -> np.ndarray:
        """A ``pose_3d`` column as ``(n_frames, n_parts)`` float64 (NULL -> NaN)."""
        return self.pose[column].to_numpy(np.float64).reshape(self.n_frames,
                                                              len(self.body_parts))

    @property
    def points_mm(self) -> np.ndarray:
        """``(n_frames, n_parts, 3)`` world x/y/z (mm); NaN = missing."""
        return np.stack([self.grid("x_mm"), self.grid("y_mm"), self.grid("z_mm")], axis=-1)

    def camera_poses(self, camera: str) -> np.ndarray:
        """``(n_frames, n_parts, 3)`` ``[x_px, y_px, likelihood]`` of one camera, body parts
        in :attr:`body_parts` order (NaN where the camera has no row)."""
        rows = self.predictions[self.predictions["camera"].astype(str) == camera]
        frames = np.sort(self.pose["frame"].unique())
        wide = rows.assign(body_part=rows["body_part"].astype(str)).set_index(
            ["frame", "body_part"]).reindex(pd.MultiIndex.from_product(
                [frames, self.body_parts]))
        return wide[["x_px", "y_px", "likelihood"]].to_numpy(np.float64).reshape(
            len(frames), len(self.body_parts), 3)


def is_multi_camera_recording(recording_id: str, warehouse_root: str | os.PathLike) -> bool:
    """True when the warehouse holds ``pose_3d`` rows for it (only a multi-camera take has
    them; its ``recordings`` row, when written, names its cameras)."""
    return Warehouse(warehouse_root).partition_path("pose_3d", recording_id) is not None


def _session_dir(store: Warehouse, rid: str, sources: pd.DataFrame) -> Path | None:
    """The take's session folder: its ``recordings`` row's reference video's folder, else
    the folder above the cameras' ingested DLC files."""
    from dlc_tracking.sessions.layout import SESSION_FILE

    if store.partition_path("recordings", rid) is not None:
        rows = store.read_partition("recordings", rid)
        for video in rows.get("video_path", pd.Series(dtype=object)).dropna():
            if (Path(video).parent / SESSION_FILE).is_file():
                return Path(video).parent
    return _session_dir_from_sources(sources)


def _session_dir_from_sources(sources: pd.DataFrame) -> Path | None:
    """The session folder above the cameras' ingested DLC files (``dlc_<stem>/``)."""
    from dlc_tracking.sessions.layout import SESSION_FILE

    for raw in sources.get("files", pd.Series(dtype=object)):
        try:
            files = json.loads(raw) if isinstance(raw, str) else []
        except ValueError:
            continue
        for f in files:
            for folder in list(Path(f).parents)[:3]:
                if (folder / SESSION_FILE).is_file():
                    return folder
    return None


def _read_calibration(rows: pd.DataFrame, rid: str):
    """The calibration file the rows name, refused when missing or changed since."""
    from dlc_tracking.multiview.calibration import load_anipose_toml

    path = Path(str(rows["calibration_file"].iloc[0]))
    recorded = rows["calibration_sha256"].iloc[0]
    redo = (f"re-materialize pose_3d for {rid} (`dlc-platform reprocess {rid}`) so the "
            "take is triangulated with the calibration in the file, or restore the file")
    if not path.is_file():
        raise WarehouseError(f"recording {rid}: its calibration file {path} is gone; the NWB "
                             f"file records each camera's intrinsics and extrinsics from it: "
                             f"{redo}.")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if isinstance(recorded, str) and recorded and digest != recorded:
        raise WarehouseError(f"recording {rid}: calibration file {path} changed since the take "
                             f"was triangulated (SHA-256 {recorded[:12]}... then, "
                             f"{digest[:12]}... now): {redo}.")
    return load_anipose_toml(path)


def load_stored_multi_camera(recording_id: str, warehouse_root: str | os.PathLike,
                             session_dir: str | os.PathLike | None = None
                             ) -> StoredMultiCamera:
    """Read one multi-camera recording's rows and the files they name.

    Parameters
    ----------
    recording_id : str
    warehouse_root : path
    session_dir : path, optional
        The session folder (the asset knows it); default: the folder holding session.yaml
        above the cameras' ingested DLC files.

    Raises
    ------
    WarehouseError
        No ``pose_3d`` or ``processed_tracking`` rows (pose_3d failed or has not run), no
        session.yaml to read the start time from, a calibration file gone or changed.
    """
    from dlc_tracking.io.stored_recording import SUBJECT_FILE, read_subject_facts
    from dlc_tracking.sessions.layout import SESSION_FILE, load_session_metadata

    store = Warehouse(warehouse_root)
    rid = recording_id
    missing = [t for t in ("pose_3d", "pose_3d_calibrations", "predictions",
                           "prediction_sources", "processed_tracking")
               if store.partition_path(t, rid) is None]
    if missing:
        raise WarehouseError(
            f"recording {rid}: no {', '.join(missing)} rows in {store.root}: its pose_3d step "
            f"failed or has not run. See `dlc-platform status {rid}`, fix the cause and run "
            f"`dlc-platform reprocess {rid}`.")
    pose = store.read_partition("pose_3d", rid)
    body_parts = list(dict.fromkeys(pose["body_part"].astype(str)))
    order = {bp: i for i, bp in enumerate(body_parts)}
    pose = pose.assign(body_part=pose["body_part"].astype(str)).sort_values(
        ["frame", "body_part"], key=lambda s: s.map(order) if s.name == "body_part" else s,
        ignore_index=True)
    if len(pose) != pose["frame"].nunique() * len(body_parts):
        raise WarehouseError(f"recording {rid}: pose_3d rows are not one per frame x body "
                             "part; re-materialize pose_3d.")
    sources = store.read_partition("prediction_sources", rid)
    folder = Path(session_dir) if session_dir is not None else _session_dir(store, rid,
                                                                            sources)
    if folder is None or not (folder / SESSION_FILE).is_file():
        where = folder or "no session folder above the cameras' ingested DLC files"
        raise WarehouseError(
            f"recording {rid}: session.yaml not found ({where}); the NWB file needs the "
            "session start time and the camera videos from it. Put the session folder back "
            "where it was processed (or pass its folder as session_dir).")
    meta = load_session_metadata(folder / SESSION_FILE)
    calibrations = store.read_partition("pose_3d_calibrations", rid)
    calibration = _read_calibration(calibrations, rid)
    videos = {}
    for cam, entry in meta.camera_entries().items():
        path = folder / entry.file
        videos[cam] = path if path.is_file() else None
    subject_file = folder.parent / SUBJECT_FILE
    subject = read_subject_facts(subject_file) if subject_file.is_file() else {}
    try:
        models = store.read_table("models")
        models = models[models["model_name"].isin(set(sources["model_name"].astype(str)))]
    except WarehouseError:
        models = pd.DataFrame()
    processed = store.read_partition("processed_tracking", rid).sort_values(
        "frame", ignore_index=True)
    parts = rid.split("__")
    return StoredMultiCamera(
        recording_id=rid, subject_id=folder.parent.name or parts[0], session=folder.name,
        start_time=meta.start_time, session_dir=folder, meta=meta, pose=pose,
        body_parts=body_parts, calibrations=calibrations.reset_index(drop=True),
        calibration=calibration, predictions=store.read_partition("predictions", rid),
        sources=sources, processed=processed, videos=videos, subject=subject, models=models)
