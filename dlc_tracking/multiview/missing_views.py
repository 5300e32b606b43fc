"""Which cameras of a multi-camera recording need DLC run on their video.

A camera whose session folder holds DLC outputs (``dlc_<video stem>/``) is ingested as
written; every other camera is inferred with its model (the rig's per-camera model, else
the session's assignment, else the tracking type's default) by the camera_inference
asset, one step per camera (docs/3d.md, section 3). No Dagster here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlc_tracking.errors import SessionError
from dlc_tracking.multiview.recording import SLEAP_ENGINE, _model_for
from dlc_tracking.multiview.rigs import Rig
from dlc_tracking.tracking.predictions import manual_outputs_present

__all__ = ["CameraToInfer", "cameras_to_infer"]


@dataclass(frozen=True)
class CameraToInfer:
    """One camera without DLC outputs in its session folder.

    Attributes
    ----------
    camera : str
        The camera's name in session.yaml ``cameras:``.
    model : str
        The registry model that tracks it.
    video : Path
        The camera's video.
    """

    camera: str
    model: str
    video: Path


def cameras_to_infer(recording: Any, meta: Any, registry: Any, rig: Rig
                     ) -> list[CameraToInfer]:
    """The cameras of a multi-camera recording whose ``dlc_<video stem>/`` folder holds no
    DLC (or SLEAP) outputs, in session.yaml's order, each with its model and video.

    Parameters
    ----------
    recording : dlc_tracking.sessions.layout.Recording
        ``is_multi_camera``.
    meta : SessionMetadata
    registry : Registry
    rig : Rig
        The recording's rig (:func:`~dlc_tracking.multiview.recording.recording_rig`).

    Raises
    ------
    SessionError
        A camera with neither outputs nor a video (names session.yaml, the camera and the
        missing file), or no model for a camera.
    """
    where = f"{recording.session_yaml} (recording {recording.recording_id})"
    out = []
    from dlc_tracking.io.sleap_files import find_sleap_files

    for cam in recording.cameras:
        if (manual_outputs_present(cam.manual_output_dir)
                or find_sleap_files(cam.manual_output_dir)):
            continue
        if not cam.has_video or not Path(cam.video_path).is_file():
            raise SessionError(
                f"{where}: camera {cam.camera!r} has neither DLC outputs in "
                f"{cam.manual_output_dir} nor its video {cam.video_path} to run DLC on; put "
                "the video there (or that camera's DLC .h5/.csv in the folder), or fix the "
                "camera's file name in session.yaml `cameras:`.")
        model = _model_for(cam.camera, rig, meta, registry, where)
        if registry.model(model).engine == SLEAP_ENGINE:
            raise SessionError(
                f"{where}: camera {cam.camera!r} is tracked by the SLEAP model {model!r}, "
                f"which the platform cannot run: put that camera's SLEAP .slp or analysis "
                f".h5 in {cam.manual_output_dir}.")
        out.append(CameraToInfer(cam.camera, model, Path(cam.video_path)))
    return out
