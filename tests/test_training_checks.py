"""The model loop on a lab's own project (issue 21 G), refused before anything is
written: a project with its own body-part names needs the map (`--map` or the registry
entry's), a TrainingFraction without a test split is refused, the plan of a failed run
does not hold its version name, `models review` says when DeepLabCut rewrote config.yaml,
and docs/models.md states the jump threshold the code uses. No training here."""

from __future__ import annotations

import re

import pandas as pd
import pytest
import yaml

from dlc_tracking.training.errors import TrainingError
from tests.training_helpers import BASE, ROOT, project_with_registry


def _tree(folder):
    """Every file of a project with its size and mtime (to see that nothing changed)."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _rename_body_part(config, old: str, new: str) -> None:
    """A lab's project that calls the nose ``snout``: config.yaml and the labels
    (CollectedData written again with pandas, as DeepLabCut writes it)."""
    cfg = yaml.safe_load(config.read_text())
    cfg["bodyparts"] = [new if b == old else b for b in cfg["bodyparts"]]
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    for h5 in (config.parent / "labeled-data").glob("*/CollectedData_*.h5"):
        df = pd.read_hdf(h5, "df_with_missing")
        df = df.rename(columns={old: new}, level="bodyparts")
        df.to_hdf(h5, key="df_with_missing", mode="w")
        df.to_csv(h5.with_suffix(".csv"))


@pytest.fixture
def project(tmp_path, tiny_pytorch_config):
    return project_with_registry(tiny_pytorch_config, tmp_path)


def test_training_a_lab_project_needs_the_body_part_map(project, instance, capsys):
    from dlc_assets.cli.main import main
    from dlc_tracking.training.versions import plan_training, plans_dir

    config, registry = project
    _rename_body_part(config, "nose", "snout")
    before = _tree(config.parent)
    cli = ["--registry", str(registry), "models", "train", "--config", str(config),
           "--base", "labmouse", "--plan-only"]
    with pytest.raises(SystemExit):
        main(cli)
    err = capsys.readouterr().err
    assert "'snout'" in err and "--map snout=nose" in err
    assert not plans_dir(registry).exists() or not list(plans_dir(registry).glob("*.yaml"))
    assert _tree(config.parent) == before          # nothing written into the project
    main([*cli, "--map", "snout=nose"])
    assert "planned labmouse-iter0-shuffle2" in capsys.readouterr().out
    plan = yaml.safe_load((plans_dir(registry) / "labmouse-iter0-shuffle2.yaml").read_text())
    assert plan["body_part_map"] == {"snout": "nose"}
    # the registry entry of the lab's model (named like --base) gives the map too
    raw = yaml.safe_load(registry.read_text())
    entry = raw["models"][BASE]
    entry["derived"]["body_parts"] = yaml.safe_load(config.read_text())["bodyparts"]
    entry["body_part_map"] = {"snout": "nose"}
    registry.write_text(yaml.safe_dump(raw, sort_keys=False))
    plan = plan_training(registry, config_path=config, base=BASE)
    assert plan.body_part_map == {"snout": "nose"} and plan.from_model is None


def test_no_test_split_is_refused_before_anything_is_written(project):
    from dlc_tracking.training.versions import plan_training, plans_dir

    config, registry = project
    cfg = yaml.safe_load(config.read_text())
    cfg["TrainingFraction"] = [1.0]
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    before = _tree(config.parent)
    for call in (lambda: plan_training(registry, BASE),
                 lambda: plan_training(registry, config_path=config, base="lab")):
        with pytest.raises(TrainingError, match=r"TrainingFraction\[0\] is 1.0: no frames "
                           "are left for the test split"):
            call()
    assert _tree(config.parent) == before
    assert not list(plans_dir(registry).glob("*.yaml"))


def test_a_failed_runs_plan_does_not_hold_its_version_name(project):
    from dlc_tracking.training.datasets import check_labeled_data
    from dlc_tracking.training.errors import LabeledDataError
    from dlc_tracking.training.runs import run_training_plan
    from dlc_tracking.training.versions import plan_training, read_plan

    config, registry = project
    plan = plan_training(registry, BASE)
    # the labels go away between planning and the run: the run is refused ...
    labels = sorted((config.parent / "labeled-data").glob("*/CollectedData_*.h5"))
    moved = [p.rename(p.with_name(p.name + ".away")) for p in labels]
    with pytest.raises(LabeledDataError):
        run_training_plan(registry, plan.version, device="cpu")
    failed = read_plan(registry, plan.version)
    assert failed.status == "failed" and "no labeled frames" in failed.error
    for away, original in zip(moved, labels, strict=True):
        away.rename(original)
    check_labeled_data(config)
    # ... and the next plan gets the same name and shuffle again (also as a UI partition)
    again = plan_training(registry, BASE, expect=plan.version)
    assert (again.version, again.shuffle, again.status) == (plan.version, plan.shuffle,
                                                            "planned")
    # a plan that did not fail still holds its name
    assert plan_training(registry, BASE).shuffle == plan.shuffle + 1


def test_review_says_when_deeplabcut_rewrote_config_yaml(tmp_path, tiny_pytorch_config):
    from dlc_tracking.model_review.extraction import Extraction, add_video_to_project
    from dlc_tracking.training.projects import copy_project

    config = copy_project(tiny_pytorch_config, tmp_path / "lab_project")
    config.write_text("# our lab's notes on this project\n" + config.read_text())
    original = config.read_text()
    video = next((config.parent / "videos").iterdir()).resolve()
    link = config.parent / "videos" / "rec1.mp4"
    link.symlink_to(video)
    backup = add_video_to_project(config, link)
    assert backup is not None and backup.read_text() == original
    assert str(link.absolute()) in yaml.safe_load(config.read_text())["video_sets"]
    assert add_video_to_project(config, link, backup) == backup  # there already: as is
    notes = Extraction(config, pd.DataFrame(), config_backup=backup).notes
    assert len(notes) == 1 and "DeepLabCut rewrote" in notes[0] and str(backup) in notes[0]
    assert Extraction(config, pd.DataFrame()).notes == []


def test_docs_state_the_jump_threshold_the_code_uses():
    from dlc_tracking.model_review.frame_quality import DEFAULT_JUMP_FRACTION, FrameQualityParams

    text = (ROOT / "docs" / "models.md").read_text()
    m = re.search(r"than (\d+) % of the frame\s+diagonal \((\d+) px at 640 x 480", text)
    assert m, "docs/models.md no longer states the jump threshold"
    assert float(m.group(1)) / 100 == DEFAULT_JUMP_FRACTION
    assert float(m.group(2)) == round(FrameQualityParams().jump_threshold(640, 480))
