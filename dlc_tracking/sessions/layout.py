"""Session layout, the session.yaml schema, recording ids and discovery on disk.

A session is ``<data root>/<subject>/<session>/`` holding a ``session.yaml``, one or more
videos, an optional per-frame timestamps file per video (``<video stem>.timestamps.csv``)
and optionally ``dlc_<video stem>/`` with DeepLabCut outputs produced by hand.
One video of a session is one *recording*, the unit the platform processes.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dlc_tracking.errors import SessionError
from dlc_tracking.imaging.config import ImagingConfig
from dlc_tracking.io.times_files import read_times_file
from dlc_tracking.io.video import VIDEO_SUFFIXES, is_video_file
from dlc_tracking.io.yaml_files import SAFE_LOADER, read_yaml_mapping

SESSION_FILE = "session.yaml"
CALIBRATIONS_FOLDER = "calibrations"
"""<data root>/calibrations/<rig>/<YYYY-MM-DD>/: the rigs' calibrations, not a subject."""
TIMESTAMPS_SUFFIX = ".timestamps.csv"
MANUAL_OUTPUT_PREFIX = "dlc_"
# A session still being copied carries one of these; it is not taken until they are gone.
PARTIAL_COPY_MARKERS = (".copying", "COPYING", ".incomplete")
RECORDING_ID_SEPARATOR = "__"
_KEY_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")
PARTITION_KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


Point = tuple[float, float]


class Arena(BaseModel):
    """The arena: its real size, and optionally its outline in the image (pixels).

    With an outline (``corners_px``, ``bounds_px`` or ``center_px`` + ``radius_px``) the
    calibration comes from the arena itself; with the size only, from the tracked extent
    (a flagged fallback). See docs/sessions.md.
    """

    model_config = ConfigDict(extra="forbid")

    shape: Literal["square", "rectangle", "circle"] = "square"
    width_cm: float = Field(gt=0, description="Arena width (x), or diameter for a circle")
    height_cm: float | None = Field(default=None, gt=0, description="Arena height (y)")
    corners_px: list[Point] | None = Field(
        default=None, min_length=4, max_length=4,
        description="The four corners of the arena floor in image pixels [x, y], any order")
    bounds_px: tuple[float, float, float, float] | None = Field(
        default=None, description="[left, top, right, bottom] of an axis-aligned rectangle (px)")
    center_px: Point | None = Field(default=None, description="Circle centre [x, y] (px)")
    radius_px: float | None = Field(default=None, gt=0, description="Circle radius (px)")

    @model_validator(mode="after")
    def _square_sides(self) -> Arena:
        if self.height_cm is None:
            self.height_cm = self.width_cm
        outlines = [self.corners_px is not None, self.bounds_px is not None,
                    self.center_px is not None or self.radius_px is not None]
        if sum(outlines) > 1:
            raise ValueError("give one arena outline: corners_px, bounds_px, or center_px "
                             "with radius_px")
        if (self.center_px is None) != (self.radius_px is None):
            raise ValueError("a circle outline needs both center_px and radius_px")
        if self.center_px is not None and self.shape != "circle":
            raise ValueError("center_px/radius_px describe a circle: set shape: circle")
        return self

    @property
    def has_outline(self) -> bool:
        return (self.corners_px is not None or self.bounds_px is not None
                or self.center_px is not None)

    def geometry(self, source: str):
        """The outline and size as a :class:`~dlc_tracking.tracking.calibration.ArenaGeometry`."""
        from dlc_tracking.tracking.calibration import ArenaGeometry

        return ArenaGeometry(
            shape=self.shape, width_cm=self.width_cm, height_cm=float(self.height_cm),
            corners_px=tuple(tuple(p) for p in self.corners_px) if self.corners_px else None,
            bounds_px=tuple(self.bounds_px) if self.bounds_px else None,
            center_px=tuple(self.center_px) if self.center_px else None,
            radius_px=self.radius_px, source=source)


class Assignment(BaseModel):
    """Which registered model and state-vector method process a recording (RecordingDLC)."""

    model_config = ConfigDict(extra="forbid")

    model: str
    method: str


class VideoEntry(BaseModel):
    """One video of the session; the frame facts serve a video archived elsewhere."""

    model_config = ConfigDict(extra="forbid")

    file: str
    timestamps: str | None = None
    n_frames: int | None = Field(default=None, gt=0, description="Frames (video not here)")
    fps: float | None = Field(default=None, gt=0, description="Frame rate of this video")
    width_px: int | None = Field(default=None, gt=0, description="Frame width (video not here)")
    height_px: int | None = Field(default=None, gt=0,
                                  description="Frame height (video not here)")


class CameraEntry(BaseModel):
    """One camera's video of a multi-camera session (``cameras: {top: {file, timestamps}}``)."""

    model_config = ConfigDict(extra="forbid")

    file: str
    timestamps: str | None = Field(default=None, description="Per-camera frame times (s), "
                                   "one per frame, on the session's clock")


class SessionMetadata(BaseModel):
    """The schema of ``session.yaml``; see ``docs/sessions.md`` for a complete example."""

    model_config = ConfigDict(extra="forbid")

    tracking_type: str = Field(description="openfield, wheel, linear_track, ...")
    start_time: datetime | None = Field(
        default=None, description="ISO 8601 with time zone; may be left out when `imaging:` "
        "names ScanImage tifs (the acquisition start is then the start)")
    camera_view: Literal["above", "below"] = Field(
        description="Camera above the arena, or below it (the image is mirrored left/right)"
    )
    arena: Arena | None = None
    rig: str | None = Field(default=None, description="A rig of the registry (`rigs:`) whose "
                            "arena outline calibrates this session")
    pixels_per_cm: float | None = Field(default=None, gt=0)
    fps: float | None = Field(default=None, gt=0, description="Frame rate of the videos when "
                              "the container's is wrong")
    processing: str | None = Field(default=None, description="Processing parameter set "
                                   "(registry `processing:`); default: the tracking type's")
    assignment: Assignment | None = None
    videos: list[VideoEntry] | None = None
    cameras: dict[str, str | CameraEntry] | None = Field(
        default=None, description="Multi-camera session: camera -> video file (or "
        "{file, timestamps}); one recording triangulated in 3D (docs/3d.md)")
    calibration: str | None = Field(
        default=None, description="Calibration of a multi-camera session: a date "
        "(YYYY-MM-DD: the rig's calibration of that day), or a path relative to the session "
        "folder (Anipose calibration.toml, or a DeepLabCut 3D project folder); default: the "
        "rig's latest calibration at or before the session's date (docs/3d.md)")
    imaging: ImagingConfig | None = Field(default=None, description="The session's "
                                          "imaging (docs/imaging.md)")
    individuals: dict[str, str] | None = Field(
        default=None, description="Multi-animal recordings: track (DLC individual, e.g. "
        "mus1) -> subject id (e.g. M12); unmapped tracks stay anonymous "
        "(docs/multi-animal.md)")
    individual_prefixes: dict[str, str] | None = Field(
        default=None, description="Multi-animal files without an `individuals` level: "
        "body-part name prefix (B in B_nose) -> individual (docs/multi-animal.md)")
    notes: str | None = None

    @model_validator(mode="after")
    def _cameras_or_videos(self) -> SessionMetadata:
        if self.cameras is not None and self.videos is not None:
            raise ValueError("give either `cameras:` (one multi-camera take) or `videos:` "
                             "(separate recordings), not both")
        if self.cameras is not None and len(self.cameras) < 2:
            raise ValueError(f"`cameras:` names {len(self.cameras)} camera(s); a "
                             "multi-camera session needs 2 or more (one camera: use `videos:` "
                             "or just drop the video in)")
        return self

    def camera_entries(self) -> dict[str, CameraEntry]:
        """``cameras:`` as camera -> :class:`CameraEntry` (empty for one camera)."""
        return {str(cam): CameraEntry(file=e) if isinstance(e, str) else e
                for cam, e in (self.cameras or {}).items()}

    @field_validator("calibration", mode="before")
    @classmethod
    def _date_as_text(cls, value: object) -> object:
        # YAML reads `calibration: 2026-01-05` as a date: keep it as its ISO text
        return value.isoformat() if isinstance(value, date) else value

    @field_validator("start_time", mode="before")
    @classmethod
    def _iso_8601(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value)
            except ValueError as exc:
                raise ValueError(
                    f"start_time {value!r} is not ISO 8601; write e.g. '2026-01-05T10:00:00+01:00'"
                ) from exc
        return value

    @field_validator("start_time")
    @classmethod
    def _has_time_zone(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError(
                f"start_time {value.isoformat()} has no time zone; add one, e.g. '+01:00' or 'Z'"
            )
        return value

    @model_validator(mode="after")
    def _start_known(self) -> SessionMetadata:
        if self.start_time is None and not (self.imaging and self.imaging.scanimage):
            raise ValueError("start_time is required (ISO 8601 with time zone), unless "
                             "`imaging: scanimage:` names the tifs whose acquisition start "
                             "gives it")
        return self

    @field_validator("individuals", "individual_prefixes")
    @classmethod
    def _one_per_subject(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return value
        seen: dict[str, str] = {}
        for key, target in value.items():
            if not str(key).strip() or not str(target).strip():
                raise ValueError(f"empty name in {value}; write `track: subject` pairs")
            if target in seen:
                raise ValueError(f"{seen[target]!r} and {key!r} both map to {target!r}; one "
                                 "animal is one track: give each its own subject id (or "
                                 "leave a track out to keep it anonymous)")
            seen[target] = key
        return value

    @field_validator("tracking_type")
    @classmethod
    def _snake_case(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", value):
            raise ValueError(f"tracking_type {value!r} must be snake_case, e.g. 'openfield'")
        return value


SUBJECT_CALIBRATION_FILE = "calibration.yaml"


class SubjectCalibration(BaseModel):
    """``<subject>/calibration.yaml``: the arena every session of the subject was filmed in."""

    model_config = ConfigDict(extra="forbid")

    arena: Arena
    notes: str | None = None


def validation_problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
                     for err in exc.errors())


def load_subject_calibration(path: Path) -> SubjectCalibration | None:
    """The shared arena of ``<subject>/calibration.yaml``; None when there is no such file."""
    if not path.is_file():
        return None
    raw = read_yaml_mapping(path, SessionError, missing=f"{path} is missing.",
                            not_mapping=f"{path} must hold a mapping with `arena:`.")
    try:
        cal = SubjectCalibration.model_validate(raw)
    except ValidationError as exc:
        raise SessionError(f"{path} is invalid: {validation_problems(exc)}. See "
                           "docs/sessions.md (Calibration).") from exc
    if not cal.arena.has_outline:
        raise SessionError(f"{path}: the arena has no outline in pixels (corners_px, "
                           "bounds_px or center_px + radius_px); a shared calibration file "
                           "exists to give it. See docs/sessions.md (Calibration).")
    return cal


def load_session_metadata(path: Path) -> SessionMetadata:
    """Read and validate a session.yaml.

    Raises
    ------
    SessionError
        Missing file, malformed YAML or invalid content; the message names the file, the
        key and the fix.
    """
    raw = read_yaml_mapping(
        path, SessionError,
        missing=f"{path} is missing: every session folder needs a session.yaml "
        "(see docs/sessions.md for a complete example).",
        not_mapping=f"{path} must hold a mapping of keys (tracking_type, start_time, ...).")
    try:
        return SessionMetadata.model_validate(raw)
    except ValidationError as exc:
        raise SessionError(f"{path} is invalid: {validation_problems(exc)}. See "
                           "docs/sessions.md.") from exc


@functools.lru_cache(maxsize=4096)  # subjects and video stems repeat across sessions
def sanitize_key_part(text: str) -> str:
    """Make one path component safe for a Dagster partition key (ASCII letters, digits, _ . -).

    Letters with accents are transliterated first (Unicode NFKD, combining marks dropped:
    ``Ö`` -> ``O``, ``é`` -> ``e``, ``ß`` -> ``ss``), then every run of other characters
    becomes one ``-``; leading/trailing ``-`` and ``.`` are stripped and ``__`` (the
    separator) is shortened to ``_``. ``Maus Ö1`` -> ``Maus-O1``.
    """
    cleaned = _KEY_CHARS.sub("-", _ascii_letters(text)).strip("-.")
    cleaned = re.sub(r"_{2,}", "_", cleaned)  # "__" is reserved as the separator
    return cleaned or "x"


# Letters NFKD does not decompose into an ASCII base letter.
_TRANSLITERATION = str.maketrans({"ß": "ss", "ẞ": "SS", "æ": "ae", "Æ": "AE", "ø": "o",
                                  "Ø": "O", "œ": "oe", "Œ": "OE", "đ": "d", "Đ": "D",
                                  "ł": "l", "Ł": "L", "þ": "th", "Þ": "TH", "ı": "i"})


def _ascii_letters(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.translate(_TRANSLITERATION))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def recording_id(subject: str, session: str, video_stem: str) -> str:
    """Stable, human-readable id of one video of one session.

    ``<subject>__<session>__<video stem>`` with every character outside letters, digits,
    ``_ . -`` replaced by ``-``: valid as a Dagster dynamic partition key and in URLs.
    """
    return RECORDING_ID_SEPARATOR.join(
        sanitize_key_part(part) for part in (subject, session, video_stem)
    )


@dataclass(frozen=True)
class CameraVideo:
    """One camera's video of a multi-camera recording."""

    camera: str
    video_path: Path
    timestamps_path: Path | None
    has_video: bool = True

    @property
    def video_stem(self) -> str:
        return self.video_path.stem

    @property
    def manual_output_dir(self) -> Path:
        return self.video_path.parent / f"{MANUAL_OUTPUT_PREFIX}{self.video_stem}"


@dataclass(frozen=True)
class Recording:
    """One video of one session (or one multi-camera take), as found on disk."""

    recording_id: str
    subject: str
    session: str
    session_dir: Path
    video_path: Path
    timestamps_path: Path | None
    # False for a recording declared by its DLC outputs whose video is archived elsewhere
    # (video_path is then where the video would be); such a recording is ingest-only.
    has_video: bool = True
    stem: str | None = None  # the video stem when video_path has no suffix to strip
    # A multi-camera take (session.yaml `cameras:`): every camera's video; video_path is
    # then the first camera's. Empty for a single-camera recording.
    cameras: tuple[CameraVideo, ...] = ()

    @property
    def is_multi_camera(self) -> bool:
        return bool(self.cameras)

    @property
    def video_stem(self) -> str:
        return self.stem or self.video_path.stem

    @property
    def session_yaml(self) -> Path:
        return self.session_dir / SESSION_FILE

    @property
    def manual_output_dir(self) -> Path:
        return self.session_dir / f"{MANUAL_OUTPUT_PREFIX}{self.video_stem}"

    @property
    def source(self) -> str:
        """How the recording's predictions come in: ``outputs_only`` (no video here),
        ``manual`` (DLC outputs in dlc_<stem>/) or ``inference``."""
        if self.cameras:
            if all(_holds_predictions(c.manual_output_dir, _CAMERA_PREDICTION_SUFFIXES)
                   for c in self.cameras):
                return "manual"
            return "outputs_only" if not all(c.has_video for c in self.cameras) else "inference"
        if not self.has_video:
            return "outputs_only"
        return "manual" if _holds_predictions(self.manual_output_dir) else "inference"


_PREDICTION_SUFFIXES = (".h5", ".csv", ".nwb")
_CAMERA_PREDICTION_SUFFIXES = (*_PREDICTION_SUFFIXES, ".slp")  # a take's cameras: also SLEAP


def _holds_predictions(folder: Path, suffixes: tuple[str, ...] = _PREDICTION_SUFFIXES
                       ) -> bool:
    try:
        with os.scandir(folder) as entries:
            return any(e.name.lower().endswith(suffixes)
                       and not e.name.startswith(".") for e in entries)
    except OSError:
        return False


@dataclass
class Discovery:
    """Recordings found under a data root, plus what was skipped and why."""

    recordings: list[Recording] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _session_videos(session_dir: Path, metadata_videos: list[VideoEntry] | None) -> list[tuple]:
    if metadata_videos:
        return [
            (session_dir / v.file, session_dir / v.timestamps if v.timestamps else None)
            for v in metadata_videos
        ]
    with os.scandir(session_dir) as entries:
        names = sorted(e.name for e in entries if e.is_file() and is_video_file(Path(e.name)))
    out = []
    for name in names:
        video = session_dir / name
        ts = session_dir / (video.stem + TIMESTAMPS_SUFFIX)
        out.append((video, ts if ts.is_file() else None))
    return out


def _listed_videos(session_yaml: Path) -> list[VideoEntry] | None:
    """The `videos:` list of a session.yaml, read leniently (full validation is later)."""
    try:
        text = session_yaml.read_text()
        # Most session files have no `videos:` list; parsing YAML costs ~0.3 ms per file,
        # which a sensor tick over thousands of sessions cannot afford.
        if "videos" not in text:
            return None
        raw = yaml.load(text, Loader=SAFE_LOADER)
        entries = raw.get("videos") if isinstance(raw, dict) else None
        return [VideoEntry.model_validate(v) for v in entries] if entries else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValidationError, AttributeError,
            TypeError):
        return None


MULTI_CAMERA_ID = "multicam"


def _listed_cameras(session_yaml: Path) -> tuple[dict[str, CameraEntry], str | None] | None:
    """``(cameras, rig)`` of a multi-camera session.yaml, read leniently (full validation is
    later); None when it names no cameras."""
    try:
        text = session_yaml.read_text()
        if "cameras" not in text:  # see _listed_videos: most files have none
            return None
        raw = yaml.load(text, Loader=SAFE_LOADER)
        entries = raw.get("cameras") if isinstance(raw, dict) else None
        if not isinstance(entries, dict) or not entries:
            return None
        cams = {str(c): CameraEntry(file=e) if isinstance(e, str) else
                CameraEntry.model_validate(e) for c, e in entries.items()}
        rig = raw.get("rig")
        return cams, str(rig) if isinstance(rig, str) and rig else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValidationError, AttributeError,
            TypeError):
        return None


def _camera_recording(subject: str, session_dir: Path, cameras: dict[str, CameraEntry],
                      rig: str | None, output_dirs: dict[str, Path], problems: list[str]
                      ) -> list[Recording]:
    """The one recording of a multi-camera session (all its cameras), or none with a problem."""
    videos, missing = [], []
    for cam, entry in cameras.items():
        video = session_dir / entry.file
        ts = session_dir / entry.timestamps if entry.timestamps else None
        present = video.is_file()
        if not present and video.stem not in output_dirs and not _holds_predictions(
                session_dir / f"{MANUAL_OUTPUT_PREFIX}{video.stem}", _CAMERA_PREDICTION_SUFFIXES):
            missing.append(f"{cam}: {entry.file}")
        videos.append(CameraVideo(cam, video, ts, has_video=present))
    if missing:
        problems.append(
            f"{session_dir / SESSION_FILE}: videos listed under `cameras:` do not exist "
            f"({', '.join(missing)}); fix the names, copy the files, or put each camera's DLC "
            f"outputs in {MANUAL_OUTPUT_PREFIX}<video stem>/ to ingest them without it.")
        return []
    rid = recording_id(subject, session_dir.name, rig or MULTI_CAMERA_ID)
    first = videos[0]
    return [Recording(rid, subject, session_dir.name, session_dir, first.video_path,
                      first.timestamps_path, has_video=all(v.has_video for v in videos),
                      stem=rig or MULTI_CAMERA_ID, cameras=tuple(videos))]


def session_dirs(data_root: Path, problems: list[str]) -> Iterator[tuple[str, str, str]]:
    """``(subject, session, folder path)`` of every session folder, in name order.

    Hidden folders (``.x``, ``_x``, ``~x``) and the rigs' calibrations
    (``<data root>/calibrations/``, docs/3d.md) are skipped; unreadable folders are
    reported in ``problems`` and skipped.
    """
    try:
        subjects = [s for s in _subfolders(data_root) if s != CALIBRATIONS_FOLDER]
    except OSError as exc:
        problems.append(f"cannot read data root {data_root}: {exc}")
        return
    for subject in subjects:
        try:
            sessions = _subfolders(data_root / subject)
        except OSError as exc:
            problems.append(f"cannot read {data_root / subject}: {exc}")
            continue
        base = os.path.join(data_root, subject)
        for session in sessions:
            yield subject, session, os.path.join(base, session)


def session_recordings(subject: str, session_dir: Path | str, problems: list[str]
                       ) -> list[Recording]:
    """The recordings of one session folder (one per video); what is wrong goes to problems.

    A ``dlc_<stem>/`` folder holding predictions with no video ``<stem>.*`` beside it (or a
    ``videos:`` entry whose file is absent) is a recording without its video: it is
    ingested from its outputs only.
    """
    session_dir = Path(session_dir)
    multi = _listed_cameras(session_dir / SESSION_FILE)
    if multi is not None:
        try:
            output_dirs = _output_folders(session_dir)
        except OSError as exc:
            problems.append(f"cannot read {session_dir}: {exc}")
            return []
        return _camera_recording(subject, session_dir, multi[0], multi[1], output_dirs,
                                 problems)
    try:
        listed = _listed_videos(session_dir / SESSION_FILE)
        videos = _session_videos(session_dir, listed)
        output_dirs = _output_folders(session_dir)
    except OSError as exc:
        problems.append(f"cannot read {session_dir}: {exc}")
        return []
    recordings = []
    stems = set()
    for video, timestamps in videos:
        stems.add(video.stem)
        rid = recording_id(subject, session_dir.name, video.stem)
        if video.is_file():
            recordings.append(Recording(rid, subject, session_dir.name, session_dir, video,
                                        timestamps))
        elif video.stem in output_dirs:
            recordings.append(Recording(rid, subject, session_dir.name, session_dir, video,
                                        timestamps, has_video=False))
        else:
            problems.append(
                f"{session_dir / SESSION_FILE}: video {video.name} listed under "
                "`videos:` does not exist; fix the name, copy the file, or put its DLC "
                f"outputs in {MANUAL_OUTPUT_PREFIX}{video.stem}/ to ingest them without it.")
    if listed is None:  # outputs whose video is archived elsewhere
        for stem in sorted(set(output_dirs) - stems):
            rid = recording_id(subject, session_dir.name, stem)
            recordings.append(Recording(rid, subject, session_dir.name, session_dir,
                                        session_dir / stem, None, has_video=False, stem=stem))
    if not recordings and not problems_for(session_dir, problems):
        problems.append(
            f"{session_dir}: no video file ({', '.join(VIDEO_SUFFIXES)}) and no DLC outputs "
            f"folder ({MANUAL_OUTPUT_PREFIX}<video stem>/) in this session; copy the video "
            "in, or remove the folder.")
    return recordings


def problems_for(session_dir: Path, problems: list[str]) -> bool:
    """True when a problem about this session folder was already reported."""
    prefix = str(session_dir)
    return any(p.startswith(prefix) for p in problems)


def _output_folders(session_dir: Path) -> dict[str, Path]:
    """``{video stem: folder}`` of the ``dlc_<stem>/`` folders holding predictions."""
    out = {}
    with os.scandir(session_dir) as entries:
        for e in entries:
            if (e.name.startswith(MANUAL_OUTPUT_PREFIX) and e.is_dir()
                    and _holds_predictions(Path(e.path))):
                out[e.name[len(MANUAL_OUTPUT_PREFIX):]] = Path(e.path)
    return out


def refuse_collisions(found: list[tuple[str, str]], problems: list[str]) -> set[str]:
    """Recording ids found more than once, each reported once in ``problems``.

    Parameters
    ----------
    found : list of (recording id, where it was found)
        In discovery order; ``where`` names the video (or its session folder).
    problems : list of str
        Receives one message per extra occurrence.

    Returns
    -------
    set of str
        The colliding ids: none of their recordings is processed until they differ.
    """
    first: dict[str, str] = {}
    collided: set[str] = set()
    for rid, where in found:
        if rid in first:
            problems.append(
                f"recording id {rid!r} of {where} collides with {first[rid]}; "
                "rename one of the folders or videos so their names differ in letters "
                "or digits. Neither is processed until then."
            )
            collided.add(rid)
        else:
            first[rid] = where
    return collided


def discover_recordings(data_root: Path) -> Discovery:
    """Find every recording under ``<data root>/<subject>/<session>/``.

    Never raises for one bad folder: unreadable folders and id collisions are reported in
    ``Discovery.problems`` and the rest is returned. Hidden folders (``.x``) are ignored.
    A session without a session.yaml is still returned (its recording then fails with a
    clear message instead of being silently ignored).
    """
    found = Discovery()
    recordings = []
    for subject, _session, session_dir in session_dirs(data_root, found.problems):
        recordings.extend(session_recordings(subject, session_dir, found.problems))
    collided = refuse_collisions([(r.recording_id, str(r.video_path)) for r in recordings],
                                 found.problems)
    found.recordings = [r for r in recordings if r.recording_id not in collided]
    return found


def closest_recording_ids(rid: str, known: list[str], n: int = 3) -> list[str]:
    """The ids most like a mistyped one (for "did you mean ...?")."""
    import difflib

    return difflib.get_close_matches(rid, known, n=n, cutoff=0.6)


def find_recording(data_root: Path, rid: str) -> Recording:
    """The recording with this id, or a SessionError saying why it cannot be used."""
    found = discover_recordings(data_root)
    for rec in found.recordings:
        if rec.recording_id == rid:
            return rec
    collisions = [p for p in found.problems if repr(rid) in p]
    if collisions:
        raise SessionError(collisions[0])
    raise SessionError(
        f"Recording {rid} is not under {data_root} any more (its session folder or video was "
        "moved or removed). Put it back, or delete the partition in the UI."
    )


def partially_copied(session_dir: Path) -> bool:
    """True while a copy tool's marker says the session is still being copied."""
    return any((session_dir / marker).exists() for marker in PARTIAL_COPY_MARKERS)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def read_timestamps(path: Path, n_frames: int, rid: str = "") -> np.ndarray:
    """Per-frame timestamps in seconds (one per line; an optional header line is skipped).

    Raises
    ------
    SessionError
        Unreadable file, or a number of timestamps different from the video's frames.
    """
    try:
        values = read_times_file(path)
    except (OSError, ValueError) as exc:
        raise SessionError(
            f"{path} (recording {rid}) cannot be read as one timestamp in seconds per line: {exc}"
        ) from exc
    if len(values) != n_frames:
        raise SessionError(
            f"{path} (recording {rid}) has {len(values)} timestamps but the video has {n_frames} "
            "frames: export the timestamps of this video again, or remove the file to use "
            "the video's frame rate."
        )
    return values


def frame_times(n_frames: int, fps: float, timestamps: np.ndarray | None = None) -> np.ndarray:
    """Seconds of each frame from the recording start: the timestamps, else frame / fps."""
    if timestamps is not None:
        return np.asarray(timestamps, dtype=np.float64)
    return np.arange(n_frames, dtype=np.float64) / fps


def _hidden(name: str) -> bool:
    return name.startswith((".", "_", "~"))


def _subfolders(folder: Path) -> list[str]:
    """Names of the visible sub-folders, sorted (``os.scandir``: no stat per entry)."""
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if e.is_dir() and not _hidden(e.name))
