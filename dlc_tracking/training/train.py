"""Training one shuffle with DeepLabCut's own ``train_network`` (PyTorch engine).

Progress is reported once per epoch, read from the ``learning_stats.csv`` DeepLabCut
writes after every epoch (train loss, and valid loss / test RMSE at each evaluation), by
a polling thread: nothing of DLC's training loop is replaced or patched.

Initial weights (``TrainingParams.pretrained``): DLC 3.0.2 downloads the backbone's
ImageNet weights unless training starts from a snapshot. ``none`` and a snapshot file
are therefore handed to DLC as a *weights-only* start snapshot (epoch counter 0, no
optimizer state), written to a temporary file: a random initialisation (seeded), or the
weights of the given snapshot (e.g. the previous version's).
"""

from __future__ import annotations

import contextlib
import csv
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from dlc_tracking.registry.dlc_projects import list_snapshots
from dlc_tracking.training.datasets import shuffle_folder
from dlc_tracking.training.errors import TrainingError
from dlc_tracking.training.params import TrainingParams
from dlc_tracking.training.projects import project_config

STATS_FILE = "learning_stats.csv"


@dataclass(frozen=True)
class EpochProgress:
    """One finished epoch, as reported to a progress callback.

    Attributes
    ----------
    epoch : int
        Epoch number (from 1).
    epochs : int
        Epochs of the run.
    train_loss : float
        Mean training loss of the epoch.
    valid_loss : float or None
        Loss on the test split when DLC evaluated at this epoch.
    elapsed_s : float
        Seconds since training started.
    """

    epoch: int
    epochs: int
    train_loss: float
    valid_loss: float | None
    elapsed_s: float

    def line(self) -> str:
        """A log line: ``epoch 3/10: train loss 0.01234, valid loss 0.02345 (12.3 s)``."""
        valid = f", valid loss {self.valid_loss:.5f}" if self.valid_loss is not None else ""
        return (f"epoch {self.epoch}/{self.epochs}: train loss {self.train_loss:.5f}{valid} "
                f"({self.elapsed_s:.1f} s, {self.elapsed_s / max(self.epoch, 1):.2f} s/epoch)")


Progress = Callable[[EpochProgress], None]


@dataclass
class TrainingResult:
    """A finished training run of one shuffle.

    Attributes
    ----------
    config_path : Path
        The project's config.yaml.
    iteration, shuffle, trainingsetindex : int
        Which shuffle was trained.
    model_folder : Path
        ``dlc-models-pytorch/iteration-N/<Task><date>-trainset<P>shuffle<S>``.
    snapshots : list of str
        Snapshot files in the train folder after training, in DLC's order (the last is
        the one ``snapshotindex -1`` designates).
    epochs : int
        Epochs trained.
    losses : pandas.DataFrame
        One row per epoch: ``epoch``, ``train_loss``, ``valid_loss`` (NaN where DLC did
        not evaluate), ``epoch_s`` (seconds, as observed by the progress thread) and DLC's
        test metrics where evaluated (``test_rmse_px``, ``test_rmse_pcutoff_px``, ...).
    wall_s : float
        Seconds in ``deeplabcut.train_network``.
    device : str
        Device trained on (``cpu``, ``cuda:0``).
    pretrained : str
        The initial weights (``none``, ``imagenet`` or the snapshot path).
    """

    config_path: Path
    iteration: int
    shuffle: int
    trainingsetindex: int
    model_folder: Path
    snapshots: list[str]
    epochs: int
    losses: pd.DataFrame
    wall_s: float
    device: str
    pretrained: str
    extra: dict = field(default_factory=dict)

    @property
    def train_dir(self) -> Path:
        """The shuffle's ``train/`` folder (snapshots, pytorch_config.yaml, logs)."""
        return self.model_folder / "train"

    @property
    def snapshot(self) -> Path:
        """The snapshot ``snapshotindex -1`` designates (DLC's rule: a best snapshot last)."""
        return self.train_dir / self.snapshots[-1]


def read_learning_stats(train_dir: str | Path) -> pd.DataFrame:
    """Losses per epoch from DeepLabCut's ``learning_stats.csv`` of a train folder.

    Parameters
    ----------
    train_dir : str or Path
        A PyTorch shuffle's ``train/`` folder.

    Returns
    -------
    pandas.DataFrame
        ``epoch``, ``train_loss``, ``valid_loss`` (NaN where not evaluated), and DLC's
        metrics renamed ``metrics/test.rmse`` -> ``test_rmse_px``,
        ``metrics/test.rmse_pcutoff`` -> ``test_rmse_pcutoff_px``, others
        ``/`` and ``.`` -> ``_``. Empty (those columns) when the file does not exist.
    """
    path = Path(train_dir) / STATS_FILE
    base = ["epoch", "train_loss", "valid_loss"]
    if not path.is_file() or path.stat().st_size == 0:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in base})
    try:
        raw = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError):  # caught mid-write by DLC
        return pd.DataFrame({c: pd.Series(dtype=float) for c in base})
    raw = raw.dropna(subset=["step"]).reset_index(drop=True)
    out = pd.DataFrame({"epoch": raw["step"].astype(int)})
    out["train_loss"] = raw.get("losses/train.total_loss", np.nan)
    out["valid_loss"] = raw.get("losses/eval.total_loss", np.nan)
    for col in raw.columns:
        if col.startswith("metrics/"):
            name = col.split("/", 1)[1].replace(".", "_")
            if name.endswith(("rmse", "rmse_pcutoff")):
                name += "_px"
            out[name] = raw[col]
    return out


@contextlib.contextmanager
def _epoch_reporter(train_dir: Path, epochs: int, progress: Progress | None,
                    timings: dict[int, float], poll_s: float = 0.5) -> Iterator[None]:
    """Watch learning_stats.csv; report each epoch once its train loss is written."""
    stop = threading.Event()
    t0 = time.monotonic()
    reported: set[int] = set()

    def poll() -> None:
        path = train_dir / STATS_FILE
        if not path.is_file():
            return
        try:
            with path.open(newline="") as fh:
                rows = list(csv.DictReader(fh))
        except (OSError, csv.Error):  # DLC rewrites the file after every epoch
            return
        now = time.monotonic() - t0
        for row in rows:
            try:
                epoch = int(row["step"])
                train_loss = float(row.get("losses/train.total_loss") or "nan")
            except (KeyError, ValueError):
                continue
            if epoch in reported or np.isnan(train_loss):
                continue
            reported.add(epoch)
            timings[epoch] = now
            valid = row.get("losses/eval.total_loss")
            if progress is not None:
                with contextlib.suppress(Exception):  # a broken callback must not stop training
                    progress(EpochProgress(epoch, epochs, train_loss,
                                           float(valid) if valid else None, now))

    def run() -> None:
        while not stop.wait(poll_s):
            poll()
        poll()

    thread = threading.Thread(target=run, name="dlc-training-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


@contextlib.contextmanager
def _dlc_side_effects_contained() -> Iterator[None]:
    """DLC's training replaces the root logger's handlers (basicConfig(force=True)) and
    may change the working directory: put both back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    cwd = os.getcwd()
    try:
        yield
    finally:
        for h in list(root.handlers):
            if h not in handlers:
                root.removeHandler(h)
                with contextlib.suppress(Exception):
                    h.close()
        for h in handlers:
            if h not in root.handlers:
                root.addHandler(h)
        root.setLevel(level)
        os.chdir(cwd)


def write_init_weights(pose_cfg_path: str | Path, params: TrainingParams, dest: str | Path
                       ) -> Path | None:
    """The weights-only start snapshot of a training run, or None for ``imagenet``.

    Parameters
    ----------
    pose_cfg_path : str or Path
        The shuffle's ``train/pytorch_config.yaml`` (the network to build).
    params : TrainingParams
        ``pretrained`` (``none``: random init seeded with ``seed``; a ``.pt`` file: its
        ``model`` weights) and ``seed``.
    dest : str or Path
        File to write (outside the train folder: DLC must not take it for a snapshot).

    Returns
    -------
    Path or None

    Raises
    ------
    TrainingError
        The snapshot file is missing or is not a DLC PyTorch snapshot.
    """
    if params.pretrained == "imagenet":
        return None
    if params.pretrained == "previous":
        raise TrainingError("pretrained 'previous' is resolved when the training is planned "
                            "(dlc_tracking.training.versions.plan_training); train from a "
                            "plan, or give the .pt file.")
    import torch

    dest = Path(dest)
    if params.pretrained == "none":
        from deeplabcut.pose_estimation_pytorch.models import PoseModel

        pose_cfg = yaml.safe_load(Path(pose_cfg_path).read_text())
        torch.manual_seed(params.seed)
        model = PoseModel.build(pose_cfg["model"], pretrained_backbone=False)
        state = model.state_dict()
    else:
        source = Path(params.pretrained).expanduser()
        if not source.is_file():
            raise TrainingError(f"pretrained weights {source} not found: give an existing DLC "
                                "PyTorch snapshot (.pt), 'none' or 'imagenet'.")
        try:
            # The lab's own snapshot file; DLC snapshots hold plain metadata besides tensors.
            loaded = torch.load(source, map_location="cpu", weights_only=False)
        except Exception as exc:  # torch raises many types for a broken file
            raise TrainingError(f"pretrained weights {source} cannot be loaded ({exc}).") from exc
        if not isinstance(loaded, dict) or "model" not in loaded:
            raise TrainingError(f"pretrained weights {source} is not a DLC PyTorch snapshot "
                                "(no 'model' weights in it).")
        state = loaded["model"]
    dest.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": state, "metadata": {"epoch": 0}}, dest)
    return dest


def train_shuffle(config_path: str | Path, shuffle: int, params: TrainingParams, *,
                  device: str = "auto", progress: Progress | None = None,
                  gpu_lock_dir: str | Path | None = None) -> TrainingResult:
    """Train one shuffle of the project's current iteration with ``deeplabcut.train_network``.

    The shuffle's dataset must exist (:func:`dlc_tracking.training.datasets.create_dataset`).

    Parameters
    ----------
    config_path : str or Path
        The project's config.yaml.
    shuffle : int
        Shuffle to train.
    params : TrainingParams
        epochs, batch_size, pretrained weights, ...
    device : str
        ``auto`` (a free GPU when there is one, else the CPU), ``cpu``, ``cuda:N``: the
        rules of inference (docs/inference.md).
    progress : callable, optional
        Called with an :class:`EpochProgress` after every epoch.
    gpu_lock_dir : str or Path, optional
        Folder of the per-GPU lock files inference uses; with ``auto`` the run claims a
        GPU no other step of this machine holds.

    Returns
    -------
    TrainingResult

    Raises
    ------
    TrainingError
        The dataset is missing, DeepLabCut failed (the message names the train folder and
        its train.txt log), or training ended without writing the final snapshot.
    """
    from dlc_tracking.inference.dlc_runner import claim_device, resolve_device

    config_path = Path(config_path).resolve()
    cfg = project_config(config_path)
    folder = shuffle_folder(config_path, shuffle, params.trainingsetindex)
    train_dir = folder / "train"
    pose_cfg_path = train_dir / "pytorch_config.yaml"
    if not pose_cfg_path.is_file():
        raise TrainingError(f"{pose_cfg_path} not found: create the training dataset of "
                            f"shuffle {shuffle} of {config_path} first.")
    import deeplabcut

    timings: dict[int, float] = {}
    with contextlib.ExitStack() as stack:
        if gpu_lock_dir is not None:
            resolved = stack.enter_context(claim_device(device, Path(gpu_lock_dir)))
        else:
            resolved = resolve_device(device)
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dlc-init-")))
        init = write_init_weights(pose_cfg_path, params, tmp / "init-weights.pt")
        kwargs = dict(shuffle=shuffle, trainingsetindex=params.trainingsetindex,
                      device=resolved, batch_size=params.batch_size, epochs=params.epochs,
                      save_epochs=params.save_epochs or params.epochs,
                      max_snapshots_to_keep=params.max_snapshots,
                      keepdeconvweights=params.load_head_weights,
                      pytorch_cfg_updates=dict(params.pytorch_cfg_updates) or None)
        if init is not None:
            kwargs["snapshot_path"] = str(init)
        t0 = time.monotonic()
        try:
            with (_dlc_side_effects_contained(),
                  _epoch_reporter(train_dir, params.epochs, progress, timings)):
                deeplabcut.train_network(str(config_path), **kwargs)
        except Exception as exc:
            hint = (" (pretrained 'imagenet' downloads the backbone's weights: on a machine "
                    "without internet use pretrained 'none' or a local .pt snapshot)"
                    if params.pretrained == "imagenet" else "")
            raise TrainingError(
                f"deeplabcut.train_network failed for shuffle {shuffle} of {config_path}: "
                f"{type(exc).__name__}: {exc}{hint}. Log: {train_dir / 'train.txt'}") from exc
        wall = time.monotonic() - t0
    losses = read_learning_stats(train_dir)
    snapshots = list_snapshots(train_dir, "pytorch")
    if not snapshots or losses.empty or int(losses["epoch"].max()) < params.epochs:
        last = int(losses["epoch"].max()) if not losses.empty else 0
        raise TrainingError(
            f"training of shuffle {shuffle} of {config_path} ended after epoch {last} of "
            f"{params.epochs} with snapshots {snapshots} in {train_dir}; nothing was "
            "registered. Run the training again.")
    epoch_end = losses["epoch"].map(timings)
    losses.insert(3, "epoch_s", epoch_end.diff().fillna(epoch_end))
    return TrainingResult(config_path, int(cfg["iteration"]), shuffle,
                          params.trainingsetindex, folder, snapshots, params.epochs, losses,
                          round(wall, 3), resolved, params.pretrained)
