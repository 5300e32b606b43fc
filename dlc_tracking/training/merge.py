"""After refinement: checks, then DeepLabCut's own ``merge_datasets`` (the project moves to
its next iteration, whose training dataset holds the refined frames).

DLC's refinement loop: frames the model gets wrong are extracted into
``labeled-data/<video>/`` with the model's guesses in ``machinelabels-iter<N>.h5``
(``extract_outlier_frames``, or ``dlc-platform models review``); the labeller corrects
them in napari-deeplabcut, which saves them into ``CollectedData_<scorer>.h5``;
``merge_datasets`` then advances config.yaml ``iteration``. DLC merges whatever is there
and only prints a note for a folder nobody refined; here a folder or frames not refined
yet stop the merge with their names (``allow_unrefined`` merges anyway, and says so).

A merge needs frames extracted at the project's *current* iteration
(``machinelabels-iter<iteration>.h5``): those of earlier iterations were merged already,
so merging twice never advances the iteration without new labels. DLC's
``merge_datasets`` refuses any ``labeled-data`` folder with no ``CollectedData_<scorer>.h5``
at all (not even ``allow_unrefined`` can merge it): such folders are named up front.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from pathlib import Path

from dlc_tracking.training.datasets import (
    MACHINE_LABELS,
    LabeledDataSummary,
    _read_labels,
    _row_names,
    check_labeled_data,
)
from dlc_tracking.training.errors import LabeledDataError
from dlc_tracking.training.projects import project_config, refuse_cached_tiny_model


@dataclass
class RefinementStatus:
    """Frames extracted for refinement and whether they were refined.

    Attributes
    ----------
    iteration : int
        The project's current iteration (config.yaml): only its machine labels count.
    extracted : dict
        Folder name -> frames in its ``machinelabels-iter<iteration>.h5``.
    refined : dict
        Folder name -> of those, frames now in ``CollectedData_<scorer>.h5``.
    unrefined_folders : list of str
        Folders with machine labels but no ``CollectedData_<scorer>.h5`` at all.
    earlier : dict
        Folder name -> the earlier iterations whose machine labels it holds (merged
        already; not counted).
    """

    iteration: int = 0
    extracted: dict[str, int] = field(default_factory=dict)
    refined: dict[str, int] = field(default_factory=dict)
    unrefined_folders: list[str] = field(default_factory=list)
    earlier: dict[str, list[int]] = field(default_factory=dict)

    @property
    def unrefined_frames(self) -> int:
        """Extracted frames not in CollectedData yet."""
        return sum(self.extracted.values()) - sum(self.refined.values())


def refinement_status(config_path: str | Path) -> RefinementStatus:
    """Which frames extracted for refinement at the project's current iteration were
    refined (saved in CollectedData).

    Parameters
    ----------
    config_path : str or Path
        The project's config.yaml.

    Returns
    -------
    RefinementStatus
    """
    config_path = Path(config_path).resolve()
    cfg = project_config(config_path)
    status = RefinementStatus(iteration=int(cfg["iteration"]))
    root = config_path.parent / "labeled-data"
    if not root.is_dir():
        return status
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and "_labeled" not in p.name):
        found = {int(m.group(1)): p for p in folder.iterdir()
                 if (m := MACHINE_LABELS.match(p.name))}
        older = sorted(i for i in found if i < status.iteration)
        if older:
            status.earlier[folder.name] = older
        machine = [found[status.iteration]] if status.iteration in found else []
        if not machine:
            continue
        rows: set[str] = set()
        for path in machine:
            rows |= set(_row_names(_read_labels(path)))
        status.extracted[folder.name] = len(rows)
        collected = folder / f"CollectedData_{cfg['scorer']}.h5"
        if not collected.is_file():
            status.unrefined_folders.append(folder.name)
            status.refined[folder.name] = 0
            continue
        status.refined[folder.name] = len(rows & set(_row_names(_read_labels(collected))))
    return status


def folders_without_labels(config_path: str | Path) -> list[str]:
    """Entries of ``labeled-data`` DeepLabCut's ``merge_datasets`` refuses: neither
    ``CollectedData_<scorer>.h5`` nor ``MachineLabelsRefine.h5`` (DLC's own rule: every
    entry but ``*_labeled`` and hidden ones)."""
    config_path = Path(config_path).resolve()
    scorer = project_config(config_path)["scorer"]
    root = config_path.parent / "labeled-data"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if "_labeled" not in p.name and not p.name.startswith(".")
                  and not (p / "MachineLabelsRefine.h5").is_file()
                  and not (p / f"CollectedData_{scorer}.h5").is_file())


@dataclass
class MergeResult:
    """A merge that advanced the project's iteration.

    Attributes
    ----------
    config_path : Path
    previous_iteration, iteration : int
    labeled : LabeledDataSummary
        The labeled data the next training dataset is made of.
    refinement : RefinementStatus
    notes : list of str
        Unrefined frames merged anyway (``allow_unrefined``), and the labeled-data notes.
    dlc_output : str
        What ``merge_datasets`` printed.
    """

    config_path: Path
    previous_iteration: int
    iteration: int
    labeled: LabeledDataSummary
    refinement: RefinementStatus
    notes: list[str]
    dlc_output: str


def merge_refined(config_path: str | Path, *, allow_unrefined: bool = False) -> MergeResult:
    """Check the refined labels and run ``deeplabcut.merge_datasets``.

    Parameters
    ----------
    config_path : str or Path
        The project's config.yaml.
    allow_unrefined : bool
        Merge although extracted frames were not refined (they are then left out of the
        dataset: only CollectedData counts), recording it in ``notes``.

    Returns
    -------
    MergeResult

    Raises
    ------
    LabeledDataError
        Nothing was extracted for refinement at the current iteration; a folder with no
        CollectedData at all (DLC cannot merge it, even with ``allow_unrefined``); a
        folder or frames not refined (without ``allow_unrefined``); bad labels (see
        :func:`dlc_tracking.training.datasets.check_labeled_data`); DLC did not advance
        the iteration.
    """
    import deeplabcut

    config_path = Path(config_path).resolve()
    refuse_cached_tiny_model(config_path)
    before = int(project_config(config_path)["iteration"])
    status = refinement_status(config_path)
    if not status.extracted:
        merged = ""
        if status.earlier:
            merged = (" (the machine labels of earlier iterations, in "
                      + ", ".join(f"{k} (iteration {', '.join(map(str, v))})"
                                  for k, v in status.earlier.items())
                      + ", were merged already: nothing new to merge)")
        raise LabeledDataError(
            f"{config_path.parent / 'labeled-data'}: no frames were extracted for refinement "
            f"at iteration {before} (no machinelabels-iter{before}.h5){merged}: run "
            "`dlc-platform models review MODEL` (or deeplabcut.extract_outlier_frames) and "
            "refine the frames first.")
    notes: list[str] = []
    if status.unrefined_folders or status.unrefined_frames:
        where = ", ".join(f"{k} ({status.extracted[k] - status.refined[k]} of "
                          f"{status.extracted[k]})" for k in status.extracted
                          if status.extracted[k] != status.refined[k])
        text = (f"{status.unrefined_frames} extracted frame(s) are not refined yet in "
                f"{config_path.parent / 'labeled-data'}: {where}")
        if not allow_unrefined:
            raise LabeledDataError(
                f"{text}. Open those folders in napari-deeplabcut, correct the points and "
                "save (CollectedData), then merge again; or merge with --allow-unrefined "
                "to leave them out.")
        notes.append(f"{text}; merged without them (--allow-unrefined)")
    unmergeable = folders_without_labels(config_path)
    if unmergeable:
        root = config_path.parent / "labeled-data"
        raise LabeledDataError(
            f"{root}: {len(unmergeable)} folder(s) hold no CollectedData_"
            f"{project_config(config_path)['scorer']}.h5 at all: {', '.join(unmergeable)}. "
            "DeepLabCut's merge_datasets refuses to merge while any folder has none (not "
            "even --allow-unrefined can merge it). Refine and save at least one frame of "
            "each (napari-deeplabcut), or move the folder out of labeled-data, then merge "
            "again.")
    labeled = check_labeled_data(config_path)
    notes.extend(labeled.notes)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        deeplabcut.merge_datasets(str(config_path))
    after = int(project_config(config_path)["iteration"])
    if after == before:
        raise LabeledDataError(
            f"deeplabcut.merge_datasets did not advance the iteration of {config_path} "
            f"(still {before}): {out.getvalue().strip()}")
    return MergeResult(config_path, before, after, labeled, status, notes, out.getvalue())
