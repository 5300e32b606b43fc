"""Which subject each track of a multi-animal file is (session.yaml ``individuals:``).

``individuals: {mus1: M12, mus2: M13}`` maps the file's individuals to subject ids. An
individual the mapping leaves out is kept as an anonymous individual (subject None),
never dropped. Refused, naming the file and what to do: a mapped individual the file does
not have; two individuals mapped to one subject; a state-vector method whose body parts
are not the model's multi-animal body parts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dlc_tracking.errors import DLCFileError, ProcessingError

__all__ = ["check_individuals_match", "check_method_for_multi_animal", "map_subjects"]


def map_subjects(file_individuals: Sequence[str], mapping: Mapping[str, str] | None,
                 where: str) -> dict[str, str | None]:
    """Subject of every individual of a file.

    Parameters
    ----------
    file_individuals : sequence of str
        The file's individuals (without DLC's ``single``).
    mapping : mapping or None
        session.yaml ``individuals:`` (individual -> subject id).
    where : str
        File and recording for error messages.

    Returns
    -------
    dict
        individual -> subject id, or None for an anonymous (unmapped) individual; in the
        file's order, every individual present.

    Raises
    ------
    DLCFileError
        The mapping names an individual the file lacks, or maps two individuals to one
        subject.
    """
    mapping = dict(mapping or {})
    unknown = [ind for ind in mapping if ind not in file_individuals]
    if unknown:
        raise DLCFileError(
            f"{where}: session.yaml `individuals:` maps {unknown}, but the file's individuals "
            f"are {list(file_individuals)}. Use the file's names (DLC's `individuals` in the "
            "project's config.yaml) as keys.")
    by_subject: dict[str, list[str]] = {}
    for ind, subject in mapping.items():
        by_subject.setdefault(str(subject), []).append(ind)
    doubles = {s: inds for s, inds in by_subject.items() if len(inds) > 1}
    if doubles:
        raise DLCFileError(
            f"{where}: session.yaml `individuals:` maps several individuals to one subject "
            f"{doubles}; one animal is one track. Give each individual its own subject id "
            "(or leave an individual out to keep it anonymous).")
    return {ind: (str(mapping[ind]) if ind in mapping else None) for ind in file_individuals}


def check_individuals_match(file_individuals: Sequence[str],
                            model_individuals: Sequence[str], where: str) -> None:
    """Refuse a maDLC file whose individuals are not the registered model's.

    DeepLabCut names the tracks after the project's ``individuals`` (or ``ind1..indN``
    when stitched without names); other names mean another project's output.
    """
    if list(file_individuals) == list(model_individuals):
        return
    generic = [f"ind{k + 1}" for k in range(len(model_individuals))]
    if list(file_individuals) == generic:
        return
    raise DLCFileError(
        f"{where}: individuals {list(file_individuals)} differ from the registered model's "
        f"{list(model_individuals)}. The file comes from another project (or was renamed): "
        "assign the recording to the model that made it, or re-run DeepLabCut.")


def check_method_for_multi_animal(method_name: str, method_body_parts: Sequence[str],
                                  multianimal_body_parts: Sequence[str],
                                  unique_body_parts: Sequence[str], where: str) -> None:
    """Refuse a state-vector method that cannot be applied per individual.

    The method is applied to each individual's multi-animal body parts. A method needing
    unique body parts (which belong to no animal) or prefixed names (``B_nose``) is a
    single-animal method written for another layout.
    """
    missing = [bp for bp in method_body_parts if bp not in multianimal_body_parts]
    if not missing:
        return
    in_unique = [bp for bp in missing if bp in unique_body_parts]
    why = (f"{in_unique} are unique body parts (they belong to no animal)" if in_unique
           else f"{missing} are not among them")
    raise ProcessingError(
        f"{where}: state-vector method {method_name!r} needs body parts "
        f"{list(method_body_parts)}, but the multi-animal model's per-animal body parts are "
        f"{list(multianimal_body_parts)}; {why}. Use a method built from the multi-animal "
        "body parts (e.g. 'two_ears' or 'nose_tail_base'); it is applied to every "
        "individual.")
