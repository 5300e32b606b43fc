"""A multi-animal recording as an NWB file: one ndx-pose ``PoseEstimation`` per
individual, linked to its subject (docs/exports.md).

Layout::

    general/subject                   the session's subject (the folder it is filed under)
    general/SubjectsTable             several mapped subjects: the file is an
                                      ``NdxMultiSubjectsNWBFile`` (ndx-multisubjects) whose
                                      SubjectsTable has one row per filmed subject
    processing/behavior/
      Skeletons/<individual>          nodes = canonical body parts (``single``: the unique
                                      body parts, no edges); the session subject's track
                                      links NWB's Subject
      subject_<subject id>/           several subjects: a SelectSubjectsContainer whose
        PoseEstimation_<individual>   ``subjects`` region selects the subject's row
        Position_<individual>, ...    and the individual's processed tracking (below)
      PoseEstimation_<individual>     one mapped subject, or an anonymous track
      Position_<individual>, ...      its processed tracking
      PoseEstimation_single           the unique body parts (no subject)

Series hold the raw pose as in ``individual_predictions`` (image pixels, NaN = missing);
``PoseEstimation.scorer`` is the maDLC file's scorer. Each individual's processed tracking
(``individual_tracking``) is written as the single-animal export writes a subject's
(:func:`dlc_tracking.io.nwb.processed_interfaces`), its names ending in ``_<individual>``:
``Position_<individual>/position`` (cm, arena frame shared by all individuals),
``CompassDirection_<individual>/head_direction``, ``speed_<individual>``,
``angular_head_velocity_<individual>``, ``movement_direction_<individual>``,
``interpolated_<individual>``; beside the individual's PoseEstimation, so in its subject's
container when the file holds several subjects.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from dlc_tracking.io.atomic import atomic_write
from dlc_tracking.io.nwb import (
    CONFIDENCE_DEFINITION,
    IMAGE_FRAME,
    SOURCE_SOFTWARE,
    UNKNOWN_VERSION,
    _lab_facts,
    _timing,
    processed_interfaces,
    skeleton_edges,
)
from dlc_tracking.io.stored_multi_animal import StoredMultiAnimal

__all__ = ["SUBJECT_CONTAINER", "export_multi_animal_nwb", "missing_subject_facts"]

SUBJECT_CONTAINER = "subject_{subject}"
"""Name of the SelectSubjectsContainer holding a subject's PoseEstimation."""
_OPTIONAL = ("age", "date_of_birth", "strain", "genotype", "weight")


def missing_subject_facts(rec: StoredMultiAnimal) -> dict[str, list[str]]:
    """subject id -> the facts DANDI needs (species, sex, age) its subject.yaml lacks, for
    the session's subject and every mapped one."""
    out = {}
    for subject in dict.fromkeys([str(rec.info["subject"]), *rec.named_subjects]):
        facts = rec.subject_facts.get(subject, {})
        missing = [k for k in ("species", "sex") if k not in facts]
        if "age" not in facts and "date_of_birth" not in facts:
            missing.append("age")
        if missing:
            out[subject] = missing
    return out


def _subject(rec: StoredMultiAnimal, subject: str):
    from datetime import datetime

    from pynwb.file import Subject

    facts = rec.subject_facts.get(subject, {})
    born = facts.get("date_of_birth")
    if born:
        born = datetime.fromisoformat(born)
        born = born if born.tzinfo else born.replace(tzinfo=rec.start_time.tzinfo)
    return Subject(subject_id=subject, species=facts.get("species"),
                   sex=facts.get("sex", "U"), age=facts.get("age"), date_of_birth=born or None,
                   strain=facts.get("strain"), genotype=facts.get("genotype"),
                   weight=facts.get("weight"), description=facts.get("description"))


def _subjects_table(rec: StoredMultiAnimal):
    """ndx-multisubjects' SubjectsTable, one row per subject in file order; an optional
    column is written when any subject has the fact ("" for the others)."""
    from ndx_multisubjects import SubjectsTable

    table = SubjectsTable(description=f"Subjects filmed together in recording "
                          f"{rec.recording_id} (session.yaml `individuals:`), facts from "
                          "each subject's subject.yaml.")
    subjects = rec.named_subjects
    facts = {s: rec.subject_facts.get(s, {}) for s in subjects}
    optional = [k for k in _OPTIONAL if any(k in f for f in facts.values())]
    described = any("description" in f for f in facts.values())
    for subject in subjects:
        f = facts[subject]
        row: dict[str, Any] = {"subject_id": subject, "species": f.get("species", ""),
                               "sex": f.get("sex", "U")}
        row.update({k: f.get(k, "") for k in optional})
        if described:
            row["subject_description"] = f.get("description", "")
        table.add_row(**row)
    return table


def _description(rec: StoredMultiAnimal) -> str:
    tracks = ", ".join(f"{ind} -> {sub or 'anonymous'}" for ind, sub in rec.subjects.items())
    return (f"dlc-platform export of multi-animal recording {rec.recording_id} (session "
            f"{rec.info['session']}, video {rec.info.get('video_file')}); model "
            f"{rec.model_name}; tracks and subjects: {tracks}. Raw maDLC pose and "
            "processed tracking per individual" + _processing_note(rec) + ".")


def _processing_note(rec: StoredMultiAnimal) -> str:
    """`` (state-vector method M, processing parameters P, hash H)`` of the tracking."""
    t = rec.tracking
    if t is None or not len(t):
        return " (no processed tracking in the warehouse)"
    return (f" (state-vector method {t['method_name'].iloc[0]}, processing parameters "
            f"{t['params_name'].iloc[0]}, hash {t['params_hash'].iloc[0]})")


def _pose_estimation(name: str, parts: list[str], dlc_parts: list[str], poses: np.ndarray,
                     timing: dict, rec: StoredMultiAnimal, skeleton, who: str,
                     video_series, camera):
    """One PoseEstimation of ``poses`` ``(n_frames, len(parts), 3)``; returns it and the
    timing for the next series (one timestamps dataset, linked, when irregular)."""
    from ndx_pose import PoseEstimation, PoseEstimationSeries

    series = []
    for i, part in enumerate(parts):
        series.append(PoseEstimationSeries(
            name=part, description=f"Position of {part} of {who} estimated by DeepLabCut.",
            data=poses[:, i, :2], unit="pixels", reference_frame=IMAGE_FRAME,
            confidence=poses[:, i, 2], confidence_definition=CONFIDENCE_DEFINITION,
            **timing))
        if "rate" not in timing:
            timing = {"timestamps": series[0]}
    renamed = (f" Body parts renamed from DeepLabCut's {dlc_parts} to the platform's "
               "canonical names." if list(dlc_parts) != list(parts) else "")
    pose = PoseEstimation(
        name=name, pose_estimation_series=series,
        description=(f"Multi-animal pose of {who} estimated with DeepLabCut (maDLC, "
                     f"tracker {rec.predictions.tracker or 'unknown'}), registered in "
                     f"dlc-platform as model {rec.model_name}.{renamed} Missing points "
                     "are NaN."),
        scorer=rec.predictions.scorer or None, source_software=SOURCE_SOFTWARE,
        source_software_version=UNKNOWN_VERSION, skeleton=skeleton,
        source_video=video_series, device=camera)
    return pose, timing


def export_multi_animal_nwb(rec: StoredMultiAnimal, path: str | os.PathLike, *,
                            experimenter: str | list[str] | None = None,
                            institution: str | None = None, lab: str | None = None) -> Path:
    """Write a multi-animal recording to an NWB file (atomically).

    Parameters
    ----------
    rec : StoredMultiAnimal
        From :func:`~dlc_tracking.io.stored_multi_animal.load_stored_multi_animal`.
    path : path
        Output ``.nwb`` file; its folder is created.
    experimenter, institution, lab : optional
        As for :func:`dlc_tracking.io.nwb.export_nwb` (default: the
        ``DLC_PLATFORM_NWB_*`` environment variables).

    Returns
    -------
    pathlib.Path
        The file written (layout: module docstring).
    """
    from hdmf.common import DynamicTableRegion
    from ndx_pose import Skeleton, Skeletons
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.image import ImageSeries

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    info, p = rec.info, rec.predictions
    subjects = rec.named_subjects
    common = dict(
        session_description=_description(rec), identifier=str(uuid.uuid4()),
        session_start_time=rec.start_time, session_id=str(info["session"]),
        experiment_description=f"{info.get('tracking_type')} behaviour video of several "
        "animals tracked with multi-animal DeepLabCut; processed by dlc-platform.",
        keywords=["DeepLabCut", "multi-animal", "pose estimation",
                  str(info.get("tracking_type"))],
        source_script="dlc-platform (dlc_tracking.io.madlc_nwb.export_multi_animal_nwb)",
        source_script_file_name="dlc_tracking/io/madlc_nwb.py",
        **_lab_facts(experimenter, institution, lab))
    # NWB's one `subject` is the session's (the subject folder it is filed under, as in a
    # single-animal export and DANDI's sub-<id> layout); every filmed subject is a row of
    # ndx-multisubjects' SubjectsTable.
    owner = str(info["subject"])
    table = None
    if len(subjects) >= 2:
        from ndx_multisubjects import NdxMultiSubjectsNWBFile, SelectSubjectsContainer

        table = _subjects_table(rec)
        nwb = NdxMultiSubjectsNWBFile(**common, subject=_subject(rec, owner),
                                      subjects_table=table)
    else:
        nwb = NWBFile(**common, subject=_subject(rec, owner))
    camera = nwb.create_device(name="camera", description=(
        f"behaviour camera, {info.get('camera_view')} the arena; "
        f"{info.get('width_px')}x{info.get('height_px')} px at {rec.fps:g} Hz"))
    timing = _timing(rec.time_s, rec.fps)
    video_series = None
    video = rec.video_path
    if video is not None and video.exists():
        video_series = ImageSeries(
            name="video", description=f"Original behaviour video {video.name}.",
            external_file=[os.path.relpath(video.absolute(), out.parent.absolute())],
            format="external", starting_frame=[0], unit="n.a.", num_samples=rec.n_frames,
            dimension=[int(info["width_px"]), int(info["height_px"])], device=camera,
            **timing)
        nwb.add_acquisition(video_series)
    behavior = nwb.create_processing_module(
        name="behavior", description="Multi-animal pose (DeepLabCut), one PoseEstimation "
        "per individual, from dlc-platform. Individuals and subjects: "
        + json.dumps(rec.subjects))
    parts = list(rec.body_parts)
    skeletons, placed = [], []
    for k, ind in enumerate(p.individuals):
        subject = rec.subjects.get(ind)
        skeleton = Skeleton(name=ind, nodes=parts, edges=skeleton_edges(parts),
                            subject=nwb.subject if subject == owner else None)
        skeletons.append(skeleton)
        who = f"individual {ind} (" + (f"subject {subject})" if subject else "anonymous)")
        pose, timing = _pose_estimation(f"PoseEstimation_{ind}", parts, p.body_parts,
                                        p.poses[:, k], timing, rec, skeleton, who,
                                        video_series, camera)
        placed.append((pose, subject))
        tracking = rec.individual_tracking(ind)
        if tracking is not None:
            label = f"Individual {ind} (" + (f"subject {subject})" if subject else
                                              "anonymous)")
            placed.extend((obj, subject) for obj in processed_interfaces(
                tracking, rec.fps, suffix=f"_{ind}", who=label))
    if p.unique_body_parts:
        unique = list(p.unique_body_parts)
        skeleton = Skeleton(name="single", nodes=unique,
                            edges=np.zeros((0, 2), dtype=np.uint8))
        skeletons.append(skeleton)
        pose, timing = _pose_estimation("PoseEstimation_single", unique, unique,
                                        p.unique_poses, timing, rec, skeleton,
                                        "the unique body parts (DeepLabCut's `single`)",
                                        video_series, camera)
        placed.append((pose, None))
    behavior.add(Skeletons(skeletons=skeletons))
    containers: dict = {}
    for obj, subject in placed:
        if table is None or not subject:
            behavior.add(obj)
            continue
        if subject not in containers:
            containers[subject] = SelectSubjectsContainer(
                name=SUBJECT_CONTAINER.format(subject=subject),
                subjects=DynamicTableRegion(
                    name="subjects", description=f"Subject {subject} in the SubjectsTable.",
                    table=table, data=[subjects.index(subject)]))
            behavior.add(containers[subject])
        containers[subject].add_nwb_data_interfaces(obj)

    def write(tmp: Path) -> None:
        with NWBHDF5IO(str(tmp), "w") as io:
            io.write(nwb)

    return atomic_write(out, write)
