"""One training plan end to end: check the labeled data, create the shuffle's dataset,
train, register the version. What the ``dlc_training_runs`` asset and the CLI run.

A run killed at any point before the last step leaves no registry entry; running the
plan again starts the shuffle over (its half-trained model folder is replaced).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from dlc_tracking.registry.registry_file import ModelEntry, load_registry
from dlc_tracking.training.datasets import LabeledDataSummary, check_labeled_data, create_dataset
from dlc_tracking.training.errors import TrainingError
from dlc_tracking.training.train import Progress, TrainingResult, train_shuffle
from dlc_tracking.training.versions import (
    TrainingPlan,
    check_project_before_training,
    mark_plan_failed,
    plan_for_partition,
    register_version,
)


@dataclass
class TrainingOutcome:
    """A finished, registered training run.

    Attributes
    ----------
    plan : TrainingPlan
    labeled : LabeledDataSummary
        The labeled data the dataset was made of.
    result : TrainingResult
        Losses per epoch, wall time, device, snapshots.
    entry : ModelEntry
        The registered version.
    reused : bool
        The plan had been trained and registered before (a re-materialization, or a run
        retried after it registered): nothing was trained again.
    """

    plan: TrainingPlan
    labeled: LabeledDataSummary
    result: TrainingResult
    entry: ModelEntry
    reused: bool = False


def _registered_outcome(registry, plan: TrainingPlan) -> TrainingOutcome | None:
    """The outcome of a plan that registered its version already, None when the name is
    registered by something else (another plan, ``models add``)."""
    from dlc_tracking.registry.dlc_projects import list_snapshots
    from dlc_tracking.training.train import read_learning_stats
    from dlc_tracking.training.versions import plan_path

    entry = registry.model(plan.version)
    trained = ((registry.raw.get("models") or {}).get(plan.version) or {}).get("trained") or {}
    if trained.get("plan") != str(plan_path(registry.path, plan.version)):
        return None
    folder = entry.project_config.parent / entry.derived["model_folder"]
    snapshots = list_snapshots(folder / "train", "pytorch")
    if not snapshots:
        raise TrainingError(f"model version {plan.version!r} is registered but its snapshots "
                            f"are gone from {folder / 'train'}; restore them.")
    losses = read_learning_stats(folder / "train")
    result = TrainingResult(plan.config_path, plan.iteration, plan.shuffle,
                            plan.params.trainingsetindex, folder, snapshots,
                            int(trained.get("epochs", plan.params.epochs)), losses,
                            float(trained.get("wall_s", 0.0)), str(trained.get("device", "")),
                            plan.params.pretrained)
    from dlc_tracking.training.projects import project_config

    cfg = project_config(plan.config_path)
    labeled = LabeledDataSummary(plan.config_path, str(cfg["scorer"]),
                                 [str(b) for b in cfg["bodyparts"]],
                                 notes=["trained before: the labeled data was not read again"])
    return TrainingOutcome(plan, labeled, result, entry, reused=True)


def _refuse_registered_folder(registry, plan: TrainingPlan) -> None:
    """The shuffle is started over (its model folder replaced): never one a registered
    model uses (a shuffle made by hand after the plan was written)."""
    from dlc_tracking.training.datasets import shuffle_folder

    folder = shuffle_folder(plan.config_path, plan.shuffle, plan.params.trainingsetindex)
    for entry in registry.models.values():
        if (entry.project_config is not None and entry.derived.get("model_folder")
                and (entry.project_config.parent / entry.derived["model_folder"]).resolve()
                == folder.resolve()):
            raise TrainingError(
                f"model version {plan.version!r}: shuffle {plan.shuffle} of "
                f"{plan.config_path} is registered as model {entry.name!r} now; its files "
                "are never replaced. Plan a new version (`dlc-platform models train`).")


@contextlib.contextmanager
def version_lock(registry_path: str | Path, version: str) -> Iterator[None]:
    """Hold the training lock of one model version for a whole run, or fail at once.

    Two runs of the same version (a retry while the first run's worker still trains, a
    double launch) would replace each other's shuffle folder. The lock
    (``<registry folder>/training/.<version>.lock``, next to the plans, on the storage
    every worker shares) is taken without waiting; its holder is named in
    ``.<version>.holder`` (host, pid, start time). The operating system releases it when
    the holding process dies, so a retry after a killed run is not refused.

    Raises
    ------
    TrainingError
        Another run holds the version (the message names its host and pid).
    """
    from filelock import FileLock, Timeout

    from dlc_tracking.training.versions import plans_dir

    folder = plans_dir(registry_path)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / f".{version}.lock"), timeout=0)
    holder = folder / f".{version}.holder"
    try:
        lock.acquire()
    except Timeout:
        try:
            who = holder.read_text().strip() or "unknown"
        except OSError:
            who = "unknown"
        raise TrainingError(
            f"model version {version!r} is being trained by another run right now ({who}); "
            "a version is trained by one run at a time. Wait for that run to finish (or "
            "stop it), then run this one again.") from None
    try:
        started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        holder.write_text(f"host {socket.gethostname()}, pid {os.getpid()}, since {started}\n")
        yield
    finally:
        holder.unlink(missing_ok=True)
        lock.release()


def _project_lock(config_path: Path):
    from filelock import FileLock

    # create_training_dataset rewrites the project's shared metadata.yaml: one at a time.
    return FileLock(str(config_path.parent / ".dlc-platform-dataset.lock"))


def run_training_plan(registry_path: str | Path, version: str, *, device: str = "auto",
                      progress: Progress | None = None,
                      log: Callable[[str], None] | None = None,
                      gpu_lock_dir: str | Path | None = None) -> TrainingOutcome:
    """Run the training plan of ``version`` and register the trained version.

    Parameters
    ----------
    registry_path : str or Path
        The registry file (the plan is read from its folder's ``training/``).
    version : str
        The planned version (see :func:`dlc_tracking.training.versions.plan_training`);
        a ``<model>-iter<N>-shuffle<S>`` without a plan is planned from the registered
        ``<model>`` when it is that model's next version (a partition added in the UI).
    device : str
        ``auto`` | ``cpu`` | ``cuda:N`` (inference's device rules).
    progress : callable, optional
        Called after every epoch with an :class:`~dlc_tracking.training.train.EpochProgress`.
    log : callable, optional
        Receives a line per step.
    gpu_lock_dir : str or Path, optional
        Per-GPU lock folder shared with inference (``auto`` claims a free GPU).

    Returns
    -------
    TrainingOutcome

    Raises
    ------
    TrainingError
        No plan; the version is registered already; another run trains it right now
        (:func:`version_lock`); the project moved on to another iteration; training
        failed.
    LabeledDataError
        The labeled data cannot make a dataset (no labels, unknown body parts, ...).
    RegistryError
        Registration refused (name or identity taken); nothing is written then.
    """
    registry_path = Path(registry_path).absolute()
    with version_lock(registry_path, version):
        try:
            return _run_locked(registry_path, version, device=device, progress=progress,
                               log=log, gpu_lock_dir=gpu_lock_dir)
        except Exception as exc:
            # A failed or refused run must not hold its version name: its plan says so,
            # and the next `models train` plans that name (and shuffle) again.
            if version not in load_registry(registry_path).models:
                mark_plan_failed(registry_path, version, str(exc))
            raise


def _run_locked(registry_path: Path, version: str, *, device: str,
                progress: Progress | None, log: Callable[[str], None] | None,
                gpu_lock_dir: str | Path | None) -> TrainingOutcome:
    say = log or (lambda _msg: None)
    plan = plan_for_partition(registry_path, version)
    registry = load_registry(registry_path)
    if version in registry.models:
        done = _registered_outcome(registry, plan)
        if done is None:
            raise TrainingError(
                f"model version {version!r} is already registered in {registry_path}, not "
                "by this training plan; a registered version is never retrained or "
                "overwritten. Plan a new version with `dlc-platform models train "
                f"{plan.from_model or version}`.")
        say(f"{version}: already trained and registered by this plan; nothing retrained "
            f"(snapshot {done.result.snapshot.name})")
        return done
    from dlc_tracking.training.projects import project_config

    cfg = project_config(plan.config_path)
    if int(cfg["iteration"]) != plan.iteration:
        raise TrainingError(
            f"model version {version!r} was planned for iteration {plan.iteration} of "
            f"{plan.config_path}, which is at iteration {cfg['iteration']} now; plan a new "
            "version (`dlc-platform models train`).")
    _refuse_registered_folder(registry, plan)
    # Again at the start of the run: the project may have changed since the planning.
    check_project_before_training(plan.config_path, plan.params.trainingsetindex,
                                  plan.body_part_map, registry.body_parts,
                                  f"model version {version}")
    labeled = check_labeled_data(plan.config_path)
    say(f"{version}: {labeled.labeled_frames} labeled frames in {len(labeled.folders)} "
        f"folder(s) of {plan.config_path.parent.name}"
        + (f"; notes: {'; '.join(labeled.notes)}" if labeled.notes else ""))
    with _project_lock(plan.config_path):
        pose_cfg = create_dataset(plan.config_path, plan.shuffle, plan.params)
    say(f"{version}: training dataset of shuffle {plan.shuffle} created ({pose_cfg})")
    say(f"{version}: training {plan.params.epochs} epochs, batch {plan.params.batch_size}, "
        f"pretrained {plan.params.pretrained}, device {device}")
    result: TrainingResult = train_shuffle(plan.config_path, plan.shuffle, plan.params,
                                           device=device, progress=progress,
                                           gpu_lock_dir=gpu_lock_dir)
    say(f"{version}: trained in {result.wall_s:.1f} s on {result.device}; snapshot "
        f"{result.snapshot.name}")
    entry = register_version(registry_path, plan, result)
    say(f"{version}: registered in {registry_path} (scorer {entry.scorer})")
    return TrainingOutcome(plan, labeled, result, entry)
