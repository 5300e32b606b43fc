"""Helpers for running the per-recording job through a real Dagster instance."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlc_tracking.io.dlc_files import output_names, write_metadata, write_predictions
from dlc_tracking.synthetic.openfield import GROUND_TRUTH_NAME, make_session, read_ground_truth


def run_recording(instance, resources, rid: str):
    """Add the partition and run the process_recording job for it, in process."""
    from dlc_assets.definitions import build_definitions

    if not instance.has_dynamic_partition("recordings", rid):
        instance.add_dynamic_partitions("recordings", [rid])
    job = build_definitions(resources).resolve_job_def("process_recording")
    return job.execute_in_process(partition_key=rid, instance=instance, raise_on_error=False)


def current_definitions():
    """``build_definitions()`` with the environment of the moment: a zero-argument target
    for Dagster's reconstructable jobs (Celery workers, execute_job). The module-level
    ``defs`` is built once per process, with whatever environment the first import saw."""
    from dlc_assets.definitions import build_definitions

    return build_definitions()


def failure_messages(result) -> str:
    out = []
    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data
            if data.user_failure_data and data.user_failure_data.description:
                out.append(data.user_failure_data.description)
            out.append(data.error.message if data.error else "")
    return "\n".join(out)


def session_with_manual_outputs(data_root: Path, subject: str, session: str, scorer: str,
                                body_parts: list[str], *, n_frames: int = 120,
                                camera_view: str = "above", seed: int = 0,
                                poses_transform=None, meta: bool = True, **kwargs) -> Path:
    """A synthetic session whose ground truth is written as DLC outputs of ``scorer``."""
    folder = make_session(data_root, subject, session, n_frames=n_frames, seed=seed,
                          camera_view=camera_view, **kwargs)
    gt = read_ground_truth(folder / GROUND_TRUTH_NAME)
    poses = gt.poses()
    poses[..., 2] = np.where(np.isnan(poses[..., 0]), 0.0, 0.99)
    if poses_transform is not None:
        poses = poses_transform(poses)
    out = folder / "dlc_openfield"
    out.mkdir(exist_ok=True)
    h5_name, meta_name = output_names("openfield", scorer)
    write_predictions(out / h5_name, scorer, body_parts, poses)
    if meta:
        write_metadata(out / meta_name, {"Scorer": scorer, "fps": gt.fps,
                                         "nframes": poses.shape[0]},
                       start_timestamp="2026-01-05T10:00:00+01:00")
    return folder


def rid_of(folder: Path) -> str:
    from dlc_tracking.sessions.layout import recording_id

    return recording_id(folder.parent.name, folder.name, "openfield")
