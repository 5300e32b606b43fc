"""Everything known about one recording before any tracking: session metadata, video
facts, frame times, its model + method assignment (the seed's RecordingDLC), its
processing parameter set and the arena that calibrates it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dlc_tracking.errors import RegistryError, SessionError
from dlc_tracking.io.video import VideoInfo, probe_video
from dlc_tracking.registry.registry_file import Registry
from dlc_tracking.sessions.frame_rate import dlc_metadata_fps, reconcile_fps
from dlc_tracking.sessions.layout import (
    SUBJECT_CALIBRATION_FILE,
    Recording,
    SessionMetadata,
    VideoEntry,
    file_sha256,
    frame_times,
    load_session_metadata,
    load_subject_calibration,
    read_timestamps,
)
from dlc_tracking.tracking.calibration import ArenaGeometry, calibrate_from_arena
from dlc_tracking.tracking.params import ProcessingParams


@dataclass
class RecordingInfo:
    recording: Recording
    metadata: SessionMetadata
    video: VideoInfo
    time_s: np.ndarray
    model_name: str
    method_name: str | None
    supported: bool
    status_reason: str
    session_yaml_sha: str
    params: ProcessingParams
    arena: ArenaGeometry | None = None  # the arena outline that calibrates it, if any
    fps_source: str = "video"  # video | session.yaml | dlc_metadata
    video_facts_source: str = "video"  # video | session.yaml | dlc_metadata
    start_time_source: str = "session.yaml"  # session.yaml | imaging (ScanImage epoch)
    promoted_from: str | None = None  # the model a promotion replaced (registry promotions:)
    fps_warnings: tuple[str, ...] = ()  # sources whose frame rate disagrees (frame_rate.py)

    @property
    def recording_id(self) -> str:
        return self.recording.recording_id

    @property
    def has_video(self) -> bool:
        return self.recording.has_video

    def row(self) -> dict:
        m, v, arena = self.metadata, self.video, self.metadata.arena
        return {
            "recording_id": self.recording_id, "subject": self.recording.subject,
            "session": self.recording.session, "video_path": str(self.recording.video_path),
            "video_file": self.recording.video_path.name, "tracking_type": m.tracking_type,
            "start_time": pd.Timestamp(m.start_time), "n_frames": v.n_frames, "fps": v.fps,
            "width_px": v.width_px, "height_px": v.height_px, "duration_s": v.duration_s,
            "codec": v.codec, "camera_view": m.camera_view, "pixels_per_cm": m.pixels_per_cm,
            "arena_shape": self.arena.shape if self.arena else (arena.shape if arena else None),
            "arena_width_cm": self.arena.width_cm if self.arena else (
                arena.width_cm if arena else None),
            "arena_height_cm": self.arena.height_cm if self.arena else (
                arena.height_cm if arena else None),
            "has_timestamps": self.recording.timestamps_path is not None,
            "model_name": self.model_name, "method_name": self.method_name,
            "session_yaml_sha": self.session_yaml_sha,
            "state_vector_status": "supported" if self.supported else "skipped",
            "status_reason": self.status_reason,
            "has_video": self.has_video, "source": self.recording.source,
            "fps_source": self.fps_source, "video_facts_source": self.video_facts_source,
            "params_name": self.params.name, "params_hash": self.params.param_hash,
            "arena_outline_source": self.arena.source if self.arena else None,
            "arena_outline_px": _outline_json(self.arena),
            "promoted_from": self.promoted_from,
        }


def _outline_json(arena: ArenaGeometry | None) -> str | None:
    if arena is None:
        return None
    outline = {k: getattr(arena, k) for k in ("corners_px", "bounds_px", "center_px",
                                              "radius_px") if getattr(arena, k) is not None}
    return json.dumps(outline)


def _video_entry(recording: Recording, meta: SessionMetadata) -> VideoEntry | None:
    for entry in meta.videos or []:
        if Path(entry.file).stem == recording.video_stem:
            return entry
    return None


def _archived_video_facts(recording: Recording, entry: VideoEntry | None) -> tuple[VideoInfo, str]:
    """Frame count, fps and size of a video that is not here: session.yaml, else DLC's
    metadata pickle(s) next to the outputs."""
    where = f"recording {recording.recording_id} (video {recording.video_path.name} is not in " \
            f"{recording.session_dir})"
    if entry is not None and None not in (entry.n_frames, entry.fps, entry.width_px,
                                          entry.height_px):
        return VideoInfo(str(recording.video_path), int(entry.n_frames), float(entry.fps),
                         int(entry.width_px), int(entry.height_px), "archived"), "session.yaml"
    from dlc_tracking.io.dlc_files import find_output_sets, read_metadata

    sets = find_output_sets(recording.manual_output_dir)
    # Several models' outputs of this video may lie side by side: count one model's sets.
    sets = [s for s in sets if s.scorer == sets[0].scorer] if sets else sets
    metas = [read_metadata(s.metadata_path) for s in sets if s.metadata_path is not None]
    if metas and len(metas) == len(sets):
        n = [m.get("nframes") for m in metas]
        fps = {m.get("fps") for m in metas}
        size = {(m.get("frame_width_px"), m.get("frame_height_px")) for m in metas}
        if None not in n and len(fps) == 1 and None not in fps and len(size) == 1 and None \
                not in next(iter(size)):
            w, h = next(iter(size))
            return VideoInfo(str(recording.video_path), int(sum(n)), float(fps.pop()), int(w),
                             int(h), "archived"), "dlc_metadata"
    raise SessionError(
        f"{where}: its frame count, frame rate and frame size are not known, so its DLC "
        "outputs cannot be checked: add them to its `videos:` entry in "
        f"{recording.session_yaml} (file: {recording.video_path.name}, n_frames: ..., fps: ..., "
        "width_px: ..., height_px: ...), or keep DLC's _meta.pickle next to each predictions "
        f"file in {recording.manual_output_dir}, or copy the video back.")


def resolve_arena(recording: Recording, meta: SessionMetadata, registry: Registry
                  ) -> ArenaGeometry | None:
    """The arena outline that calibrates a recording, first found of: session.yaml
    ``arena`` with an outline, session.yaml ``rig:`` (registry ``rigs:``),
    ``<subject>/calibration.yaml``. None: calibrate from pixels_per_cm or the tracked
    extent.

    Raises
    ------
    SessionError, RegistryError
        An unknown rig; an outline whose size disagrees with the session's ``arena``.
    """
    where = f"{recording.session_yaml} (recording {recording.recording_id})"
    if meta.arena is not None and meta.arena.has_outline:
        return meta.arena.geometry(f"{recording.session_yaml}")
    found = None
    if meta.rig is not None and (meta.rig in registry.rigs
                                 or meta.rig not in registry.camera_rigs):
        found = registry.rig(meta.rig, where).geometry(f"rig {meta.rig!r} ({registry.path})")
    else:
        path = recording.session_dir.parent / SUBJECT_CALIBRATION_FILE
        shared = load_subject_calibration(path)
        if shared is not None:
            found = shared.arena.geometry(str(path))
    if found is not None and meta.arena is not None and (
            abs(found.width_cm - meta.arena.width_cm) > 1e-9
            or abs(found.height_cm - float(meta.arena.height_cm)) > 1e-9):
        raise SessionError(
            f"{where}: arena {meta.arena.width_cm:g} x {meta.arena.height_cm:g} cm disagrees "
            f"with {found.source}'s {found.width_cm:g} x {found.height_cm:g} cm; remove the "
            "size from session.yaml (the outline's size is used) or fix one of them.")
    return found


def inspect_recording(recording: Recording, registry: Registry) -> RecordingInfo:
    """Validate a recording against its session.yaml, its video and the registry.

    Raises
    ------
    SessionError, VideoError, RegistryError
        With the file, the recording and what to do.
    """
    rid = recording.recording_id
    meta = load_session_metadata(recording.session_yaml)
    start_source = _start_from_imaging(recording, meta)
    entry = _video_entry(recording, meta)
    if recording.has_video:
        video, facts = probe_video(recording.video_path), "video"
    else:
        video, facts = _archived_video_facts(recording, entry)
    # One decision from every source that states a rate (docs/sessions.md, Frame rate):
    # a declared fps is used with or without the video, and any disagreement is said.
    declared = (entry.fps if entry is not None and entry.fps else None) or meta.fps
    rate = reconcile_fps(
        declared=declared, container=video.fps if recording.has_video else None,
        dlc_metadata=dlc_metadata_fps(recording.manual_output_dir),
        where=f"recording {rid}", declared_in=str(recording.session_yaml))
    if rate.fps != video.fps:
        video = VideoInfo(video.path, video.n_frames, rate.fps, video.width_px,
                          video.height_px, video.codec)
    fps_source = rate.source
    timestamps = (read_timestamps(recording.timestamps_path, video.n_frames, rid)
                  if recording.timestamps_path else None)
    ttype = registry.tracking_type(meta.tracking_type)
    where = f"{recording.session_yaml} (recording {rid})"
    model = meta.assignment.model if meta.assignment else None
    method = meta.assignment.method if meta.assignment else None
    params = registry.resolve_processing(meta.tracking_type, meta.processing, where)
    arena = None
    # What the session or the default names, before a promotion replaces it.
    assigned = model if model is not None and method is not None else (
        registry.defaults.get(meta.tracking_type) or (None, None))[0]
    if ttype.supported:
        model, method = registry.resolve_assignment(meta.tracking_type, model, method, where)
        if assigned is not None and model != assigned \
                and not _promotion_applies(recording, registry, model):
            model = assigned  # its outputs on disk are the assigned model's: stays on it
        reason = ""
        arena = resolve_arena(recording, meta, registry)
        if arena is not None:  # a bad outline is refused here, before anything is written
            calibrate_from_arena(arena, meta.camera_view, (video.width_px, video.height_px),
                                 source=f"recording {rid}: {arena.source}")
        set_calibrates = (params.pixels_per_cm is not None or params.arena_width_cm is not None
                          or params.arena_height_cm is not None)
        if meta.pixels_per_cm is None and meta.arena is None and arena is None \
                and not set_calibrates:
            raise SessionError(
                f"{where}: no calibration: give the arena's outline in pixels and its size "
                "(`arena:` with corners_px/bounds_px/center_px, or `rig:`, or "
                "<subject>/calibration.yaml), or `pixels_per_cm`, or at least the arena size "
                "(`arena: {width_cm: ...}`), so positions can be converted to cm. See "
                "docs/sessions.md (Calibration)."
            )
    else:
        if model is None:
            model = (registry.defaults.get(meta.tracking_type) or (None, None))[0]
        if model is None:
            raise RegistryError(
                f"{where}: tracking type {meta.tracking_type!r} needs a model for its "
                "predictions: add `assignment: {model: ..., method: ...}` to session.yaml."
            )
        registry.model(model)
        assigned, model = model, registry.promoted(model)
        if not _promotion_applies(recording, registry, model):
            model = assigned
        reason = f"tracking type {meta.tracking_type!r} is not processed: {ttype.reason}"
    info = RecordingInfo(recording, meta, video, frame_times(video.n_frames, video.fps, timestamps),
                         model, method, ttype.supported, reason,
                         file_sha256(Path(recording.session_yaml)), params, arena, fps_source,
                         facts, start_source)
    info.promoted_from = assigned if assigned is not None and assigned != model else None
    info.fps_warnings = rate.warnings
    return info


def _promotion_applies(recording: Recording, registry: Registry, promoted: str) -> bool:
    """Whether a promotion (registry ``promotions:``) replaces a recording's assigned
    model by ``promoted``.

    Not when its predictions come from files on disk (``dlc_<stem>/``) that ``promoted``
    did not make: those are the assigned model's, ``promoted`` cannot load them, and the
    recording keeps its model (``dlc-platform models promote`` lists it). Once its
    outputs are re-predicted with the new version (``dlc-platform predict``, file names
    carry the scorer), the promotion applies.
    """
    folder = recording.manual_output_dir
    if recording.source == "inference" or not folder.is_dir():
        return True
    scorer = registry.model(promoted).scorer
    names = (scorer, scorer.replace("DLC", "DeepCut", 1))
    return any(n in p.name for p in folder.iterdir() for n in names
               if p.suffix.lower() in (".h5", ".csv", ".nwb") and not p.name.startswith("."))


def _start_from_imaging(recording: Recording, meta: SessionMetadata) -> str:
    """Fill a missing start_time from the ScanImage acquisition start (first page of the
    first tif; with sync, moved to the first camera TTL); where both exist the imaging
    asset compares them (a warning)."""
    if meta.start_time is not None or meta.imaging is None or not meta.imaging.scanimage:
        return "session.yaml"
    from dlc_tracking.imaging.acquisition import recording_start_from_imaging

    meta.start_time = recording_start_from_imaging(
        meta.imaging, recording.session_dir,
        f"{recording.session_yaml} (recording {recording.recording_id})")
    return "imaging"
