"""Benchmark: training time per epoch through the platform vs DeepLabCut directly.

Both peers train the tiny model's project (a copy; 80 labeled 200 x 150 frames, cspnext_s,
batch 8, no crop padding) on the CPU for the same epochs from the same weights (the tiny
model's snapshot, weights only), on a freshly created shuffle each time, in turns
(A B, B A, ...) in the same process:

- **direct**: ``deeplabcut.train_network(config, shuffle, device="cpu", epochs, ...,
  snapshot_path=<weights-only start snapshot>)``;
- **platform**: :func:`dlc_tracking.training.train.train_shuffle` (what the
  ``dlc_training_runs`` asset runs to train): the start snapshot written from the
  pretrained file, the progress thread reading ``learning_stats.csv`` per epoch, DLC's
  logging contained, the losses read back.

Target: platform seconds per epoch <= 1.05 x direct. The fixed costs of a training run
outside the epochs (labeled-data checks, ``create_training_dataset``, registration in the
registry) are reported per run, without a target.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from bench.common import BenchResult, alternate, median

EPOCHS = 3
QUICK_EPOCHS = 1
OVERHEAD_TARGET = 1.05


def _setup(folder: Path):
    from dlc_tracking.registry.editing import add_model
    from dlc_tracking.synthetic.tiny_model import build_tiny_model
    from dlc_tracking.training.params import TrainingParams
    from dlc_tracking.training.projects import copy_project

    tiny = build_tiny_model("pytorch", progress=None)
    snapshot = sorted((tiny.parent / "dlc-models-pytorch").rglob("snapshot-*.pt"))[-1]
    config = copy_project(tiny, folder / "project")
    registry = folder / "registry.yaml"
    shutil.copy(Path(__file__).resolve().parents[1] / "registry" / "registry.yaml", registry)
    add_model(registry, "tinybench", config)
    return config, registry, snapshot, TrainingParams


def run(repeats: int | None = None, quick: bool = False) -> BenchResult:
    """Run the training benchmark (``python -m bench --training``)."""
    import deeplabcut  # noqa: F401  (imported once, outside the timings)

    from dlc_tracking.training.datasets import check_labeled_data, create_dataset
    from dlc_tracking.training.train import train_shuffle, write_init_weights
    from dlc_tracking.training.versions import plan_training, register_version

    epochs = QUICK_EPOCHS if quick else EPOCHS
    repeats = repeats or (1 if quick else 3)
    tmp = Path(tempfile.mkdtemp(prefix="bench-training-"))
    try:
        config, registry, snapshot, TrainingParams = _setup(tmp)
        params = TrainingParams(net_type="cspnext_s", epochs=epochs, batch_size=8,
                                pretrained=str(snapshot), learning_rate=1e-4,
                                augmentation={"crop_sampling": None})
        init = write_init_weights(create_dataset(config, 2, params), params,
                                  tmp / "init-weights.pt")
        shuffles = iter(range(2, 1000))
        last_platform: dict = {}

        def fresh() -> int:
            shuffle = next(shuffles)
            create_dataset(config, shuffle, params)
            return shuffle

        def direct() -> dict:
            shuffle = fresh()
            t0 = time.perf_counter()
            deeplabcut.train_network(
                str(config), shuffle=shuffle, device="cpu", batch_size=params.batch_size,
                epochs=epochs, save_epochs=epochs, max_snapshots_to_keep=params.max_snapshots,
                snapshot_path=str(init))
            wall = time.perf_counter() - t0
            return {"s_per_epoch": wall / epochs}

        def platform() -> dict:
            shuffle = fresh()
            t0 = time.perf_counter()
            result = train_shuffle(config, shuffle, params, device="cpu",
                                   progress=lambda p: None)
            wall = time.perf_counter() - t0
            last_platform["result"] = result
            return {"s_per_epoch": wall / epochs}

        runs = alternate({"direct": direct, "platform": platform}, repeats)
        d = median(runs["direct"]["s_per_epoch"])
        p = median(runs["platform"]["s_per_epoch"])
        # Fixed costs of one run, outside the epochs (what run_training_plan adds).
        t_check, _ = _timed(lambda: check_labeled_data(config))
        plan = plan_training(registry, "tinybench", overrides=params.to_dict())
        t_dataset, _ = _timed(lambda: create_dataset(config, plan.shuffle, params))
        result = train_shuffle(config, plan.shuffle, params, device="cpu")
        t_register, _ = _timed(lambda: register_version(registry, plan, result))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = BenchResult("training", details={"epochs_per_run": epochs, "repeats": repeats,
                                           "frames_labeled": 80, "net": "cspnext_s",
                                           "batch_size": 8, "device": "cpu"})
    out.add("training s/epoch, DLC train_network directly", d, "s", samples=runs["direct"][
        "s_per_epoch"], cpu_s=median(runs["direct"]["cpu_s"]) / epochs)
    out.add("training s/epoch, platform (train_shuffle)", p, "s",
            samples=runs["platform"]["s_per_epoch"],
            cpu_s=median(runs["platform"]["cpu_s"]) / epochs)
    out.add("platform / direct, per epoch", p / d, "x", "<=", OVERHEAD_TARGET,
            note=f"{epochs} epochs per run, {repeats} alternated pairs")
    out.add("per run: labeled-data checks", t_check, "s")
    out.add("per run: create_training_dataset", t_dataset, "s")
    out.add("per run: registration (add_model, atomic)", t_register, "s")
    return out


def _timed(fn):
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value
