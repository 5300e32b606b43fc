"""Exports of a multi-animal recording (``dlc-platform export``, docs/exports.md): a
movement dataset with the ``individuals`` dimension (and each track's subject), and
DeepLabCut's maDLC ``.h5`` with the original scorer, individuals and body-part names
(:func:`dlc_tracking.io.madlc_files.write_madlc`); NWB is in
:mod:`dlc_tracking.io.madlc_nwb`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from dlc_tracking.errors import WarehouseError
from dlc_tracking.io.atomic import atomic_write
from dlc_tracking.io.dlc_files import H5_KEY
from dlc_tracking.io.madlc_files import MultiAnimalPredictions, write_madlc
from dlc_tracking.io.stored_multi_animal import StoredMultiAnimal

__all__ = ["MULTI_ANIMAL_FORMATS", "export_multi_animal", "madlc_to_movement",
           "multi_animal_to_movement", "write_madlc_h5", "write_multi_animal_movement"]

MULTI_ANIMAL_FORMATS = ("nwb", "movement", "dlc-h5")
"""``dlc-platform export --format`` values a multi-animal recording has."""


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


def write_madlc_h5(rec: StoredMultiAnimal, out: str | os.PathLike) -> Path:
    """The recording as DeepLabCut's multi-animal ``.h5``: columns ``(scorer,
    individuals, bodyparts, coords)`` under the file's own scorer, individuals and body-part
    names, unique body parts under the individual ``single``, key ``df_with_missing`` (as
    ``filterpredictions`` writes it; the only key, so ``pandas.read_hdf`` and DeepLabCut's
    ``load_analyzed_data`` read it without one), one row per video frame (0..n-1; frames
    without an animal are NaN). Written atomically.
    """
    return atomic_write(Path(out), lambda tmp: write_madlc(tmp, rec.predictions, key=H5_KEY))


def multi_animal_to_movement(rec: StoredMultiAnimal):
    """The movement poses dataset of a multi-animal recording.

    Returns
    -------
    xarray.Dataset
        ``position`` (time, space, keypoints, individuals) in image pixels (y down),
        ``confidence`` (time, keypoints, individuals); ``individuals`` named as in the
        maDLC file and session.yaml (``mus1``...), with a ``subject`` coordinate ("" for an
        anonymous track); ``keypoints`` the canonical body-part names, as the
        single-animal export. Attributes as the single-animal export's (``fps``,
        ``source_software``, ``recording_id``, ``model_name``, ``scorer``, ``camera_view``,
        ``start_time``, ``source_file`` = the video) plus ``subjects`` (JSON individual ->
        subject id, null = anonymous), ``dlc_body_parts`` (JSON canonical -> DeepLabCut's
        name) and ``unique_body_parts`` (JSON; their positions are not in the dataset:
        movement's dataset has one keypoint list for every individual).
    """
    from dlc_tracking.io.movement_io import CAMERA_VIEWS

    p = rec.predictions
    canonical = MultiAnimalPredictions(p.scorer, p.individuals, list(rec.body_parts),
                                       p.poses, frames=p.frames)
    ds = madlc_to_movement(canonical, rec.time_s, rec.fps, rec.subjects)
    ds.attrs.update({
        "recording_id": rec.recording_id, "model_name": rec.model_name,
        "camera_view": CAMERA_VIEWS.get(str(rec.info.get("camera_view")), "top_down"),
        "start_time": rec.start_time.isoformat(),
        "source_file": str(rec.info.get("video_path") or ""),
        "subjects": json.dumps(rec.subjects),
        "dlc_body_parts": json.dumps(dict(zip(rec.body_parts, p.body_parts, strict=True))),
        "unique_body_parts": json.dumps(list(p.unique_body_parts)),
    })
    return ds


def write_multi_animal_movement(rec: StoredMultiAnimal, out: str | os.PathLike) -> Path:
    """:func:`multi_animal_to_movement` as netCDF (``xarray.open_dataset(path,
    engine="h5netcdf")`` reads it back), written atomically."""
    ds = multi_animal_to_movement(rec)
    ds.attrs = {k: ("" if v is None else v) for k, v in ds.attrs.items()}  # netCDF: no None
    return atomic_write(Path(out), lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf"))


def export_multi_animal(rec: StoredMultiAnimal, fmt: str, out: str | os.PathLike, *,
                        experimenter: str | list[str] | None = None,
                        institution: str | None = None, lab: str | None = None) -> Path:
    """Write a multi-animal recording in ``fmt`` (one of :data:`MULTI_ANIMAL_FORMATS`).

    Raises
    ------
    WarehouseError
        A format this function does not write (``csv``; ``labeled-video`` is drawn by
        :func:`dlc_tracking.qc.social_video.render_multi_animal_recording`), with what to
        use (query ``individual_tracking``).
    """
    if fmt == "nwb":
        from dlc_tracking.io.madlc_nwb import export_multi_animal_nwb

        return export_multi_animal_nwb(rec, out, experimenter=experimenter,
                                       institution=institution, lab=lab)
    writers = {"movement": write_multi_animal_movement, "dlc-h5": write_madlc_h5}
    if fmt not in writers:
        raise WarehouseError(
            f"recording {rec.recording_id} is a multi-animal recording: --format {fmt} "
            f"is not available for it; use one of {[*MULTI_ANIMAL_FORMATS, 'labeled-video']} "
            "(`dlc-platform export`; the labeled video is drawn by dlc_tracking.qc."
            "social_video.render_multi_animal_recording), or "
            "query its processed tracking per individual (`dlc-platform query \"SELECT * FROM "
            f"individual_tracking WHERE recording_id = '{rec.recording_id}'\"`, "
            "docs/multi-animal.md).")
    return writers[fmt](rec, out)
