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

Nothing is lost: before the backfill replaces a recording's predictions, the old
version's are copied into ``model_predictions`` (see :mod:`.versions`).

Refused: a NEW that was never evaluated (no rows in ``model_evaluations``), a NEW that
cannot be paired with a method OLD's recordings use, an OLD that is not known.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dlc_tracking.errors import DLCPlatformError, RegistryError
from dlc_tracking.model_review.selection import ReviewError
from dlc_tracking.model_review.version_predictions import keep_current_predictions
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
    """

    old: str
    new: str
    recordings: tuple[str, ...]
    pair_with: tuple[str, ...]
    evaluations: int


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


def compared_with(store, new: str) -> str | None:
    """The version ``new`` was last compared against (``model_agreement``), if any."""
    try:
        df = store.query("SELECT old_model FROM model_agreement WHERE new_model = ? "
                         "ORDER BY compared_at DESC LIMIT 1", [new])
    except Exception:  # no comparison written yet
        return None
    return None if df.empty else str(df["old_model"].iloc[0])


def plan_promotion(store, registry: Registry, new: str, old: str | None = None
                   ) -> PromotionPlan:
    """Check a promotion and list what it re-runs.

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
    try:
        rows = store.query("SELECT recording_id FROM recordings WHERE model_name = ? "
                           "ORDER BY recording_id", [old])
        recordings = tuple(rows["recording_id"])
    except DLCPlatformError:
        recordings = ()
    return PromotionPlan(old, new, recordings, new_pairs, n_eval)


def apply_promotion(registry_path: Path, store, plan: PromotionPlan,
                    progress: Callable[[str], None] | None = None) -> Registry:
    """Keep the old predictions, then write the promotion into the registry.

    The copies come first: if the registry edit is refused, the kept copies change
    nothing (the recordings' current predictions are untouched).
    """
    from ruamel.yaml.comments import CommentedSeq

    from dlc_tracking.registry.editing import _plain, _section, edit_registry

    for rid in plan.recordings:
        keep_current_predictions(store, rid)
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
            "recordings": len(plan.recordings)})

    try:
        edit_registry(Path(registry_path), edit)
    except RegistryError as exc:
        raise RegistryError(f"promotion of {plan.new!r} refused, registry unchanged: {exc}"
                            ) from exc
    return load_registry(Path(registry_path))
