"""Reading pose from NWB files (ndx-pose ``PoseEstimation``) as DLC predictions.

Reads files as DLC2NWB, neuroconv's DeepLabCutInterface or :mod:`dlc_tracking.io.nwb`
write them. Kept apart from the export (which reads the warehouse) so that the
ingestion of a session's outputs does not depend on the warehouse modules.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from dlc_tracking.errors import DLCFileError
from dlc_tracking.io.dlc_files import DLCPredictions

__all__ = ["FRAME_RATE_TOLERANCE", "check_nwb_frame_rate", "read_nwb_predictions"]

FRAME_RATE_TOLERANCE = 0.01
"""Relative difference between the NWB file's and the video's frame rate still accepted."""


_DLC2NWB_DESCRIPTION = re.compile(r"Keypoint (?P<part>.+) from individual (?P<animal>.+)\.")


def _series_name_to_part(name: str, nodes: list[str], description: str = "") -> str:
    """Body-part name of a PoseEstimationSeries.

    DLC2NWB names a series ``<individual>_<body part>`` (``ind1_snout``; its nodes are
    those names) and describes it as ``Keypoint <body part> from individual
    <individual>.``: the body part is read from that description. Other writers name
    series by body part, some with a ``PoseEstimationSeries`` prefix; those are matched to
    the skeleton's nodes.
    """
    dlc2nwb = _DLC2NWB_DESCRIPTION.fullmatch(str(description or "").strip())
    if dlc2nwb is not None and name == f"{dlc2nwb['animal']}_{dlc2nwb['part']}":
        return dlc2nwb["part"]
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
            series.sort(key=lambda s: order.get(s.name, order.get(
                _series_name_to_part(s.name, nodes, s.description), 1 << 30)))
        parts = [_series_name_to_part(s.name, nodes, s.description) for s in series]
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
