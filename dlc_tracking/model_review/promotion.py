"""Make a new model version the model of an old version's recordings.

A promotion is an entry of the registry file, written by ``dlc-platform models
promote NEW``::

    promotions:
      tiny-iter0-shuffle1:              # OLD: every recording assigned to it (by its
        model: tiny-iter1-shuffle1      # session.yaml or a default) now uses NEW
        promoted_at: '2026-12-03T08:10:00+00:00'
        recordings: 12                  # recordings of OLD re-run by the backfill

Resolving a recording's assignment follows the entry (``Registry.promoted``), so the
sessions' own files stay untouched and the change is one reviewed line in the
versioned registry; ``recordings.promoted_from`` names the model it replaced.

Only recordings whose predictions OLD *inferred* (``prediction_sources.source =
'inference'``) are re-run. A recording whose predictions come from files on disk
(``dlc_<stem>/``, dropped there or written by ``dlc-platform predict``) made by OLD stays
on OLD: the promotion is not applied to it (``recording_info``), since NEW cannot load
OLD's files; the plan lists it with what to do (re-predict with NEW, or leave it).

Nothing is lost: before the backfill replaces a recording's numbers, the old version's
predictions, processed tracking and recording summary are copied into
``model_predictions``, ``model_processed_tracking`` and ``model_recording_summaries``
(see :mod:`.version_predictions`).

Refused: a NEW that was never evaluated (no rows in ``model_evaluations``), a NEW whose
evaluation failed its threshold (``test_error_within_threshold``; unless forced), a NEW
that cannot be paired with a method OLD's recordings use, an OLD that is not known.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from dlc_tracking.errors import DLCPlatformError, RegistryError
from dlc_tracking.model_review.errors import ReviewError
from dlc_tracking.model_review.version_predictions import keep_current_version
from dlc_tracking.registry.registry_file import Registry, check_pairing, load_registry


@dataclass(frozen=True)
class PromotionPlan:
    """What a promotion changes.

    Attributes
    ----------
    old, new : str
        The replaced version and its successor.
    recordings : tuple of str
        Recordings processed with ``old`` now: exactly the ones to re-run.
    pair_with : tuple of str
        Methods ``old`` is paired with that ``new`` gets paired with too.
    evaluations : int
        Rows of ``new`` in ``model_evaluations``.
    kept : dict
        Recordings of ``old`` NOT re-run -> why (e.g. their predictions come from OLD's
        files on disk); the promotion does not apply to them.
    evaluation : str
        ``new``'s evaluation against its threshold (``test_error_within_threshold``).
    forced : bool
        Promoted although that check failed (``--force``).
    """

    old: str
    new: str
    recordings: tuple[str, ...]
    pair_with: tuple[str, ...]
    evaluations: int
    kept: dict[str, str] = field(default_factory=dict)
    evaluation: str = ""
    forced: bool = False

    def summary(self) -> dict:
        """Plain values for a job's metadata and the command's output."""
        return {"old": self.old, "new": self.new, "recordings": list(self.recordings),
                "kept_on_old": dict(self.kept), "pair_with": list(self.pair_with),
                "evaluation": self.evaluation, "forced": self.forced}


def evaluation_rows(store, model: str) -> int:
    """Rows of ``model`` in ``model_evaluations`` (0 when the table has none yet)."""
    try:
        df = store.query("SELECT count(*) AS n FROM model_evaluations WHERE model_name = ?",
                         [model])
    except Exception as exc:  # the table was never written: nothing was evaluated
        if "model_evaluations" not in str(exc) and "does not exist" not in str(exc):
            raise
        return 0
    return int(df["n"].iloc[0])


ON_DISK_REASON = ("outputs on disk made by {old}: re-predict with {new} (dlc-platform "
                  "predict) or leave on {old}")
"""Why a recording whose predictions came from files on disk is not re-run."""


def evaluation_check(store, registry: Registry, model: str) -> tuple[bool, str]:
    """``model``'s ``test_error_within_threshold``: its registered snapshot's test RMSE
    (``model_evaluations``) against ``evaluation.max_test_rmse_px`` of its registry
    entry. Returns (passed, a sentence with the figures)."""
    from dlc_tracking.training.errors import EvaluationError
    from dlc_tracking.training.evaluate import threshold_check
    from dlc_tracking.training.params import model_evaluation_params

    rows = store.query("SELECT * FROM model_evaluations WHERE model_name = ?", [model])
    threshold = model_evaluation_params(registry.raw, model, str(registry.path)
                                        ).max_test_rmse_px
    try:
        return threshold_check(rows, threshold)
    except EvaluationError as exc:
        return False, f"its evaluation cannot be checked: {exc}"


def _recordings_of(store, old: str) -> pd.DataFrame:
    """recording_id and where the current predictions came from (``prediction_sources``,
    else ``recordings.source``) of the recordings processed with ``old`` now."""
    try:
        return store.query(
            "SELECT r.recording_id, coalesce(p.source, r.source) AS source "
            "FROM recordings r LEFT JOIN prediction_sources p "
            "ON p.recording_id = r.recording_id AND p.model_name = r.model_name "
            "WHERE r.model_name = ? ORDER BY r.recording_id", [old])
    except DLCPlatformError:  # prediction_sources never written (or recordings neither)
        try:
            return store.query("SELECT recording_id, source FROM recordings "
                               "WHERE model_name = ? ORDER BY recording_id", [old])
        except DLCPlatformError:
            return pd.DataFrame(columns=["recording_id", "source"])


def compared_with(store, new: str) -> str | None:
    """The version ``new`` was last compared against (``model_agreement``), if any."""
    try:
        df = store.query("SELECT old_model FROM model_agreement WHERE new_model = ? "
                         "ORDER BY compared_at DESC LIMIT 1", [new])
    except Exception:  # no comparison written yet
        return None
    return None if df.empty else str(df["old_model"].iloc[0])


def plan_promotion(store, registry: Registry, new: str, old: str | None = None,
                   force: bool = False) -> PromotionPlan:
    """Check a promotion and list what it re-runs (and what it leaves on ``old``).

    Parameters
    ----------
    store : dlc_tracking.warehouse.Warehouse
        The warehouse (model_evaluations, recordings, prediction_sources).
    registry : Registry
        Both versions registered.
    new : str
        The version to promote.
    old : str, optional
        The version it replaces (default: the one ``new`` was last compared with).
    force : bool
        Promote although ``new`` failed its evaluation threshold.

    Raises
    ------
    ReviewError, RegistryError
        With the model and what to do.
    """
    registry.model(new)
    n_eval = evaluation_rows(store, new)
    if n_eval == 0:
        raise ReviewError(
            f"model {new!r} was never evaluated: no rows in model_evaluations of the "
            f"warehouse {store.root}. Evaluate it first (`dlc-platform models evaluate "
            f"{new}`, docs/models.md) and look at its test error; nothing was changed.")
    passed, evaluation = evaluation_check(store, registry, new)
    if not passed and not force:
        raise ReviewError(
            f"model {new!r} failed its evaluation check test_error_within_threshold: "
            f"{evaluation} (registry {registry.path}, models.{new}.evaluation."
            "max_test_rmse_px). Retrain it, or promote it anyway with --force; nothing was "
            "changed.")
    if old is None:
        old = compared_with(store, new)
        if old is None:
            raise ReviewError(
                f"which model does {new!r} replace? It was never compared "
                f"(`dlc-platform models compare OLD {new}`); give --replaces OLD.")
    registry.model(old)
    if old == new:
        raise ReviewError(f"{new!r} cannot replace itself.")
    if registry.promoted(old) == new and old in registry.promotions:
        raise ReviewError(f"{new!r} already replaces {old!r} (registry promotions:).")
    methods = [m for model, m in registry.pairings if model == old]
    for method in methods:
        check_pairing(registry.model(new), registry.method(method),
                      f"promoting {new!r} in place of {old!r}")
    new_pairs = tuple(m for m in methods if (new, m) not in registry.pairings)
    rows = _recordings_of(store, old)
    inferred = rows["source"] == "inference"
    kept = {}
    for rid, source in zip(rows.loc[~inferred, "recording_id"],
                           rows.loc[~inferred, "source"], strict=True):
        if source in ("manual", "outputs_only"):
            kept[str(rid)] = ON_DISK_REASON.format(old=old, new=new)
        else:
            kept[str(rid)] = (f"no predictions yet (source {source!r}): it takes {new} when "
                              "it is processed")
    return PromotionPlan(old, new, tuple(str(r) for r in rows.loc[inferred, "recording_id"]),
                         new_pairs, n_eval, kept, evaluation, forced=not passed)


def apply_promotion(registry_path: Path, store, plan: PromotionPlan,
                    progress: Callable[[str], None] | None = None) -> Registry:
    """Keep the old version's rows, then write the promotion into the registry.

    The copies (predictions, processed tracking, summaries: :func:`keep_current_version`)
    come first: if the registry edit is refused, the kept copies change nothing (the
    recordings' current rows are untouched).
    """
    from ruamel.yaml.comments import CommentedSeq

    from dlc_tracking.registry.editing import _plain, _section, edit_registry

    for rid in plan.recordings:
        keep_current_version(store, rid)
        if progress:
            progress(rid)

    def edit(doc) -> None:
        pairings = _section(doc, "pairings", CommentedSeq)
        for method in plan.pair_with:
            pairings.append(_plain({"model": plan.new, "method": method}))
        promotions = _section(doc, "promotions")
        promotions.pop(plan.new, None)  # NEW becomes current again (a roll-back)
        promotions[plan.old] = _plain({
            "model": plan.new,
            "promoted_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "recordings": len(plan.recordings),
            **({"kept_on_old": len(plan.kept)} if plan.kept else {}),
            **({"forced": True} if plan.forced else {})})

    try:
        edit_registry(Path(registry_path), edit)
    except RegistryError as exc:
        raise RegistryError(f"promotion of {plan.new!r} refused, registry unchanged: {exc}"
                            ) from exc
    return load_registry(Path(registry_path))
