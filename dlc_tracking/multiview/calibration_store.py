"""A rig's dated calibrations on disk, and the calibrations made from them (docs/3d.md, 2).

Layout (one folder per rig and calibration day, under the data root)::

    <data root>/calibrations/<rig>/<YYYY-MM-DD>/
        calibration.yaml      the board (kind, squares, square_mm, marker_mm, dict), ...
        <camera>.mp4          one board video per camera (names = the rig's cameras)
        floor/<camera>.png    optional: the board lying on the floor (world axes)
      or
        calibration.toml      an Anipose calibration, imported unchanged
      or
        camera_matrix/stereo_params.pickle   a DeepLabCut 3D project (calibration.yaml:
                                             dlc_3d: {square_mm: ..., cameras: [...]})

Each folder is one calibration, key ``<rig>__<YYYY-MM-DD>`` (the Dagster partition of
``camera_calibrations``). The calibration made from a folder is stored as an Anipose
``calibration.toml`` at ``<results>/<rig>/<YYYY-MM-DD>/calibration.toml`` (the warehouse's
``calibrations/`` folder), written atomically. A session uses its rig's latest
calibration at or before its date, unless session.yaml names one
(:meth:`CalibrationStore.for_session`).

Plain Python: the Dagster asset and sensor (dlc_assets/assets/calibrations.py,
sensors/calibrations.py) call these functions.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlc_tracking.multiview.boards import Board
from dlc_tracking.multiview.calibration import (
    RigCalibration,
    align_to_board,
    align_to_image_points,
    calibrate_videos,
    load_anipose_toml,
    load_dlc_3d,
)
from dlc_tracking.multiview.errors import CalibrationPending, MultiviewError
from dlc_tracking.multiview.rigs import Rig
from dlc_tracking.sessions.layout import CALIBRATIONS_FOLDER

__all__ = [
    "CALIBRATIONS_DIR",
    "CalibrationFolder",
    "CalibrationStore",
    "calibrate_folder",
    "calibration_key",
    "calibration_rows",
    "find_calibration_folders",
    "folder_fingerprint",
    "folder_source",
    "load_named_calibration",
    "parse_calibration_key",
    "read_calibration_settings",
    "write_toml_atomic",
]

CALIBRATIONS_DIR = CALIBRATIONS_FOLDER
"""Folder of the rigs' calibrations, under the data root (session discovery skips it) and
under the warehouse root (the calibrations made from them)."""
SETTINGS_FILE = "calibration.yaml"
ANIPOSE_FILE = "calibration.toml"
DLC_FOLDER = "camera_matrix"
FLOOR_FOLDER = "floor"
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
KEY_SEPARATOR = "__"
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DICT_RE = re.compile(r"^(?:DICT_)?(\d)X\d_(\d+)$", re.IGNORECASE)


def calibration_key(rig: str, date: dt.date) -> str:
    """``<rig>__<YYYY-MM-DD>``: the partition key of one calibration."""
    return f"{rig}{KEY_SEPARATOR}{date.isoformat()}"


def parse_calibration_key(key: str) -> tuple[str, dt.date]:
    """``(rig, date)`` of a key ``<rig>__<YYYY-MM-DD>`` (the date never holds ``__``).

    Raises
    ------
    MultiviewError
        Not of that form.
    """
    rig, sep, day = key.rpartition(KEY_SEPARATOR)
    try:
        if not sep or not rig or not _DATE_RE.match(day):
            raise ValueError(key)
        return rig, dt.date.fromisoformat(day)
    except ValueError:
        raise MultiviewError(f"calibration partition {key!r} is not <rig>__<YYYY-MM-DD> (e.g. "
                             "rig_a__2026-01-05).") from None


def _as_date(value: Any) -> dt.date | None:
    """A date from a YAML date or an ISO ``YYYY-MM-DD`` string, else None."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and _DATE_RE.match(value.strip()):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


@dataclass(frozen=True)
class CalibrationFolder:
    """One rig's calibration of one day on disk.

    Attributes
    ----------
    rig : str
    date : datetime.date
    path : Path
        ``<data root>/calibrations/<rig>/<YYYY-MM-DD>``.
    """

    rig: str
    date: dt.date
    path: Path

    @property
    def key(self) -> str:
        """The partition key ``<rig>__<YYYY-MM-DD>``."""
        return calibration_key(self.rig, self.date)

    @property
    def source(self) -> str:
        """``"anipose_toml"``, ``"dlc_3d"`` or ``"videos"`` (see :func:`folder_source`)."""
        return folder_source(self.path)


def _visible(path: Path) -> bool:
    return not path.name.startswith((".", "_", "~"))


def find_calibration_folders(root: str | Path) -> tuple[list[CalibrationFolder], list[str]]:
    """Every ``<root>/<rig>/<YYYY-MM-DD>/`` folder, sorted by rig and date.

    Returns
    -------
    folders : list of CalibrationFolder
    problems : list of str
        Folders whose name is not a date (named, with what to do); never raises.
    """
    root = Path(root)
    folders: list[CalibrationFolder] = []
    problems: list[str] = []
    if not root.is_dir():
        return folders, problems
    for rig_dir in sorted(p for p in root.iterdir() if p.is_dir() and _visible(p)):
        for day_dir in sorted(p for p in rig_dir.iterdir() if p.is_dir() and _visible(p)):
            day = _as_date(day_dir.name)
            if day is None:
                problems.append(f"{day_dir}: a calibration folder is named by its date "
                                "YYYY-MM-DD (e.g. 2026-01-05); rename it.")
                continue
            folders.append(CalibrationFolder(rig_dir.name, day, day_dir))
    return folders, problems


def folder_fingerprint(path: str | Path) -> tuple[str, float]:
    """``(fingerprint, newest mtime)`` of a calibration folder's files (name, size, mtime:
    the session sensor's rule), hidden and temporary files left out.

    The newest modification time tells whether the folder has settled (no copy still
    running into it).
    """
    path = Path(path)
    entries = []
    newest = path.stat().st_mtime
    for file in sorted(path.rglob("*")):
        rel = file.relative_to(path)
        if not file.is_file() or any(part.startswith((".", "~")) for part in rel.parts):
            continue
        st = file.stat()
        newest = max(newest, st.st_mtime)
        entries.append(f"{rel.as_posix()}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()[:16], newest


def _videos(path: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(path.iterdir())
            if p.is_file() and _visible(p) and p.suffix.lower() in VIDEO_SUFFIXES}


def folder_source(path: str | Path) -> str:
    """What a calibration folder holds: ``"anipose_toml"`` (``calibration.toml``),
    ``"dlc_3d"`` (``camera_matrix/``) or ``"videos"`` (board videos).

    Raises
    ------
    MultiviewError
        None of them, or more than one (which one is meant is not guessed).
    """
    path = Path(path)
    found = []
    if (path / ANIPOSE_FILE).is_file():
        found.append("anipose_toml")
    if (path / DLC_FOLDER).is_dir() or (path / "stereo_params.pickle").is_file():
        found.append("dlc_3d")
    if path.is_dir() and _videos(path):
        found.append("videos")
    if not found:
        raise MultiviewError(
            f"{path}: no calibration here; put one board video per camera "
            f"(<camera>.mp4) with {SETTINGS_FILE} naming the board, an Anipose "
            f"{ANIPOSE_FILE}, or a DeepLabCut 3D project's {DLC_FOLDER}/ (docs/3d.md).")
    if len(found) > 1:
        raise MultiviewError(f"{path}: holds {' and '.join(found)}; keep one calibration "
                             "source per folder (move the other to its own dated folder).")
    return found[0]


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class CalibrationSettings:
    """``calibration.yaml`` of a calibration folder.

    Attributes
    ----------
    board : Board or None
        The printed board (required for board videos and floor images).
    min_detections : int
        Fewest frames with the board found per camera video.
    dlc_square_mm : float or None
        DeepLabCut 3D project: the checkerboard square's side (mm).
    dlc_cameras : list of str or None
        DeepLabCut 3D project: the rig's names of DLC's two cameras, in DLC's order.
    align_points : dict or None
        World axes from three points marked in 2+ cameras' images:
        ``{origin | x_axis | floor: {camera: [x_px, y_px]}}``
        (:func:`~dlc_tracking.multiview.calibration.align_to_image_points`).
    """

    board: Board | None = None
    min_detections: int = 5
    dlc_square_mm: float | None = None
    dlc_cameras: list[str] | None = None
    align_points: dict[str, dict[str, Any]] | None = None


def _board_from_yaml(spec: Mapping[str, Any], where: str) -> Board:
    """A :class:`Board` from ``{kind, squares: [x, y], square_mm, marker_mm, dict}`` (or the
    Board's own keys ``squares_x``, ``squares_y``, ``marker_bits``, ``dict_size``)."""
    spec = dict(spec)
    squares = spec.pop("squares", None)
    if squares is not None:
        if not (isinstance(squares, Sequence) and len(squares) == 2):
            raise MultiviewError(f"{where}: board squares {squares!r} must be [x, y], e.g. "
                                 "[7, 5].")
        spec["squares_x"], spec["squares_y"] = (int(v) for v in squares)
    name = spec.pop("dict", None)
    if name is not None:
        m = _DICT_RE.match(str(name))
        if not m:
            raise MultiviewError(f"{where}: board dict {name!r}: give OpenCV's ArUco "
                                 "dictionary as DICT_<bits>X<bits>_<size>, e.g. DICT_4X4_50.")
        spec["marker_bits"], spec["dict_size"] = int(m.group(1)), int(m.group(2))
    try:
        return Board.from_dict(spec)
    except MultiviewError as exc:
        raise MultiviewError(f"{where}: {exc}") from None


def read_calibration_settings(path: str | Path) -> CalibrationSettings:
    """Read a folder's ``calibration.yaml`` (all keys optional; absent file = defaults).

    Raises
    ------
    MultiviewError
        Not YAML, not a mapping, an unknown key, a bad board.
    """
    import yaml

    file = Path(path) / SETTINGS_FILE
    if not file.is_file():
        return CalibrationSettings()
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise MultiviewError(f"{file}: unreadable ({exc}); fix the YAML.") from None
    if not isinstance(data, Mapping):
        raise MultiviewError(f"{file}: must be a mapping (board:, dlc_3d:, min_detections:).")
    unknown = sorted(set(data) - {"board", "dlc_3d", "min_detections", "align", "notes"})
    if unknown:
        raise MultiviewError(f"{file}: unknown keys {unknown}; the keys are board, dlc_3d, "
                             "min_detections, align, notes (docs/3d.md).")
    align = data.get("align")
    if align is not None and not (isinstance(align, Mapping) and all(
            isinstance(v, Mapping) for v in align.values())):
        raise MultiviewError(f"{file}: align must be {{origin: {{CAMERA: [x_px, y_px], ...}}, "
                             "x_axis: {...}, floor: {...}}, each point marked in 2+ cameras.")
    board = _board_from_yaml(data["board"], str(file)) if data.get("board") else None
    dlc = data.get("dlc_3d") or {}
    if not isinstance(dlc, Mapping):
        raise MultiviewError(f"{file}: dlc_3d must be {{square_mm: ..., cameras: [a, b]}}.")
    square = dlc.get("square_mm") or (board.square_mm if board else None)
    cams = dlc.get("cameras")
    try:
        min_detections = int(data.get("min_detections", 5))
    except (TypeError, ValueError):
        raise MultiviewError(f"{file}: min_detections {data['min_detections']!r} must be a "
                             "whole number of frames, e.g. 5.") from None
    return CalibrationSettings(board=board, min_detections=min_detections,
                               dlc_square_mm=float(square) if square else None,
                               dlc_cameras=[str(c) for c in cams] if cams else None,
                               align_points={str(k): {str(c): v for c, v in pts.items()}
                                             for k, pts in align.items()} if align else None)


# --------------------------------------------------------------------------- calibrate


def _check_rig_cameras(names: Sequence[str], rig: Rig, where: str) -> None:
    unknown = [c for c in names if c not in rig.cameras]
    if unknown:
        raise MultiviewError(
            f"{where}: cameras {unknown} are not cameras of rig {rig.name!r} (it has "
            f"{list(rig.cameras)}). Name each camera's file after the rig's camera (e.g. "
            f"{rig.cameras[0]}.mp4), or put the folder under the right rig.")


def _floor_images(path: Path) -> dict[str, np.ndarray]:
    import cv2

    floor = path / FLOOR_FOLDER
    if not floor.is_dir():
        return {}
    out = {}
    for file in sorted(floor.iterdir()):
        if file.is_file() and _visible(file) and file.suffix.lower() in IMAGE_SUFFIXES:
            image = cv2.imread(str(file))
            if image is None:
                raise MultiviewError(f"{file}: unreadable image; copy it in again.")
            out[file.stem] = image
    return out


def calibrate_folder(folder: CalibrationFolder, rig: Rig, *, seed: int = 0) -> RigCalibration:
    """The calibration of one dated folder: board videos calibrated (aniposelib), or an
    Anipose toml / DeepLabCut 3D project imported unchanged; then the world axes from
    ``floor/`` images, or from ``align:`` points in calibration.yaml, when given.

    Parameters
    ----------
    folder : CalibrationFolder
    rig : Rig
        The registry rig: every camera of the calibration must be one of its cameras.

    Raises
    ------
    MultiviewError
        No (or more than one) source, a camera the rig lacks, a board never found in a
        camera's video (naming it), a missing board definition.
    """
    path = folder.path
    if folder.rig != rig.name:
        raise MultiviewError(f"{path}: folder of rig {folder.rig!r}, given rig {rig.name!r}.")
    source = folder_source(path)
    settings = read_calibration_settings(path)
    if source == "anipose_toml":
        calibration = load_anipose_toml(path / ANIPOSE_FILE)
    elif source == "dlc_3d":
        if not settings.dlc_square_mm:
            raise MultiviewError(f"{path}: a DeepLabCut 3D calibration is in squares; give the "
                                 f"square's side in {SETTINGS_FILE} (`dlc_3d: {{square_mm: "
                                 "30}`).")
        calibration = load_dlc_3d(path, settings.dlc_square_mm, settings.dlc_cameras)
    else:
        if settings.board is None:
            raise MultiviewError(f"{path}: board videos need {SETTINGS_FILE} naming the printed "
                                 "board, e.g. `board: {kind: charuco, squares: [7, 5], "
                                 "square_mm: 40, marker_mm: 30, dict: DICT_4X4_50}`.")
        videos = _videos(path)
        _check_rig_cameras(list(videos), rig, str(path))
        ordered = {c: videos[c] for c in rig.cameras if c in videos}
        calibration = calibrate_videos(ordered, settings.board,
                                       min_detections=settings.min_detections, seed=seed)
    _check_rig_cameras(calibration.camera_names, rig,
                       str(calibration.source_files[0] if calibration.source_files else path))
    floor = _floor_images(path)
    if floor and settings.align_points:
        raise MultiviewError(f"{path}: both {FLOOR_FOLDER}/ images and `align:` points in "
                             f"{SETTINGS_FILE} set the world axes; keep one of them.")
    if settings.align_points:
        _check_rig_cameras(sorted({c for pts in settings.align_points.values() for c in pts}),
                           rig, str(path / SETTINGS_FILE))
        calibration = align_to_image_points(calibration, settings.align_points,
                                            source=str(path / SETTINGS_FILE))
    if floor:
        _check_rig_cameras(list(floor), rig, str(path / FLOOR_FOLDER))
        calibration = align_to_board(calibration, floor, settings.board or calibration.board,
                                     source=str(path / FLOOR_FOLDER))
    return calibration


def write_toml_atomic(calibration: RigCalibration, path: str | Path) -> Path:
    """:meth:`RigCalibration.write_toml` to a temporary file beside ``path``, then renamed
    over it: a reader sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        calibration.write_toml(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def calibration_rows(calibration: RigCalibration, rig: str, date: dt.date, file: str | Path,
                     sha256: str) -> pd.DataFrame:
    """The ``camera_calibrations`` warehouse rows: one per camera.

    Columns: ``calibration_id, rig, date, camera, source, width_px, height_px,
    focal_length_px, cx_px, cy_px, k1, reprojection_error_px, axes, file, sha256,
    source_files``.
    """
    rows = []
    sizes = calibration.image_sizes
    for cam in calibration.group.cameras:
        name = cam.get_name()
        matrix = np.asarray(cam.get_camera_matrix(), dtype=np.float64)
        dist = np.ravel(cam.get_distortions())
        size = sizes.get(name)
        err = calibration.reprojection_error_px.get(name)
        rows.append({
            "calibration_id": calibration_key(rig, date), "rig": rig,
            "date": date.isoformat(), "camera": name, "source": calibration.source,
            "width_px": size[0] if size else None, "height_px": size[1] if size else None,
            "focal_length_px": float((matrix[0, 0] + matrix[1, 1]) / 2),
            "cx_px": float(matrix[0, 2]), "cy_px": float(matrix[1, 2]),
            "k1": float(dist[0]) if dist.size else None,
            "reprojection_error_px": float(err) if err is not None else None,
            "axes": calibration.axes, "file": str(file), "sha256": sha256,
            "source_files": ", ".join(calibration.source_files)})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- sessions


@dataclass(frozen=True)
class CalibrationStore:
    """Where the rigs' dated calibrations are, and where the calibrations made from them go.

    Attributes
    ----------
    sources : Path
        ``<data root>/calibrations`` (``<rig>/<YYYY-MM-DD>/`` folders).
    results : Path or None
        ``<warehouse root>/calibrations``: ``<rig>/<YYYY-MM-DD>/calibration.toml`` written by
        the ``camera_calibrations`` asset.
    """

    sources: Path
    results: Path | None = None

    @classmethod
    def at(cls, data_root: str | Path, warehouse_root: str | Path | None = None
           ) -> CalibrationStore:
        """The store of a data root and a warehouse root (both folders ``calibrations/``)."""
        return cls(Path(data_root) / CALIBRATIONS_DIR,
                   Path(warehouse_root) / CALIBRATIONS_DIR if warehouse_root else None)

    def folders(self, rig: str) -> list[CalibrationFolder]:
        """The rig's calibration folders, oldest first."""
        found, _ = find_calibration_folders(self.sources)
        return [f for f in found if f.rig == rig]

    def folder(self, rig: str, date: dt.date, where: str = "") -> CalibrationFolder:
        """The folder ``<sources>/<rig>/<YYYY-MM-DD>``; MultiviewError when absent."""
        path = self.sources / rig / date.isoformat()
        if not path.is_dir():
            have = [f.date.isoformat() for f in self.folders(rig)]
            raise MultiviewError(f"{where + ': ' if where else ''}{path}: no calibration of rig "
                                 f"{rig!r} on {date}; its calibrations: {have or 'none'} "
                                 "(docs/3d.md, section 2).")
        return CalibrationFolder(rig, date, path)

    def result_path(self, rig: str, date: dt.date) -> Path:
        """Where the asset writes the calibration of ``rig`` on ``date``."""
        if self.results is None:
            raise MultiviewError("no warehouse folder for calibrations was given.")
        return self.results / rig / date.isoformat() / ANIPOSE_FILE

    def latest(self, rig: str, on: dt.date) -> CalibrationFolder | None:
        """The rig's latest calibration at or before ``on`` (None if none)."""
        earlier = [f for f in self.folders(rig) if f.date <= on]
        return earlier[-1] if earlier else None

    def load(self, folder: CalibrationFolder, where: str) -> tuple[RigCalibration, Path]:
        """A dated calibration for a session: the asset's stored toml; an import (toml,
        DLC 3D project) is read from its folder when not materialized yet (unless the
        folder sets world axes: floor images or ``align:`` points); board videos (or such
        an import) not materialized yet are an error naming the partition (a session
        never calibrates on its own: the calibration is one asset, checked, shared by all
        the rig's sessions)."""
        if self.results is not None:
            stored = self.result_path(folder.rig, folder.date)
            if stored.is_file():
                return load_anipose_toml(stored), stored
        source = folder.source
        settings = read_calibration_settings(folder.path)
        aligned = (folder.path / FLOOR_FOLDER).is_dir() or settings.align_points
        if source == "anipose_toml" and not aligned:
            return load_anipose_toml(folder.path / ANIPOSE_FILE), folder.path / ANIPOSE_FILE
        if source == "dlc_3d" and not aligned:
            if not settings.dlc_square_mm:
                raise MultiviewError(f"{where}: calibration {folder.path} is a DeepLabCut 3D "
                                     f"project; give its square's side in {SETTINGS_FILE} "
                                     "(`dlc_3d: {square_mm: 30}`).")
            calib = load_dlc_3d(folder.path, settings.dlc_square_mm, settings.dlc_cameras)
            return calib, Path(calib.source_files[0])
        what = "board videos" if source not in ("anipose_toml", "dlc_3d") else (
            "an import with world axes to set")
        raise CalibrationPending(
            f"{where}: the rig's calibration {folder.path} ({what}) has not been "
            f"calibrated yet: materialize camera_calibrations partition {folder.key} (the "
            "calibrations sensor requests it once the folder has settled; or in the UI: "
            "Assets > camera_calibrations > Materialize), then re-run this recording.",
            key=folder.key, result_path=self.result_path(folder.rig, folder.date)
            if self.results is not None else None)

    def for_session(self, rig: Rig, named: Any, session_date: dt.date | None,
                    session_dir: Path, where: str) -> tuple[RigCalibration, Path] | None:
        """The calibration a session uses, or None when neither the session names one nor
        the rig has dated calibrations (the caller then falls back to the registry's).

        ``named`` is session.yaml's ``calibration:``: a date (``2026-01-05``: the rig's
        calibration of that day), a path relative to the session folder (an Anipose toml,
        or a DeepLabCut 3D project folder with ``calibration.yaml``), or None (the rig's
        latest calibration at or before ``session_date``).
        """
        day = _as_date(named)
        if day is not None:
            return self.load(self.folder(rig.name, day, where), where)
        if named:
            return load_named_calibration(session_dir / str(named), where)
        folders = self.folders(rig.name)
        if not folders:
            return None
        if session_date is None:
            raise MultiviewError(f"{where}: the session has no start_time to choose rig "
                                 f"{rig.name!r}'s calibration by date; name one in "
                                 "session.yaml (`calibration: YYYY-MM-DD`).")
        latest = self.latest(rig.name, session_date)
        if latest is None:
            raise MultiviewError(
                f"{where}: rig {rig.name!r} has no calibration at or before the session's "
                f"date {session_date} (its calibrations: "
                f"{[f.date.isoformat() for f in folders]}); calibrate the rig that day, or "
                "name a calibration in session.yaml (`calibration: YYYY-MM-DD`).")
        return self.load(latest, where)


def load_named_calibration(path: Path, where: str) -> tuple[RigCalibration, Path]:
    """A calibration named by path: an Anipose toml file, or a DeepLabCut 3D project (or
    its ``camera_matrix/`` folder) with ``calibration.yaml`` giving ``dlc_3d: square_mm``.
    """
    if path.is_file() and path.suffix.lower() == ".toml":
        return load_anipose_toml(path), path
    project = path.parent if path.name in (DLC_FOLDER, "stereo_params.pickle") else path
    if project.name == DLC_FOLDER:
        project = project.parent
    if any(p.is_file() for p in (project / DLC_FOLDER / "stereo_params.pickle",
                                 project / "stereo_params.pickle")):
        settings = read_calibration_settings(project)
        if not settings.dlc_square_mm:
            raise MultiviewError(f"{where}: calibration {path} is a DeepLabCut 3D project; give "
                                 f"its square's side in {project / SETTINGS_FILE} "
                                 "(`dlc_3d: {square_mm: 30}`).")
        calib = load_dlc_3d(path, settings.dlc_square_mm, settings.dlc_cameras)
        return calib, Path(calib.source_files[0])
    raise MultiviewError(f"{where}: calibration {path} does not exist (or is neither an "
                         "Anipose .toml nor a DeepLabCut 3D project folder); fix the path.")
