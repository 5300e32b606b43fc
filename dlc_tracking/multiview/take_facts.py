"""The facts of a multi-camera take the single-camera tables need: its frame rate, its
start, and its one ``recordings`` row (docs/3d.md, "3. The session").

A take is one recording; its row describes the take, not one video: ``n_frames`` and
``duration_s`` are the take's (the reference camera's frames, after synchronisation),
``video_path`` / ``video_file`` the reference camera's video (the session's first camera,
whose frames the take's frames are), and ``cameras`` every camera's video file (JSON
object, session order). No Dagster here: the ``recordings`` asset writes the row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from dlc_tracking.errors import SessionError

__all__ = ["take_fps", "take_recording_row", "take_start_time"]


def take_fps(recording: Any, meta: Any) -> tuple[float | None, str]:
    """``(fps, source)``: session.yaml ``fps:``, else the first camera's video, else None
    when every camera has frame times (the rate then comes from them, source
    ``frame_times``).

    Raises
    ------
    SessionError
        No ``fps:``, no first camera video here and no frame times.
    """
    if meta.fps:
        return float(meta.fps), "session.yaml"
    first = recording.cameras[0]
    if first.has_video:
        from dlc_tracking.io.video import probe_video

        return float(probe_video(first.video_path, check_last_frame=False).fps), "video"
    if all(c.timestamps_path for c in recording.cameras):
        return None, "frame_times"
    raise SessionError(f"{recording.session_yaml} (recording {recording.recording_id}): "
                       f"camera {first.camera!r} has no video here to read the frame rate "
                       "from; add `fps:` to session.yaml (or every camera's `timestamps:`).")


def take_start_time(recording: Any, meta: Any) -> tuple[datetime, str]:
    """``(start, source)``: session.yaml ``start_time``, else the ScanImage acquisition
    start of the session's imaging (as for one camera)."""
    if meta.start_time is not None or meta.imaging is None or not meta.imaging.scanimage:
        return meta.start_time, "session.yaml"
    from dlc_tracking.imaging.acquisition import recording_start_from_imaging

    start = recording_start_from_imaging(
        meta.imaging, recording.session_dir,
        f"{recording.session_yaml} (recording {recording.recording_id})")
    return start, "imaging"


def take_recording_row(recording: Any, meta: Any, registry: Any, take: Any,
                       fps_source: str) -> dict:
    """The take's ``recordings`` row (columns of the table; ``cameras`` filled).

    Parameters
    ----------
    recording : dlc_tracking.sessions.layout.Recording
        ``is_multi_camera``.
    meta : SessionMetadata
    registry : Registry
    take : dlc_tracking.multiview.recording.Take
        The synchronised take (:func:`~dlc_tracking.multiview.recording.load_take`).
    fps_source : str
        From :func:`take_fps`.
    """
    import json

    from dlc_tracking.sessions.layout import file_sha256

    clock = take.clock
    first = recording.cameras[0]
    width = height = codec = None
    if first.has_video:
        from dlc_tracking.io.video import probe_video

        info = probe_video(first.video_path, check_last_frame=False)
        width, height, codec = info.width_px, info.height_px, info.codec
    if clock.method == "frame_times" and clock.n_frames > 1:
        step = float(np.median(np.diff(clock.time_s)))
        duration = float(clock.time_s[-1] - clock.time_s[0]) + step
    else:
        duration = clock.n_frames / clock.fps
    start, _ = take_start_time(recording, meta)
    params = registry.resolve_processing(meta.tracking_type, meta.processing,
                                         str(recording.session_yaml))
    method = meta.assignment.method if meta.assignment else "two_ears"
    return {
        "recording_id": recording.recording_id, "subject": recording.subject,
        "session": recording.session, "video_path": str(first.video_path),
        "video_file": first.video_path.name, "tracking_type": meta.tracking_type,
        "start_time": pd.Timestamp(start), "n_frames": clock.n_frames, "fps": clock.fps,
        "width_px": width, "height_px": height, "duration_s": duration, "codec": codec,
        "camera_view": meta.camera_view, "pixels_per_cm": None, "arena_shape": None,
        "arena_width_cm": None, "arena_height_cm": None,
        "has_timestamps": clock.method == "frame_times",
        "model_name": take.model_name, "method_name": method,
        "session_yaml_sha": file_sha256(recording.session_yaml),
        "state_vector_status": "supported", "status_reason": None,
        "has_video": recording.has_video, "source": recording.source,
        "fps_source": fps_source, "video_facts_source": "predictions",
        "params_name": params.name, "params_hash": params.param_hash,
        "arena_outline_source": None, "arena_outline_px": None, "promoted_from": None,
        "cameras": json.dumps({c.camera: c.video_path.name for c in recording.cameras}),
    }
