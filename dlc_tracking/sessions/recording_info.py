"""Everything known about one recording before any tracking: session metadata, video
facts, frame times and its model + method assignment (the seed's RecordingDLC)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dlc_tracking.io.video import VideoInfo, probe_video
from dlc_tracking.registry.registry_file import Registry
from dlc_tracking.sessions.layout import (
    Recording,
    SessionMetadata,
    file_sha256,
    frame_times,
    load_session_metadata,
    read_timestamps,
)


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

    @property
    def recording_id(self) -> str:
        return self.recording.recording_id

    def row(self) -> dict:
        m, v, arena = self.metadata, self.video, self.metadata.arena
        return {
            "recording_id": self.recording_id, "subject": self.recording.subject,
            "session": self.recording.session, "video_path": str(self.recording.video_path),
            "video_file": self.recording.video_path.name, "tracking_type": m.tracking_type,
            "start_time": pd.Timestamp(m.start_time), "n_frames": v.n_frames, "fps": v.fps,
            "width_px": v.width_px, "height_px": v.height_px, "duration_s": v.duration_s,
            "codec": v.codec, "camera_view": m.camera_view, "pixels_per_cm": m.pixels_per_cm,
            "arena_shape": arena.shape if arena else None,
            "arena_width_cm": arena.width_cm if arena else None,
            "arena_height_cm": arena.height_cm if arena else None,
            "has_timestamps": self.recording.timestamps_path is not None,
            "model_name": self.model_name, "method_name": self.method_name,
            "session_yaml_sha": self.session_yaml_sha,
            "state_vector_status": "supported" if self.supported else "skipped",
            "status_reason": self.status_reason,
        }


def inspect_recording(recording: Recording, registry: Registry) -> RecordingInfo:
    """Validate a recording against its session.yaml, its video and the registry.

    Raises
    ------
    SessionError, VideoError, RegistryError
        With the file, the recording and what to do.
    """
    rid = recording.recording_id
    meta = load_session_metadata(recording.session_yaml)
    video = probe_video(recording.video_path)
    timestamps = (read_timestamps(recording.timestamps_path, video.n_frames, rid)
                  if recording.timestamps_path else None)
    ttype = registry.tracking_type(meta.tracking_type)
    where = f"{recording.session_yaml} (recording {rid})"
    model = meta.assignment.model if meta.assignment else None
    method = meta.assignment.method if meta.assignment else None
    if ttype.supported:
        model, method = registry.resolve_assignment(meta.tracking_type, model, method, where)
        reason = ""
        if meta.pixels_per_cm is None and meta.arena is None:
            from dlc_tracking.errors import SessionError

            raise SessionError(
                f"{where}: no calibration: give `pixels_per_cm` or `arena` (size in cm) so "
                "positions can be converted to cm."
            )
    else:
        if model is None:
            model = (registry.defaults.get(meta.tracking_type) or (None, None))[0]
        if model is None:
            from dlc_tracking.errors import RegistryError

            raise RegistryError(
                f"{where}: tracking type {meta.tracking_type!r} needs a model for its "
                "predictions: add `assignment: {model: ..., method: ...}` to session.yaml."
            )
        registry.model(model)
        reason = f"tracking type {meta.tracking_type!r} is not processed: {ttype.reason}"
    return RecordingInfo(recording, meta, video, frame_times(video.n_frames, video.fps, timestamps),
                         model, method, ttype.supported, reason,
                         file_sha256(Path(recording.session_yaml)))
