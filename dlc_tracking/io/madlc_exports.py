"""Exports of multi-animal predictions: a movement dataset with the ``individuals``
dimension (and each track's subject), and DeepLabCut's maDLC ``.h5`` with the original
scorer, individuals and body-part names (:func:`dlc_tracking.io.madlc_files.write_madlc`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from dlc_tracking.io.madlc_files import MultiAnimalPredictions

__all__ = ["madlc_to_movement"]


def madlc_to_movement(predictions: MultiAnimalPredictions, time_s: np.ndarray,
                      fps: float | None = None,
                      subjects: Mapping[str, str | None] | None = None):
    """A movement poses dataset of every individual.

    Parameters
    ----------
    predictions : MultiAnimalPredictions
        From :func:`~dlc_tracking.io.madlc_files.read_madlc`.
    time_s : np.ndarray
        ``(n_frames,)`` frame times (also with a timestamp file).
    fps : float, optional
        Frame rate stored in the attributes.
    subjects : mapping, optional
        individual -> subject id (None = anonymous), added as the ``subject`` coordinate
        of the ``individuals`` dimension ("" for anonymous tracks).

    Returns
    -------
    xarray.Dataset
        ``position`` (time, space, keypoints, individuals) in image pixels,
        ``confidence`` (time, keypoints, individuals); individuals named as in the file.
    """
    from movement.io import load_poses

    p = predictions
    position = np.transpose(p.poses[..., :2], (0, 3, 2, 1))  # time, space, kp, individuals
    confidence = np.transpose(p.poses[..., 2], (0, 2, 1))
    ds = load_poses.from_numpy(position_array=position, confidence_array=confidence,
                               individual_names=list(p.individuals),
                               keypoint_names=list(p.body_parts), fps=fps,
                               source_software="DeepLabCut")
    ds = ds.assign_coords(time=np.asarray(time_s, np.float64))
    subjects = dict(subjects or {})
    ds = ds.assign_coords(subject=("individuals", [subjects.get(i) or ""
                                                   for i in p.individuals]))
    ds.attrs.update({"time_unit": "seconds", "scorer": p.scorer,
                     "source_file": ", ".join(str(s) for s in p.sources),
                     "coordinates": "image frame: origin top-left, x right, y down, pixels"})
    return ds
