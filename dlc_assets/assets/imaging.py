"""The tracking_on_imaging asset: processed tracking at every imaging frame of a recording
whose session names its imaging (session.yaml ``imaging:``), with its checks; one camera's
recording or a multi-camera take (after pose_3d, docs/3d.md).

Wiring only: the science lives in ``dlc_tracking.imaging``. A recording without imaging
passes with "no imaging" (its old rows, if any, are removed); bad imaging files fail the
step with the file and what to do, before anything is written.
"""

from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg
import numpy as np
import pandas as pd

from dlc_assets.assets.multiview import pose_3d
from dlc_assets.assets.social import multi_animal_tracking
from dlc_assets.assets.tracking import (
    GROUP,
    KINDS,
    clear_failures,
    multi_animal_reason,
    processed_tracking,
)
from dlc_assets.execution.worker_info import worker_metadata
from dlc_assets.partitions import recordings_partitions
from dlc_assets.schemas import column_schema
from dlc_tracking.imaging.on_imaging import ImagingResult, tracking_on_imaging
from dlc_tracking.sessions.layout import load_session_metadata, read_timestamps
from dlc_tracking.sessions.recording_info import inspect_recording
from resources import DataRoot, WarehouseResource

TABLES = ("tracking_on_imaging", "imaging_alignments")
ASSET = "tracking_on_imaging"


def _spec(name: str, description: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name, asset=ASSET, description=description)


IMAGING_CHECKS = [
    _spec("imaging_matches_video", "Imaging and video last as long as each other, and no "
          "imaging frame falls outside the video, within imaging.duration_tolerance_s "
          "(warning; frames outside the video are not valid)."),
    _spec("clock_offset", "The imaging starts when the recording does (session.yaml "
          "start_time vs the ScanImage epoch; with sync, the offset the TTLs measure vs the "
          "start times) within imaging.max_clock_offset_s (warning with both values)."),
    _spec("dropped_camera_frames", "As many camera TTLs as video frames (warning with the "
          "number of dropped frames and whether they could be located)."),
    _spec("imaging_frame_rate", "The frame rate measured from the frame times agrees with "
          "the header's (ScanImage scanFrameRate, Suite2p fs) within "
          "imaging.frame_rate_tolerance (warning)."),
]


def _passed_all(reason: str) -> list[dg.AssetCheckResult]:
    return [dg.AssetCheckResult(check_name=spec.name, passed=True,
                                metadata={"skipped": reason}) for spec in IMAGING_CHECKS]


def imaging_checks(result: ImagingResult, config, start_source: str
                   ) -> list[dg.AssetCheckResult]:
    """The four checks from an alignment's figures."""
    out = []
    tol = config.duration_tolerance_s
    diff = result.imaging_duration_s - result.video_duration_s
    outside = max(result.past_video_s, result.before_video_s)
    ok = abs(diff) <= tol and outside <= tol
    out.append(dg.AssetCheckResult(
        check_name="imaging_matches_video", passed=ok, severity=dg.AssetCheckSeverity.WARN,
        description=None if ok else (
            f"imaging lasts {result.imaging_duration_s:.2f} s, the video "
            f"{result.video_duration_s:.2f} s ({diff:+.2f} s); imaging runs "
            f"{result.past_video_s:+.2f} s past the video's end and starts "
            f"{result.before_video_s:+.2f} s before it (tolerance {tol:g} s): imaging frames "
            "outside the video are not valid. Is it the imaging of this video?"),
        metadata={"duration_difference_s": round(diff, 4),
                  "imaging_past_video_end_s": round(result.past_video_s, 4),
                  "imaging_before_video_start_s": round(result.before_video_s, 4),
                  "tolerance_s": tol}))
    clock, frames = result.clock, result.frames
    if clock.header_offset_s is None or start_source == "imaging":
        offset = None
        why = ("the recording's start is the imaging start" if start_source == "imaging"
               else "the imaging has no start time of its own")
    else:
        offset = clock.header_offset_s - (clock.offset_s if clock.clock == "sync" else 0.0)
        why = ""
    ok = offset is None or abs(offset) <= config.max_clock_offset_s
    rec_start = result.alignment_row["recording_start"]
    out.append(dg.AssetCheckResult(
        check_name="clock_offset", passed=ok, severity=dg.AssetCheckSeverity.WARN,
        description=None if ok else (
            f"session.yaml start_time {rec_start.isoformat()} but the ScanImage epoch says "
            f"{frames.start.isoformat()}: {clock.header_offset_s:+.3f} s apart"
            + (f" (the sync TTLs measure {clock.offset_s:+.3f} s)" if clock.clock == "sync"
               else "; without sync nothing tells which start is right, so every row is "
               "marked not valid (values NULL): set start_time to the right start (or remove "
               "it to use the imaging's) or add sync TTLs")
            + f" (tolerance {config.max_clock_offset_s:g} s). Check the start_time and both "
            "computers' clocks (and imaging: timezone)."),
        metadata={"clock_offset_s": round(offset, 4) if offset is not None else "n/a",
                  "header_offset_s": clock.header_offset_s if clock.header_offset_s is not None
                  else "n/a", "note": why or clock.assumption}))
    cam = clock.camera
    ok = cam is None or cam.dropped == 0
    out.append(dg.AssetCheckResult(
        check_name="dropped_camera_frames", passed=ok, severity=dg.AssetCheckSeverity.WARN,
        description=None if ok else (
            f"{cam.dropped} dropped camera frame(s): {cam.n_ttl} camera TTLs for "
            f"{cam.time_s.size} video frames; {cam.note}."),
        metadata={"dropped_frames": cam.dropped if cam else 0,
                  "trailing_ttls": cam.trailing if cam else 0,
                  "located": bool(cam.located) if cam else "no sync"}))
    err = result.frame_rate_error
    measured, declared, unit = result.rate_checked
    ok = err is None or err <= config.frame_rate_tolerance
    out.append(dg.AssetCheckResult(
        check_name="imaging_frame_rate", passed=ok, severity=dg.AssetCheckSeverity.WARN,
        description=None if ok else (
            f"{unit}s are {measured:.4f} per second by their times"
            + (" (plane 0)" if unit == "volume" else "")
            + f" but the header says {declared:.4f} Hz ({err:.2%} apart, "
            f"tolerance {config.frame_rate_tolerance:.2%}): frames missing or a wrong "
            "header; the frame times are used."),
        metadata={"relative_difference": round(err, 5) if err is not None else "n/a",
                  "compared": unit, "measured_hz": measured or "n/a",
                  "header_hz": declared or "n/a"}))
    return out


@dg.asset(
    name=ASSET, group_name=GROUP, partitions_def=recordings_partitions,
    deps=[processed_tracking, pose_3d, multi_animal_tracking],
    kinds=KINDS, check_specs=IMAGING_CHECKS,
    metadata=column_schema(*TABLES),
    description="Processed tracking at every imaging frame (and plane) of a recording whose "
    "session names its imaging (ScanImage tifs, Suite2p ops.npy or frame times; optional "
    "sync TTLs): position and speed interpolated linearly, head direction along the "
    "shorter arc, valid where tracked; with the alignment's provenance "
    "(a multi-camera take: its 3D state vector, with z_cm, pitch_deg and roll_deg, on "
    "the reference camera's clock) "
    "(imaging_alignments); a multi-animal recording: one set of rows per individual "
    "(columns individual, subject). Recordings without imaging pass with 'no imaging'. See "
    "docs/imaging.md.",
)
def tracking_on_imaging_asset(context: dg.AssetExecutionContext, data_root: DataRoot,
                              warehouse: WarehouseResource) -> dg.MaterializeResult:
    rid = context.partition_key
    with clear_failures(rid):
        recording = data_root.recording(rid)
    store = warehouse.get()
    with clear_failures(rid):
        clock = (_take_clock(recording, store) if recording.is_multi_camera
                 else _video_clock(recording, data_root))
    config = clock.config
    reason = "no imaging" if config is None else clock.unsupported
    if reason is not None:
        for table in TABLES:  # imaging removed from session.yaml: its old rows go too
            store.delete_partition(table, rid)
        return dg.MaterializeResult(metadata={"imaging": reason, **worker_metadata()},
                                    check_results=_passed_all(reason))
    where = f"{recording.session_yaml} (recording {rid})"
    with clear_failures(rid):
        tracks = _tracks(recording, data_root, store)
        results = {}
        for key, processed in tracks.items():
            results[key] = tracking_on_imaging(
                processed, config, recording.session_dir, clock.start_time,
                clock.start_time_source, clock.fps, clock.timestamps(processed), where)
    result = next(iter(results.values()))  # the alignment is the recording's, not a track's
    store.write_partition("tracking_on_imaging", rid, _rows(results))
    store.write_partition("imaging_alignments", rid, _alignment_frame(result))
    checks = imaging_checks(result, config, clock.start_time_source)
    for check in checks:
        if not check.passed:
            context.log.warning(f"{rid}: {check.check_name}: {check.description}")
    frames = result.frames
    return dg.MaterializeResult(
        metadata={
            "imaging": frames.source, "imaging_frames": len(result.rows),
            "planes": frames.n_planes, "channels": frames.n_channels,
            "clock": result.clock.clock, "clock_offset_s": round(result.clock.offset_s, 4),
            "assumption": result.clock.assumption,
            "fraction_valid": round(result.fraction_valid, 4),
            **({"fraction_valid_per_individual": {
                k[0]: round(r.fraction_valid, 4) for k, r in results.items()}}
               if None not in results else {}),
            "acquisition_start": str(frames.start) if frames.start else "n/a",
            "start_time_source": clock.start_time_source,
            **({"cameras": clock.cameras} if clock.cameras else {}),
            "header_frame_rate_hz": frames.header_frame_rate_hz or "n/a",
            "measured_frame_rate_hz": round(result.measured_frame_rate_hz, 4)
            if result.measured_frame_rate_hz else "n/a",
            "files": dg.MetadataValue.json(frames.files),
            "mean_speed_cm_s": round(float(np.nanmean(result.rows["speed_cm_s"])), 3)
            if result.rows["valid"].any() else "n/a",
            **worker_metadata(),
        },
        check_results=checks,
    )


def _tracks(recording, data_root: DataRoot, store) -> dict:
    """The processed tracking to put on the imaging clock: ``{None: rows}`` for one animal
    (or a multi-camera take), ``{(individual, subject): rows}`` for each track of a
    multi-animal recording (its ``individual_tracking``, docs/multi-animal.md)."""
    rid = recording.recording_id
    if not recording.is_multi_camera and multi_animal_reason(
            inspect_recording(recording, data_root.registry()), data_root):
        rows = store.read_partition("individual_tracking", rid)
        return {(str(ind), None if pd.isna(subj) else str(subj)):
                group.sort_values("frame", ignore_index=True)
                for (ind, subj), group in rows.groupby(["individual", "subject"], sort=True,
                                                       dropna=False)}
    return {None: store.read_partition("processed_tracking", rid).sort_values(
        "frame", ignore_index=True)}


def _rows(results: dict) -> pd.DataFrame:
    """``tracking_on_imaging`` rows: one animal's as they are; a multi-animal recording's
    per individual, with its ``individual`` and ``subject``."""
    if None in results:
        return results[None].rows
    parts = []
    for (individual, subject), result in results.items():
        rows = result.rows.copy()
        rows["individual"], rows["subject"] = individual, subject
        parts.append(rows)
    return pd.concat(parts, ignore_index=True)


@dataclass
class _RecordingClock:
    """What the alignment needs of a recording: its imaging, start, frame rate and
    (when it has them) its frame times."""

    config: object | None  # session.yaml imaging: (ImagingConfig) or None
    unsupported: str | None  # why there is no processed tracking to align; None: there is
    start_time: object
    start_time_source: str
    fps: float
    timestamps: Callable[[pd.DataFrame], np.ndarray | None]  # from the processed rows
    cameras: str = ""  # a multi-camera take's cameras


def _video_clock(recording, data_root: DataRoot) -> _RecordingClock:
    """One camera: the video's facts (inspect_recording) and its timestamps file."""
    info = inspect_recording(recording, data_root.registry())
    return _RecordingClock(
        info.metadata.imaging,
        None if info.supported else f"no processed tracking ({info.status_reason})",
        info.metadata.start_time, info.start_time_source, info.video.fps,
        lambda _rows: (read_timestamps(recording.timestamps_path, info.video.n_frames,
                                       recording.recording_id)
                       if recording.timestamps_path else None))


def _take_clock(recording, store) -> _RecordingClock:
    """A multi-camera take: its recordings row (written by pose_3d) gives the frame rate
    and whether its frames carry frame times (the reference camera's, on the cameras'
    common clock: they are the processed rows' time_s); the start as for one camera."""
    from dlc_tracking.multiview.take_facts import take_start_time

    meta = load_session_metadata(recording.session_yaml)
    if meta.imaging is None:
        return _RecordingClock(None, None, None, "session.yaml", 0.0, lambda _rows: None)
    rid = recording.recording_id
    if store.partition_path("recordings", rid) is None and rid not in store.pack_index(
            "recordings"):
        return _RecordingClock(meta.imaging, "no processed tracking (pose_3d has not "
                               "written this take yet)", None, "session.yaml", 0.0,
                               lambda _rows: None)
    row = store.read_partition("recordings", rid).iloc[0]
    start, source = take_start_time(recording, meta)
    return _RecordingClock(
        meta.imaging, None, start, source, float(row["fps"]),
        lambda processed: (processed["time_s"].to_numpy(np.float64)
                           if bool(row["has_timestamps"]) else None),
        ", ".join(c.camera for c in recording.cameras))


def _alignment_frame(result: ImagingResult):
    import pandas as pd

    return pd.DataFrame([result.alignment_row])


imaging_assets = [tracking_on_imaging_asset]
