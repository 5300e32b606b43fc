"""Inference of the missing views of a multi-camera take (docs/3d.md, section 3): a camera
without DLC outputs in its session folder is run through its model by the
camera_inference asset, one step per camera, and triangulated with the others."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import yaml

from dlc_tracking.synthetic.rig import (
    BODY_PARTS_3D,
    look_at_camera,
    make_rig,
    project_scene,
    simulate_scene,
    write_anipose_calibration,
    write_dlc_predictions,
)

N_FRAMES = 30
FPS = 30.0
ARENA_MM = 500.0
TOP_SIZE = (200, 150)  # the tiny model's training frames: arena 132 px across


def _cameras():
    """A top camera framed like the tiny model's training videos (the arena 132 px
    across a 200 x 150 frame) and two side cameras of the synthetic rig."""
    centre = np.array([ARENA_MM / 2, ARENA_MM / 2, 0.0])
    height = 1.9 * ARENA_MM
    top = look_at_camera("top", centre + [0.0, 0.0, height], centre,
                         focal_px=132 * height / ARENA_MM, size=TOP_SIZE, up=(0.0, 1.0, 0.0))
    return [top, *make_rig(3, arena_mm=ARENA_MM, size=(320, 240), focal_px=200.0)[1:]]


def _render_top(scene, top, path):
    """The top camera's video: the synthetic open field drawn at the top camera's
    projection of the 3D body parts (openfield's renderer, as in the model's training)."""
    from dlc_tracking.synthetic.openfield import GroundTruth, render_video

    keypoints = top.project(scene.points)
    corners = top.project(np.array([[0, 0, 0], [ARENA_MM, ARENA_MM, 0]], dtype=float))
    (x0, y1), (x1, y0) = corners  # image y grows down: the far corner is at the top
    n = scene.n_frames
    gt = GroundTruth(
        body_parts=list(BODY_PARTS_3D), keypoints=keypoints,
        visible=np.ones(keypoints.shape[:2], dtype=bool), time_s=scene.time_s,
        head_direction_deg=scene.azimuth_deg, head_xy_px=keypoints[:, 1:3].mean(axis=1),
        head_speed_px_s=np.zeros(n), camera_view="above", width=top.size[0],
        height=top.size[1], fps=scene.fps, arena_px=(x0, y0, x1, y1),
        tail_phase=np.linspace(0.0, 2 * np.pi, n))
    render_video(gt, path, noise=2.0)
    return keypoints


@pytest.fixture
def take(tmp_path, registry_path, registry):
    """A 3-camera take: the side cameras' DLC outputs (written as the tiny model's), the
    top camera's video only; a registry whose rig tracks every camera with the tiny
    model and names the rig's Anipose calibration."""
    from dlc_tracking.registry.editing import edit_registry

    cams = _cameras()
    scene = simulate_scene(n_frames=N_FRAMES, fps=FPS, arena_mm=ARENA_MM)
    poses = project_scene(scene, cams)
    folder = tmp_path / "data" / "m1" / "s1"
    folder.mkdir(parents=True)
    scorer = registry.model("tiny_openfield").scorer
    for cam, cam_poses in zip(cams[1:], poses[1:], strict=True):
        write_dlc_predictions(cam_poses[None], [cam], BODY_PARTS_3D,
                              folder / f"dlc_{cam.name}", scorer=scorer)
    truth_top = _render_top(scene, cams[0], folder / "top.mp4")
    meta = {"tracking_type": "openfield", "start_time": "2026-01-05T10:00:00+01:00",
            "camera_view": "above", "rig": "tri", "fps": FPS,
            "cameras": {c.name: f"{c.name}.mp4" for c in cams}}
    (folder / "session.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    reg = tmp_path / "registry.yaml"
    shutil.copy(registry_path, reg)
    calibration = write_anipose_calibration(cams, tmp_path / "calibration.toml")

    def add_rig(doc):
        doc["rigs"] = {"tri": {"cameras": [c.name for c in cams], "model": "tiny_openfield",
                               "calibration": str(calibration)}}
    edit_registry(reg, add_rig)
    return {"folder": folder, "registry": reg, "truth_top": truth_top, "scorer": scorer,
            "rid": "m1__s1__tri"}


@pytest.mark.slow
def test_camera_without_outputs_is_inferred_in_its_own_step(tmp_path, take, instance):
    from dlc_tracking.warehouse import Warehouse
    from resources import DataRoot, DLCInference, WarehouseResource
    from tests.pipeline_helpers import failure_messages, run_recording

    rid = take["rid"]
    resources = {
        "data_root": DataRoot(path=str(tmp_path / "data"), registry_path=str(take["registry"])),
        "warehouse": WarehouseResource(root=str(tmp_path / "warehouse")),
        "dlc_inference": DLCInference(device="cpu", batch_size=8,
                                      work_dir=str(tmp_path / "work")),
    }
    result = run_recording(instance, resources, rid)
    assert result.success, failure_messages(result)
    steps = {e.step_key for e in result.all_events if e.is_step_success}
    # one inference step for the camera without outputs, none for the others
    assert "camera_inference.infer_camera[top]" in steps
    assert not any(s.startswith("camera_inference.infer_camera[side") for s in steps)
    assert {"camera_inference.cameras_without_outputs", "camera_inference.camera_outputs",
            "pose_3d"} <= steps
    # DLC's files in the work area, nothing beside the user's files
    out = tmp_path / "work" / "outputs" / rid / "tiny_openfield" / "top"
    assert list(out.glob(f"top{take['scorer']}*.h5"))
    assert not (take["folder"] / "dlc_top").exists()

    store = Warehouse(tmp_path / "warehouse")
    pose = store.read_partition("pose_3d", rid)
    assert len(pose) == N_FRAMES * len(BODY_PARTS_3D) and pose.n_cameras.max() == 3
    sources = store.read_partition("prediction_sources", rid).set_index("camera")
    assert sources.loc["top", "source"] == "inference"
    assert sources.loc["top", "scorer"] == take["scorer"]
    assert sources.loc["top", "model_name"] == "tiny_openfield"
    assert str(out) in sources.loc["top", "files"]
    assert (sources.loc[["side_1", "side_2"], "source"] == "manual").all()
    # the top camera looks like the model's training videos: its keypoints are close
    preds = store.read_partition("predictions", rid)
    top = preds[preds.camera == "top"].sort_values(["frame", "body_part"])
    truth = take["truth_top"]
    part = {p: i for i, p in enumerate(BODY_PARTS_3D)}
    err = np.hypot(top.x_px.to_numpy() - truth[top.frame, top.body_part.map(part), 0],
                   top.y_px.to_numpy() - truth[top.frame, top.body_part.map(part), 1])
    print(f"top camera: median keypoint error {np.nanmedian(err):.2f} px")
    assert np.nanmedian(err) < 5.0, np.nanmedian(err)
    [event] = [e for e in result.get_asset_materialization_events()
               if e.asset_key.to_user_string() == "camera_inference"]
    assert event.materialization.metadata["inferred_cameras"].value == "top"


def test_camera_without_outputs_or_video_names_the_file(take):
    from dlc_tracking.errors import SessionError
    from dlc_tracking.multiview.missing_views import cameras_to_infer
    from dlc_tracking.multiview.recording import recording_rig
    from dlc_tracking.registry.registry_file import load_registry
    from dlc_tracking.sessions.layout import discover_recordings, load_session_metadata

    [rec] = discover_recordings(take["folder"].parent.parent).recordings
    meta = load_session_metadata(rec.session_yaml)
    registry = load_registry(take["registry"])
    rig = recording_rig(rec, meta, registry)
    [todo] = cameras_to_infer(rec, meta, registry, rig)
    assert (todo.camera, todo.model, todo.video.name) == ("top", "tiny_openfield", "top.mp4")
    (take["folder"] / "top.mp4").unlink()
    with pytest.raises(SessionError, match=r"session\.yaml.*camera 'top'.*top\.mp4"):
        cameras_to_infer(rec, meta, registry, rig)


def test_single_camera_recording_is_skipped(tmp_path, resources, platform_dirs, instance):
    import dagster as dg

    from dlc_assets.assets.camera_inference import SINGLE_CAMERA_REASON, camera_inference
    from dlc_tracking.synthetic.openfield import make_session
    from tests.pipeline_helpers import rid_of

    rid = rid_of(make_session(platform_dirs["data_root"], "m2", "s1", n_frames=5))
    instance.add_dynamic_partitions("recordings", [rid])
    result = dg.materialize([camera_inference], partition_key=rid, instance=instance,
                            resources=resources)
    [event] = result.get_asset_materialization_events()
    assert event.materialization.metadata["reason"].value == SINGLE_CAMERA_REASON
    assert not (platform_dirs["work"] / "outputs").exists()


@pytest.mark.slow
def test_camera_step_runs_on_the_gpu_worker(tmp_path, take, monkeypatch):
    """With DLC_PLATFORM_EXECUTOR=celery (PostgreSQL, Redis, a gpu and a cpu worker, as
    tests/test_celery.py): the camera's step runs on the gpu worker, the listing and
    pose_3d on the cpu worker, and the cameras reach the mapped step without any shared
    Dagster storage (they travel as mapping keys)."""
    import os

    import dagster as dg

    from dlc_tracking.warehouse import Warehouse
    from tests.services import platform_worker, postgres_server, redis_server
    from tests.test_celery import ROOT, _recon_job

    home, warehouse = tmp_path / "home", tmp_path / "warehouse"
    home.mkdir()
    warehouse.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.production.yaml", home / "dagster.yaml")
    rid = take["rid"]
    with postgres_server() as pg, redis_server(tmp_path / "redis") as redis:
        env = {"DAGSTER_HOME": str(home), "DAGSTER_PG_HOST": pg["host"],
               "DAGSTER_PG_PORT": str(pg["port"]), "DAGSTER_PG_DB": pg["db"],
               "DAGSTER_PG_USERNAME": pg["user"], "DAGSTER_PG_PASSWORD": pg["password"],
               "DLC_PLATFORM_DATA_ROOT": str(tmp_path / "data"),
               "DLC_PLATFORM_REGISTRY": str(take["registry"]),
               "DLC_PLATFORM_WAREHOUSE": str(warehouse),
               "DLC_PLATFORM_WORK_DIR": str(tmp_path / "work"), "DLC_PLATFORM_DEVICE": "cpu",
               "DLC_PLATFORM_EXECUTOR": "celery", "DLC_PLATFORM_CELERY_BROKER": redis["url"],
               "OMP_WAIT_POLICY": "PASSIVE"}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        with dg.DagsterInstance.get() as instance:
            instance.add_dynamic_partitions("recordings", [rid])
        with platform_worker("gpu", dict(os.environ), tmp_path / "worker-gpu.log"), \
                platform_worker("cpu", dict(os.environ), tmp_path / "worker-cpu.log"), \
                dg.DagsterInstance.get() as instance:
            # only the two multiview assets: a step per process costs seconds each
            result = dg.execute_job(_recon_job(), instance=instance, raise_on_error=False,
                                    tags={"dagster/partition": rid},
                                    asset_selection=[dg.AssetKey("camera_inference"),
                                                     dg.AssetKey("pose_3d")])
            assert result.success, "\n".join(
                str(e.message) for e in result.all_events if e.is_failure)
            queues = {}
            for record in instance.all_logs(result.run_id):
                event = record.dagster_event
                if event is not None and event.is_successful_output:
                    meta = event.step_output_data.metadata
                    if "worker_queue" in meta:
                        queues[event.step_key] = meta["worker_queue"].value
                if event is not None and event.is_step_materialization:
                    meta = event.step_materialization_data.materialization.metadata
                    if "worker_queue" in meta:
                        queues[event.step_key] = meta["worker_queue"].value
    assert queues["camera_inference.infer_camera[top]"] == "gpu"
    assert queues["pose_3d"] == "cpu"
    sources = Warehouse(warehouse).read_partition("prediction_sources", rid)
    assert sources.set_index("camera").loc["top", "source"] == "inference"
