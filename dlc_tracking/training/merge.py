"""After refinement: checks, then DeepLabCut's own ``merge_datasets`` (the project moves to
its next iteration, whose training dataset holds the refined frames).

DLC's refinement loop: frames the model gets wrong are extracted into
``labeled-data/<video>/`` with the model's guesses in ``machinelabels-iter<N>.h5``
(``extract_outlier_frames``, or ``dlc-platform models review``); the labeller corrects
them in napari-deeplabcut, which saves them into ``CollectedData_<scorer>.h5``;
``merge_datasets`` then advances config.yaml ``iteration``. DLC merges whatever is there
and only prints a note for a folder nobody refined; here a folder or frames not refined
yet stop the merge with their names (``allow_unrefined`` merges anyway, and says so).
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
    extracted : dict
        Folder name -> frames in its ``machinelabels-iter*.h5`` files.
    refined : dict
        Folder name -> of those, frames now in ``CollectedData_<scorer>.h5``.
    unrefined_folders : list of str
        Folders with machine labels but no ``CollectedData_<scorer>.h5`` at all.
    """

    extracted: dict[str, int] = field(default_factory=dict)
    refined: dict[str, int] = field(default_factory=dict)
    unrefined_folders: list[str] = field(default_factory=list)

    @property
    def unrefined_frames(self) -> int:
        """Extracted frames not in CollectedData yet."""
        return sum(self.extracted.values()) - sum(self.refined.values())


def refinement_status(config_path: str | Path) -> RefinementStatus:
    """Which frames extracted for refinement were refined (saved in CollectedData).

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
    status = RefinementStatus()
    root = config_path.parent / "labeled-data"
    if not root.is_dir():
        return status
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and "_labeled" not in p.name):
        machine = [p for p in folder.iterdir() if MACHINE_LABELS.match(p.name)]
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
        Nothing was extracted for refinement; a folder or frames not refined (without
        ``allow_unrefined``); bad labels (see
        :func:`dlc_tracking.training.datasets.check_labeled_data`); DLC did not advance
        the iteration.
    """
    import deeplabcut

    config_path = Path(config_path).resolve()
    refuse_cached_tiny_model(config_path)
    before = int(project_config(config_path)["iteration"])
    status = refinement_status(config_path)
    if not status.extracted:
        raise LabeledDataError(
            f"{config_path.parent / 'labeled-data'}: no frames were extracted for refinement "
            "(no machinelabels-iter*.h5): run `dlc-platform models review MODEL` (or "
            "deeplabcut.extract_outlier_frames) and refine the frames first.")
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
