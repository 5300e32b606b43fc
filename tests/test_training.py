"""Model lifecycle: training parameters, versions, DeepLabCut training + evaluation of
two short versions of the tiny model (one through a real Dagster instance), bad inputs,
and merge of refined labels followed by the next training run.

Every training here is real DeepLabCut (create_training_dataset, train_network,
evaluate_network, merge_datasets) on a copy of the cached tiny project, 1 epoch from the
tiny model's own snapshot (the offline "pretrained weights from a local file" path) or
from a random initialisation (``pretrained: none``)."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from dlc_tracking.training.errors import EvaluationError, LabeledDataError, TrainingError
from dlc_tracking.training.evaluate import keypoint_errors, summarize_errors, threshold_check
from dlc_tracking.training.params import EvaluationParams, TrainingParams
from dlc_tracking.training.versions import base_name, parse_version, version_name
from tests.training_helpers import BASE, ROOT, project_with_registry, refine_with_ground_truth

# ------------------------------------------------------------------ plain functions


def test_params_defaults_validation_and_hash() -> None:
    p = TrainingParams()
    assert p.epochs == 200 and p.pretrained == "imagenet" and p.augmentation == "default"
    assert TrainingParams.from_dict(p.to_dict()) == p
    assert p.param_hash == TrainingParams().param_hash
    assert p.with_overrides(epochs=3, batch_size=None).param_hash != p.param_hash
    assert TrainingParams(augmentation="none").train_augmentation()["affine"] is None
    with pytest.raises(TrainingError, match=r"models\.x\.training: unknown training "
                       r"parameter\(s\) \['epoch'\]"):
        TrainingParams.from_dict({"epoch": 3}, "models.x.training")
    for bad, match in (({"epochs": 0}, "epochs=0"), ({"batch_size": 1.5}, "batch_size"),
                       ({"pretrained": "weights.h5"}, "pretrained"),
                       ({"augmentation": {"rotate": 1}}, "unknown keys"),
                       ({"engine": "tensorflow"}, "TensorFlow")):
        with pytest.raises(TrainingError, match=match):
            TrainingParams.from_dict(bad)
    assert TrainingParams(pretrained="/x/snapshot-080.pt").pretrained_file.name == \
        "snapshot-080.pt"
    with pytest.raises(TrainingError, match="pcutoff"):
        EvaluationParams(pcutoff=1.5)
    with pytest.raises(TrainingError, match="max_test_rmse_px"):
        EvaluationParams.from_dict({"max_test_rmse_px": -1})


def test_version_names() -> None:
    assert version_name("openfield", 2, 3) == "openfield-iter2-shuffle3"
    assert parse_version("openfield-iter2-shuffle3") == ("openfield", 2, 3)
    assert parse_version("openfield") is None
    assert base_name("a.b-iter0-shuffle1") == "a.b" and base_name("plain") == "plain"
    for bad in ("my model", "lab@v1", "a/b"):
        with pytest.raises(TrainingError, match="letters, digits"):
            version_name(bad, 0, 1)


def test_error_summary_is_dlcs_formula() -> None:
    truth = np.array([[[0, 0], [10, 10]], [[5, 5], [np.nan, np.nan]]], float)
    pred = np.array([[[3, 4, 0.9], [10, 13, 0.2]], [[5, 6, 0.7], [1, 1, 0.9]]], float)
    err = keypoint_errors(truth, pred[..., :2])
    assert np.allclose(err[0], [5, 3]) and err[1, 0] == 1 and np.isnan(err[1, 1])
    s = summarize_errors(err, pred[..., 2], pcutoff=0.6)
    assert np.allclose(s["rmse"], [3.0, 3.0]) and s["n"].tolist() == [2, 1]
    assert np.allclose(s["rmse_pcutoff"][0], 3.0) and np.isnan(s["rmse_pcutoff"][1])
    assert math.isclose(s["all_rmse"], 9 / 3) and math.isclose(s["all_rmse_pcutoff"], 3.0)


def test_threshold_check() -> None:
    rows = pd.DataFrame([{"body_part": "all", "registered_snapshot": True,
                          "snapshot": "snapshot-005.pt", "test_rmse_px": 4.0}])
    assert threshold_check(rows, None)[0]
    assert threshold_check(rows, 5.0) == (True, "test RMSE 4.00 px (snapshot-005.pt) <= the "
                                          "threshold 5 px")
    ok, text = threshold_check(rows, 3.0)
    assert not ok and "exceeds the threshold 3 px" in text


def test_a_version_is_trained_by_one_run_at_a_time(tmp_path) -> None:
    """A second run of a version another run trains right now (a retry while the first
    worker lives, a double launch) fails at once naming the version and the holder;
    once the first run ends, the version can run again."""
    import os
    import socket

    from dlc_tracking.training.runs import run_training_plan, version_lock

    registry = tmp_path / "registry.yaml"
    shutil.copy(ROOT / "registry" / "registry.yaml", registry)
    version = "lab-iter0-shuffle2"
    with version_lock(registry, version):
        with pytest.raises(TrainingError) as err:
            run_training_plan(registry, version, device="cpu")
        text = str(err.value)
        assert f"{version!r} is being trained by another run" in text
        assert f"host {socket.gethostname()}, pid {os.getpid()}" in text
    # Released: the run goes on (and fails here for its own reason: there is no plan).
    with pytest.raises(TrainingError, match="no training plan"):
        run_training_plan(registry, version, device="cpu")
    assert not list((tmp_path / "training").glob(".*.holder"))


# ------------------------------------------------------------------ bad labeled data


@pytest.fixture
def project(tmp_path, tiny_pytorch_config):
    """A copy of the tiny project (config.yaml) and its registry (model tinycopy)."""
    return project_with_registry(tiny_pytorch_config, tmp_path)


def test_labeled_data_is_checked(project) -> None:
    from dlc_tracking.training.datasets import check_labeled_data

    config, _ = project
    summary = check_labeled_data(config)
    assert summary.labeled_frames == 80 and [f.name for f in summary.folders] == ["tinytrain"]
    assert summary.notes == []


def test_no_labeled_frames_is_refused(project) -> None:
    from dlc_tracking.training.datasets import check_labeled_data

    config, _ = project
    for h5 in (config.parent / "labeled-data").rglob("CollectedData_*"):
        h5.unlink()
    with pytest.raises(LabeledDataError, match=r"no labeled frames in .*config\.yaml"):
        check_labeled_data(config)


def test_labels_naming_unknown_body_parts_are_refused(project) -> None:
    from dlc_tracking.training.datasets import check_labeled_data

    config, _ = project
    h5 = next((config.parent / "labeled-data").rglob("CollectedData_synthetic.h5"))
    df = pd.read_hdf(h5)
    df = df.rename(columns={"tail_base": "tailbase"}, level="bodyparts")
    df.to_hdf(h5, key="df_with_missing", mode="w")
    with pytest.raises(LabeledDataError) as err:
        check_labeled_data(config)
    assert str(h5) in str(err.value) and "['tailbase']" in str(err.value)


def test_labels_of_a_video_not_in_the_config_are_refused(project) -> None:
    from dlc_tracking.training.datasets import check_labeled_data

    config, _ = project
    src = config.parent / "labeled-data" / "tinytrain"
    shutil.copytree(src, src.with_name("other_video"))
    with pytest.raises(LabeledDataError, match="'other_video', which is not in config.yaml "
                       "video_sets"):
        check_labeled_data(config)


def test_unrefined_frames_stop_the_merge(project) -> None:
    from dlc_tracking.training.merge import merge_refined

    config, _ = project
    with pytest.raises(LabeledDataError, match="no frames were extracted for refinement"):
        merge_refined(config)
    refine_with_ground_truth(config, config.parent, refine=False, n_frames=40, n_refined=4)
    with pytest.raises(LabeledDataError, match=r"4 extracted frame\(s\) are not refined yet"):
        merge_refined(config)
    assert yaml.safe_load(config.read_text())["iteration"] == 0  # nothing merged


def test_merge_needs_frames_of_the_current_iteration(project) -> None:
    """A second merge with no new labels is refused (the machine labels of iteration 0
    were merged already); a folder with no CollectedData at all is refused up front even
    with allow_unrefined (DeepLabCut's merge_datasets cannot merge it)."""
    from dlc_tracking.training.merge import merge_refined

    config, _ = project
    refine_with_ground_truth(config, config.parent, n_frames=30, n_refined=3, seed=7)
    assert merge_refined(config).iteration == 1
    with pytest.raises(LabeledDataError, match=r"no frames were extracted for refinement at "
                       r"iteration 1 .*refine7 \(iteration 0\).* merged already"):
        merge_refined(config)
    assert yaml.safe_load(config.read_text())["iteration"] == 1
    unrefined = refine_with_ground_truth(config, config.parent, refine=False, n_frames=30,
                                         n_refined=3, seed=8)
    with pytest.raises(LabeledDataError, match=r"hold no CollectedData_synthetic\.h5 at all: "
                       f"{unrefined['folder'].name}"):
        merge_refined(config, allow_unrefined=True)
    assert yaml.safe_load(config.read_text())["iteration"] == 1


def test_plan_of_an_unknown_model_or_without_base(project) -> None:
    from dlc_tracking.errors import RegistryError
    from dlc_tracking.training.versions import plan_training

    config, registry = project
    with pytest.raises(RegistryError, match="no model named 'nope'"):
        plan_training(registry, "nope")
    with pytest.raises(TrainingError, match="--base"):
        plan_training(registry, config_path=config)
    with pytest.raises(TrainingError, match="'bad name-iter0-shuffle2' is not valid"):
        plan_training(registry, config_path=config, base="bad name")


def test_partition_added_in_the_ui_is_planned_from_its_model(project) -> None:
    from dlc_tracking.training.runs import run_training_plan
    from dlc_tracking.training.versions import plan_for_partition, plan_path

    _, registry = project
    with pytest.raises(TrainingError, match="is not <registered model>-iter<N>-shuffle<S>"):
        run_training_plan(registry, "other-iter0-shuffle2", device="cpu")
    with pytest.raises(TrainingError, match=f"the next version of '{BASE}' is "
                       f"'{BASE}-iter0-shuffle2'"):
        plan_for_partition(registry, f"{BASE}-iter0-shuffle7")
    assert not plan_path(registry, f"{BASE}-iter0-shuffle7").exists()
    plan = plan_for_partition(registry, f"{BASE}-iter0-shuffle2")
    assert (plan.shuffle, plan.from_model, plan.params.epochs) == (2, BASE, 1)
    assert plan_path(registry, plan.version).is_file()
    assert plan_for_partition(registry, plan.version).created_at == plan.created_at


def _register_as_trained(registry, plan):
    """Register a plan's version without training: its shuffle folder is a copy of
    shuffle 1's (snapshot, learning stats), as a finished training leaves it."""
    from dlc_tracking.registry.dlc_projects import list_snapshots
    from dlc_tracking.training.datasets import shuffle_folder
    from dlc_tracking.training.train import TrainingResult, read_learning_stats
    from dlc_tracking.training.versions import register_version

    folder = shuffle_folder(plan.config_path, plan.shuffle, plan.params.trainingsetindex)
    shutil.copytree(shuffle_folder(plan.config_path, 1), folder)
    result = TrainingResult(plan.config_path, plan.iteration, plan.shuffle,
                            plan.params.trainingsetindex, folder,
                            list_snapshots(folder / "train", "pytorch"), 1,
                            read_learning_stats(folder / "train"), 1.0, "cpu",
                            plan.params.pretrained)
    return register_version(registry, plan, result)


def test_pretrained_previous_builds_on_the_latest_version(project, monkeypatch) -> None:
    """``pretrained: previous`` is resolved at plan time to the registered snapshot of the
    model the version derives from; the registered version keeps ``previous`` (so its
    own retraining starts from it) and its parent's ``project:`` text."""
    from dlc_tracking.training.datasets import shuffle_folder
    from dlc_tracking.training.versions import plan_training, read_plan

    config, registry = project
    monkeypatch.setenv("TINYLAB", str(config.parent))
    raw = yaml.safe_load(registry.read_text())
    raw["models"][BASE]["project"] = "${TINYLAB}/config.yaml"
    raw["models"][BASE]["training"]["pretrained"] = "previous"
    registry.write_text(yaml.safe_dump(raw, sort_keys=False))
    first = plan_training(registry, BASE)
    parent_snapshot = (config.parent / raw["models"][BASE]["derived"]["snapshot"]).resolve()
    assert first.params.pretrained == str(parent_snapshot)
    assert read_plan(registry, first.version).pretrained_as == "previous"
    _register_as_trained(registry, first)
    written = yaml.safe_load(registry.read_text())["models"][first.version]
    assert written["project"] == "${TINYLAB}/config.yaml"
    assert written["training"]["pretrained"] == "previous"
    assert written["trained"]["pretrained"] == str(parent_snapshot)
    # Retraining the new version starts from its own snapshot, not its parent's.
    second = plan_training(registry, first.version)
    own = shuffle_folder(config, first.shuffle) / "train" / parent_snapshot.name
    assert second.params.pretrained == str(own.resolve()) != first.params.pretrained
    with pytest.raises(TrainingError, match="derives from none"):
        plan_training(registry, config_path=config, base="other",
                      overrides={"pretrained": "previous"})


def test_reused_run_without_learning_stats_reports_missing_losses(project) -> None:
    """Re-materializing a version registered by its plan reuses it (nothing trained);
    when its learning_stats.csv is gone, the materialization says so and the
    losses_finite check warns (no IndexError)."""
    from dlc_assets.assets.training import training_run_result
    from dlc_tracking.training.runs import run_training_plan
    from dlc_tracking.training.versions import plan_training

    _, registry = project
    plan = plan_training(registry, BASE)
    entry = _register_as_trained(registry, plan)
    outcome = run_training_plan(registry, plan.version, device="cpu")
    assert outcome.reused and len(outcome.result.losses)
    done = training_run_result(outcome, plan.version)
    assert done.check_results[0].passed
    assert done.metadata["final_train_loss"] == float(outcome.result.losses["train_loss"].iloc[-1])
    stats = entry.project_config.parent / entry.derived["model_folder"] / "train" / \
        "learning_stats.csv"
    stats.unlink()
    outcome = run_training_plan(registry, plan.version, device="cpu")
    assert outcome.reused and outcome.result.losses.empty
    done = training_run_result(outcome, plan.version)
    check = done.check_results[0]
    assert not check.passed and str(stats) in check.description
    assert done.metadata["final_train_loss"] is None
    assert str(done.metadata["losses_missing"].value) == str(stats)


def test_plan_keeps_the_models_trainingsetindex_and_never_overwrites_a_plan(project) -> None:
    """A model registered with another trainingsetindex trains with it (also without
    overrides, as for a partition added in the UI); a plan of the same version name from
    another project is refused, not overwritten."""
    from dlc_tracking.training.projects import copy_project
    from dlc_tracking.training.versions import plan_path, plan_training

    config, registry = project
    cfg = yaml.safe_load(config.read_text())
    cfg["TrainingFraction"] = [cfg["TrainingFraction"][0], 0.8]
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    raw = yaml.safe_load(registry.read_text())
    raw["models"][BASE]["trainingsetindex"] = 1
    registry.write_text(yaml.safe_dump(raw, sort_keys=False))
    plan = plan_training(registry, BASE)
    assert plan.params.trainingsetindex == 1
    assert plan_training(registry, BASE, overrides={"trainingsetindex": 0}
                         ).params.trainingsetindex == 0
    other = copy_project(config, config.parent.parent / "other_project")
    before = plan_path(registry, plan.version).read_text()
    with pytest.raises(TrainingError, match=f"{plan.version!r} cannot be planned: .* holds "
                       "another plan"):
        plan_training(registry, config_path=other, base=BASE)
    assert plan_path(registry, plan.version).read_text() == before


def test_untagged_training_runs_go_to_their_models_queue(tmp_path, tiny_pytorch_config,
                                                          monkeypatch) -> None:
    """A run launched from the UI for a model_versions partition has no queue tag: the
    executor routes it by the registry (a registered model's queue:, a planned version's
    parent's, a UI-added version's base model's), never to the plain gpu queue of a
    recording look-up."""
    from dlc_assets.execution.celery_executor import model_version_queue, partition_gpu_queue
    from dlc_tracking.training.versions import plan_training

    _, registry = project_with_registry(tiny_pytorch_config, tmp_path, queue="gpu_lab2")
    plan = plan_training(registry, BASE)
    monkeypatch.setenv("DLC_PLATFORM_REGISTRY", str(registry))
    monkeypatch.setenv("DLC_PLATFORM_DATA_ROOT", str(tmp_path / "no_data_root"))
    for key in (BASE, plan.version, f"{BASE}-iter0-shuffle9"):
        assert model_version_queue(key, registry) == "gpu_lab2", key
        assert partition_gpu_queue(key) == "gpu_lab2", key
    assert model_version_queue("other-iter0-shuffle1", registry) is None
    assert partition_gpu_queue("rec_2026_mouse01") is None  # a recording: not a model


def test_a_registered_shuffle_is_never_replaced(project) -> None:
    from dlc_tracking.training.runs import run_training_plan
    from dlc_tracking.training.versions import plan_training

    config, registry = project
    plan = plan_training(registry, BASE)
    # Someone made and registered that shuffle by hand after the plan was written.
    raw = yaml.safe_load(registry.read_text())
    manual = dict(raw["models"][BASE], shuffle=plan.shuffle)
    manual["derived"] = dict(manual["derived"], model_folder=manual["derived"][
        "model_folder"].replace("shuffle1", f"shuffle{plan.shuffle}"))
    raw["models"]["by_hand"] = manual
    registry.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(TrainingError, match="is registered as model 'by_hand' now"):
        run_training_plan(registry, plan.version, device="cpu")


def test_the_cached_tiny_model_is_never_trained_in(registry_path, tiny_pytorch_config,
                                                   tmp_path) -> None:
    from dlc_tracking.training.merge import merge_refined
    from dlc_tracking.training.versions import plan_training

    registry = tmp_path / "registry.yaml"
    shutil.copy(registry_path, registry)
    with pytest.raises(TrainingError, match="cached tiny model of the platform"):
        plan_training(registry, "tiny_openfield")
    with pytest.raises(TrainingError, match="copy the project first"):
        merge_refined(tiny_pytorch_config)
    assert not (registry.parent / "training").exists()


# ------------------------------------------------------------------ real training


@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory, tiny_pytorch_config):
    """Two versions of ``tinycopy``: A through Dagster (train_model_version job: training
    + evaluation on a real instance), B (random init, deliberately worse) through the
    library; both evaluated."""
    import dagster as dg

    from dlc_assets.definitions import build_definitions
    from dlc_tracking.registry.registry_file import load_registry
    from dlc_tracking.training.evaluate import evaluate_model
    from dlc_tracking.training.runs import run_training_plan
    from dlc_tracking.training.versions import plan_training
    from dlc_tracking.warehouse import Warehouse
    from resources import DataRoot, DLCInference, WarehouseResource

    tmp = tmp_path_factory.mktemp("lifecycle")
    config, registry = project_with_registry(tiny_pytorch_config, tmp,
                                             evaluation={"max_test_rmse_px": 20.0},
                                             inference_engine="dlc")
    (tmp / "data").mkdir()
    resources = {"data_root": DataRoot(path=str(tmp / "data"), registry_path=str(registry)),
                 "warehouse": WarehouseResource(root=str(tmp / "warehouse")),
                 "dlc_inference": DLCInference(device="cpu", work_dir=str(tmp / "work"))}
    plan_a = plan_training(registry, BASE)
    home = tmp / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        instance.add_dynamic_partitions("model_versions", [plan_a.version])
        job = build_definitions(resources).resolve_job_def("train_model_version")
        result = job.execute_in_process(partition_key=plan_a.version, instance=instance,
                                        raise_on_error=False)
        mats = {}
        checks = {}
        for event in result.all_events:
            if event.event_type_value == "ASSET_MATERIALIZATION":
                mat = event.event_specific_data.materialization
                mats[mat.asset_key.to_user_string()] = {k: v.value
                                                        for k, v in mat.metadata.items()}
            if event.event_type_value == "ASSET_CHECK_EVALUATION":
                checks[event.event_specific_data.check_name] = event.event_specific_data
        failures = [e.message for e in result.all_events if e.is_failure]
    plan_b = plan_training(registry, BASE, overrides={"pretrained": "none"})
    epochs_seen = []
    outcome_b = run_training_plan(registry, plan_b.version, device="cpu",
                                  progress=epochs_seen.append)
    entry_b = load_registry(registry).model(plan_b.version)
    eval_b = evaluate_model(entry_b, device="cpu", work_dir=tmp / "work")
    return {"config": config, "registry": registry, "plan_a": plan_a, "plan_b": plan_b,
            "result": result, "failures": failures, "mats": mats, "checks": checks,
            "outcome_b": outcome_b, "epochs_seen": epochs_seen, "eval_b": eval_b,
            "warehouse": Warehouse(tmp / "warehouse"), "resources": resources, "tmp": tmp}


@pytest.mark.slow
def test_two_versions_trained_and_registered(lifecycle) -> None:
    from dlc_tracking.registry.registry_file import load_registry, read_registry_yaml

    lc = lifecycle
    assert lc["result"].success, lc["failures"]
    a, b = lc["plan_a"], lc["plan_b"]
    assert (a.version, b.version) == (f"{BASE}-iter0-shuffle2", f"{BASE}-iter0-shuffle3")
    registry = load_registry(lc["registry"])
    ea, eb = registry.model(a.version), registry.model(b.version)
    assert ea.identity_key != eb.identity_key != registry.model(BASE).identity_key
    assert ea.derived["model_folder"].endswith("trainset95shuffle2")
    assert (ea.project_config.parent / ea.derived["snapshot"]).is_file()
    # The version keeps its parameters, the pairings of the model it derives from, and
    # where it comes from.
    raw = read_registry_yaml(lc["registry"])["models"]
    assert raw[a.version]["training"]["epochs"] == 1
    assert raw[b.version]["training"]["pretrained"] == "none"
    assert raw[a.version]["trained"]["from_model"] == BASE
    assert raw[a.version]["evaluation"] == {"max_test_rmse_px": 20.0}
    assert (a.version, "two_ears_loose") in registry.pairings
    assert ea.inference_engine == eb.inference_engine == "dlc"  # as the model it comes from
    # Progress per epoch and the losses read back from DLC's learning_stats.csv.
    assert [p.epoch for p in lc["epochs_seen"]] == [1]
    losses = lc["outcome_b"].result.losses
    assert losses["epoch"].tolist() == [1] and losses["train_loss"].iloc[0] > 0
    assert np.isfinite(losses["valid_loss"].iloc[0])
    assert lc["outcome_b"].result.device == "cpu"


@pytest.mark.slow
def test_training_run_materialization_metadata(lifecycle) -> None:
    meta = lifecycle["mats"]["dlc_training_runs"]
    assert meta["epochs"] == 1 and meta["device"] == "cpu" and meta["shuffle"] == 2
    assert meta["labeled_frames"] == 80 and meta["wall_s"] > 0
    assert meta["snapshot"].endswith(".pt") and "snapshot-" in meta["snapshot"]
    assert meta["losses_plot"].startswith("![losses per epoch](")
    assert "train_loss" in meta["losses_per_epoch"]
    assert meta["worker_queue"] == "in_process"
    assert lifecycle["checks"]["losses_finite"].passed


@pytest.mark.slow
def test_evaluations_in_the_warehouse_and_checked(lifecycle) -> None:
    lc = lifecycle
    a, b = lc["plan_a"].version, lc["plan_b"].version
    rows = lc["warehouse"].read_partition("model_evaluations", a)
    assert set(rows["model_name"]) == {a}
    parts = set(rows["body_part"])
    assert parts == {"all", "nose", "left_ear", "right_ear", "tail_base"}
    assert rows["registered_snapshot"].any()
    reg = rows[rows["registered_snapshot"]].set_index("body_part")
    # The overall figure is DLC's own; the per-body-part ones are computed from DLC's
    # predictions with DLC's formula: their keypoint-weighted mean is DLC's figure.
    per_part = reg.drop(index="all")
    for split in ("train", "test"):
        n = per_part[f"n_{split}_keypoints"]
        pooled = (per_part[f"{split}_rmse_px"] * n).sum() / n.sum()
        assert pooled == pytest.approx(reg.loc["all", f"{split}_rmse_px"], abs=0.011)
    meta = lc["mats"]["model_evaluations"]
    assert meta["test_rmse_px"] == pytest.approx(reg.loc["all", "test_rmse_px"])
    check = lc["checks"]["test_error_within_threshold"]
    assert check.passed == (reg.loc["all", "test_rmse_px"] <= 20.0), check.description
    # The randomly initialised 1-epoch version is far worse than the fine-tuned one, and
    # fails the same threshold.
    worse = lc["eval_b"]
    assert worse.test_rmse_px > reg.loc["all", "test_rmse_px"] + 5
    assert not threshold_check(worse.rows, 20.0)[0]
    assert set(worse.rows["model_name"]) == {b}


@pytest.mark.slow
def test_models_show_prints_the_evaluation(lifecycle, capsys, monkeypatch) -> None:
    from dlc_assets.cli.main import main

    lc = lifecycle
    monkeypatch.setenv("DLC_PLATFORM_WAREHOUSE", str(lc["tmp"] / "warehouse"))
    main(["--registry", str(lc["registry"]), "models", "show", lc["plan_a"].version])
    out = capsys.readouterr().out
    assert "evaluation (" in out and "test_rmse_px" in out and "tail_base" in out
    assert "trained:" in out and f"from_model: {BASE}" in out
    main(["--registry", str(lc["registry"]), "models", "show", BASE])
    assert "evaluation: none yet" in capsys.readouterr().out


@pytest.mark.slow
def test_registered_version_is_never_retrained(lifecycle) -> None:
    """Running a plan again (a re-materialization, a retry after registration) reports
    the registered version without training; a name registered otherwise is refused."""
    from dlc_tracking.registry.registry_file import load_registry
    from dlc_tracking.training.runs import run_training_plan
    from dlc_tracking.training.versions import plan_training

    lc = lifecycle
    a = lc["plan_a"].version
    entry = load_registry(lc["registry"]).model(a)
    snapshot = entry.project_config.parent / entry.derived["snapshot"]
    stamp = snapshot.stat().st_mtime_ns
    again = run_training_plan(lc["registry"], a, device="cpu")
    assert again.reused and again.entry.name == a and again.result.snapshot == snapshot
    assert again.result.losses["epoch"].tolist() == [1]
    assert snapshot.stat().st_mtime_ns == stamp
    # A plan whose name someone registered by hand (models add) is refused.
    plan = plan_training(lc["registry"], BASE)
    registry_text = lc["registry"].read_text()
    raw = yaml.safe_load(registry_text)
    raw["models"][plan.version] = dict(raw["models"][a], trained={"plan": "elsewhere"},
                                       snapshotindex=0)
    lc["registry"].write_text(yaml.safe_dump(raw, sort_keys=False))
    try:
        with pytest.raises(TrainingError, match="not by this training plan"):
            run_training_plan(lc["registry"], plan.version, device="cpu")
    finally:
        lc["registry"].write_text(registry_text)
        (lc["registry"].parent / "training" / f"{plan.version}.yaml").unlink()


@pytest.mark.slow
def test_evaluating_a_model_whose_snapshot_is_missing(lifecycle, tmp_path) -> None:
    from dlc_tracking.registry.registry_file import load_registry
    from dlc_tracking.training.evaluate import evaluate_model

    entry = load_registry(lifecycle["registry"]).model(lifecycle["plan_b"].version)
    snapshot = entry.project_config.parent / entry.derived["snapshot"]
    moved = tmp_path / snapshot.name
    shutil.move(snapshot, moved)
    try:
        with pytest.raises(EvaluationError) as err:
            evaluate_model(entry, device="cpu")
        assert f"model {entry.name!r}" in str(err.value) and str(snapshot) in str(err.value)
    finally:
        shutil.move(moved, snapshot)


@pytest.mark.slow
def test_merge_refined_labels_then_next_training(lifecycle) -> None:
    """Refined labels (the synthetic truth at extracted frames) merged with DLC's
    merge_datasets; the next version trains on iteration 1; the earlier versions still
    evaluate (their own iteration) after config.yaml moved on."""
    from dlc_tracking.registry.registry_file import load_registry
    from dlc_tracking.training.evaluate import evaluate_model
    from dlc_tracking.training.merge import merge_refined
    from dlc_tracking.training.runs import run_training_plan
    from dlc_tracking.training.versions import plan_training

    lc = lifecycle
    config, registry = lc["config"], lc["registry"]
    refined = refine_with_ground_truth(config, config.parent, n_frames=60, n_refined=10)
    merged = merge_refined(config)
    assert (merged.previous_iteration, merged.iteration) == (0, 1)
    assert merged.labeled.labeled_frames == 90
    assert merged.refinement.extracted == {refined["folder"].name: 10}
    plan = plan_training(registry, lc["plan_a"].version, reason="merge")
    assert plan.version == f"{BASE}-iter1-shuffle1" and plan.iteration == 1
    outcome = run_training_plan(registry, plan.version, device="cpu")
    entry = load_registry(registry).model(plan.version)
    assert entry.derived["iteration"] == 1 and outcome.labeled.labeled_frames == 90
    assert "iteration-1" in entry.derived["model_folder"]
    # The dataset of iteration 1 holds the refined frames.
    doc = next((config.parent / "training-datasets" / "iteration-1").rglob(
        "CollectedData_synthetic.h5"))
    videos = {idx[1] for idx in pd.read_hdf(doc).index}
    assert refined["folder"].name in videos
    # The previous version, trained at iteration 0, still evaluates.
    old = evaluate_model(load_registry(registry).model(lc["plan_b"].version), device="cpu")
    assert set(old.rows["iteration"]) == {0}
    assert old.test_rmse_px == pytest.approx(lc["eval_b"].test_rmse_px, abs=1e-6)
    assert load_registry(registry).validate(check_projects=True) == []
    # Both iterations' versions run inference (DLC's analyze_videos: these versions keep
    # the `inference_engine: dlc` of their model), each from its own model folder.
    from dlc_tracking.io.dlc_files import read_predictions
    from dlc_tracking.synthetic import openfield
    from resources import DLCInference

    gt = openfield.simulate_openfield(n_frames=20, seed=5)
    video = openfield.render_video(gt, lc["tmp"] / "after_merge.mp4", noise=2.0, seed=5)
    inference = DLCInference(device="cpu", work_dir=str(lc["tmp"] / "work"))
    for name in (lc["plan_b"].version, plan.version):
        model = load_registry(registry).model(name)
        found = read_predictions(inference.analyze(model, video, f"rec_{name}").h5_path)
        assert found.scorer == model.scorer and found.poses.shape[0] == 20


@pytest.mark.slow
def test_training_killed_mid_run_registers_nothing_and_reruns(project) -> None:
    """A worker killed (SIGKILL) during training: no registry entry, the plan stays; run
    again (as the instance's run retries do), the shuffle starts over and registers."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from dlc_tracking.registry.registry_file import load_registry
    from dlc_tracking.training.datasets import shuffle_folder
    from dlc_tracking.training.runs import run_training_plan
    from dlc_tracking.training.train import read_learning_stats
    from dlc_tracking.training.versions import plan_training, read_plan

    config, registry = project
    before = registry.read_text()
    plan = plan_training(registry, BASE, overrides={"epochs": 3})
    code = ("from dlc_tracking.training.runs import run_training_plan; "
            f"run_training_plan({str(registry)!r}, {plan.version!r}, device='cpu')")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=str(config.parent.parent),
                            env=dict(os.environ, PYTHONPATH=os.getcwd()),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    stats = shuffle_folder(config, plan.shuffle) / "train" / "learning_stats.csv"
    deadline = time.monotonic() + 240
    while not (stats.is_file() and len(read_learning_stats(stats.parent)) >= 1):
        assert proc.poll() is None, "the training process ended before it was killed"
        assert time.monotonic() < deadline, "no epoch finished in 240 s"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert registry.read_text() == before  # nothing half-registered
    assert plan.version not in load_registry(registry).models
    assert read_plan(registry, plan.version).shuffle == plan.shuffle
    outcome = run_training_plan(registry, plan.version, device="cpu")
    assert outcome.result.losses["epoch"].tolist() == [1, 2, 3]
    assert plan.version in load_registry(registry).models


@pytest.mark.slow
def test_cli_merge_trains_and_evaluates_the_next_version(project, tmp_path, monkeypatch,
                                                         capsys) -> None:
    """`models train --plan-only`, `models merge` (merge_datasets, then the next version
    trained and evaluated through Dagster), `models evaluate`, from the command line."""
    from dlc_assets.cli.main import main
    from dlc_tracking.registry.registry_file import load_registry

    config, registry = project
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    for key, value in {"DAGSTER_HOME": home, "DLC_PLATFORM_WAREHOUSE": tmp_path / "wh",
                       "DLC_PLATFORM_WORK_DIR": tmp_path / "work", "DLC_PLATFORM_DEVICE": "cpu",
                       "DLC_PLATFORM_DATA_ROOT": tmp_path, "DLC_PLATFORM_REGISTRY": registry
                       }.items():
        monkeypatch.setenv(key, str(value))
    main(["models", "train", BASE, "--plan-only", "--epochs", "2"])
    out = capsys.readouterr().out
    assert f"planned {BASE}-iter0-shuffle2" in out and "2 epochs" in out
    assert "partition tinycopy-iter0-shuffle2" in out
    refine_with_ground_truth(config, config.parent, n_frames=40, n_refined=5)
    main(["models", "merge", BASE])
    out = capsys.readouterr().out
    assert "iteration 0 -> 1" in out and "refined 5 of 5 extracted frames" in out
    assert f"planned {BASE}-iter1-shuffle1" in out and "success" in out
    assert "evaluation (" in out and "tail_base" in out
    assert f"{BASE}-iter1-shuffle1" in load_registry(registry).models
    with pytest.raises(SystemExit):
        main(["models", "evaluate", "nope"])
    assert "no model named 'nope'" in capsys.readouterr().err
