"""Model versions: names, training plans, and registering a trained version.

A version the platform trains is named ``<base>-iter<N>-shuffle<S>``: ``base`` is the
model it derives from without its own version suffix, N the DLC project's iteration
(config.yaml ``iteration``, advanced by ``merge_datasets``), S the shuffle. Names use
only letters, digits, ``_ . -`` (they are Dagster partition keys and warehouse file
names; ``@`` is reserved by the warehouse).

A *training plan* (``<registry folder>/training/<version>.yaml``) is written before the
training run and says everything the run needs: the project, iteration, shuffle, the
model it derives from, the full training and evaluation parameters and their hash. It
sits next to the registry (shared storage, version control), so any worker can run it
and the lab can always see how a version was trained. A version is registered only after
its training finished and its snapshot exists, in one atomic registry edit; a name is
never reused and a registered version is never overwritten.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from dlc_tracking.errors import RegistryError
from dlc_tracking.registry.editing import registry_lock
from dlc_tracking.registry.registry_file import ModelEntry, load_registry
from dlc_tracking.sessions.layout import PARTITION_KEY_PATTERN
from dlc_tracking.training.datasets import next_shuffle
from dlc_tracking.training.errors import TrainingError
from dlc_tracking.training.params import (
    PREVIOUS,
    EvaluationParams,
    TrainingParams,
    model_evaluation_params,
    model_training_params,
)
from dlc_tracking.training.projects import project_config, refuse_cached_tiny_model

FAILED = "failed"
"""``status`` of a plan whose run failed or was refused (:func:`mark_plan_failed`)."""
VERSION_PATTERN = re.compile(r"^(?P<base>.+?)-iter(?P<iteration>\d+)-shuffle(?P<shuffle>\d+)$")
PLANS_FOLDER = "training"


def version_name(base: str, iteration: int, shuffle: int) -> str:
    """``<base>-iter<iteration>-shuffle<shuffle>``, checked to be a valid partition key.

    Parameters
    ----------
    base : str
        Base model name.
    iteration, shuffle : int
        DLC project iteration and shuffle.

    Returns
    -------
    str

    Raises
    ------
    TrainingError
        The name would hold characters other than letters, digits, ``_ . -``.
    """
    name = f"{base}-iter{int(iteration)}-shuffle{int(shuffle)}"
    if not PARTITION_KEY_PATTERN.match(name) or "@" in name:
        raise TrainingError(
            f"model version name {name!r} is not valid: model names used for training may "
            "hold only letters, digits, '_', '.' and '-' (they are partition keys); choose "
            "a base name like that (--base).")
    return name


def parse_version(name: str) -> tuple[str, int, int] | None:
    """``(base, iteration, shuffle)`` of a version name, None for any other name."""
    m = VERSION_PATTERN.match(name)
    if not m:
        return None
    return m.group("base"), int(m.group("iteration")), int(m.group("shuffle"))


def base_name(model_name: str) -> str:
    """A model's base name: its name without a ``-iter<N>-shuffle<S>`` suffix."""
    parsed = parse_version(model_name)
    return parsed[0] if parsed else model_name


@dataclass
class TrainingPlan:
    """Everything one training run needs (one ``dlc_training_runs`` partition).

    Attributes
    ----------
    version : str
        Name the trained model is registered under (the partition key).
    config_path : Path
        The DLC project's config.yaml.
    iteration, shuffle : int
        Project iteration and shuffle to create and train.
    params : TrainingParams
    evaluation : EvaluationParams
        Copied into the registered entry (``evaluation:``).
    from_model : str or None
        The registered model this version derives from (its pairings and body-part map
        are copied); None for a first training from a project.
    reason : str
        ``train`` (``models train``) or ``merge`` (after ``models merge``).
    description : str
    created_at : str
        ISO 8601, UTC.
    pair_with : list of str
        Methods the new version is paired with on registration.
    body_part_map : dict
        Body-part name map of the new entry.
    pretrained_as : str or None
        ``pretrained`` as the registry wrote it (``previous``, a ``$VAR`` or relative
        path) when ``params.pretrained`` is its resolved file: the registered version's
        ``training:`` keeps this text, so its own retraining resolves it again (from
        itself, for ``previous``).
    """

    version: str
    config_path: Path
    iteration: int
    shuffle: int
    params: TrainingParams
    evaluation: EvaluationParams = field(default_factory=EvaluationParams)
    from_model: str | None = None
    reason: str = "train"
    description: str = ""
    created_at: str = ""
    pair_with: list[str] = field(default_factory=list)
    body_part_map: dict[str, str] = field(default_factory=dict)
    pretrained_as: str | None = None
    status: str = "planned"
    error: str | None = None

    @property
    def abandoned(self) -> bool:
        """Its run failed or was refused: the version name and shuffle are free again
        (a new plan of that name replaces this one)."""
        return self.status == FAILED

    def registry_training(self) -> dict:
        """The ``training:`` of the registered version: the parameters, with
        ``pretrained`` as the registry wrote it (see ``pretrained_as``)."""
        params = self.params.to_dict()
        if self.pretrained_as:
            params["pretrained"] = self.pretrained_as
        return params

    def to_dict(self) -> dict:
        """Plain YAML-able values (the plan file)."""
        return {
            "version": self.version, "project": str(self.config_path),
            "iteration": self.iteration, "shuffle": self.shuffle,
            "from_model": self.from_model, "reason": self.reason,
            "description": self.description, "created_at": self.created_at,
            "params_hash": self.params.param_hash, "training": self.params.to_dict(),
            "evaluation": self.evaluation.to_dict(), "pair_with": list(self.pair_with),
            "body_part_map": dict(self.body_part_map),
            "pretrained_as": self.pretrained_as,
            "status": self.status, "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: dict, where: str = "") -> TrainingPlan:
        """A plan from its file's content, validated."""
        try:
            return cls(
                version=str(data["version"]), config_path=Path(data["project"]),
                iteration=int(data["iteration"]), shuffle=int(data["shuffle"]),
                params=TrainingParams.from_dict(data.get("training"), where),
                evaluation=EvaluationParams.from_dict(data.get("evaluation"), where),
                from_model=data.get("from_model"), reason=str(data.get("reason", "train")),
                description=str(data.get("description", "")),
                created_at=str(data.get("created_at", "")),
                pair_with=[str(m) for m in data.get("pair_with") or []],
                body_part_map={str(k): str(v) for k, v in
                               (data.get("body_part_map") or {}).items()},
                pretrained_as=(str(data["pretrained_as"]) if data.get("pretrained_as")
                               else None),
                status=str(data.get("status") or "planned"),
                error=str(data["error"]) if data.get("error") else None)
        except (KeyError, TypeError, ValueError) as exc:
            raise TrainingError(f"{where}: not a valid training plan ({exc}); plans are "
                                "written by `dlc-platform models train`.") from exc


def plans_dir(registry_path: str | Path) -> Path:
    """``<registry folder>/training/``: where training plans live."""
    return Path(registry_path).absolute().parent / PLANS_FOLDER


def plan_path(registry_path: str | Path, version: str) -> Path:
    """The plan file of a version."""
    return plans_dir(registry_path) / f"{version}.yaml"


def read_plan(registry_path: str | Path, version: str) -> TrainingPlan:
    """The training plan of a version.

    Raises
    ------
    TrainingError
        No plan for that version (the message says how to make one).
    """
    path = plan_path(registry_path, version)
    if not path.is_file():
        raise TrainingError(
            f"no training plan for model version {version!r} ({path} not found). Plan a "
            "training run with `dlc-platform models train MODEL` (or `models merge MODEL`).")
    return TrainingPlan.from_dict(yaml.safe_load(path.read_text()) or {}, str(path))


def list_plans(registry_path: str | Path) -> list[TrainingPlan]:
    """Every training plan next to the registry, by version name."""
    folder = plans_dir(registry_path)
    if not folder.is_dir():
        return []
    return [read_plan(registry_path, p.stem) for p in sorted(folder.glob("*.yaml"))]


def _write_plan(registry_path: str | Path, plan: TrainingPlan) -> Path:
    """Write a new plan; never over another plan of the same name (e.g. one planned from
    another project with the same base name and not run yet)."""
    path = plan_path(registry_path, plan.version)
    if path.exists():
        try:
            other = read_plan(registry_path, plan.version)
            what = (f"for project {other.config_path}, iteration {other.iteration}, "
                    f"shuffle {other.shuffle}, planned {other.created_at}")
        except TrainingError:
            other, what = None, "that cannot be read"
        if other is not None and other.abandoned:
            path.unlink()  # its run failed or was refused: the name is free again
    if path.exists():
        raise TrainingError(
            f"model version {plan.version!r} cannot be planned: {path} holds another plan "
            f"of that name ({what}); plans are never overwritten. Run that plan, delete "
            "its file if it is abandoned, or choose another base name (--base).")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("# Written by dlc-platform: how this model version is trained "
                   "(docs/models.md).\n" + yaml.safe_dump(plan.to_dict(), sort_keys=False))
    os.replace(tmp, path)
    return path


def mark_plan_failed(registry_path: str | Path, version: str, error: str) -> None:
    """Record in a version's plan file that its run failed or was refused (``status:
    failed`` and the error), so that the plan no longer holds its version name and
    shuffle: the next ``models train`` plans that name again. No-op without a plan."""
    path = plan_path(registry_path, version)
    if not path.is_file():
        return
    data = yaml.safe_load(path.read_text()) or {}
    data["status"], data["error"] = FAILED, str(error)[:2000]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("# Written by dlc-platform: how this model version is trained "
                   "(docs/models.md).\n" + yaml.safe_dump(data, sort_keys=False))
    os.replace(tmp, path)


def check_project_before_training(config_path: Path, trainingsetindex: int,
                                  body_part_map: dict[str, str], vocabulary,
                                  where: str) -> None:
    """Everything that would make training fail or its version unregistrable, checked
    before anything is written (no plan, nothing in the project).

    Raises
    ------
    TrainingError
        ``TrainingFraction`` without a test split (1.0) or out of range; a
        ``trainingsetindex`` out of range.
    RegistryError
        Body-part names that are not canonical and not mapped (``--map``), as
        registration would refuse them after training.
    LabeledDataError
        The labeled data cannot make a dataset (:func:`~dlc_tracking.training.datasets.
        check_labeled_data`).
    """
    from dlc_tracking.registry.body_parts import canonical_names
    from dlc_tracking.training.datasets import check_labeled_data

    cfg = project_config(config_path)
    fractions = list(cfg.get("TrainingFraction") or [])
    if not 0 <= trainingsetindex < len(fractions):
        raise TrainingError(f"{config_path}: trainingsetindex {trainingsetindex} is out of "
                            f"range: TrainingFraction is {fractions}.")
    fraction = float(fractions[trainingsetindex])
    if not 0.0 < fraction < 1.0:
        raise TrainingError(
            f"{config_path}: TrainingFraction[{trainingsetindex}] is {fraction}: "
            + ("no frames are left for the test split, so the trained version could not "
               "be evaluated (test RMSE) nor promoted. " if fraction >= 1.0 else "")
            + "Set a fraction between 0 and 1 in config.yaml (DeepLabCut's default 0.95), "
            "then train again; nothing was written.")
    canonical_names([str(b) for b in cfg["bodyparts"]], body_part_map, vocabulary,
                    where=f"{where} ({config_path} bodyparts)")
    check_labeled_data(config_path)


def _previous_snapshot(registry, model: str | None, registry_path: Path) -> Path:
    """``pretrained: previous``: the registered snapshot file of ``model``.

    Raises
    ------
    TrainingError
        No model to derive from (training from a project), a TensorFlow model, or its
        snapshot file is missing.
    """
    from dlc_tracking.registry.dlc_projects import snapshot_files

    if model is None:
        raise TrainingError(
            "pretrained 'previous' means the registered snapshot of the model a version "
            "derives from, and a training from a project (--config) derives from none: "
            "give --pretrained none, imagenet or a .pt file.")
    entry = registry.model(model)
    snapshot = entry.derived.get("snapshot")
    if entry.engine != "pytorch" or not snapshot:
        raise TrainingError(
            f"model {model!r} ({registry_path}): pretrained 'previous' needs a DLC PyTorch "
            f"snapshot, and {model!r} is a {entry.engine} model; give --pretrained none, "
            "imagenet or a .pt file.")
    path = snapshot_files(entry.project_dir, snapshot, "pytorch")[0]
    if not path.is_file():
        raise TrainingError(
            f"model {model!r} ({registry_path}): pretrained 'previous' is its registered "
            f"snapshot {path}, which does not exist; restore it, or give --pretrained none, "
            "imagenet or another .pt file.")
    return path.resolve()


def plan_training(registry_path: str | Path, model: str | None = None, *,
                  config_path: str | Path | None = None, base: str | None = None,
                  overrides: dict | None = None, reason: str = "train",
                  description: str = "", expect: str | None = None,
                  body_part_map: dict[str, str] | None = None) -> TrainingPlan:
    """Plan the next training run: pick the version name and shuffle, write the plan.

    Either from a registered ``model`` (its project, its ``training:`` / ``evaluation:``
    parameters, pairings and body-part map; base name = the model's base name) or from a
    DLC project (``config_path`` with ``base``; default parameters).

    Parameters
    ----------
    registry_path : str or Path
        The registry file (plans go to its folder's ``training/``).
    model : str, optional
        Registered model to derive from.
    config_path : str or Path, optional
        A DLC project's config.yaml (without ``model``).
    base : str, optional
        Base of the version name; default the model's base name (required with
        ``config_path``).
    overrides : dict, optional
        Training parameters replacing the model's (None values ignored).
    reason : str
        ``train`` or ``merge`` (recorded).
    description : str
        Description of the new version.
    expect : str, optional
        The version name the caller wants; planning fails (nothing written) when the
        next version has another name.
    body_part_map : dict, optional
        ``{DLC name: canonical name}`` of the new version (``--map``); default the
        model's map, or, training from a project, the map of the registered model named
        ``base`` when there is one.

    The project is checked before anything is written (:func:`check_project_before_
    training`): a test split, canonical body-part names, usable labeled data.

    Returns
    -------
    TrainingPlan
        The plan, written to ``<registry folder>/training/<version>.yaml``.

    Raises
    ------
    TrainingError
        Neither a model nor a project; an invalid name or parameters.
    RegistryError
        Unknown model; ingest-only model (no project to train).
    """
    registry_path = Path(registry_path).absolute()
    with registry_lock(registry_path):
        registry = load_registry(registry_path)
        pair_with: list[str] = []
        given_map = dict(body_part_map or {})
        body_part_map = {}
        if model is not None:
            entry = registry.model(model)
            if entry.project_config is None:
                raise RegistryError(
                    f"model {model!r} is ingest-only without a DLC project: there is nothing "
                    "to train. Register the project (`models add --config`) or train from "
                    "it with `models train --config CONFIG.yaml --base NAME`.")
            config_path = entry.project_config
            params = model_training_params(registry.raw, model, str(registry_path))
            evaluation = model_evaluation_params(registry.raw, model, str(registry_path))
            base = base or base_name(model)
            pair_with = [meth for m, meth in registry.pairings if m == model]
            body_part_map = dict(entry.body_part_map)
            given = {k for k, v in (overrides or {}).items() if v is not None}
            written = (registry.raw.get("models") or {}).get(model) or {}
            if ("trainingsetindex" not in given
                    and "trainingsetindex" not in (written.get("training") or {})):
                # The registered model's own index, unless training: or the caller says
                # otherwise (also for a partition added in the UI, without overrides).
                overrides = {**(overrides or {}), "trainingsetindex": entry.trainingsetindex}
        elif config_path is not None:
            if not base:
                raise TrainingError("training from a project needs --base NAME (the base of "
                                    "the version names, e.g. openfield_mouse).")
            params, evaluation = TrainingParams(), EvaluationParams()
            if base in registry.models:  # the lab's registered model of that name
                body_part_map = dict(registry.models[base].body_part_map)
        else:
            raise TrainingError("name a registered model to train, or give --config "
                                "CONFIG.yaml and --base NAME.")
        body_part_map = given_map or body_part_map
        params = params.with_overrides(**(overrides or {}))
        pretrained_as = None
        if params.pretrained == PREVIOUS:
            pretrained_as = PREVIOUS
            params = params.with_overrides(
                pretrained=str(_previous_snapshot(registry, model, registry_path)))
        elif params.pretrained_file is not None:
            # As the registry's project paths: ~ and $VARS expanded, relative paths from
            # the registry file's folder; the plan stores the absolute path.
            pretrained_as = params.pretrained
            weights = Path(os.path.expandvars(str(params.pretrained_file))).expanduser()
            if not weights.is_absolute():
                weights = registry_path.parent / weights
            params = params.with_overrides(pretrained=str(weights.resolve()))
        config_path = Path(config_path).resolve()
        refuse_cached_tiny_model(config_path)
        check_project_before_training(config_path, params.trainingsetindex, body_part_map,
                                      registry.body_parts, f"model version of {model or base}")
        cfg = project_config(config_path)
        iteration = int(cfg["iteration"])
        plans = [p for p in list_plans(registry_path)
                 if p.config_path == config_path and p.iteration == iteration]
        reserved = {p.shuffle for p in plans if not p.abandoned}
        free = {p.shuffle for p in plans if p.abandoned} - reserved
        shuffle = next_shuffle(config_path, reserved, free=free)
        version = version_name(base, iteration, shuffle)
        if expect is not None and expect != version:
            raise TrainingError(
                f"model version {expect!r} cannot be planned: the next version of "
                f"{model or base!r} is {version!r} (project {config_path} is at iteration "
                f"{iteration}, shuffle {shuffle} is the next free one). Add that partition "
                f"instead, or run `dlc-platform models train {model or ''}`.")
        if version in registry.models:
            raise TrainingError(f"model version {version!r} is already registered in "
                                f"{registry_path}; versions are never overwritten.")
        plan = TrainingPlan(
            version=version, config_path=config_path, iteration=iteration, shuffle=shuffle,
            params=params, evaluation=evaluation, from_model=model, reason=reason,
            description=description or (f"{model} retrained" if model else "trained"),
            created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            pair_with=pair_with, body_part_map=body_part_map, pretrained_as=pretrained_as)
        _write_plan(registry_path, plan)
    return plan


def register_version(registry_path: str | Path, plan: TrainingPlan, result) -> ModelEntry:
    """Register a trained version, atomically, with the same identity rules as
    ``dlc-platform models add`` (:func:`dlc_tracking.registry.editing.add_model`).

    The entry also records ``training:`` (the parameters), ``evaluation:`` and
    ``trained:`` (from which model, parameters hash, epochs, final losses, wall time,
    device, when), and keeps the ``queue:`` / ``inference_engine:`` of the model it
    derives from.

    Parameters
    ----------
    registry_path : str or Path
        The registry file.
    plan : TrainingPlan
        The plan that was trained.
    result : dlc_tracking.training.train.TrainingResult
        The finished training (its snapshot must exist).

    Returns
    -------
    ModelEntry
        The registered entry.

    Raises
    ------
    TrainingError
        The snapshot is missing.
    RegistryError
        The name is taken or the identity is registered already (the registry is then
        unchanged).
    """
    from dlc_tracking.registry.editing import add_model

    if not result.snapshot.is_file():
        raise TrainingError(f"model version {plan.version!r}: snapshot {result.snapshot} does "
                            "not exist; nothing registered.")
    last = result.losses.iloc[-1]
    trained = {
        "from_model": plan.from_model, "reason": plan.reason,
        "params_hash": plan.params.param_hash, "epochs": int(result.epochs),
        "final_train_loss": round(float(last["train_loss"]), 6),
        "wall_s": round(float(result.wall_s), 1), "device": result.device,
        "pretrained": result.pretrained,
        "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "plan": str(plan_path(registry_path, plan.version)),
    }
    from dlc_tracking.registry.registry_file import read_registry_yaml

    # Where the model it derives from runs (its workers' queue, its inference engine).
    parent = ((read_registry_yaml(Path(registry_path)).get("models") or {})
              .get(plan.from_model) or {}) if plan.from_model else {}
    extra = {k: parent[k] for k in ("queue", "inference_engine") if parent.get(k)}
    extra |= {"training": plan.registry_training(),
              "evaluation": {k: v for k, v in plan.evaluation.to_dict().items()
                             if v is not None},
              "trained": trained}
    # The parent's project: text (e.g. ``${LAB}/...``) where it names the same project:
    # the version moves with its parent when the lab's variables change.
    project_as = None
    if parent.get("project") and plan.from_model:
        parent_entry = load_registry(registry_path).models.get(plan.from_model)
        if (parent_entry is not None and parent_entry.project_config is not None
                and parent_entry.project_config.resolve() == Path(plan.config_path).resolve()):
            project_as = str(parent["project"])
    # add_model's edit holds the registry lock: the name and identity checks and the
    # write are one step.
    return add_model(Path(registry_path), plan.version, plan.config_path,
                     shuffle=plan.shuffle,
                     trainingsetindex=plan.params.trainingsetindex, snapshotindex=-1,
                     description=plan.description, body_part_map=plan.body_part_map,
                     pair_with=plan.pair_with, project_as=project_as, extra=extra)


def plan_for_partition(registry_path: str | Path, version: str) -> TrainingPlan:
    """The plan of a ``dlc_training_runs`` partition; planned now when it has none.

    A partition added in the UI (``<base>-iter<N>-shuffle<S>``) without a plan is
    planned from the registered model named ``<base>``, with its ``training:``
    parameters, when that name is exactly its next version.

    Parameters
    ----------
    registry_path : str or Path
        The registry file.
    version : str
        The partition key.

    Returns
    -------
    TrainingPlan

    Raises
    ------
    TrainingError
        No plan, and the name is not the next version of a registered model.
    """
    if plan_path(registry_path, version).is_file():
        return read_plan(registry_path, version)
    parsed = parse_version(version)
    registry = load_registry(registry_path)
    if parsed is None or parsed[0] not in registry.models:
        raise TrainingError(
            f"no training plan for model version {version!r} "
            f"({plan_path(registry_path, version)} not found), and {version!r} is not "
            "<registered model>-iter<N>-shuffle<S>. Plan it with `dlc-platform models "
            "train MODEL` (or `models merge MODEL`).")
    return plan_training(registry_path, parsed[0], expect=version,
                         description=f"{parsed[0]} retrained (partition added in the UI)")
