"""Helpers of the model lifecycle tests: a writable copy of the tiny DLC project with a
registry of its own, short training parameters, and labels "refined" the way DLC's
refinement leaves them (machinelabels-iter<N>.h5 + CollectedData_<scorer>.h5)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parent.parent
BASE = "tinycopy"


def tiny_snapshot(tiny_config: Path) -> Path:
    """The cached tiny model's trained snapshot (the offline pretrained weights)."""
    found = sorted((tiny_config.parent / "dlc-models-pytorch").rglob("snapshot-*.pt"))
    assert found, f"no snapshot in {tiny_config.parent}"
    return found[-1]


def short_training(tiny_config: Path, **changes) -> dict:
    """Registry ``training:`` of a 1-epoch fine-tune from the tiny model's snapshot.

    Small frames: no crop padding (DLC's default pads to 448 px: 6x slower epochs).
    """
    params = {"net_type": "cspnext_s", "epochs": 1, "batch_size": 8, "eval_interval": 1,
              "learning_rate": 1e-4, "pretrained": str(tiny_snapshot(tiny_config)),
              "augmentation": {"crop_sampling": None, "motion_blur": False}}
    params.update(changes)
    return params


def project_with_registry(tiny_config: Path, folder: Path, training: dict | None = None,
                          evaluation: dict | None = None, **entry) -> tuple[Path, Path]:
    """A copy of the tiny project and a registry with it as model ``tinycopy`` (``entry``:
    further keys of its registry entry).

    Returns
    -------
    (config.yaml of the copy, registry.yaml)
    """
    from dlc_tracking.registry.editing import add_model
    from dlc_tracking.training.projects import copy_project

    config = copy_project(tiny_config, folder / "project")
    registry = folder / "registry" / "registry.yaml"
    registry.parent.mkdir(parents=True)
    shutil.copy(ROOT / "registry" / "registry.yaml", registry)
    extra = {"training": training or short_training(tiny_config)}
    if evaluation:
        extra["evaluation"] = evaluation
    extra.update(entry)
    add_model(registry, BASE, config, description="copy of the tiny model",
              pair_with=["two_ears_loose"], extra=extra)
    return config, registry


def refine_with_ground_truth(config: Path, folder: Path, *, n_frames: int = 120,
                             n_refined: int = 12, seed: int = 99,
                             refine: bool = True) -> dict:
    """Frames of a new synthetic video extracted for refinement, and refined.

    Writes ``labeled-data/<video>/img*.png`` and ``machinelabels-iter<N>.h5`` (a model's
    guesses: the truth shifted by 6 px, likelihood 0.3) as DLC's outlier extraction
    does, adds the video to config.yaml ``video_sets``, and (``refine``) saves the
    synthetic ground truth of those frames as ``CollectedData_<scorer>.h5`` as the
    labeller would in napari-deeplabcut.

    Returns
    -------
    dict
        ``video`` (path), ``frames`` (indices), ``folder`` (labeled-data folder).
    """
    from dlc_tracking.synthetic import openfield
    from dlc_tracking.synthetic.tiny_model import write_labels

    cfg = yaml.safe_load(config.read_text())
    project = config.parent
    gt = openfield.simulate_openfield(n_frames=n_frames, width=200, height=150, seed=seed)
    video = openfield.render_video(gt, project / "videos" / f"refine{seed}.mp4", noise=2.0,
                                   seed=seed)
    cfg["video_sets"][str(video)] = {"crop": "0, 200, 0, 150"}
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    frames = np.linspace(0, n_frames - 1, n_refined).round().astype(int)
    h5 = write_labels(project, video, gt, frames, cfg["scorer"], list(cfg["bodyparts"]))
    labels = pd.read_hdf(h5)
    # The machine labels: what the model guessed at those frames (x, y, likelihood).
    guess = labels.copy() + 6.0
    parts = list(cfg["bodyparts"])
    cols = pd.MultiIndex.from_product([[cfg["scorer"]], parts, ["x", "y", "likelihood"]],
                                      names=["scorer", "bodyparts", "coords"])
    machine = pd.DataFrame(index=labels.index, columns=cols, dtype=float)
    for bp in parts:
        machine[(cfg["scorer"], bp, "x")] = guess[(cfg["scorer"], bp, "x")]
        machine[(cfg["scorer"], bp, "y")] = guess[(cfg["scorer"], bp, "y")]
        machine[(cfg["scorer"], bp, "likelihood")] = 0.3
    target = h5.parent
    machine.to_hdf(target / f"machinelabels-iter{cfg['iteration']}.h5", key="df_with_missing",
                   mode="w")
    if not refine:
        h5.unlink()
        (target / h5.name.replace(".h5", ".csv")).unlink(missing_ok=True)
    return {"video": video, "frames": frames, "folder": target}
