"""Labeled data of a DLC project: checks before training, the next free shuffle, and
DeepLabCut's own ``create_training_dataset``.

DeepLabCut itself skips, with a print at most, labels it cannot use: a labeled-data
folder whose video is not in config.yaml ``video_sets``, a ``CollectedData`` file of
another scorer, body parts the config does not list (dropped by a reindex). Here each of
those is an error naming the file and the fix, checked before anything is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from dlc_tracking.registry.dlc_projects import MODEL_FOLDERS
from dlc_tracking.training.errors import LabeledDataError, TrainingError
from dlc_tracking.training.params import TrainingParams
from dlc_tracking.training.projects import project_config, task_date

MACHINE_LABELS = re.compile(r"^machinelabels-iter(\d+)\.h5$")
_SHUFFLE = re.compile(r"-trainset\d+shuffle(\d+)$")


@dataclass
class LabeledFolder:
    """One ``labeled-data/<video stem>/`` folder.

    Attributes
    ----------
    name : str
        Folder name (the video stem).
    labeled_frames : int
        Images with at least one labeled body part in ``CollectedData_<scorer>.h5``.
    images : int
        ``img*.png`` files in the folder.
    unrefined_frames : int
        Frames of ``machinelabels-iter<N>.h5`` files (frames extracted for refinement)
        that ``CollectedData_<scorer>.h5`` does not hold yet.
    """

    name: str
    labeled_frames: int
    images: int
    unrefined_frames: int = 0


@dataclass
class LabeledDataSummary:
    """What :func:`check_labeled_data` found.

    Attributes
    ----------
    config_path : Path
    scorer : str
    body_parts : list of str
        config.yaml ``bodyparts``.
    folders : list of LabeledFolder
        Folders that take part in the training dataset.
    notes : list of str
        Things worth knowing that do not stop training (body parts never labeled,
        folders without labels, frames extracted but not refined yet).
    """

    config_path: Path
    scorer: str
    body_parts: list[str]
    folders: list[LabeledFolder] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def labeled_frames(self) -> int:
        """Labeled images in all folders."""
        return sum(f.labeled_frames for f in self.folders)


def _video_stems(cfg: dict) -> set[str]:
    # DLC matches labeled-data folders by the video file's stem (parse_video_filenames).
    return {Path(str(v).replace("\\", "/")).stem for v in (cfg.get("video_sets") or {})}


def _read_labels(h5: Path) -> pd.DataFrame:
    try:
        df = pd.read_hdf(h5)
    except Exception as exc:  # pandas/pytables raise many types for broken files
        raise LabeledDataError(f"{h5}: cannot be read as DLC labels ({exc}); restore it or "
                               "label the folder again.") from exc
    if not isinstance(df.columns, pd.MultiIndex) or "bodyparts" not in df.columns.names:
        raise LabeledDataError(f"{h5}: not a DLC labels table (columns scorer / bodyparts / "
                               "coords expected).")
    return df


def _row_names(df: pd.DataFrame) -> list[str]:
    """Image paths of a labels table, as ``labeled-data/<folder>/<img>`` strings."""
    out = []
    for idx in df.index:
        parts = idx if isinstance(idx, tuple) else Path(str(idx).replace("\\", "/")).parts
        out.append("/".join(str(p) for p in parts))
    return out


def check_labeled_data(config_path: str | Path) -> LabeledDataSummary:
    """Check that a single-animal DLC project's labeled-data can make a training dataset.

    Parameters
    ----------
    config_path : str or Path
        The project's config.yaml.

    Returns
    -------
    LabeledDataSummary
        Folders, labeled frame counts and notes.

    Raises
    ------
    LabeledDataError
        No labeled frames at all; labels naming body parts config.yaml lacks; labels of
        another scorer; a labeled folder whose video is not in ``video_sets``; a label
        row whose image is missing; a multi-animal project. Each message names the file.
    """
    config_path = Path(config_path).resolve()
    cfg = project_config(config_path)
    if cfg.get("multianimalproject"):
        raise LabeledDataError(f"{config_path} is a multi-animal project; the platform trains "
                               "single-animal models only.")
    project = config_path.parent
    scorer = str(cfg["scorer"])
    body_parts = [str(b) for b in cfg["bodyparts"]]
    summary = LabeledDataSummary(config_path, scorer, body_parts)
    root = project / "labeled-data"
    folders = sorted(p for p in root.iterdir() if p.is_dir() and "_labeled" not in p.name
                     and not p.name.startswith(".")) if root.is_dir() else []
    stems = _video_stems(cfg)
    labeled_parts: set[str] = set()
    for folder in folders:
        h5 = folder / f"CollectedData_{scorer}.h5"
        images = len(list(folder.glob("*.png")))
        others = sorted(p.name for p in folder.glob("CollectedData_*.h5") if p != h5)
        if not h5.is_file():
            if others:
                raise LabeledDataError(
                    f"{folder}: labels by another scorer ({others}) but none by the project's "
                    f"scorer {scorer!r} (config.yaml): DLC would ignore them. Rename the "
                    f"scorer in config.yaml or convert the labels (DLC's conversioncode).")
            if images:
                summary.notes.append(f"{folder.name}: {images} image(s) without labels "
                                     f"(no CollectedData_{scorer}.h5); not used")
            continue
        if folder.name not in stems:
            raise LabeledDataError(
                f"{h5}: labels of video {folder.name!r}, which is not in config.yaml "
                f"video_sets ({config_path}); DeepLabCut would leave these labels out of the "
                "training dataset silently. Add the video to video_sets "
                "(deeplabcut.add_new_videos) or move the folder out of labeled-data.")
        df = _read_labels(h5)
        file_scorers = sorted({str(s) for s in df.columns.get_level_values("scorer")})
        if file_scorers != [scorer]:
            raise LabeledDataError(f"{h5}: labeled by scorer(s) {file_scorers}, not the "
                                   f"project's {scorer!r}; DLC would skip this file.")
        parts = list(dict.fromkeys(str(b) for b in df.columns.get_level_values("bodyparts")))
        unknown = [b for b in parts if b not in body_parts]
        if unknown:
            raise LabeledDataError(
                f"{h5}: labels name body part(s) {unknown} that config.yaml ({config_path}) "
                f"lacks (bodyparts: {body_parts}). Add them to config.yaml's bodyparts or "
                "remove those columns; DLC would drop them silently.")
        coords = df.xs("x", axis=1, level="coords", drop_level=False)
        has_label = ~np.isnan(coords.to_numpy(float)).all(axis=1)
        rows = _row_names(df)
        missing = [r for r, keep in zip(rows, has_label, strict=True)
                   if keep and not (project / r).is_file()]
        if missing:
            raise LabeledDataError(
                f"{h5}: {len(missing)} labeled image(s) are missing, e.g. {project / missing[0]}; "
                "restore the images or delete their rows (napari-deeplabcut).")
        for b in parts:
            x = df.xs(b, axis=1, level="bodyparts").xs("x", axis=1, level="coords")
            if np.isfinite(x.to_numpy(float)).any():
                labeled_parts.add(b)
        unrefined = _unrefined_frames(folder, set(rows))
        summary.folders.append(LabeledFolder(folder.name, int(has_label.sum()), images,
                                             unrefined))
        if unrefined:
            summary.notes.append(f"{folder.name}: {unrefined} frame(s) extracted for "
                                 "refinement (machinelabels) are not in CollectedData yet")
    if summary.labeled_frames == 0:
        raise LabeledDataError(
            f"{project / 'labeled-data'}: no labeled frames in {config_path} (looked for "
            f"labeled-data/<video>/CollectedData_{scorer}.h5 of the videos in video_sets). "
            "Extract and label frames first (deeplabcut.extract_frames, napari-deeplabcut).")
    never = [b for b in body_parts if b not in labeled_parts]
    if never:
        summary.notes.append(f"body part(s) {never} of config.yaml are never labeled")
    return summary


def _unrefined_frames(folder: Path, collected_rows: set[str]) -> int:
    count = 0
    for path in folder.iterdir():
        if MACHINE_LABELS.match(path.name):
            rows = _row_names(_read_labels(path))
            count += sum(1 for r in rows if r not in collected_rows)
    return count


def existing_shuffles(config_path: str | Path) -> set[int]:
    """Shuffles of the project's current iteration that exist in any form (a shuffle
    number is taken once per iteration whatever the training fraction, so version names
    stay unique).

    Parameters
    ----------
    config_path : str or Path
        The project's config.yaml.

    Returns
    -------
    set of int
        From training-datasets ``metadata.yaml``, ``Documentation_data-*`` files and the
        model folders of both engines.
    """
    config_path = Path(config_path).resolve()
    cfg = project_config(config_path)
    project = config_path.parent
    it = int(cfg["iteration"])
    found: set[int] = set()
    trainset = project / "training-datasets" / f"iteration-{it}" / \
        f"UnaugmentedDataSet_{task_date(cfg)}"
    meta = trainset / "metadata.yaml"
    if meta.is_file():
        shuffles = (yaml.safe_load(meta.read_text()) or {}).get("shuffles") or {}
        found |= {int(s["index"]) for s in shuffles.values() if "index" in s}
    for doc in trainset.glob("Documentation_data-*shuffle*.pickle"):
        m = re.search(r"shuffle(\d+)\.pickle$", doc.name)
        if m:
            found.add(int(m.group(1)))
    for engine_folder in MODEL_FOLDERS.values():
        for folder in (project / engine_folder / f"iteration-{it}").glob("*"):
            m = _SHUFFLE.search(folder.name)
            if m:
                found.add(int(m.group(1)))
    return found


def next_shuffle(config_path: str | Path, reserved: set[int] | None = None, *,
                 free: set[int] | None = None) -> int:
    """The lowest shuffle number above every existing or reserved one.

    Parameters
    ----------
    config_path : str or Path
        The project's config.yaml.
    reserved : set of int, optional
        Shuffles already planned (training plans not run yet).
    free : set of int, optional
        Shuffles of runs that failed or were refused (their plans say so): taken again,
        their half-made datasets replaced (:func:`create_dataset`).

    Returns
    -------
    int
    """
    taken = (existing_shuffles(config_path) | set(reserved or ())) - set(free or ())
    return max(taken, default=0) + 1


def shuffle_folder(config_path: str | Path, shuffle: int, trainingsetindex: int = 0) -> Path:
    """The PyTorch model folder of a shuffle of the current iteration (may not exist)."""
    config_path = Path(config_path).resolve()
    cfg = project_config(config_path)
    fraction = float(cfg["TrainingFraction"][trainingsetindex])
    return (config_path.parent / MODEL_FOLDERS["pytorch"] / f"iteration-{cfg['iteration']}"
            / f"{task_date(cfg)}-trainset{int(fraction * 100)}shuffle{shuffle}")


def create_dataset(config_path: str | Path, shuffle: int, params: TrainingParams) -> Path:
    """Create the training dataset of one shuffle with ``deeplabcut.create_training_dataset``
    and write the training parameters into its pytorch_config.yaml.

    Run :func:`check_labeled_data` first. An existing shuffle of the same number (a
    training run that was killed) is replaced.

    Parameters
    ----------
    config_path : str or Path
        The project's config.yaml.
    shuffle : int
        Shuffle number to create.
    params : TrainingParams
        net_type, trainingsetindex, and what goes into pytorch_config.yaml (epochs,
        batch size, learning rate, snapshots, evaluation interval, augmentation, seed).

    Returns
    -------
    Path
        The shuffle's ``train/pytorch_config.yaml``.

    Raises
    ------
    TrainingError
        DeepLabCut created no pytorch_config.yaml (the message names the folder).
    """
    import deeplabcut
    from deeplabcut.core.engine import Engine

    config_path = Path(config_path).resolve()
    cfg = project_config(config_path)
    fractions = cfg["TrainingFraction"]
    if not 0 <= params.trainingsetindex < len(fractions):
        raise TrainingError(f"trainingsetindex {params.trainingsetindex} is out of range for "
                            f"{config_path}: TrainingFraction is {fractions}.")
    net_type = params.net_type or cfg.get("default_net_type") or "resnet_50"
    folder = shuffle_folder(config_path, shuffle, params.trainingsetindex)
    if folder.exists():  # a killed run of this plan: start the shuffle again, cleanly
        import shutil

        shutil.rmtree(folder)
    deeplabcut.create_training_dataset(
        str(config_path), Shuffles=[shuffle], net_type=net_type, engine=Engine.PYTORCH,
        userfeedback=False)
    pose_cfg_path = folder / "train" / "pytorch_config.yaml"
    if not pose_cfg_path.is_file():
        raise TrainingError(f"deeplabcut.create_training_dataset wrote no {pose_cfg_path} "
                            f"for shuffle {shuffle} of {config_path}; see DeepLabCut's output.")
    _apply_params(pose_cfg_path, params)
    return pose_cfg_path


def _apply_params(pose_cfg_path: Path, params: TrainingParams) -> None:
    """Write the training parameters into a shuffle's pytorch_config.yaml (kept in the
    project: the lab sees exactly what DLC trained with)."""
    pose_cfg = yaml.safe_load(pose_cfg_path.read_text())
    train = pose_cfg.setdefault("train_settings", {})
    train["epochs"] = params.epochs
    train["batch_size"] = params.batch_size
    train["seed"] = params.seed
    runner = pose_cfg.setdefault("runner", {})
    snapshots = runner.setdefault("snapshots", {})
    snapshots["max_snapshots"] = params.max_snapshots
    snapshots["save_epochs"] = params.save_epochs or params.epochs
    if params.eval_interval is not None:
        runner["eval_interval"] = params.eval_interval
    if params.learning_rate is not None:
        runner.setdefault("optimizer", {}).setdefault("params", {})["lr"] = params.learning_rate
    data_train = pose_cfg.setdefault("data", {}).setdefault("train", {})
    data_train.update(params.train_augmentation())
    pose_cfg_path.write_text(yaml.safe_dump(pose_cfg, sort_keys=False))
