"""Evaluating a registered model with DeepLabCut's own ``evaluate_network``, parsed into
one row per snapshot x body part (``model_evaluations`` table).

DLC evaluates every snapshot of the model's shuffle on its train and test images. The
overall figures (``body_part = 'all'``) are DLC's own, read from the ``-results.csv`` it
writes; the per-body-part figures are computed from the predictions ``.h5`` it writes
alongside, with DLC's formula (mean Euclidean distance in px over the labeled keypoints;
"above p-cutoff": keypoints predicted with likelihood >= pcutoff).

DLC runs on a private staged copy of the project's pieces it reads (config.yaml with the
model's own iteration, its model folder, training dataset and labeled-data), so it
evaluates exactly the registered model even after ``merge_datasets`` moved the project
to the next iteration, and two evaluations never write the same files.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from dlc_tracking.errors import DLCPlatformError
from dlc_tracking.registry.dlc_projects import list_snapshots
from dlc_tracking.registry.registry_file import ModelEntry
from dlc_tracking.training.errors import EvaluationError
from dlc_tracking.training.projects import project_config, task_date

EVALUATION_COLUMNS = (
    "model_name", "iteration", "shuffle", "training_fraction", "snapshot", "snapshot_epochs",
    "registered_snapshot", "body_part", "train_rmse_px", "test_rmse_px",
    "train_rmse_pcutoff_px", "test_rmse_pcutoff_px", "pcutoff", "n_train_keypoints",
    "n_test_keypoints", "evaluated_at")
_COPY_UNDER_BYTES = 1 << 20


@dataclass
class ModelEvaluation:
    """The evaluation of one model.

    Attributes
    ----------
    model_name : str
    rows : pandas.DataFrame
        :data:`EVALUATION_COLUMNS`, one row per snapshot x body part (``all`` first).
    registered_snapshot : str
        File name of the snapshot the registry entry uses.
    pcutoff : float
    seconds : float
        Wall time of the evaluation.
    """

    model_name: str
    rows: pd.DataFrame
    registered_snapshot: str
    pcutoff: float
    seconds: float

    def overall(self) -> pd.Series:
        """The ``all`` row of the registered snapshot."""
        return overall_row(self.rows)

    @property
    def test_rmse_px(self) -> float:
        """Test RMSE (px, all body parts) of the registered snapshot."""
        return float(self.overall()["test_rmse_px"])


def overall_row(rows: pd.DataFrame) -> pd.Series:
    """The ``body_part == 'all'`` row of the registered snapshot of evaluation rows.

    Parameters
    ----------
    rows : pandas.DataFrame
        Rows of one model (:data:`EVALUATION_COLUMNS`), e.g. read from the warehouse.

    Returns
    -------
    pandas.Series

    Raises
    ------
    EvaluationError
        No such row.
    """
    sel = rows[(rows["body_part"] == "all") & rows["registered_snapshot"].astype(bool)]
    if sel.empty:
        raise EvaluationError("the evaluation has no 'all' row for the registered snapshot")
    return sel.iloc[0]


def keypoint_errors(ground_truth: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """Euclidean distance between labeled and predicted keypoints.

    Parameters
    ----------
    ground_truth : np.ndarray
        ``(images, body parts, 2)`` labeled x, y (NaN: not labeled).
    predictions : np.ndarray
        ``(images, body parts, 2 or 3)`` predicted x, y (, likelihood).

    Returns
    -------
    np.ndarray
        ``(images, body parts)`` px; NaN where the keypoint is not labeled.
    """
    diff = np.asarray(predictions, float)[..., :2] - np.asarray(ground_truth, float)[..., :2]
    return np.sqrt(np.sum(diff ** 2, axis=-1))


def summarize_errors(errors: np.ndarray, likelihood: np.ndarray, pcutoff: float
                     ) -> dict[str, np.ndarray]:
    """Per-body-part and overall error figures, DLC's way.

    Parameters
    ----------
    errors : np.ndarray
        ``(images, body parts)`` px (NaN: not labeled).
    likelihood : np.ndarray
        ``(images, body parts)`` predicted likelihood.
    pcutoff : float
        Keypoints with likelihood >= pcutoff count for the "above p-cutoff" figures.

    Returns
    -------
    dict
        ``rmse`` and ``rmse_pcutoff`` (arrays per body part, NaN without support),
        ``n`` (labeled keypoints per body part), ``all_rmse``, ``all_rmse_pcutoff``
        (scalars over every labeled keypoint).
    """
    errors = np.asarray(errors, float)
    if errors.ndim == 1:
        errors = errors[:, None]
    likelihood = np.asarray(likelihood, float).reshape(errors.shape)
    labeled = np.isfinite(errors)
    above = labeled & (likelihood >= pcutoff)

    def mean(mask, axis=None):
        n = mask.sum(axis=axis)
        total = np.where(mask, errors, 0.0).sum(axis=axis)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, total / np.maximum(n, 1), np.nan)

    return {"rmse": mean(labeled, 0), "rmse_pcutoff": mean(above, 0),
            "n": labeled.sum(axis=0), "all_rmse": float(mean(labeled)),
            "all_rmse_pcutoff": float(mean(above))}


def _stage(project: Path, cfg: dict, iteration: int, model_folder: str, staged: Path) -> Path:
    """The pieces of the project evaluate_network reads, in ``staged``; its config.yaml."""
    cfg = dict(cfg, project_path=str(staged), iteration=iteration, snapshotindex="all")
    staged.mkdir(parents=True, exist_ok=True)
    trainset = Path("training-datasets") / f"iteration-{iteration}" / \
        f"UnaugmentedDataSet_{task_date(cfg)}"
    for rel in (Path(model_folder), trainset):
        src = project / rel
        for root, _dirs, files in os.walk(src):
            target = staged / rel / Path(root).relative_to(src)
            target.mkdir(parents=True, exist_ok=True)
            for name in files:
                s = Path(root) / name
                # Snapshots are only read: linked; configs DLC may rewrite: copied.
                if s.stat().st_size > _COPY_UNDER_BYTES:
                    (target / name).symlink_to(s.resolve())
                else:
                    shutil.copy2(s, target / name)
    (staged / "labeled-data").symlink_to((project / "labeled-data").resolve())
    (staged / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return staged / "config.yaml"


def _labels_array(df: pd.DataFrame, body_parts: list[str], coords: tuple[str, ...]
                  ) -> np.ndarray:
    """``(rows, body parts, len(coords))`` from a DLC table (scorer level dropped)."""
    if "individuals" in df.columns.names:
        df = df.droplevel("individuals", axis=1)
    df = df.droplevel("scorer", axis=1)
    out = np.full((len(df), len(body_parts), len(coords)), np.nan)
    for i, bp in enumerate(body_parts):
        for j, c in enumerate(coords):
            if (bp, c) in df.columns:
                out[:, i, j] = df[(bp, c)].to_numpy(float)
    return out


def evaluate_model(entry: ModelEntry, *, pcutoff: float | None = None, device: str = "auto",
                   work_dir: str | Path | None = None, log=None) -> ModelEvaluation:
    """Evaluate every snapshot of a registered model with ``deeplabcut.evaluate_network``.

    Parameters
    ----------
    entry : ModelEntry
        A registered model with its project and snapshot on this machine.
    pcutoff : float, optional
        Likelihood cut-off; default the project's config.yaml ``pcutoff`` (DLC's rule).
    device : str
        ``auto`` | ``cpu`` | ``cuda:N``.
    work_dir : str or Path, optional
        Where the staged copy lives while DLC runs (deleted afterwards); default the
        system's temporary folder.
    log : callable, optional
        Receives a line per snapshot.

    Returns
    -------
    ModelEvaluation

    Raises
    ------
    EvaluationError
        The model is ingest-only, its snapshot or project is missing, or its training
        dataset is missing (each names the model and the file).
    """
    from dlc_tracking.inference.dlc_runner import resolve_device

    say = log or (lambda _msg: None)
    name = entry.name
    if entry.ingest_only or entry.project_config is None:
        raise EvaluationError(f"model {name!r} is ingest-only: its weights are not known to the "
                              "platform, so it cannot be evaluated.")
    if entry.engine != "pytorch":
        raise EvaluationError(f"model {name!r} is a {entry.engine} model; the platform evaluates "
                              "DLC 3 PyTorch models (run deeplabcut.evaluate_network directly).")
    try:
        entry.check_available()
    except DLCPlatformError as exc:
        raise EvaluationError(f"cannot evaluate model {name!r}: {exc}") from exc
    project = entry.project_config.parent
    cfg = project_config(entry.project_config)
    d = entry.derived
    iteration = int(d["iteration"])
    train_dir = project / d["model_folder"] / "train"
    registered = Path(d["snapshot"]).name
    snapshots = list_snapshots(train_dir, "pytorch")
    trainset = project / "training-datasets" / f"iteration-{iteration}" / \
        f"UnaugmentedDataSet_{task_date(cfg)}"
    if not trainset.is_dir():
        raise EvaluationError(f"cannot evaluate model {name!r}: its training dataset {trainset} "
                              "is missing (it holds the train/test split).")
    cutoff = float(pcutoff if pcutoff is not None else cfg.get("pcutoff", 0.6))
    resolved = resolve_device(device)
    import deeplabcut
    from deeplabcut.pose_estimation_pytorch.data import DLCLoader

    t0 = time.monotonic()
    base = Path(work_dir) if work_dir is not None else None
    if base is not None:
        base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"eval-{name}-", dir=base) as tmp:
        staged_cfg = _stage(project, cfg, iteration, d["model_folder"], Path(tmp) / "project")
        loader = DLCLoader(config=staged_cfg, shuffle=entry.shuffle,
                           trainset_index=entry.trainingsetindex)
        eval_dir = loader.evaluation_folder
        dlc_parts = list(entry.dlc_body_parts)
        canonical = entry.to_canonical()
        split = {"train": loader.df_train, "test": loader.df_test}
        gt = {k: _labels_array(v, dlc_parts, ("x", "y")) for k, v in split.items()}
        now = dt.datetime.now(dt.UTC)
        rows = []
        for snap in snapshots:
            before = set(eval_dir.rglob("*")) if eval_dir.exists() else set()
            deeplabcut.evaluate_network(
                str(staged_cfg), shuffles=[entry.shuffle],
                trainingsetindex=entry.trainingsetindex, snapshots_to_evaluate=[Path(snap).stem],
                pcutoff=cutoff, device=resolved, show_errors=False, plotting=False)
            new = set(eval_dir.rglob("*")) - before
            results = [p for p in new if p.name.endswith("-results.csv")]
            h5s = [p for p in new if p.suffix == ".h5"]
            if len(results) != 1 or len(h5s) != 1:
                raise EvaluationError(f"model {name!r}: evaluate_network wrote {sorted(new)} for "
                                      f"{snap} (one -results.csv and one .h5 expected).")
            dlc_scores = pd.read_csv(results[0]).iloc[0]
            preds = pd.read_hdf(h5s[0])
            figures = {}
            for part, truth in gt.items():
                pred = _labels_array(preds.loc[split[part].index], dlc_parts,
                                     ("x", "y", "likelihood"))
                figures[part] = summarize_errors(keypoint_errors(truth, pred), pred[..., 2],
                                                 cutoff)
            common = {"model_name": name, "iteration": iteration, "shuffle": entry.shuffle,
                      "training_fraction": float(d["training_fraction"]), "snapshot": snap,
                      "snapshot_epochs": int(dlc_scores["Training epochs"]),
                      "registered_snapshot": snap == registered, "pcutoff": cutoff,
                      "evaluated_at": now}
            rows.append({**common, "body_part": "all",
                         "train_rmse_px": float(dlc_scores["train rmse"]),
                         "test_rmse_px": float(dlc_scores["test rmse"]),
                         "train_rmse_pcutoff_px": float(dlc_scores["train rmse_pcutoff"]),
                         "test_rmse_pcutoff_px": float(dlc_scores["test rmse_pcutoff"]),
                         "n_train_keypoints": int(figures["train"]["n"].sum()),
                         "n_test_keypoints": int(figures["test"]["n"].sum())})
            for i, bp in enumerate(dlc_parts):
                rows.append({**common, "body_part": canonical[bp],
                             "train_rmse_px": figures["train"]["rmse"][i],
                             "test_rmse_px": figures["test"]["rmse"][i],
                             "train_rmse_pcutoff_px": figures["train"]["rmse_pcutoff"][i],
                             "test_rmse_pcutoff_px": figures["test"]["rmse_pcutoff"][i],
                             "n_train_keypoints": int(figures["train"]["n"][i]),
                             "n_test_keypoints": int(figures["test"]["n"][i])})
            say(f"{name}: {snap}: train {float(dlc_scores['train rmse']):.2f} px, test "
                f"{float(dlc_scores['test rmse']):.2f} px (above p-cutoff {cutoff}: "
                f"{float(dlc_scores['test rmse_pcutoff']):.2f} px)")
    df = pd.DataFrame(rows, columns=list(EVALUATION_COLUMNS))
    return ModelEvaluation(name, df, registered, cutoff, round(time.monotonic() - t0, 2))


def threshold_check(rows: pd.DataFrame, max_test_rmse_px: float | None) -> tuple[bool, str]:
    """Whether the registered snapshot's test RMSE is within a model's threshold.

    Parameters
    ----------
    rows : pandas.DataFrame
        Evaluation rows of one model.
    max_test_rmse_px : float or None
        The model's ``evaluation.max_test_rmse_px``; None passes (nothing to hold to).

    Returns
    -------
    tuple of (bool, str)
        Passed, and a sentence saying why.
    """
    row = overall_row(rows)
    test = float(row["test_rmse_px"])
    if max_test_rmse_px is None:
        return True, (f"test RMSE {test:.2f} px ({row['snapshot']}); no threshold set "
                      "(registry evaluation.max_test_rmse_px)")
    if not np.isfinite(test):
        return False, f"test RMSE is undefined for {row['snapshot']} (no labeled test keypoints)"
    ok = test <= max_test_rmse_px
    return ok, (f"test RMSE {test:.2f} px ({row['snapshot']}) "
                f"{'<=' if ok else 'exceeds'} the threshold {max_test_rmse_px:g} px")
