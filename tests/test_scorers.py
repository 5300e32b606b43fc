"""Scorer names: DLC's own scorers (both engines) and historic literal ones, round-tripped."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dlc_tracking.errors import RegistryError
from dlc_tracking.registry.scorers import ScorerInfo, parse_scorer

TRAIN_FRACTION = 0.95


def _project_cfg(root: Path, task: str, date: str) -> dict:
    return {"Task": task, "scorer": "lab", "date": date, "iteration": 0,
            "project_path": str(root), "snapshotindex": -1, "detector_snapshotindex": -1,
            "TrainingFraction": [TRAIN_FRACTION], "multianimalproject": False,
            "bodyparts": ["nose", "left ear", "tail_base"], "individuals": ["animal"],
            "uniquebodyparts": [], "multianimalbodyparts": [], "skeleton": [],
            "identity": None}


def dlc_tf_scorer(root: Path, task: str, date: str, net_type: str, shuffle: int,
                  iterations: int) -> str:
    """The scorer DLC's TensorFlow engine writes, from DLC's own get_scorer_name."""
    from deeplabcut.core.engine import Engine
    from deeplabcut.utils import auxiliaryfunctions

    cfg = _project_cfg(root, task, date)
    train = root / auxiliaryfunctions.get_model_folder(TRAIN_FRACTION, shuffle, cfg,
                                                       engine=Engine.TF) / "train"
    train.mkdir(parents=True, exist_ok=True)
    (train / "pose_cfg.yaml").write_text(yaml.safe_dump({"net_type": net_type}))
    scorer, legacy = auxiliaryfunctions.get_scorer_name(
        cfg, shuffle, TRAIN_FRACTION, trainingsiterations=iterations, engine=Engine.TF)
    assert legacy == scorer.replace("DLC", "DeepCut")
    return scorer


def dlc_pytorch_scorer(root: Path, task: str, date: str, net_type: str, shuffle: int,
                       snapshots: list[str], *, top_down: bool = False,
                       detectors: tuple[str, ...] = (), snapshot_index: int | str = -1,
                       ) -> str:
    """The scorer DLC's PyTorch engine writes, from DLC's own config maker and helper."""
    from deeplabcut.core.engine import Engine
    from deeplabcut.pose_estimation_pytorch.config import PoseConfig
    from deeplabcut.utils import auxiliaryfunctions

    cfg = _project_cfg(root, task, date)
    train = root / auxiliaryfunctions.get_model_folder(TRAIN_FRACTION, shuffle, cfg,
                                                       engine=Engine.PYTORCH) / "train"
    train.mkdir(parents=True, exist_ok=True)
    PoseConfig.build(cfg, train / "pytorch_config.yaml", net_type=net_type,
                     top_down=top_down, save=True)
    for name in (*snapshots, *detectors):
        (train / name).touch()  # DLC reads the epoch from the name only
    scorer, _ = auxiliaryfunctions.get_scorer_name(
        cfg, shuffle, TRAIN_FRACTION, engine=Engine.PYTORCH, snapshot_index=snapshot_index,
        detector_snapshot_index=-1 if detectors else None)
    return scorer


def _round_trip(info: ScorerInfo) -> str:
    """Rebuild the scorer from its parts, as DLC composes it."""
    prefix = "DeepCut" if info.legacy else "DLC"
    return (f"{prefix}_{info.net_type}_{info.task}{info.date}shuffle{info.shuffle}_"
            f"{info.snapshot_uid}")


# ----------------------------------------------------------------------------- DLC's own


@pytest.mark.parametrize(("net_type", "net"), [
    ("resnet_50", "resnet50"), ("resnet_101", "resnet101"),
    ("mobilenet_v2_1.0", "mobnet_100"), ("mobilenet_v2_0.35", "mobnet_35"),
    ("efficientnet-b0", "effnet_b0"),
])
@pytest.mark.parametrize(("task", "date"), [
    ("openfield", "Oct22"), ("open_field_2", "Jan1"), ("Maze_B12rig", "Dec31"),
])
def test_tensorflow_scorers_from_dlc(tmp_path: Path, net_type: str, net: str, task: str,
                                     date: str) -> None:
    scorer = dlc_tf_scorer(tmp_path, task, date, net_type, shuffle=3, iterations=1030000)
    for given in ((task, date), (None, None)):
        info = parse_scorer(scorer, *given)
        assert (info.engine, info.net_type, info.task, info.date) == (
            "tensorflow", net, task, date)
        assert (info.shuffle, info.iterations, info.snapshot_epoch) == (3, 1030000, None)
        assert not info.legacy
        assert info.split_inferred == (given[0] is None)
        assert _round_trip(info) == scorer
    legacy = parse_scorer(scorer.replace("DLC", "DeepCut"), task, date)
    assert legacy.legacy and legacy.dlc_scorer == scorer
    assert legacy.legacy_scorer == scorer.replace("DLC", "DeepCut")


@pytest.mark.parametrize(("net_type", "top_down", "net"), [
    ("resnet_50", False, "Resnet50"), ("hrnet_w32", False, "HrnetW32"),
    ("cspnext_s", False, "CspnextS"), ("resnet_50", True, "Resnet50"),  # 3.0.2: no prefix
    ("rtmpose_s", True, "RtmposeS"),
])
def test_pytorch_scorers_from_dlc(tmp_path: Path, net_type: str, top_down: bool,
                                  net: str) -> None:
    task, date = "open field_2", "Jan1"
    scorer = dlc_pytorch_scorer(tmp_path, task, date, net_type, 2,
                                ["snapshot-050.pt", "snapshot-200.pt"], top_down=top_down)
    info = parse_scorer(scorer, task, date)
    assert scorer.endswith("shuffle2_snapshot_200")
    assert (info.engine, info.net_type, info.task, info.date, info.shuffle) == (
        "pytorch", net, task, date, 2)
    assert (info.snapshot_epoch, info.snapshot_best, info.iterations) == (200, False, None)
    assert info.detector_epoch is None
    assert _round_trip(info) == scorer
    inferred = parse_scorer(scorer)
    assert (inferred.task, inferred.date, inferred.split_inferred) == (task, date, True)
    assert inferred.notes and "month-day" in inferred.notes[0]


def test_pytorch_best_snapshot_from_dlc(tmp_path: Path) -> None:
    scorer = dlc_pytorch_scorer(tmp_path, "mice", "Feb29", "resnet_50", 1,
                                ["snapshot-100.pt", "snapshot-best-150.pt"],
                                snapshot_index="best")
    info = parse_scorer(scorer, "mice", "Feb29")
    assert scorer == "DLC_Resnet50_miceFeb29shuffle1_snapshot_best-150"
    assert (info.snapshot_epoch, info.snapshot_best) == (150, True)
    assert _round_trip(info) == scorer


def test_pytorch_top_down_with_detector_from_dlc(tmp_path: Path) -> None:
    scorer = dlc_pytorch_scorer(tmp_path, "rig", "Mar3", "resnet_50", 1, ["snapshot-200.pt"],
                                top_down=True, detectors=("snapshot-detector-080.pt",))
    assert scorer == "DLC_Resnet50_rigMar3shuffle1_detector_80_snapshot_200"
    info = parse_scorer(scorer)
    assert (info.detector_epoch, info.detector_best, info.snapshot_epoch) == (80, False, 200)
    assert (info.task, info.date, info.net_type) == ("rig", "Mar3", "Resnet50")
    assert _round_trip(info) == scorer


# ----------------------------------------------------------------------------- literal historic


@pytest.mark.parametrize(("scorer", "expected"), [
    # DLC 2.0/2.1 (published example projects)
    ("DeepCut_resnet50_reachingJan30shuffle1_1030000",
     dict(engine="tensorflow", net_type="resnet50", task="reaching", date="Jan30",
          shuffle=1, iterations=1030000, legacy=True)),
    ("DLC_resnet50_openfieldOct22shuffle1_500000",
     dict(engine="tensorflow", net_type="resnet50", task="openfield", date="Oct22",
          shuffle=1, iterations=500000)),
    ("DLC_mobnet_100_Reaching_2mice7Aug12shuffle2_100000",
     dict(net_type="mobnet_100", task="Reaching_2mice7", date="Aug12", shuffle=2)),
    ("DLC_mobnet_35_openfieldMay5shuffle1_200000", dict(net_type="mobnet_35")),
    ("DLC_resnet_101_mazeSep9shuffle1_300000", dict(net_type="resnet_101", task="maze")),
    ("DLC_efficientnet-b0_mazeSep9shuffle1_300000", dict(net_type="efficientnet-b0")),
    ("DLC_effnet_b3_mazeSep9shuffle1_300000", dict(net_type="effnet_b3", task="maze")),
    ("DLC_dlcrnetms5_trimiceDec14shuffle1_50000",
     dict(net_type="dlcrnetms5", task="trimice", date="Dec14")),
    ("DLC_Resnet50_openfieldJan1shuffle1_snapshot_200",
     dict(engine="pytorch", net_type="Resnet50", snapshot_epoch=200, snapshot_best=False)),
    ("DLC_HrnetW32_bottom_camApr01shuffle5_snapshot_best-090",
     dict(engine="pytorch", net_type="HrnetW32", task="bottom_cam", date="Apr01",
          shuffle=5, snapshot_epoch=90, snapshot_best=True)),
    ("DLC_TopDownCspnextS_fieldJun7shuffle1_detector_best-120_snapshot_250",
     dict(net_type="TopDownCspnextS", detector_epoch=120, detector_best=True,
          snapshot_epoch=250)),
])
def test_literal_scorers(scorer: str, expected: dict) -> None:
    info = parse_scorer(scorer)
    for key, value in expected.items():
        assert getattr(info, key) == value, key
    assert info.split_inferred


def test_net_is_exact_with_the_task() -> None:
    # Without the task, an unknown net with an underscore is cut at its first underscore;
    # the config's task makes any spelling exact.
    scorer = "DLC_newnet_7_mazeSep9shuffle1_300000"
    assert parse_scorer(scorer).net_type == "newnet"
    info = parse_scorer(scorer, task="maze", date="Sep9")
    assert (info.net_type, info.task, info.date, info.split_inferred) == (
        "newnet_7", "maze", "Sep9", False)


@pytest.mark.parametrize(("task", "date"), [
    ("maze2Jan1", "Jan12"),        # a task that itself ends like a date
    ("My Project/ö", "2024-05-01"),  # any text in the config
    ("t", "Oct22"),
])
def test_given_task_and_date_split_exactly(task: str, date: str) -> None:
    scorer = f"DLC_Resnet50_{task}{date}shuffle4_snapshot_010"
    info = parse_scorer(scorer, task=task, date=date)
    assert (info.task, info.date, info.shuffle, info.snapshot_epoch) == (task, date, 4, 10)
    assert not info.split_inferred and info.notes == ()


def test_only_task_or_only_date_given() -> None:
    scorer = "DLC_resnet50_cagesession2024shuffle1_1000"
    by_task = parse_scorer(scorer, task="cage")
    assert (by_task.task, by_task.date, by_task.split_inferred) == ("cage", "session2024",
                                                                     False)
    by_date = parse_scorer(scorer, date="2024")
    assert (by_date.task, by_date.date) == ("cagesession", "2024")


@pytest.mark.parametrize("scorer", [
    "",
    "resnet50_openfieldOct22shuffle1_500000",        # no DLC_ prefix
    "DLC_resnet50_openfieldOct22_500000",            # no shuffle
    "DLC_resnet50_openfieldOct22shuffle1_snapshot",  # no epoch
    "DLC_resnet50_openfield2024shuffle1_500000",     # no month-day date
    "DLC_resnet50_Oct22shuffle1_500000",             # a date but no task
])
def test_unparseable_scorers_refused(scorer: str) -> None:
    with pytest.raises(RegistryError) as exc:
        parse_scorer(scorer)
    text = str(exc.value)
    assert repr(scorer) in text and "--config" in text and "DeepCut_resnet50_" in text


def test_scorer_not_matching_given_task_refused() -> None:
    with pytest.raises(RegistryError, match="task 'other'"):
        parse_scorer("DLC_resnet50_openfieldOct22shuffle1_500000", task="other", date="Oct22")
