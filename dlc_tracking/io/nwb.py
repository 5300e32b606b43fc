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

Import lives in :mod:`dlc_tracking.io.nwb_pose` (it needs nothing of the warehouse; the
ingestion step reads NWB files through it); :func:`read_nwb_predictions` and
:func:`check_nwb_frame_rate` are re-exported here.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dlc_tracking.io.atomic import atomic_write
from dlc_tracking.io.nwb_pose import check_nwb_frame_rate, read_nwb_predictions
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


# ----------------------------------------------------------------------------- export


UNKNOWN_VERSION = "unknown (not recorded with the predictions)"
"""``source_software_version`` when the DeepLabCut version that made the predictions is not
known (it is never the version installed beside the platform, nor the platform's)."""
_VERSION_KEYS = ("dlc_version", "DLC_version", "deeplabcut_version", "DeepLabCut version",
                 "version")


def predictions_dlc_version(rec: StoredRecording) -> str | None:
    """The DeepLabCut version that made the recording's predictions, where it is known.

    Looked up, in order: a ``dlc_version`` in the ``prediction_sources`` row (inference
    runs), a version entry in the DLC metadata pickle (``_meta.pickle`` or
    ``includingmetadata.pickle``) beside the ingested files, the ``source_software_version``
    of an ingested NWB file. None when none says it.
    """
    stated = (rec.source or {}).get("dlc_version")
    if isinstance(stated, str) and stated.strip():
        return stated.strip()
    from dlc_tracking.io.dlc_files import find_output_sets, read_metadata

    for path in rec.source_files:
        try:
            if path.suffix.lower() == ".nwb":
                version = _nwb_software_version(path)
                if version:
                    return version
                continue
            for output_set in find_output_sets(path.parent):
                if output_set.predictions_path.name == path.name and output_set.metadata_path:
                    meta = read_metadata(output_set.metadata_path)
                    for key in _VERSION_KEYS:
                        if isinstance(meta.get(key), str) and meta[key].strip():
                            return meta[key].strip()
        except Exception:  # noqa: BLE001 - a moved or changed file: the version is unknown
            continue
    return None


def _nwb_software_version(path: Path) -> str | None:
    import ndx_pose  # noqa: F401 - registers the ndx-pose classes with pynwb
    from ndx_pose import PoseEstimation
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(path), "r", load_namespaces=True) as io:
        nwb = io.read()
        for obj in nwb.objects.values():
            if isinstance(obj, PoseEstimation) and obj.source_software_version:
                return str(obj.source_software_version)
    return None


def model_facts(rec: StoredRecording) -> dict[str, str]:
    """Engine, net type and snapshot of the model that made the predictions, as
    ``models show`` knows them (its registry row), else as its DLC scorer says."""
    model = rec.model or {}
    facts = {k: str(model[k]) for k in ("engine", "net_type", "snapshot")
             if model.get(k) is not None and str(model.get(k)) not in ("", "nan", "None")}
    if len(facts) < 3 and rec.scorer:
        from dlc_tracking.errors import RegistryError
        from dlc_tracking.registry.scorers import parse_scorer

        try:
            info = parse_scorer(rec.scorer, task=model.get("task") or None,
                                date=model.get("date") or None)
        except RegistryError:
            info = None
        if info is not None:
            snapshot = (f"snapshot-{info.iterations}" if info.iterations is not None
                        else f"snapshot-{'best-' if info.snapshot_best else ''}"
                        f"{info.snapshot_epoch}" if info.snapshot_epoch is not None else None)
            found = {"engine": info.engine, "net_type": info.net_type, "snapshot": snapshot}
            facts = {**{k: v for k, v in found.items() if v}, **facts}
    return {k: facts.get(k, "unknown") for k in ("engine", "net_type", "snapshot")}


def _timing(time_s: np.ndarray, fps: float | None = None) -> dict[str, Any]:
    """``starting_time`` + ``rate`` for frame times with a constant step (to 1 ns, as
    nwbinspector's check_regular_timestamps judges), else the timestamps.

    The rate is the nominal ``fps`` when the step is ``1 / fps``, else the step's inverse.
    """
    t = np.asarray(time_s, dtype=np.float64)
    if t.size >= 2 and np.isfinite(t).all():
        steps = np.diff(t)
        if np.unique(steps.round(9)).size == 1 and steps[0] > 0:
            rate = (float(fps) if fps and abs(1.0 / fps - steps[0]) < 1e-9
                    else float((t.size - 1) / (t[-1] - t[0])))
            return {"starting_time": float(t[0]), "rate": rate}
    return {"timestamps": t}


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


def _add_pose(nwb, behavior, rec: StoredRecording, video_series, labeled_series,
              camera) -> None:
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
    facts = model_facts(rec)
    dlc_names = rec.dlc_body_parts()
    renamed = (f" Body parts renamed from DeepLabCut's {dlc_names} to the platform's "
               "canonical names." if dlc_names and dlc_names != list(rec.body_parts) else "")
    behavior.add(PoseEstimation(
        name="PoseEstimation", pose_estimation_series=series,
        description=(f"Single-animal pose estimated with DeepLabCut (engine "
                     f"{facts['engine']}, net {facts['net_type']}, snapshot "
                     f"{facts['snapshot']}), registered in dlc-platform as model "
                     f"{rec.model_name}.{renamed} Missing points are NaN."),
        scorer=rec.scorer or None, source_software=SOURCE_SOFTWARE,
        source_software_version=predictions_dlc_version(rec) or UNKNOWN_VERSION,
        skeleton=skeleton, source_video=video_series, labeled_video=labeled_series,
        device=camera))


def _add_processed(behavior, rec: StoredRecording) -> None:
    for interface in processed_interfaces(rec.processed, rec.fps):
        behavior.add(interface)


def processed_interfaces(df, fps: float | None, suffix: str = "",
                         who: str = "Subject") -> list:
    """The NWB objects of processed tracking rows (``processed_tracking`` or one
    individual's ``individual_tracking``): ``Position{suffix}`` (SpatialSeries
    ``position``, cm), ``CompassDirection{suffix}`` (``head_direction``), the TimeSeries
    ``speed``, ``angular_head_velocity``, ``movement_direction`` and ``interpolated`` (each
    + ``suffix``), on one time base; ``who`` starts the position's description."""
    from pynwb import TimeSeries
    from pynwb.behavior import CompassDirection, Position, SpatialSeries

    time_s = df["time_s"].to_numpy(np.float64)
    timing = _timing(time_s, fps)
    arena = ("arena frame: origin at the lower-left corner of the arena boundary, x to the "
             "right, y up (image y flipped), as seen from above the arena (a camera below "
             "is mirrored back); cm")
    xy = np.column_stack([df["x_cm"].to_numpy(np.float64), df["y_cm"].to_numpy(np.float64)])
    position = SpatialSeries(
        name="position", data=xy, reference_frame=arena, unit="meters", conversion=_CM_TO_M,
        description=f"{who} position (the state vector), in cm: multiply by conversion "
        "(0.01) for meters. NaN where missing.", **timing)
    out = [Position(name=f"Position{suffix}", spatial_series=position)]
    shared = {"timestamps": position} if "timestamps" in timing else timing
    out.append(CompassDirection(name=f"CompassDirection{suffix}", spatial_series=SpatialSeries(
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
        out.append(TimeSeries(name=f"{name}{suffix}", data=df[column].to_numpy(np.float64),
                              unit=unit, conversion=conversion, description=text, **shared))
    out.append(TimeSeries(
        name=f"interpolated{suffix}",
        data=df["interpolated"].to_numpy(bool).astype(np.uint8),
        unit="n.a.", description="1 where the position was interpolated over a gap.",
        **shared))
    return out


def _add_on_imaging(behavior, on_imaging) -> None:
    """Tracking at the imaging frames (tracking_on_imaging), per plane, on the imaging
    frames' timestamps (recording clock), as imaging datasets on DANDI carry behaviour."""
    if on_imaging is None or not len(on_imaging):
        return
    from pynwb import TimeSeries
    from pynwb.behavior import CompassDirection, Position, SpatialSeries

    for plane, df in on_imaging.sort_values(["plane", "imaging_frame"]).groupby("plane"):
        suffix = f"_on_imaging_plane{int(plane)}"
        timing = _timing(df["time_s"].to_numpy(np.float64))
        xy = np.column_stack([df["x_cm"].to_numpy(np.float64), df["y_cm"].to_numpy(np.float64)])
        position = SpatialSeries(
            name="position", data=xy, unit="meters", conversion=_CM_TO_M,
            reference_frame="arena frame (as the position series), cm",
            description=f"Position at each imaging frame of plane {int(plane)} (interpolated "
            "from the video frames); NaN where not valid.", **timing)
        # one timestamps dataset, linked; a regular plane stores starting_time + rate
        shared = {"timestamps": position} if "timestamps" in timing else timing
        behavior.add(Position(name=f"position{suffix}", spatial_series=position))
        behavior.add(CompassDirection(name=f"head_direction{suffix}", spatial_series=SpatialSeries(
            name="head_direction", data=df["head_direction_deg"].to_numpy(np.float64),
            **shared, unit="degrees",
            reference_frame="counter-clockwise from the arena frame's +x axis, [0, 360)",
            description="Head direction at each imaging frame (shorter-arc interpolation).")))
        for name, column, unit, conversion in (
                ("speed", "speed_cm_s", "m/s", _CM_TO_M),
                ("angular_head_velocity", "angular_head_velocity_deg_s", "degrees/s", 1.0)):
            behavior.add(TimeSeries(name=f"{name}{suffix}", data=df[column].to_numpy(np.float64),
                                    unit=unit, conversion=conversion, **shared,
                                    description=f"{name} at each imaging frame of plane "
                                    f"{int(plane)}."))
        behavior.add(TimeSeries(name=f"valid{suffix}", data=df["valid"].to_numpy(bool).astype(
            np.uint8), unit="n.a.", **shared, description="1 where tracking is "
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


def _lab_facts(experimenter, institution, lab) -> dict[str, Any]:
    """The NWB file's experimenter / institution / lab, from the arguments or the
    environment (see :func:`export_nwb`); only those that are set."""
    if experimenter is None:
        names = os.environ.get("DLC_PLATFORM_NWB_EXPERIMENTER", "")
        experimenter = [n.strip() for n in names.split(";") if n.strip()] or None
    facts = {"experimenter": [experimenter] if isinstance(experimenter, str) else experimenter,
             "institution": institution or os.environ.get("DLC_PLATFORM_NWB_INSTITUTION"),
             "lab": lab or os.environ.get("DLC_PLATFORM_NWB_LAB")}
    return {k: v for k, v in facts.items() if v}


def export_nwb(rec: StoredRecording, path: str | os.PathLike, *,
               params: Mapping[str, Any] | None = None,
               subject: Mapping[str, str] | None = None,
               labeled_video: str | os.PathLike | None = None,
               experimenter: str | list[str] | None = None, institution: str | None = None,
               lab: str | None = None) -> Path:
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
    labeled_video : path, optional
        The recording's labeled video; linked as the pose's ``labeled_video`` (relative
        path) when the file exists, else the field is absent.
    experimenter, institution, lab : optional
        The NWB file's ``experimenter`` (a name or a list, "Last, First"), ``institution``
        and ``lab``; default ``$DLC_PLATFORM_NWB_EXPERIMENTER`` (names separated by ";"),
        ``$DLC_PLATFORM_NWB_INSTITUTION``, ``$DLC_PLATFORM_NWB_LAB``; absent when unset.

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
        source_script_file_name="dlc_tracking/io/nwb.py",
        **_lab_facts(experimenter, institution, lab))
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
    labeled_series = None
    if labeled_video is not None and Path(labeled_video).is_file():
        labeled = Path(labeled_video)
        labeled_series = ImageSeries(
            name="labeled_video", description=f"Labeled video {labeled.name}: the pose and "
            "state vector drawn on the behaviour video by dlc-platform.",
            external_file=[os.path.relpath(labeled.absolute(), out.parent.absolute())],
            format="external", starting_frame=[0], unit="n.a.", num_samples=rec.n_frames,
            dimension=[int(info["width_px"]), int(info["height_px"])], device=camera,
            **_timing(rec.time_s, rec.fps))
        nwb.add_acquisition(labeled_series)
    behavior = nwb.create_processing_module(
        name="behavior", description="Pose (DeepLabCut) and processed tracking from "
        "dlc-platform.")
    _add_pose(nwb, behavior, rec, video_series, labeled_series, camera)
    _add_processed(behavior, rec)
    _add_on_imaging(behavior, getattr(rec, "on_imaging", None))

    def write(tmp: Path) -> None:
        with NWBHDF5IO(str(tmp), "w") as io:
            io.write(nwb)

    return atomic_write(out, write)


