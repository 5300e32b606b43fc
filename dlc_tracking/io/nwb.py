"""NWB (Neurodata Without Borders) export and import of a recording's tracking.

Library: ``pynwb`` + ``ndx-pose`` 0.4 directly, not ``neuroconv``'s DeepLabCut interface.
neuroconv converts a DLC *file* (h5 + config.yaml) and writes only the raw pose; the
platform exports from the warehouse (the numbers analysts query), and also writes the
processed state vector, head direction, speed and flags, which neuroconv has no
interface for. neuroconv would add a large dependency tree for one call (its DeepLabCut
interface is a thin wrapper around the same ndx-pose classes used here). ndx-pose is the pose
standard of DANDI, DLC2NWB, element-deeplabcut and spyglass, so the files read in all of
them.

Layout of an exported file (see ``docs/exports.md``)::

    acquisition/video                      ImageSeries, external file (relative path)
    processing/behavior/
        Skeletons/subject                  nodes = canonical body parts, edges
        PoseEstimation                     one PoseEstimationSeries per body part:
                                           x, y (px, image frame, y down), confidence
        Position/position                  SpatialSeries, cm (conversion 0.01 -> m),
                                           arena frame (x right, y up)
        CompassDirection/head_direction    SpatialSeries, degrees [0, 360)
        speed, angular_head_velocity,      TimeSeries (cm/s as m/s x 0.01; deg/s; deg)
        movement_direction
        interpolated                       TimeSeries uint8 (1 = position interpolated)

Import (:func:`read_nwb_predictions`) reads any ndx-pose ``PoseEstimation`` (as DLC2NWB,
neuroconv or this module write it) into :class:`~dlc_tracking.io.dlc_files.DLCPredictions`;
:func:`check_nwb_frame_rate` refuses timestamps that imply another frame rate than the
video's.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dlc_tracking.errors import DLCFileError
from dlc_tracking.io.dlc_files import DLCPredictions
from dlc_tracking.io.stored_recording import StoredRecording

__all__ = [
    "CONFIDENCE_DEFINITION",
    "SKELETON_EDGES",
    "check_nwb_frame_rate",
    "export_nwb",
    "read_nwb_predictions",
]

SOURCE_SOFTWARE = "DeepLabCut"
CONFIDENCE_DEFINITION = "DeepLabCut likelihood in [0, 1] (softmax peak of the heatmap)."
IMAGE_FRAME = ("(0, 0) is the top-left corner of the video frame; x to the right, y down, "
               "in pixels (unflipped, as DeepLabCut wrote them).")
SKELETON_EDGES = (("nose", "left_ear"), ("nose", "right_ear"), ("left_ear", "right_ear"),
                  ("left_ear", "tail_base"), ("right_ear", "tail_base"),
                  ("nose", "head_base"), ("head_base", "tail_base"),
                  ("left_ear", "head_base"), ("right_ear", "head_base"))
"""Edges drawn between canonical body parts, where both are tracked."""

_CM_TO_M = 0.01
FRAME_RATE_TOLERANCE = 0.01
"""Relative difference between the NWB file's and the video's frame rate still accepted."""


# ----------------------------------------------------------------------------- export


def _dlc_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("deeplabcut")
    except PackageNotFoundError:
        return "unknown"


def _is_regular(time_s: np.ndarray, fps: float) -> bool:
    """True when the frame times are exactly ``t0 + frame / fps`` (stored as a rate)."""
    if time_s.size < 2 or not np.isfinite(time_s).all():
        return False
    return bool(np.array_equal(time_s, np.arange(time_s.size) / fps + time_s[0]))


def _timing(time_s: np.ndarray, fps: float) -> dict[str, Any]:
    if _is_regular(time_s, fps):
        return {"starting_time": float(time_s[0]), "rate": float(fps)}
    return {"timestamps": time_s}


def skeleton_edges(body_parts: list[str]) -> np.ndarray:
    """Index pairs of :data:`SKELETON_EDGES` whose two body parts are both present.

    Parameters
    ----------
    body_parts : list[str]
        Canonical names, in the order of the skeleton's nodes.

    Returns
    -------
    np.ndarray
        uint8 ``(n_edges, 2)`` node indices.
    """
    index = {name: i for i, name in enumerate(body_parts)}
    pairs = [(index[a], index[b]) for a, b in SKELETON_EDGES if a in index and b in index]
    return np.array(pairs, dtype=np.uint8).reshape(-1, 2)


def _description(rec: StoredRecording, params: Mapping[str, Any] | None) -> str:
    processed = rec.processed
    lines = [f"dlc-platform export of recording {rec.recording_id} (subject "
             f"{rec.info['subject']}, session {rec.info['session']}, video "
             f"{rec.info.get('video_file')}); model {rec.model_name}."]
    if processed is not None and len(processed):
        lines.append(f"State-vector method {processed['method_name'].iloc[0]}; processing "
                     f"parameters {processed['params_name'].iloc[0]} (hash "
                     f"{processed['params_hash'].iloc[0]}).")
    if params:
        lines.append("Processing parameters: " + json.dumps(dict(params), sort_keys=True))
    return " ".join(lines)


def _add_pose(nwb, behavior, rec: StoredRecording, video_series, camera) -> None:
    from ndx_pose import PoseEstimation, PoseEstimationSeries, Skeleton, Skeletons

    skeleton = Skeleton(name="subject", nodes=list(rec.body_parts),
                        edges=skeleton_edges(rec.body_parts), subject=nwb.subject)
    behavior.add(Skeletons(skeletons=[skeleton]))
    timing = _timing(rec.time_s, rec.fps)
    series = []
    for i, part in enumerate(rec.body_parts):
        series.append(PoseEstimationSeries(
            name=part, description=f"Position of {part} estimated by DeepLabCut.",
            data=rec.poses[:, i, :2], unit="pixels", reference_frame=IMAGE_FRAME,
            confidence=rec.poses[:, i, 2], confidence_definition=CONFIDENCE_DEFINITION,
            **timing))
        if "rate" not in timing:
            timing = {"timestamps": series[0]}  # one timestamps dataset, linked
    model = rec.model or {}
    behavior.add(PoseEstimation(
        name="PoseEstimation", pose_estimation_series=series,
        description=(f"Single-animal pose estimated with DeepLabCut model {rec.model_name} "
                     f"(engine {model.get('engine', 'unknown')}, net "
                     f"{model.get('net_type', 'unknown')}, snapshot "
                     f"{model.get('snapshot', 'unknown')}); body parts renamed to the "
                     "platform's canonical names. Missing points are NaN."),
        scorer=rec.scorer or rec.model_name, source_software=SOURCE_SOFTWARE,
        source_software_version=_dlc_version(), skeleton=skeleton,
        source_video=video_series, device=camera))


def _add_processed(behavior, rec: StoredRecording) -> None:
    from pynwb import TimeSeries
    from pynwb.behavior import CompassDirection, Position, SpatialSeries

    df = rec.processed
    time_s = df["time_s"].to_numpy(np.float64)
    timing = _timing(time_s, rec.fps)
    arena = ("arena frame: origin at the lower-left corner of the arena boundary, x to the "
             "right, y up (image y flipped), as seen from above the arena (a camera below "
             "is mirrored back); cm")
    xy = np.column_stack([df["x_cm"].to_numpy(np.float64), df["y_cm"].to_numpy(np.float64)])
    position = SpatialSeries(
        name="position", data=xy, reference_frame=arena, unit="meters", conversion=_CM_TO_M,
        description="Subject position (the state vector), in cm: multiply by conversion "
        "(0.01) for meters. NaN where missing.", **timing)
    behavior.add(Position(spatial_series=position))
    shared = {"timestamps": position} if "timestamps" in timing else timing
    behavior.add(CompassDirection(spatial_series=SpatialSeries(
        name="head_direction", data=df["head_direction_deg"].to_numpy(np.float64),
        reference_frame="counter-clockwise from the arena frame's +x axis, [0, 360)",
        unit="degrees", description="Head direction (smoothed); NaN where unknown.",
        **shared)))
    for name, column, unit, conversion, text in (
            ("speed", "speed_cm_s", "m/s", _CM_TO_M, "Speed, in cm/s (x 0.01 for m/s)."),
            ("angular_head_velocity", "angular_head_velocity_deg_s", "degrees/s", 1.0,
             "Angular head velocity, counter-clockwise positive."),
            ("movement_direction", "movement_direction_deg", "degrees", 1.0,
             "Direction of movement, counter-clockwise from +x, [0, 360).")):
        behavior.add(TimeSeries(name=name, data=df[column].to_numpy(np.float64), unit=unit,
                                conversion=conversion, description=text, **shared))
    behavior.add(TimeSeries(
        name="interpolated", data=df["interpolated"].to_numpy(bool).astype(np.uint8),
        unit="n.a.", description="1 where the position was interpolated over a gap.",
        **shared))


def _add_on_imaging(behavior, on_imaging) -> None:
    """Tracking at the imaging frames (tracking_on_imaging), per plane, on the imaging
    frames' timestamps (recording clock), as imaging datasets on DANDI carry behaviour."""
    if on_imaging is None or not len(on_imaging):
        return
    from pynwb import TimeSeries
    from pynwb.behavior import CompassDirection, Position, SpatialSeries

    for plane, df in on_imaging.sort_values(["plane", "imaging_frame"]).groupby("plane"):
        suffix = f"_on_imaging_plane{int(plane)}"
        stamps = df["time_s"].to_numpy(np.float64)
        xy = np.column_stack([df["x_cm"].to_numpy(np.float64), df["y_cm"].to_numpy(np.float64)])
        position = SpatialSeries(
            name="position", data=xy, timestamps=stamps, unit="meters", conversion=_CM_TO_M,
            reference_frame="arena frame (as the position series), cm",
            description=f"Position at each imaging frame of plane {int(plane)} (interpolated "
            "from the video frames); NaN where not valid.")
        behavior.add(Position(name=f"position{suffix}", spatial_series=position))
        behavior.add(CompassDirection(name=f"head_direction{suffix}", spatial_series=SpatialSeries(
            name="head_direction", data=df["head_direction_deg"].to_numpy(np.float64),
            timestamps=position, unit="degrees",
            reference_frame="counter-clockwise from the arena frame's +x axis, [0, 360)",
            description="Head direction at each imaging frame (shorter-arc interpolation).")))
        for name, column, unit, conversion in (
                ("speed", "speed_cm_s", "m/s", _CM_TO_M),
                ("angular_head_velocity", "angular_head_velocity_deg_s", "degrees/s", 1.0)):
            behavior.add(TimeSeries(name=f"{name}{suffix}", data=df[column].to_numpy(np.float64),
                                    unit=unit, conversion=conversion, timestamps=position,
                                    description=f"{name} at each imaging frame of plane "
                                    f"{int(plane)}."))
        behavior.add(TimeSeries(name=f"valid{suffix}", data=df["valid"].to_numpy(bool).astype(
            np.uint8), unit="n.a.", timestamps=position, description="1 where tracking is "
            "known at the imaging frame (docs/imaging.md)."))


def _subject(rec: StoredRecording, override: Mapping[str, str] | None):
    from datetime import datetime

    from pynwb.file import Subject

    facts = {**rec.subject, **(override or {})}
    born = facts.get("date_of_birth")
    if born:
        born = datetime.fromisoformat(born)
        born = born if born.tzinfo else born.replace(tzinfo=rec.start_time.tzinfo)
    return Subject(subject_id=str(rec.info["subject"]), species=facts.get("species"),
                   sex=facts.get("sex", "U"), age=facts.get("age"), date_of_birth=born or None,
                   strain=facts.get("strain"), genotype=facts.get("genotype"),
                   weight=facts.get("weight"), description=facts.get("description"))


def export_nwb(rec: StoredRecording, path: str | os.PathLike, *,
               params: Mapping[str, Any] | None = None,
               subject: Mapping[str, str] | None = None) -> Path:
    """Write one recording to an NWB file (atomically: temp file, then rename).

    Parameters
    ----------
    rec : StoredRecording
        The recording from the warehouse (:func:`load_stored_recording`); it must have
        processed tracking.
    path : path
        Output ``.nwb`` file; its folder is created.
    params : mapping, optional
        The processing parameters (``ProcessingParams.to_dict()``) written into the
        description next to their name and hash.
    subject : mapping, optional
        Subject facts (species, sex, age, date_of_birth, strain, genotype, weight,
        description) overriding the subject's ``subject.yaml``. DANDI (and nwbinspector)
        need species, sex and age or date of birth; sex defaults to "U" (unknown).

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    WarehouseError
        The recording was skipped or not processed (the message says why and what to do).
    """
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.image import ImageSeries

    rec.require_processed("export it to NWB")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    info = rec.info
    nwb = NWBFile(
        session_description=_description(rec, params),
        identifier=str(uuid.uuid4()), session_start_time=rec.start_time,
        session_id=str(info["session"]),
        experiment_description=f"{info.get('tracking_type')} behaviour video tracked with "
        "DeepLabCut; processed by dlc-platform.",
        keywords=["DeepLabCut", "pose estimation", str(info.get("tracking_type"))],
        subject=_subject(rec, subject),
        source_script="dlc-platform (dlc_tracking.io.nwb.export_nwb)",
        source_script_file_name="dlc_tracking/io/nwb.py")
    camera = nwb.create_device(name="camera", description=(
        f"behaviour camera, {info.get('camera_view')} the arena; "
        f"{info.get('width_px')}x{info.get('height_px')} px at {rec.fps:g} Hz"))
    video_series = None
    video = rec.video_path
    if video is not None and video.exists():
        # A relative path, so the file and its video can move together (NWB best practice).
        relative = os.path.relpath(video.absolute(), out.parent.absolute())
        video_series = ImageSeries(
            name="video", description=f"Original behaviour video {video.name}.",
            external_file=[relative], format="external", starting_frame=[0], unit="n.a.",
            num_samples=rec.n_frames, dimension=[int(info["width_px"]), int(info["height_px"])],
            device=camera, **_timing(rec.time_s, rec.fps))
        nwb.add_acquisition(video_series)
    behavior = nwb.create_processing_module(
        name="behavior", description="Pose (DeepLabCut) and processed tracking from "
        "dlc-platform.")
    _add_pose(nwb, behavior, rec, video_series, camera)
    _add_processed(behavior, rec)
    _add_on_imaging(behavior, getattr(rec, "on_imaging", None))
    fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=".tmp.nwb", dir=out.parent)
    os.close(fd)
    try:
        with NWBHDF5IO(tmp, "w") as io:
            io.write(nwb)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


# ----------------------------------------------------------------------------- import


def _series_name_to_part(name: str, nodes: list[str]) -> str:
    """Body-part name of a PoseEstimationSeries: DLC2NWB names series by body part; some
    writers prefix ``PoseEstimationSeries``; match those to the skeleton's nodes."""
    if name in nodes:
        return name
    stripped = name.removeprefix("PoseEstimationSeries")

    def key(text: str) -> str:
        return text.replace("_", "").lower()

    for node in nodes:
        if key(node) == key(stripped):
            return node
    return stripped or name


def read_nwb_predictions(path: str | os.PathLike) -> tuple[DLCPredictions, np.ndarray | None]:
    """Read the pose of an NWB file (ndx-pose ``PoseEstimation``) as DLC predictions.

    Parameters
    ----------
    path : path
        The ``.nwb`` file.

    Returns
    -------
    tuple[DLCPredictions, np.ndarray | None]
        The predictions (scorer from the file, body parts as written, poses with NaN for
        missing, frames 0..n-1, sources = [path]) and the frame timestamps in seconds
        (None when the file has neither timestamps nor a rate).

    Raises
    ------
    DLCFileError
        Not an NWB file, no (or several) ``PoseEstimation`` objects, series of different
        lengths, or 3-D data; the message names the file and the fix.
    """
    import ndx_pose  # noqa: F401 - registers the ndx-pose classes with pynwb
    from ndx_pose import PoseEstimation
    from pynwb import NWBHDF5IO

    path = Path(path)
    try:
        io = NWBHDF5IO(str(path), "r", load_namespaces=True)
        nwb = io.read()
    except Exception as exc:  # noqa: BLE001 - h5py/hdmf raise many types for a bad file
        raise DLCFileError(f"{path}: not a readable NWB file ({type(exc).__name__}: {exc}). "
                           "Export it again, or drop the DLC .h5 instead.") from exc
    try:
        found = [o for o in nwb.objects.values() if isinstance(o, PoseEstimation)]
        if not found:
            raise DLCFileError(
                f"{path}: the NWB file holds no ndx-pose PoseEstimation (no pose data); it "
                "cannot be ingested as DLC outputs. Write the pose with ndx-pose (DLC2NWB, "
                "neuroconv's DeepLabCutInterface), or drop the DLC .h5 instead.")
        if len(found) > 1:
            names = ", ".join(sorted(o.name for o in found))
            raise DLCFileError(
                f"{path}: {len(found)} PoseEstimation objects ({names}); one camera view "
                "per recording is supported. Split the file, or drop the DLC .h5 instead.")
        pose = found[0]
        nodes = list(pose.skeleton.nodes[:]) if pose.skeleton is not None else []
        series = list(pose.pose_estimation_series.values())
        if not series:
            raise DLCFileError(f"{path}: PoseEstimation {pose.name!r} has no "
                               "PoseEstimationSeries (no body parts).")
        if nodes and len(nodes) == len(series):
            order = {n: i for i, n in enumerate(nodes)}
            series.sort(key=lambda s: order.get(_series_name_to_part(s.name, nodes), 1 << 30))
        parts = [_series_name_to_part(s.name, nodes) for s in series]
        lengths = {s.name: int(s.data.shape[0]) for s in series}
        if len(set(lengths.values())) != 1:
            raise DLCFileError(f"{path}: PoseEstimationSeries of different lengths {lengths}; "
                               "every body part needs one value per frame.")
        dims = {s.name: s.data.shape[1] for s in series if s.data.ndim == 2}
        if len(dims) != len(series) or set(dims.values()) != {2}:
            raise DLCFileError(f"{path}: pose data must be (frames, 2) x/y per body part; "
                               f"found {dims}. 3-D pose cannot be ingested.")
        n = next(iter(lengths.values()))
        poses = np.empty((n, len(series), 3), dtype=np.float64)
        for i, s in enumerate(series):
            poses[:, i, :2] = np.asarray(s.data[:], dtype=np.float64)
            poses[:, i, 2] = (np.asarray(s.confidence[:], dtype=np.float64)
                              if s.confidence is not None else np.nan)
        first = series[0]
        timestamps = None
        if first.timestamps is not None or first.rate is not None:
            timestamps = np.asarray(first.get_timestamps()[:], dtype=np.float64)
        scorer = str(pose.scorer) if pose.scorer else ""
    finally:
        io.close()
    # DLC's own missing encoding: a point without x or y is missing in all three values.
    missing = ~np.isfinite(poses[..., :2]).all(axis=-1)
    poses[missing] = np.nan
    return DLCPredictions(scorer=scorer, body_parts=parts, poses=poses,
                          frames=np.arange(n, dtype=np.int64), sources=[path]), timestamps


def check_nwb_frame_rate(timestamps_s: np.ndarray | None, video_fps: float,
                         path: str | os.PathLike, recording_id: str,
                         tolerance: float = FRAME_RATE_TOLERANCE) -> None:
    """Refuse NWB timestamps that imply another frame rate than the video's.

    Parameters
    ----------
    timestamps_s : np.ndarray or None
        The pose timestamps read from the file (None: nothing to check).
    video_fps : float
        The video's frame rate (Hz).
    path : path
        The NWB file (for the message).
    recording_id : str
        The recording (for the message).
    tolerance : float
        Largest accepted relative difference of the two rates (default 1 %).

    Raises
    ------
    DLCFileError
        Timestamps not increasing, or implying a rate off by more than ``tolerance``; the
        message gives both rates and the fix (e.g. frame indices stored as seconds).
    """
    if timestamps_s is None or len(timestamps_s) < 2:
        return
    where = f"{path} (recording {recording_id})"
    steps = np.diff(np.asarray(timestamps_s, dtype=np.float64))
    if not (np.isfinite(steps).all() and (steps > 0).all()):
        raise DLCFileError(f"{where}: pose timestamps are not strictly increasing; rewrite "
                           "the file with the frame times in seconds from the session start.")
    implied = 1.0 / float(np.median(steps))
    if abs(implied - video_fps) <= tolerance * video_fps:
        return
    hint = ""
    if abs(implied - 1.0) < 1e-6:
        hint = (" The timestamps step by exactly 1: they are frame indices stored as "
                "seconds (some converters write that).")
    raise DLCFileError(
        f"{where}: pose timestamps imply {implied:.4g} frames/s but the video runs at "
        f"{video_fps:.4g} frames/s.{hint} Rewrite the NWB file with timestamps in seconds "
        f"(frame / {video_fps:g}, or the camera's frame times), or drop the DLC .h5 "
        "instead of the NWB file.")
