"""A recording's ``tracking_on_imaging`` rows (one per imaging frame and plane), its
``imaging_alignments`` provenance row and the figures its checks judge."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from dlc_tracking.imaging.acquisition import ImagingFrames, load_imaging
from dlc_tracking.imaging.alignment import resample_3d, resample_tracking
from dlc_tracking.imaging.clocks import ClockAlignment, align_clocks
from dlc_tracking.imaging.config import ImagingConfig
from dlc_tracking.imaging.sync import read_sync

__all__ = ["ImagingResult", "tracking_on_imaging"]


def _untrusted_offset(clock: ClockAlignment, start_time_source: str,
                      max_offset_s: float) -> str | None:
    """Why no row can be trusted, when the declared start and the imaging's own start
    disagree beyond ``max_offset_s`` and no sync says which is right; else None."""
    offset = clock.header_offset_s
    if clock.clock == "sync" or start_time_source == "imaging" or offset is None \
            or abs(offset) <= max_offset_s:
        return None
    return (f"start_time and the imaging start differ by {offset:+.3f} s (more than "
            f"max_clock_offset_s {max_offset_s:g} s) and there is no sync: all rows set not "
            "valid. Set session.yaml's start_time to the right start (or remove it to use "
            "the imaging's), or add sync TTLs.")


@dataclass
class ImagingResult:
    """Rows, provenance and check figures of one recording's imaging alignment."""

    rows: pd.DataFrame
    alignment_row: dict
    frames: ImagingFrames
    clock: ClockAlignment
    imaging_duration_s: float
    video_duration_s: float
    past_video_s: float  # imaging time after the last video frame (negative: before it)
    before_video_s: float  # imaging time before the first video frame
    measured_frame_rate_hz: float | None
    frame_rate_error: float | None  # |measured / header - 1| of rate_checked
    fraction_valid: float
    # (measured, declared, "frame" or "volume"): what the frame-rate check compares
    rate_checked: tuple[float | None, float | None, str] = (None, None, "frame")


def tracking_on_imaging(processed: pd.DataFrame, config: ImagingConfig, session_dir: Path,
                        recording_start: datetime, start_time_source: str, video_fps: float,
                        video_timestamps_s: np.ndarray | None, where: str) -> ImagingResult:
    """Resample a recording's processed tracking at its imaging frames.

    Parameters
    ----------
    processed : pandas.DataFrame
        The recording's ``processed_tracking`` rows (one model x method x parameter set),
        ordered by frame.
    config : ImagingConfig
        session.yaml's ``imaging:``.
    session_dir : Path
    recording_start : datetime
        The recording's start (``recordings.start_time``).
    start_time_source : str
        ``session.yaml`` or ``imaging`` (provenance).
    video_fps : float
        The video's frame rate (``max_sample_distance_frames`` is in its frames).
    video_timestamps_s : np.ndarray or None
        The video's timestamps file, when it has one.
    where : str
        session.yaml and recording, for messages.

    Raises
    ------
    ImagingError
        Bad imaging or sync files (nothing is returned, so nothing is written).
    """
    frames = load_imaging(config, session_dir, recording_start, where)
    sync = read_sync(config.sync, session_dir) if config.sync is not None else None
    video_time = processed["time_s"].to_numpy(np.float64)
    clock = align_clocks(frames, video_time, recording_start, sync, video_timestamps_s,
                         video_timestamps_s is not None)
    keep = frames.plane >= 0
    query = clock.imaging_time_s[keep]
    max_distance = config.max_sample_distance_frames / video_fps
    res = resample_tracking(
        clock.video_time_s, processed["x_cm"].to_numpy(np.float64),
        processed["y_cm"].to_numpy(np.float64), processed["speed_cm_s"].to_numpy(np.float64),
        processed["head_direction_deg"].to_numpy(np.float64),
        processed["angular_head_velocity_deg_s"].to_numpy(np.float64), query, max_distance)
    untrusted = _untrusted_offset(clock, start_time_source, config.max_clock_offset_s)
    notes = list(frames.notes)
    if untrusted:
        # Without sync nothing says which computer's clock is right: every row is marked
        # not valid (values NULL) rather than tracking shifted by the clocks' difference.
        res.valid[:] = False
        for values in (res.x_cm, res.y_cm, res.speed_cm_s, res.head_direction_deg,
                       res.angular_head_velocity_deg_s):
            values[:] = np.nan
        notes.append(untrusted)
    first = processed.iloc[0]
    rows = pd.DataFrame({
        "plane": frames.plane[keep].astype(np.int32),
        "imaging_frame": frames.imaging_frame()[keep],
        "acquisition_frame": frames.acquisition_frame[keep].astype(np.int64),
        "imaging_time_s": frames.time_s[keep], "time_s": query,
        "x_cm": res.x_cm, "y_cm": res.y_cm, "speed_cm_s": res.speed_cm_s,
        "head_direction_deg": res.head_direction_deg,
        "angular_head_velocity_deg_s": res.angular_head_velocity_deg_s,
        "nearest_frame": processed["frame"].to_numpy(np.int64)[res.nearest_frame],
        "valid": res.valid,
    })
    if "z_cm" in processed.columns and processed["z_cm"].notna().any():
        # a multi-camera take's 3D state vector: height, pitch and roll too (one camera's
        # rows have no such columns and are written without them)
        rows = rows.assign(**resample_3d(
            clock.video_time_s, *(processed[c].to_numpy(np.float64)
                                  for c in ("z_cm", "pitch_deg", "roll_deg")),
            query, res.valid))
    for i, name in enumerate(("recording_id", "model_name", "method_name", "params_name",
                              "params_hash")):
        rows.insert(i, name, str(first[name]))
    vt = clock.video_time_s
    img_duration = float(query[-1] - query[0]) if query.size else 0.0
    measured = frames.measured_frame_rate_hz()
    rate_measured, rate_declared, rate_unit = frames.rate_check()
    rate_error = (abs(rate_measured / rate_declared - 1.0)
                  if rate_measured and rate_declared else None)
    camera = clock.camera
    alignment_row = {
        "recording_id": str(first["recording_id"]), "imaging_source": frames.source,
        "files": json.dumps(frames.files), "acquisition_start": (
            pd.Timestamp(frames.start) if frames.start is not None else None),
        "recording_start": pd.Timestamp(recording_start),
        "start_time_source": start_time_source, "clock": clock.clock,
        "clock_offset_s": clock.offset_s, "header_offset_s": clock.header_offset_s,
        "assumption": clock.assumption, "n_planes": frames.n_planes,
        "n_channels": frames.n_channels, "n_imaging_frames": int(keep.sum()),
        "frames_per_plane": frames.frames_per_plane(),
        "header_frame_rate_hz": frames.header_frame_rate_hz,
        "measured_frame_rate_hz": measured, "imaging_duration_s": img_duration,
        "video_duration_s": float(vt[-1] - vt[0]),
        "camera_ttls": camera.n_ttl if camera else None,
        "dropped_camera_frames": camera.dropped if camera else None,
        "dropped_frames_located": camera.located if camera else None,
        "imaging_ttls": clock.imaging_ttls,
        "fraction_valid": float(res.valid.mean()) if res.valid.size else 0.0,
        "notes": json.dumps(notes),
    }
    return ImagingResult(
        rows=rows, alignment_row=alignment_row, frames=frames, clock=clock,
        imaging_duration_s=img_duration, video_duration_s=float(vt[-1] - vt[0]),
        past_video_s=float(query[-1] - vt[-1]) if query.size else 0.0,
        before_video_s=float(vt[0] - query[0]) if query.size else 0.0,
        measured_frame_rate_hz=measured, frame_rate_error=rate_error,
        fraction_valid=alignment_row["fraction_valid"],
        rate_checked=(rate_measured, rate_declared, rate_unit))
