"""DLC model identity: introspection of a DeepLabCut project, snapshot and scorer names.

Everything here is *derived* from the project on disk (config.yaml, training-datasets
metadata, model folders) and never typed by hand. DeepLabCut itself is imported only
to build the scorer name with its own helper (an admin act; ~10-30 s of import), so the
Dagster code location can load the registry without importing DeepLabCut.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from dlc_tracking.errors import ModelNotAvailableError, RegistryError
from dlc_tracking.io.yaml_files import read_yaml_mapping

ENGINES = ("pytorch", "tensorflow")
MODEL_FOLDERS = {"pytorch": "dlc-models-pytorch", "tensorflow": "dlc-models"}
POSE_CFG = {"pytorch": "pytorch_config.yaml", "tensorflow": "pose_cfg.yaml"}
REQUIRED_CONFIG_KEYS = ("Task", "date", "iteration", "TrainingFraction", "bodyparts")


@dataclass(frozen=True)
class ModelIdentity:
    """What makes a trained DLC model unique. The scorer alone is not (it lacks iteration)."""

    task: str
    date: str
    iteration: int | None  # None: an ingest-only model whose config was not given
    shuffle: int | None
    trainingsetindex: int
    snapshotindex: int | str
    engine: str

    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass
class ProjectModel:
    """A model as derived from its DLC project (the derived half of a registry entry)."""

    identity: ModelIdentity
    project_config: Path
    training_fraction: float
    net_type: str
    model_folder: str  # relative to the project
    snapshot: str  # relative to the project
    scorer: str
    body_parts: list[str]
    multi_animal: bool
    config_hash: str
    extra: dict = field(default_factory=dict)

    def derived_dict(self) -> dict:
        """The fields a registry entry stores, as plain YAML-able values (a multi-animal
        project adds ``multi_animal``, see :func:`multi_animal_layout`)."""
        out = {
            "task": self.identity.task,
            "date": self.identity.date,
            "iteration": self.identity.iteration,
            "engine": self.identity.engine,
            "training_fraction": self.training_fraction,
            "net_type": self.net_type,
            "model_folder": self.model_folder,
            "snapshot": self.snapshot,
            "scorer": self.scorer,
            "body_parts": list(self.body_parts),
            "config_hash": self.config_hash,
        }
        if self.multi_animal and "multi_animal" in self.extra:
            out["multi_animal"] = dict(self.extra["multi_animal"])
        return out


def read_project_config(config_path: Path) -> dict:
    """Read a DLC project's config.yaml and check the keys the identity needs."""
    config_path = Path(config_path)
    cfg = read_yaml_mapping(
        config_path, RegistryError,
        missing=f"DLC project config not found: {config_path}. Give the path to the project's "
        "config.yaml (or move the project back if it was moved after registration).",
        not_mapping=f"{config_path} is not a DLC project config (not a mapping).")
    missing = [k for k in REQUIRED_CONFIG_KEYS if cfg.get(k) in (None, "", [])]
    if missing:
        raise RegistryError(
            f"{config_path} lacks {missing}: it is not a complete DeepLabCut project config. "
            "Create the project with deeplabcut.create_new_project and its training dataset "
            "with deeplabcut.create_training_dataset."
        )
    return cfg


TRACK_METHODS = ("ellipse", "box", "skeleton", "transformer")
"""DeepLabCut's multi-animal trackers (``default_track_method``); ``ellipse`` is DLC's
default."""


def multi_animal_layout(cfg: dict, config_path: Path | str = "") -> dict:
    """What a multi-animal project's config.yaml says about its animals.

    Returns
    -------
    dict
        ``individuals``, ``multianimalbodyparts``, ``uniquebodyparts`` (lists),
        ``identity`` (bool: an identity head was trained), ``default_track_method``
        (one of :data:`TRACK_METHODS`; ``ellipse`` when the config has none).

    Raises
    ------
    RegistryError
        No individuals or multi-animal body parts, duplicated names, a body part both
        multi-animal and unique, an unknown tracker.
    """
    where = str(config_path) or "config.yaml"
    individuals = [str(i) for i in cfg.get("individuals") or []]
    parts = [str(b) for b in cfg.get("multianimalbodyparts") or []]
    unique = [str(b) for b in cfg.get("uniquebodyparts") or []]
    if not individuals or not parts:
        raise RegistryError(
            f"{where}: multianimalproject is true but `individuals` {individuals} or "
            f"`multianimalbodyparts` {parts} is empty; fill them in config.yaml as "
            "deeplabcut.create_new_project(multianimal=True) writes them.")
    for label, names in (("individuals", individuals), ("multianimalbodyparts", parts),
                         ("uniquebodyparts", unique)):
        if len(set(names)) != len(names):
            raise RegistryError(f"{where}: `{label}` repeats names {names}; each must be "
                                "unique.")
    both = sorted(set(parts) & set(unique))
    if both or "single" in individuals:
        raise RegistryError(
            f"{where}: body parts {both} are both multi-animal and unique, or an individual "
            "is named 'single' (DeepLabCut's name for the unique parts); rename them.")
    tracker = str(cfg.get("default_track_method") or "ellipse")
    if tracker not in TRACK_METHODS:
        raise RegistryError(f"{where}: default_track_method {tracker!r} is not one of "
                            f"{list(TRACK_METHODS)}.")
    return {"individuals": individuals, "multianimalbodyparts": parts,
            "uniquebodyparts": unique, "identity": bool(cfg.get("identity") or False),
            "default_track_method": tracker}


def config_hash(cfg: dict) -> str:
    """Hash of the config entries that change what a model predicts or is called."""
    keys = ("Task", "date", "iteration", "TrainingFraction", "bodyparts", "multianimalproject",
            "multianimalbodyparts", "uniquebodyparts", "individuals")
    relevant = {k: cfg.get(k) for k in keys}
    text = json.dumps(relevant, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _training_fraction(cfg: dict, trainingsetindex: int, config_path: Path) -> float:
    fractions = cfg["TrainingFraction"]
    if not isinstance(trainingsetindex, int) or not 0 <= trainingsetindex < len(fractions):
        raise RegistryError(
            f"trainingsetindex {trainingsetindex} is out of range for {config_path}: "
            f"TrainingFraction is {fractions}, so use 0..{len(fractions) - 1}."
        )
    return float(fractions[trainingsetindex])


def shuffle_engine(project: Path, cfg: dict, trainingsetindex: int, shuffle: int) -> str:
    """The engine a shuffle was created with, read without writing anything.

    From ``training-datasets/iteration-N/UnaugmentedDataSet_<Task><date>/metadata.yaml``
    when it lists the shuffle, else from which model folder exists.
    """
    meta = (project / "training-datasets" / f"iteration-{cfg['iteration']}"
            / f"UnaugmentedDataSet_{cfg['Task']}{cfg['date']}" / "metadata.yaml")
    fraction = float(cfg["TrainingFraction"][trainingsetindex])
    if meta.is_file():
        try:
            shuffles = (yaml.safe_load(meta.read_text()) or {}).get("shuffles") or {}
        except yaml.YAMLError:
            shuffles = {}
        for entry in shuffles.values():
            if entry.get("index") == shuffle and float(entry.get("train_fraction", -1)) == fraction:
                engine = str(entry.get("engine", "")).lower()
                return "tensorflow" if engine in ("tf", "tensorflow") else engine
    found = [e for e in ENGINES if (project / _model_folder(cfg, e, fraction, shuffle)).is_dir()]
    if len(found) == 1:
        return found[0]
    if not found:
        raise RegistryError(
            f"shuffle {shuffle} (trainingsetindex {trainingsetindex}) does not exist in "
            f"{project}: no entry in {meta.name} and no model folder "
            f"{_model_folder(cfg, 'pytorch', fraction, shuffle)} or "
            f"{_model_folder(cfg, 'tensorflow', fraction, shuffle)}. Check --shuffle and "
            "--trainingsetindex, or train that shuffle first."
        )
    raise RegistryError(
        f"shuffle {shuffle} of {project} has model folders for both engines and no "
        f"metadata.yaml entry saying which it is; fix {meta}."
    )


def _model_folder(cfg: dict, engine: str, fraction: float, shuffle: int) -> Path:
    return (Path(MODEL_FOLDERS[engine]) / f"iteration-{cfg['iteration']}"
            / f"{cfg['Task']}{cfg['date']}-trainset{int(fraction * 100)}shuffle{shuffle}")


_PT_SNAPSHOT = re.compile(r"^snapshot-(best-)?(\d+)\.pt$")
_TF_SNAPSHOT = re.compile(r"^snapshot-(\d+)\.index$")


def list_snapshots(train_dir: Path, engine: str) -> list[str]:
    """Snapshot names in DLC's order (by epochs / iterations; PyTorch 'best' last).

    Mirrors DLC: ``TorchSnapshotManager.snapshots()`` (the best snapshot goes last) and
    ``get_snapshots_from_folder`` (sorted by iteration).
    """
    if not train_dir.is_dir():
        return []
    if engine == "pytorch":
        regular, best = [], []
        for p in train_dir.iterdir():
            m = _PT_SNAPSHOT.match(p.name)
            if m:
                (best if m.group(1) else regular).append((int(m.group(2)), p.name))
        return [n for _, n in sorted(regular)] + [n for _, n in sorted(best)]
    names = []
    for p in train_dir.iterdir():
        m = _TF_SNAPSHOT.match(p.name)
        if m:
            names.append((int(m.group(1)), p.stem))
    return [n for _, n in sorted(names)]


def resolve_snapshot(train_dir: Path, engine: str, snapshotindex: int | str) -> str:
    """The snapshot file name a snapshot index designates (-1 = last; 'best' for PyTorch)."""
    names = list_snapshots(train_dir, engine)
    if not names:
        raise RegistryError(
            f"no trained snapshot in {train_dir}: train the shuffle first "
            "(deeplabcut.train_network), or check the shuffle and trainingsetindex."
        )
    if isinstance(snapshotindex, str):
        if snapshotindex == "best" and engine == "pytorch":
            best = [n for n in names if n.startswith("snapshot-best")]
            if best:
                return best[-1]
            raise RegistryError(f"no 'best' snapshot in {train_dir}; use an integer index.")
        raise RegistryError(
            f"snapshotindex {snapshotindex!r} is not valid: use an integer (-1 = last)"
            + (" or 'best'" if engine == "pytorch" else "") + "."
        )
    if not -len(names) <= snapshotindex < len(names):
        raise RegistryError(
            f"snapshotindex {snapshotindex} is not present in {train_dir}: it holds "
            f"{len(names)} snapshot(s) {names}; use -{len(names)}..{len(names) - 1}."
        )
    return names[snapshotindex]


def scorer_name(cfg: dict, project: Path, engine: str, shuffle: int, fraction: float,
                snapshotindex: int | str) -> str:
    """The scorer DLC will write for this model, built with DLC's own helper."""
    from deeplabcut.core.engine import Engine
    from deeplabcut.utils import auxiliaryfunctions

    cfg = dict(cfg, project_path=str(project), snapshotindex=snapshotindex)
    dlc_engine = Engine.PYTORCH if engine == "pytorch" else Engine.TF
    kwargs = {"snapshot_index": snapshotindex} if engine == "pytorch" else {}
    scorer, _legacy = auxiliaryfunctions.get_scorer_name(
        cfg, shuffle, fraction, engine=dlc_engine, **kwargs
    )
    return scorer


def inspect_project(config_path: Path, shuffle: int = 1, trainingsetindex: int = 0,
                    snapshotindex: int | str = -1, *, with_scorer: bool = True,
                    iteration: int | None = None) -> ProjectModel:
    """Derive a model's identity and facts from its DLC project.

    ``iteration`` inspects a model of an earlier iteration than config.yaml's (a project
    that ``merge_datasets`` moved on); default config.yaml's ``iteration``.

    Raises
    ------
    RegistryError
        Missing or incomplete config.yaml, trainingsetindex out of range, shuffle or
        snapshot not present; each message names the file and the fix.
    """
    config_path = Path(config_path).resolve()
    cfg = read_project_config(config_path)
    if iteration is not None:
        cfg = dict(cfg, iteration=int(iteration))
    project = config_path.parent
    fraction = _training_fraction(cfg, trainingsetindex, config_path)
    engine = shuffle_engine(project, cfg, trainingsetindex, shuffle)
    if engine not in ENGINES:
        raise RegistryError(f"{project}: shuffle {shuffle} has unknown engine {engine!r}.")
    model_folder = _model_folder(cfg, engine, fraction, shuffle)
    train_dir = project / model_folder / "train"
    pose_cfg_path = train_dir / POSE_CFG[engine]
    if not pose_cfg_path.is_file():
        raise RegistryError(
            f"{pose_cfg_path} is missing: shuffle {shuffle} of {project} was not trained "
            f"with the {engine} engine (or its model folder was deleted)."
        )
    pose_cfg = yaml.safe_load(pose_cfg_path.read_text()) or {}
    snapshot = resolve_snapshot(train_dir, engine, snapshotindex)
    snapshot_rel = str(model_folder / "train" / snapshot)
    multi = bool(cfg.get("multianimalproject"))
    body_parts = list(cfg.get("multianimalbodyparts") or cfg["bodyparts"]) if multi else list(
        cfg["bodyparts"])
    scorer = (scorer_name(cfg, project, engine, shuffle, fraction, snapshotindex)
              if with_scorer else "")
    identity = ModelIdentity(str(cfg["Task"]), str(cfg["date"]), int(cfg["iteration"]),
                             int(shuffle), int(trainingsetindex), snapshotindex, engine)
    extra = {"multi_animal": multi_animal_layout(cfg, config_path)} if multi else {}
    return ProjectModel(identity, config_path, fraction, str(pose_cfg.get("net_type", "?")),
                        str(model_folder), snapshot_rel, scorer, body_parts, multi,
                        config_hash(cfg), extra)


def snapshot_files(project: Path, snapshot_rel: str, engine: str) -> list[Path]:
    """The files a snapshot consists of (one .pt, or TF's .index/.data-*/.meta)."""
    path = project / snapshot_rel
    if engine == "pytorch":
        return [path]
    return sorted(path.parent.glob(path.name + ".*"))


def check_model_available(project_config: Path, snapshot_rel: str, engine: str,
                          model_name: str = "", model_folder: str | None = None) -> None:
    """Fail early and clearly when a registered model's files are not on this worker."""
    label = f"model {model_name!r}: " if model_name else ""
    project_config = Path(project_config)
    if not project_config.is_file():
        raise ModelNotAvailableError(
            f"{label}the DLC project is not on this worker: {project_config} not found. Copy "
            "the project there (or mount it), or re-register the model where it now lives "
            "(`dlc-platform models add`)."
        )
    project = project_config.parent
    files = snapshot_files(project, snapshot_rel, engine)
    # TF inference reads the .index and .data-* files of a checkpoint (not .meta).
    needed = [project / snapshot_rel] if engine == "pytorch" else [
        project / (snapshot_rel + ".index")]
    if model_folder:  # the configuration files inference reads besides the snapshot
        needed.append(project / model_folder / "test" / "pose_cfg.yaml")
        if engine == "pytorch":
            needed.append(project / model_folder / "train" / "pytorch_config.yaml")
    missing = [str(p) for p in needed if not p.is_file()]
    if engine == "tensorflow" and not any(".data-" in f.name for f in files):
        missing.append(str(project / snapshot_rel) + ".data-*")
    if missing:
        raise ModelNotAvailableError(
            f"{label}model files missing on this worker (snapshot files missing): {missing}. "
            "Copy the trained "
            "model folder into the project, or re-register the model with a snapshot that "
            "exists."
        )
