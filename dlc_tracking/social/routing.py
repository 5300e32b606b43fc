"""Which pipeline a recording goes through: the single-animal assets or the multi-animal
one. Decided from the assigned model (a multi-animal DLC project or maDLC outputs) and the
session (``individuals:`` / ``individual_prefixes:`` in session.yaml)."""

from __future__ import annotations

from collections.abc import Mapping

from dlc_tracking.errors import RegistryError

__all__ = ["MULTI_ANIMAL_SKIP_REASON", "SINGLE_ANIMAL_SKIP_REASON", "is_multi_animal"]

MULTI_ANIMAL_SKIP_REASON = ("multi-animal recording (model {model} has individuals "
                            "{individuals}): its per-individual tables are written by the "
                            "multi_animal_tracking asset (docs/multi-animal.md)")
"""Why the single-animal assets skip a multi-animal recording."""

SINGLE_ANIMAL_SKIP_REASON = ("single-animal recording (model {model} is single-animal and "
                             "session.yaml names no individuals): processed by the "
                             "single-animal assets")
"""Why the multi-animal asset skips a single-animal recording."""


def is_multi_animal(model_name: str, layout: Mapping | None,
                    individuals: Mapping[str, str] | None,
                    individual_prefixes: Mapping[str, str] | None, where: str) -> bool:
    """Whether a recording is multi-animal.

    Parameters
    ----------
    model_name, layout
        The assigned model and its ``multi_animal`` layout (None: single-animal model).
    individuals, individual_prefixes
        session.yaml's mappings.
    where
        The session.yaml and recording, for the error.

    Raises
    ------
    RegistryError
        The session names individuals but its model is single-animal: nothing can map them.
    """
    if layout is not None:
        return True
    if individuals or individual_prefixes:
        named = dict(individuals or {}) or dict(individual_prefixes or {})
        raise RegistryError(
            f"{where}: session.yaml names individuals ({named}) but model {model_name!r} "
            "is single-animal. Assign a multi-animal model (`assignment: {model: ...}`; "
            "register one with `dlc-platform models add` from a maDLC project, or "
            "`--from-outputs` from its tracked .h5), or remove `individuals:` for a single "
            "animal.")
    return False
