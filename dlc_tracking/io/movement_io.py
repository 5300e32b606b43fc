"""A recording as a ``movement`` poses dataset (xarray), for analysts' notebooks.

movement 0.15 (the last release for Python 3.11, which DeepLabCut 3.0.2 and TensorFlow run
on here) is a core dependency; 0.16+ need Python 3.12.

Conventions (see ``docs/exports.md``): the dataset holds the *raw* DLC positions in the
image frame, in pixels, y down, exactly as in the ``predictions`` table, which is what
movement expects (its ``compute_forward_vector`` assumes image coordinates and a
``top_down`` or ``bottom_up`` camera view). The warehouse's processed tracking is in the
arena frame, cm, y up, smoothed: compare the two with the flip and the scale in mind.
"""

from __future__ import annotations

import os

import numpy as np

from dlc_tracking.io.stored_recording import StoredRecording, load_stored_recording

__all__ = ["CAMERA_VIEWS", "stored_to_movement", "to_movement"]

CAMERA_VIEWS = {"above": "top_down", "below": "bottom_up"}
"""session.yaml's ``camera_view`` -> movement's ``camera_view`` argument."""


def stored_to_movement(rec: StoredRecording):
    """The poses dataset of a recording already read from the warehouse.

    Parameters
    ----------
    rec : StoredRecording
        From :func:`~dlc_tracking.io.stored_recording.load_stored_recording`.

    Returns
    -------
    xarray.Dataset
        movement poses dataset: ``position`` (time, space, keypoints, individuals) in px,
        ``confidence`` (time, keypoints, individuals), ``time`` in seconds from the
        recording start (the frame times, also with a timestamp file), attributes ``fps``,
        ``source_software`` ("DeepLabCut"), ``source_file`` (the predictions files), plus
        ``recording_id``, ``model_name``, ``scorer``, ``camera_view`` (movement's name)
        and ``start_time`` (ISO 8601).
    """
    from movement.io import load_poses

    position = np.transpose(rec.poses[..., :2], (0, 2, 1))[..., np.newaxis]
    confidence = rec.poses[..., 2][..., np.newaxis]
    ds = load_poses.from_numpy(
        position_array=position, confidence_array=confidence,
        individual_names=[str(rec.info["subject"])], keypoint_names=list(rec.body_parts),
        fps=rec.fps, source_software="DeepLabCut")
    # Frame times, not frame / fps: they differ when the session has a timestamp file.
    ds = ds.assign_coords(time=np.asarray(rec.time_s, dtype=np.float64))
    ds.attrs.update({
        "time_unit": "seconds", "recording_id": rec.recording_id,
        "model_name": rec.model_name, "scorer": rec.scorer,
        "camera_view": CAMERA_VIEWS.get(str(rec.info.get("camera_view")), "top_down"),
        "start_time": rec.start_time.isoformat(),
        "source_file": str(rec.info.get("video_path") or ""),
        "coordinates": "image frame: origin top-left, x right, y down, pixels",
    })
    return ds


def to_movement(recording_id: str, warehouse_root: str | os.PathLike | None = None):
    """A recording's raw pose as a ``movement`` poses dataset.

    Parameters
    ----------
    recording_id : str
        The recording id.
    warehouse_root : path, optional
        Warehouse folder (default ``$DLC_PLATFORM_WAREHOUSE``).

    Returns
    -------
    xarray.Dataset
        See :func:`stored_to_movement`.

    Raises
    ------
    WarehouseError
        Unknown recording, or one without predictions.

    Examples
    --------
    >>> from dlc_tracking.io.movement_io import to_movement  # doctest: +SKIP
    >>> from movement.kinematics import compute_speed  # doctest: +SKIP
    >>> ds = to_movement("mouse01__2026-01-05_openfield_above__openfield")  # doctest: +SKIP
    >>> compute_speed(ds.position.sel(keypoints="nose"))  # px/s  # doctest: +SKIP
    """
    return stored_to_movement(load_stored_recording(recording_id, warehouse_root))
