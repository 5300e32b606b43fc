"""The steps of ``models review`` and ``models promote``, shared by the CLI and the
Dagster jobs (so the two cannot drift apart). No Dagster: launching the backfill stays
in ``dlc_assets``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dlc_tracking.model_review.errors import ReviewError
from dlc_tracking.model_review.selection import DEFAULT_MAX_SHARE, Selection, select_frames
from dlc_tracking.registry.registry_file import ModelEntry, Registry


@dataclass
class Review:
    """What ``models review`` did.

    Attributes
    ----------
    model : ModelEntry
        The version reviewed.
    out : pathlib.Path
        config.yaml of the DLC project written into.
    selection : Selection
        The frames picked.
    extraction : Extraction or None
        The frames written (None on a dry run).
    """

    model: ModelEntry
    out: Path | None
    selection: Selection
    extraction: object | None = None

    @property
    def skipped(self) -> dict[str, str]:
        """Recordings that gave no frames -> why."""
        return dict(self.extraction.skipped if self.extraction is not None
                    else self.selection.skipped)


def review_target(model: ModelEntry, out: str | Path | None) -> Path:
    """The config.yaml to write the frames into: ``out`` (a config.yaml or its folder),
    else the model's own project.

    Raises
    ------
    ReviewError
        An ingest-only model (no project registered) and no ``out``.
    """
    target = Path(out) if out else model.project_config
    if target is None:
        raise ReviewError(f"model {model.name!r} has no DLC project registered (ingest-only): "
                          "give --out PROJECT/config.yaml (run config `out`) to write the "
                          "frames into.")
    return target / "config.yaml" if target.is_dir() else target


def review_model_frames(store, registry: Registry, name: str, n: int, *,
                        out: str | Path | None = None,
                        max_share: float = DEFAULT_MAX_SHARE,
                        recordings: Sequence[str] | None = None, dry_run: bool = False,
                        on_selected: Callable[[Selection], None] | None = None,
                        progress: Callable[[int], None] | None = None) -> Review:
    """Pick the ``n`` most informative frames of model ``name`` across its recordings and
    write them into its DLC project (``models review``).

    Parameters
    ----------
    store : dlc_tracking.warehouse.Warehouse
    registry : Registry
    name : str
        Registered model version.
    n : int
        Frames wanted.
    out : str or pathlib.Path, optional
        config.yaml or folder of the project to write into (default: the model's own).
    max_share : float
        Largest share of ``n`` one recording may give.
    recordings : sequence of str, optional
        Only these recordings.
    dry_run : bool
        Pick only; write nothing (``out`` is then not needed, also for an ingest-only
        model; ``Review.out`` is None when there is no target).
    on_selected : callable, optional
        Called with the selection before extracting (to report it).
    progress : callable, optional
        Called with the number of frames written so far.
    """
    from dlc_tracking.model_review.extraction import extract_selected_frames

    model = registry.model(name)
    # a dry run writes nothing, so an ingest-only model needs no project to write into
    out_path = (review_target(model, out) if not dry_run or out or model.project_config
                else None)
    selection = select_frames(store, model.name, n, max_share=max_share,
                              recordings=recordings)
    if on_selected is not None:
        on_selected(selection)
    review = Review(model, out_path, selection)
    if not dry_run:
        review.extraction = extract_selected_frames(store, model, selection.frames, out_path,
                                                    progress=progress,
                                                    skipped=selection.skipped)
    return review


def promote_model(store, registry: Registry, new: str, replaces: str | None = None, *,
                  force: bool = False, dry_run: bool = False,
                  on_planned: Callable[[object], None] | None = None,
                  progress: Callable[[str], None] | None = None):
    """Plan a promotion and (unless ``dry_run``) keep the old version's rows and write it
    into the registry (``models promote``). Returns the
    :class:`~dlc_tracking.model_review.promotion.PromotionPlan`; the caller launches the
    re-run of ``plan.recordings`` (and reports ``plan.kept``: left on the old version).

    ``on_planned`` is called with the plan before anything is changed; ``progress`` with
    each recording whose rows were kept."""
    from dlc_tracking.model_review.promotion import apply_promotion, plan_promotion

    plan = plan_promotion(store, registry, new, replaces, force=force)
    if on_planned is not None:
        on_planned(plan)
    if not dry_run:
        apply_promotion(registry.path, store, plan, progress=progress)
    return plan
