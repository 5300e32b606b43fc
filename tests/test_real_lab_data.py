"""A real lab's archive on day one (issue 10), end to end through Dagster into DuckDB:
models known only by their outputs, re-saved and off-by-one files, recordings without
their video, calibration from the arena, warnings that show, parameter sets per session.

The DLC files are written with DLC's own layout through pandas (``write_predictions`` is
``DataFrame.to_hdf(key="df_with_missing", format="table")`` as analyze_videos does) and
re-saved with pandas' own writers, as labs do.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import yaml

from dlc_assets.status import recording_status
from dlc_tracking.errors import DLCPlatformError, RegistryError, SessionError
from dlc_tracking.io.dlc_files import write_metadata, write_predictions
from dlc_tracking.registry.editing import add_ingest_only_model, pair, unpair
from dlc_tracking.registry.registry_file import load_registry
from dlc_tracking.synthetic.openfield import GROUND_TRUTH_NAME, arena_layout, read_ground_truth
from dlc_tracking.warehouse import Warehouse
from tests.pipeline_helpers import (
    failure_messages,
    rid_of,
    run_recording,
    session_with_manual_outputs,
)

PARTS = ["nose", "left_ear", "right_ear", "tail_base"]
W, H = 200, 150  # make_session's default frame
OLD_SCORER = "DeepCut_resnet50_openfieldOct22shuffle1_1030000"  # a DLC 2.0 scorer


@pytest.fixture
def model(registry):
    return registry.model("tiny_openfield")


def _edit_yaml(path: Path, **changes) -> None:
    data = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _checks(instance, asset: str) -> dict[str, object]:
    """Latest evaluation of every check of an asset, by check name."""
    out = {}
    for record in instance.get_records_for_run(
            instance.get_runs(limit=1)[0].run_id,
            of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records:
        ev = record.event_log_entry.dagster_event.event_specific_data
        if ev.asset_key == dg.AssetKey(asset):
            out[ev.check_name] = ev
    return out


def _registry_copy(registry_path: Path, tmp_path: Path) -> Path:
    path = tmp_path / "registry.yaml"
    shutil.copy(registry_path, path)
    return path


def _resources(resources, registry: Path):
    from resources import DataRoot

    out = dict(resources)
    out["data_root"] = DataRoot(path=resources["data_root"].path, registry_path=str(registry))
    return out


# --------------------------------------------------------------- ingest-only models


def test_ingest_only_model_from_outputs_end_to_end(instance, resources, platform_dirs,
                                                    registry_path, tmp_path):
    reg = _registry_copy(registry_path, tmp_path)
    folder = session_with_manual_outputs(platform_dirs["data_root"], "m", "old", OLD_SCORER,
                                         PARTS, seed=4)
    h5 = next((folder / "dlc_openfield").glob("*.h5"))
    entry = add_ingest_only_model(reg, "old_lab_model", outputs_file=h5,
                                  pair_with=["two_ears_loose"])
    assert entry.ingest_only and entry.scorer == OLD_SCORER
    assert entry.derived["task"] == "openfield" and entry.derived["date"] == "Oct22"
    assert entry.engine == "tensorflow" and entry.shuffle == 1
    assert entry.derived["iteration"] is None and entry.project_config is None
    registry = load_registry(reg)
    assert registry.validate(check_projects=True) == []  # valid as ingest-only
    # a second model with the same scorer and no iteration to tell them apart is refused
    with pytest.raises(RegistryError, match="same scorer"):
        add_ingest_only_model(reg, "twin", outputs_file=h5)
    session = folder / "session.yaml"
    _edit_yaml(session, assignment={"model": "old_lab_model", "method": "two_ears_loose"})
    res = _resources(resources, reg)
    result = run_recording(instance, res, rid_of(folder))
    assert result.success, failure_messages(result)
    rows = Warehouse(platform_dirs["warehouse"]).query(
        "SELECT count(*) AS n, any_value(model_name) AS m FROM processed_tracking "
        "WHERE recording_id = ?", [rid_of(folder)])
    assert rows.n[0] == 120 and rows.m[0] == "old_lab_model"
    # without its outputs, a run that would need inference fails at once, saying why
    shutil.rmtree(folder / "dlc_openfield")
    result = run_recording(instance, res, rid_of(folder))
    assert not result.success
    text = failure_messages(result)
    assert "ingest-only" in text and "dlc-platform models add" in text


def test_ingest_only_model_from_config_and_bad_outputs(registry_path, tmp_path, model,
                                                       tiny_pytorch_config, platform_dirs):
    reg = _registry_copy(registry_path, tmp_path)
    # the project config alone (no model folders needed) plus the scorer of its outputs
    fake_scorer = "DLC_Resnet50_tinyopenfieldJan1shuffle2_snapshot_best-120"
    cfg = tmp_path / "project" / "config.yaml"
    cfg.parent.mkdir()
    shutil.copy(tiny_pytorch_config, cfg)  # config.yaml only: no dlc-models-pytorch/
    entry = add_ingest_only_model(reg, "cfg_only", config_path=cfg, scorer=fake_scorer)
    assert entry.ingest_only and entry.engine == "pytorch" and entry.shuffle == 2
    assert entry.derived["iteration"] == 0 and entry.derived["training_fraction"] == 0.95
    assert entry.dlc_body_parts == PARTS
    assert load_registry(reg).validate(check_projects=True) == []
    # outputs whose body parts do not match the config: refused, file unchanged
    before = reg.read_text()
    other = tmp_path / "videoDLC_resnet50_tinyopenfieldJan1shuffle3_5000.h5"
    write_predictions(other, "DLC_resnet50_tinyopenfieldJan1shuffle3_5000", ["a", "b"],
                      np.zeros((5, 2, 3)))
    with pytest.raises(RegistryError, match="body parts"):
        add_ingest_only_model(reg, "bad", outputs_file=other, config_path=cfg)
    # outputs whose scorer is not the one given
    with pytest.raises(RegistryError, match="not this model's outputs"):
        add_ingest_only_model(reg, "bad2", outputs_file=other, scorer=fake_scorer)
    assert reg.read_text() == before


def test_registry_edits_keep_comments_and_pairings_cli(registry_path, tmp_path, model):
    reg = _registry_copy(registry_path, tmp_path)
    text = "# lab note: keep this comment\n" + reg.read_text()
    reg.write_text(text)
    pair(reg, "tiny_openfield", "two_ears_strict")
    assert ("tiny_openfield", "two_ears_strict") in load_registry(reg).pairings
    unpair(reg, "tiny_openfield", "two_ears_strict")
    assert ("tiny_openfield", "two_ears_strict") not in load_registry(reg).pairings
    assert reg.read_text().startswith("# lab note: keep this comment\n")
    with pytest.raises(RegistryError, match="default of tracking type"):
        unpair(reg, "tiny_openfield", "two_ears_loose")
    with pytest.raises(RegistryError, match="unknown method 'paws'"):
        pair(reg, "tiny_openfield", "paws")
    assert reg.read_text().startswith("# lab note: keep this comment\n")


def test_centroid_of_paws_for_a_bottom_camera():
    from dlc_tracking.tracking.methods import StateVectorMethod, compute_state_vector

    paws = StateVectorMethod.from_dict({
        "name": "paws_centroid", "kind": "centroid", "tracking_type": "openfield",
        "body_parts": ["left_forepaw", "right_forepaw", "left_hindpaw", "right_hindpaw"],
        "likelihood_cutoff": 0.6, "params": {"min_parts": 2}})
    poses = np.array([[[10, 10, .9], [20, 10, .9], [10, 30, .9], [20, 30, .1]],
                      [[10, 10, .9], [20, 10, .9], [10, 30, .9], [20, 30, .9]]], float)
    sv = compute_state_vector(paws, poses, list(paws.body_parts), "below", (W, H))
    # frame 0: centroid of the three confident paws (image px); not every part present
    assert sv.x_px[0] == pytest.approx(40 / 3) and sv.y_px[0] == pytest.approx(50 / 3)
    assert not sv.valid[0] and sv.valid[1] and sv.x_px[1] == pytest.approx(15.0)
    assert not paws.has_head_direction


# --------------------------------------------------------------- tolerant readers


def test_resaved_csv_and_one_extra_row_are_ingested(instance, resources, platform_dirs, model):
    folder = session_with_manual_outputs(platform_dirs["data_root"], "m", "csv", model.scorer,
                                         PARTS, seed=5, poses_transform=lambda p: np.concatenate(
                                             [p, p[-1:]]))  # one row more than the video
    out = folder / "dlc_openfield"
    h5 = next(out.glob("*.h5"))
    original = pd.read_hdf(h5)
    csv = h5.with_suffix(".csv")
    original.to_csv(csv)                         # DLC's save_as_csv
    resaved = pd.read_csv(csv)                   # a lab opens it with pandas ...
    h5.unlink()
    csv.unlink()
    resaved.to_csv(csv, index=False)             # ... and saves it: scorer row gets .1, .2
    assert ".1," in csv.read_text().splitlines()[0]
    result = run_recording(instance, resources, rid_of(folder))
    assert result.success, failure_messages(result)
    store = Warehouse(platform_dirs["warehouse"])
    preds = store.read_partition("predictions", rid_of(folder)).sort_values(["frame", "body_part"])
    assert preds.frame.max() == 119                           # extra trailing row dropped
    x = preds[preds.body_part == "nose"].sort_values("frame").x_px.to_numpy()
    np.testing.assert_array_equal(x, original.xs("nose", axis=1, level=1).iloc[:120, 0].to_numpy())
    sources = store.read_partition("prediction_sources", rid_of(folder)).iloc[0]
    assert (sources.rows_in_files, sources.rows_dropped, sources.rows_padded) == (121, 1, 0)
    checks = _checks(instance, "dlc_predictions")
    assert not checks["frame_count_adjusted"].passed and checks["frames_covered"].passed
    status = {r["recording_id"]: r for r in recording_status(str(platform_dirs["warehouse"]),
                                                             instance=instance)}
    row = status[rid_of(folder)]
    assert row["status"] == "processed with warnings"
    assert any(w.startswith("frame_count_adjusted") and "1 trailing row(s) dropped" in w
               for w in row["warnings"])
    # the UI shows the same verdict on the recording's processed_tracking materialization
    mat = instance.get_latest_materialization_event(dg.AssetKey("processed_tracking"))
    status_text = mat.asset_materialization.metadata["status"].value
    assert status_text.startswith("processed with warnings")
    assert "frame_count_adjusted" in status_text


def test_fps_conflict_fails_a_blocking_check_with_both_figures(instance, resources,
                                                               platform_dirs, model):
    folder = session_with_manual_outputs(platform_dirs["data_root"], "m", "fps", model.scorer,
                                         PARTS, seed=6)
    meta = next((folder / "dlc_openfield").glob("*_meta.pickle"))
    write_metadata(meta, {"Scorer": model.scorer, "fps": 60.0, "nframes": 120})
    result = run_recording(instance, resources, rid_of(folder))
    assert not result.success
    rows = recording_status(str(platform_dirs["warehouse"]), rid_of(folder), instance=instance)
    detail = rows[0]["detail"]
    assert rows[0]["status"] == "failed" and "fps_consistent" in detail
    assert "60 fps" in detail and "30 fps" in detail and "fps:" in detail
    assert not Warehouse(platform_dirs["warehouse"]).partitions("processed_tracking")
    # the fix: the true frame rate in session.yaml
    _edit_yaml(folder / "session.yaml", fps=30.0)
    result = run_recording(instance, resources, rid_of(folder))
    assert result.success, failure_messages(result)


# --------------------------------------------------------------- recordings without video


def test_recording_without_its_video(instance, resources, platform_dirs, model):
    folder = session_with_manual_outputs(platform_dirs["data_root"], "m", "archived",
                                         model.scorer, PARTS, seed=7)
    meta = next((folder / "dlc_openfield").glob("*_meta.pickle"))
    write_metadata(meta, {"Scorer": model.scorer, "fps": 30.0, "nframes": 120,
                          "frame_dimensions": [W, H], "pytorch-config": {}})
    (folder / "openfield.mp4").unlink()  # archived elsewhere
    result = run_recording(instance, resources, rid_of(folder))
    assert result.success, failure_messages(result)
    rec = Warehouse(platform_dirs["warehouse"]).read_partition("recordings", rid_of(folder))
    assert not rec.has_video[0] and rec.source[0] == "outputs_only"
    assert rec.video_facts_source[0] == "dlc_metadata" and rec.n_frames[0] == 120
    # without DLC's metadata, the facts must come from session.yaml
    meta.unlink()
    result = run_recording(instance, resources, rid_of(folder))
    assert not result.success and "n_frames" in failure_messages(result)
    _edit_yaml(folder / "session.yaml", videos=[{"file": "openfield.mp4", "n_frames": 120,
                                                 "fps": 30.0, "width_px": W, "height_px": H}])
    result = run_recording(instance, resources, rid_of(folder))
    assert result.success, failure_messages(result)


# --------------------------------------------------------------- calibration


def _no_smoothing_set(registry_path: Path, tmp_path: Path) -> Path:
    reg = _registry_copy(registry_path, tmp_path)
    raw = yaml.safe_load(reg.read_text())
    raw.setdefault("processing", {})["raw_cm"] = {
        "max_speed_cm_s": None, "max_gap_s": 0, "sigma_position_s": 0, "sigma_speed_s": 0,
        "sigma_head_s": 0}
    x0, y0, x1, y1 = arena_layout(W, H)
    raw["rigs"] = {"rig_a": {"arena": {"shape": "square", "width_cm": 50.0,
                                       "bounds_px": [x0, y0, x1, y1]},
                             "description": "open field A, camera above"}}
    reg.write_text(yaml.safe_dump(raw, sort_keys=False))
    return reg


def test_calibration_from_the_arena_not_from_the_animal(instance, resources, platform_dirs,
                                                        model, registry_path, tmp_path):
    reg = _no_smoothing_set(registry_path, tmp_path)
    res = _resources(resources, reg)
    root = platform_dirs["data_root"]

    def half(p):  # the animal never seen in the left half of the image: another extent
        q = p.copy()
        q[p[:, 1, 0] < W / 2] = np.nan
        return q

    full = session_with_manual_outputs(root, "m", "full", model.scorer, PARTS, seed=8)
    cut = session_with_manual_outputs(root, "m", "cut", model.scorer, PARTS, seed=8,
                                      poses_transform=half)
    store = Warehouse(platform_dirs["warehouse"])
    for folder in (full, cut):
        _edit_yaml(folder / "session.yaml", pixels_per_cm=None, arena=None, rig="rig_a",
                   processing="raw_cm")
        result = run_recording(instance, res, rid_of(folder))
        assert result.success, failure_messages(result)
    a = store.read_partition("processed_tracking", rid_of(full)).sort_values("frame")
    b = store.read_partition("processed_tracking", rid_of(cut)).sort_values("frame")
    both = a.x_cm.notna().to_numpy() & b.x_cm.notna().to_numpy()
    assert both.sum() > 20 and (~b.x_cm.notna()).sum() > 20
    np.testing.assert_array_equal(a.x_cm.to_numpy()[both], b.x_cm.to_numpy()[both])
    np.testing.assert_array_equal(a.y_cm.to_numpy()[both], b.y_cm.to_numpy()[both])
    assert set(a.params_name) == {"raw_cm"}
    cal = store.query("SELECT * FROM calibrations ORDER BY recording_id")
    assert set(cal.source) == {"arena_bounds"} and not cal.from_tracked_extent.any()
    assert cal.pixels_per_cm_x.nunique() == 1 and cal.origin_x_px.nunique() == 1
    gt = read_ground_truth(full / GROUND_TRUTH_NAME)
    x0, _, x1, _ = arena_layout(W, H)
    np.testing.assert_allclose(a.x_cm.to_numpy(), (gt.head_xy_px[:, 0] - x0) * 50 / (x1 - x0),
                               atol=1e-9)
    # the tracked-extent fallback differs between the two and is flagged
    for folder in (full, cut):
        _edit_yaml(folder / "session.yaml", rig=None, arena={"shape": "square",
                                                             "width_cm": 50.0})
        assert run_recording(instance, res, rid_of(folder)).success
        assert not _checks(instance, "processed_tracking")["calibration_from_arena"].passed
    cal = store.query("SELECT * FROM calibrations ORDER BY recording_id")
    assert cal.from_tracked_extent.all() and cal.origin_x_px.nunique() == 2


@pytest.mark.parametrize("arena, message", [
    ({"shape": "square", "width_cm": 50, "corners_px": [[0, 0], [250, 0], [199, 149],
                                                        [0, 149]]}, "outside the 200x150"),
    ({"shape": "square", "width_cm": 50, "corners_px": [[20, 20], [180, 20], [100, 60],
                                                        [20, 130]]}, "convex"),
])
def test_bad_arena_outline_is_refused(instance, resources, platform_dirs, model, arena,
                                      message):
    folder = session_with_manual_outputs(platform_dirs["data_root"], "m", "bad", model.scorer,
                                         PARTS, seed=9)
    good = session_with_manual_outputs(platform_dirs["data_root"], "m", "good", model.scorer,
                                       PARTS, seed=9)
    _edit_yaml(folder / "session.yaml", pixels_per_cm=None, arena=arena)
    result = run_recording(instance, resources, rid_of(folder))
    assert not result.success
    text = failure_messages(result)
    assert message in text and rid_of(folder) in text
    assert not Warehouse(platform_dirs["warehouse"]).partitions("processed_tracking")
    assert run_recording(instance, resources, rid_of(good)).success


def test_unknown_rig_parameter_set_and_key_are_refused(instance, resources, platform_dirs,
                                                       model, registry_path, tmp_path):
    folder = session_with_manual_outputs(platform_dirs["data_root"], "m", "s", model.scorer,
                                         PARTS, seed=10)
    _edit_yaml(folder / "session.yaml", rig="rig_b")
    text = failure_messages(run_recording(instance, resources, rid_of(folder)))
    assert "rig 'rig_b' is not defined" in text and rid_of(folder) in text
    _edit_yaml(folder / "session.yaml", rig=None, processing="fast")
    text = failure_messages(run_recording(instance, resources, rid_of(folder)))
    assert "no processing parameter set named 'fast'" in text
    reg = _registry_copy(registry_path, tmp_path)
    raw = yaml.safe_load(reg.read_text())
    raw.setdefault("processing", {})["fast"] = {"sigma_postion_s": 0.05}
    reg.write_text(yaml.safe_dump(raw))
    with pytest.raises(RegistryError, match="did you mean 'sigma_postion_s' -> 'sigma_position_s'"):
        load_registry(reg)


def test_subject_calibration_file_is_shared_by_sessions(platform_dirs, registry, model):
    from dlc_tracking.sessions.layout import discover_recordings
    from dlc_tracking.sessions.recording_info import inspect_recording

    folder = session_with_manual_outputs(platform_dirs["data_root"], "m", "s", model.scorer,
                                         PARTS, seed=11)
    x0, y0, x1, y1 = arena_layout(W, H)
    (folder.parent / "calibration.yaml").write_text(yaml.safe_dump(
        {"arena": {"shape": "square", "width_cm": 50.0,
                   "corners_px": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]}}))
    rec = discover_recordings(platform_dirs["data_root"]).recordings[0]
    info = inspect_recording(rec, registry)
    assert info.arena is not None and info.arena.source.endswith("m/calibration.yaml")
    (folder.parent / "calibration.yaml").write_text("arena: {width_cm: 50}\n")
    with pytest.raises(SessionError, match="no outline in pixels"):
        inspect_recording(rec, registry)


# --------------------------------------------------------------- admin friction


def test_recording_ids_transliterate_non_ascii_letters():
    from dlc_tracking.sessions.layout import recording_id

    assert recording_id("Maus Ö1", "Sitzung ß", "Kamera") == "Maus-O1__Sitzung-ss__Kamera"
    assert recording_id("souris", "été", "caméra_1") == "souris__ete__camera_1"


def test_dagster_home_without_dagster_yaml_gets_the_default(tmp_path, monkeypatch):
    from dlc_assets import settings

    home = tmp_path / "home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    settings.ensure_dagster_home()
    assert (home / "dagster.yaml").read_text() == (settings.PROJECT_ROOT / "dagster.yaml"
                                                   ).read_text()


def test_registry_table_before_materialization_is_a_clear_message(tmp_path):
    with pytest.raises(DLCPlatformError, match="registry tables appear once"):
        Warehouse(tmp_path / "wh").query("SELECT * FROM models")


def test_arena_proposal_from_the_video_is_written_for_confirmation(platform_dirs, tmp_path):
    import cv2

    from dlc_assets.cli.main import main
    from dlc_tracking.sessions.layout import load_subject_calibration
    from dlc_tracking.synthetic.openfield import make_session

    folder = make_session(platform_dirs["data_root"], "m", "s", n_frames=40, seed=12)
    main(["arena", "propose", str(folder / "openfield.mp4"), "--width-cm", "50"])
    proposed = folder.parent / "calibration.proposed.yaml"
    png = cv2.imdecode(np.frombuffer((folder.parent / "calibration.proposed.png").read_bytes(),
                                     np.uint8), cv2.IMREAD_COLOR)
    assert png.shape == (H, W, 3) and png.std() > 10
    assert not (folder.parent / "calibration.yaml").exists()  # never used unconfirmed
    proposed.rename(folder.parent / "calibration.yaml")
    corners = np.array(load_subject_calibration(folder.parent / "calibration.yaml")
                       .arena.corners_px)
    x0, y0, x1, y1 = arena_layout(W, H)
    truth = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    err = np.hypot(*(corners[:, None, :] - truth[None]).transpose(2, 0, 1)).min(axis=1)
    assert err.max() < 1.5


def test_nwb_pose_from_another_lab_is_ingested_and_checked(instance, resources, platform_dirs,
                                                           registry_path, tmp_path):
    from tests.test_nwb import _dlc2nwb_style

    reg = _registry_copy(registry_path, tmp_path)
    folder = session_with_manual_outputs(platform_dirs["data_root"], "m", "nwb", OLD_SCORER,
                                         PARTS, seed=13)
    gt = read_ground_truth(folder / GROUND_TRUTH_NAME)
    out = folder / "dlc_openfield"
    poses = gt.poses()
    poses[..., 2] = np.where(np.isnan(poses[..., 0]), 0.0, 0.99)
    shutil.rmtree(out)
    out.mkdir()
    legacy = ["nose", "leftear", "rightear", "tail_base"]  # as that lab named them
    nwb = _dlc2nwb_style(out / "pose.nwb", legacy, poses, np.arange(len(poses)) / gt.fps)
    add_ingest_only_model(reg, "other_lab", outputs_file=nwb, pair_with=["two_ears_loose"],
                          body_part_map={"leftear": "left_ear", "rightear": "right_ear"})
    _edit_yaml(folder / "session.yaml", assignment={"model": "other_lab",
                                                    "method": "two_ears_loose"})
    res = _resources(resources, reg)
    result = run_recording(instance, res, rid_of(folder))
    assert result.success, failure_messages(result)
    preds = Warehouse(platform_dirs["warehouse"]).read_partition("predictions", rid_of(folder))
    assert sorted(set(preds.body_part)) == sorted(PARTS)
    nose = preds[preds.body_part == "nose"].sort_values("frame").x_px.to_numpy()
    np.testing.assert_array_equal(nose, poses[:, 0, 0])
    # frame indices stored as seconds (some converters): refused with both rates
    _dlc2nwb_style(nwb, legacy, poses, np.arange(len(poses), dtype=float))
    result = run_recording(instance, res, rid_of(folder))
    text = failure_messages(result)
    assert not result.success and "1 frames/s" in text and "30 frames/s" in text
    # an NWB whose body parts are not the model's
    _dlc2nwb_style(nwb, ["snout", "tail"], poses[:, :2], np.arange(len(poses)) / gt.fps)
    text = failure_messages(run_recording(instance, res, rid_of(folder)))
    assert "do not match the assigned model" in text
