"""camera_inference: DLC run on the cameras of a multi-camera recording that have no
outputs in their session folder, one step per camera on the ``gpu`` queue (docs/3d.md,
section 3).

A graph of three ops: ``cameras_without_outputs`` lists the cameras (a dynamic output per
camera), ``infer_camera`` runs one camera's model on its video with the DLCInference
resource (the engine, runtime choice, cropping and batch size of dlc_predictions), and
``camera_outputs`` collects them into the asset. The cameras travel as mapping keys
(Nothing-typed outputs): no value passes between the steps, so no IO manager or shared
Dagster storage is needed when the steps run on different Celery workers.

Outputs go to ``<work dir>/outputs/<recording>/<model>/<camera>/`` (DLC's files), never
beside the user's files; pose_3d reads a camera's ``dlc_<video stem>/`` folder first,
else that folder. Single-camera recordings are skipped with the reason (dlc_predictions
infers them).
"""

import re

import dagster as dg

from dlc_assets.assets.tracking import clear_failures
from dlc_assets.execution.worker_info import worker_metadata
from dlc_assets.partitions import recordings_partitions
from resources import DataRoot, DLCInference

GROUP = "multiview"
SINGLE_CAMERA_REASON = ("single-camera recording: its video is inferred by dlc_predictions "
                        "(camera_inference runs the cameras of multi-camera recordings)")


def mapping_keys(cameras: list[str]) -> dict[str, str]:
    """Camera name -> Dagster mapping key (letters, digits and ``_`` only; a camera name
    may also hold ``-``), unique."""
    keys: dict[str, str] = {}
    for i, cam in enumerate(cameras):
        key = re.sub(r"[^A-Za-z0-9_]", "_", cam)
        keys[cam] = key if key not in keys.values() else f"{key}_{i}"
    return keys


def _plan(rid: str, data_root: DataRoot):
    """``(recording, cameras to infer)``; no cameras for a single-camera recording."""
    from dlc_tracking.multiview.missing_views import cameras_to_infer
    from dlc_tracking.multiview.recording import recording_rig
    from dlc_tracking.sessions.layout import load_session_metadata

    with clear_failures(rid):
        recording = data_root.recording(rid)
        if not recording.is_multi_camera:
            return recording, []
        meta = load_session_metadata(recording.session_yaml)
        registry = data_root.registry()
        rig = recording_rig(recording, meta, registry)
        return recording, cameras_to_infer(recording, meta, registry, rig)


@dg.op(out=dg.DynamicOut(dg.Nothing),
       description="The cameras of a multi-camera recording without DLC outputs in their "
       "dlc_<video stem>/ folder: one dynamic output (mapping key) per camera.")
def cameras_without_outputs(context: dg.OpExecutionContext, data_root: DataRoot):
    rid = context.partition_key
    _recording, todo = _plan(rid, data_root)
    keys = mapping_keys([c.camera for c in todo])
    for cam in todo:
        context.log.info(f"{rid}: camera {cam.camera} has no DLC outputs in its session "
                         f"folder; inferring {cam.video.name} with model {cam.model}")
        yield dg.DynamicOutput(None, mapping_key=keys[cam.camera])


@dg.op(ins={"camera": dg.In(dg.Nothing)}, pool="gpu", tags={"dagster-celery/queue": "gpu"},
       description="One camera's video through its model with the DLCInference resource "
       "(as dlc_predictions); DLC's files in <work dir>/outputs/<recording>/<model>/<camera>/.")
def infer_camera(context: dg.OpExecutionContext, data_root: DataRoot,
                 dlc_inference: DLCInference) -> None:
    rid = context.partition_key
    _recording, todo = _plan(rid, data_root)
    key = context.get_mapping_key()
    keys = mapping_keys([c.camera for c in todo])
    found = [c for c in todo if keys[c.camera] == key]
    if not found:  # its outputs were dropped in its session folder since the listing
        context.log.info(f"{rid}: camera {key} has DLC outputs in its session folder now")
        return
    cam = found[0]
    with clear_failures(rid):
        model = data_root.registry().model(cam.model)
        dlc_inference.check_available(model)  # names the worker (host, pid, queue)
        result = dlc_inference.analyze(model, cam.video, rid, log=context.log,
                                       camera=cam.camera)
    context.log.info(f"{rid}: camera {cam.camera}: {model.name} wrote {result.h5_path}")
    context.add_output_metadata({
        "camera": cam.camera, "model": model.name, "video": dg.MetadataValue.path(str(cam.video)),
        "output": dg.MetadataValue.path(str(result.h5_path)),
        "inference_frames_per_s": round(result.frames_per_s, 2),
        "inference_seconds": round(result.seconds, 2), "device": result.device,
        "inference_engine": result.inference_engine,
        "inference_batch_size": result.batch_size, **worker_metadata()})


@dg.op(ins={"inferred": dg.In(dg.Nothing)},
       description="Each camera's source (manual outputs or inferred, with the folder).")
def camera_outputs(context: dg.OpExecutionContext, data_root: DataRoot,
                   dlc_inference: DLCInference) -> None:
    rid = context.partition_key
    recording, todo = _plan(rid, data_root)
    if not recording.is_multi_camera:
        context.add_output_metadata({"skipped": True, "reason": SINGLE_CAMERA_REASON})
        return
    inferred = {c.camera: dlc_inference.output_dir(rid, c.model, c.camera) for c in todo}
    sources = {cam.camera: (f"inferred: {inferred[cam.camera]}" if cam.camera in inferred
                            else f"manual: {cam.manual_output_dir}")
               for cam in recording.cameras}
    context.add_output_metadata({"inferred_cameras": ", ".join(inferred) or "none",
                                 "sources": dg.MetadataValue.json(sources)})


@dg.graph_asset(
    group_name=GROUP, partitions_def=recordings_partitions, kinds={"deeplabcut"},
    description="Multi-camera recordings: DLC run on each camera without outputs in its "
    "dlc_<video stem>/ folder (its model: the rig's per camera, else the session's), one "
    "step per camera on the gpu queue, outputs in <work dir>/outputs/<recording>/<model>/"
    "<camera>/ for pose_3d. Single-camera recordings are skipped (dlc_predictions infers "
    "them).",
)
def camera_inference():
    return camera_outputs(cameras_without_outputs().map(infer_camera).collect())


camera_inference_assets = [camera_inference]
