"""Body-part vocabulary: canonical snake_case names, and detection of drifted aliases.

Body-part names drift between labs and projects (``left_ear``, ``leftear``, ``LEFTEAR``,
``Left Ear``, ``l_ear``). The platform accepts only canonical names downstream; a model
whose DLC config uses an alias is refused with the canonical name suggested, unless its
registry entry maps its names explicitly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from dlc_tracking.errors import RegistryError

CANONICAL_BODY_PARTS: dict[str, str] = {
    "nose": "tip of the snout",
    "head": "centre of the head",
    "left_ear": "base of the left ear",
    "right_ear": "base of the right ear",
    "left_eye": "left eye",
    "right_eye": "right eye",
    "neck": "back of the head, between the shoulders",
    "body_center": "centre of the body",
    "spine_mid": "middle of the back",
    "tail_base": "base of the tail",
    "tail_mid": "middle of the tail",
    "tail_tip": "tip of the tail",
    "left_forepaw": "left front paw",
    "right_forepaw": "right front paw",
    "left_hindpaw": "left hind paw",
    "right_hindpaw": "right hind paw",
    "implant": "head-mounted implant or headstage",
    "led_front": "front head-mounted LED",
    "led_back": "back head-mounted LED",
}

# Names that mean a canonical part but are not a spelling of it.
SYNONYMS: dict[str, str] = {
    "snout": "nose",
    "tailbase": "tail_base",
    "tail_start": "tail_base",
    "tailend": "tail_tip",
    "tail_end": "tail_tip",
    "center": "body_center",
    "centre": "body_center",
    "body_centre": "body_center",
    "bodycenter": "body_center",
    "centroid": "body_center",
    "headstage": "implant",
}

_SIDE_PREFIXES = {"l": "left", "r": "right", "lt": "left", "rt": "right"}
_JOINED = re.compile(r"^(left|right)(?!_)(.+)$")


def normalise(name: str) -> str:
    """A best guess at the canonical spelling of a body-part name.

    ``LeftEar``, ``LEFTEAR``, ``Left Ear``, ``left-ear``, ``l_ear``, ``leftear`` all become
    ``left_ear``. Used only to *suggest* a name, never to rename silently.
    """
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name.strip())
    text = re.sub(r"[\s\-./]+", "_", text).lower()
    text = re.sub(r"_+", "_", text).strip("_")
    parts = text.split("_")
    if len(parts) > 1 and parts[0] in _SIDE_PREFIXES:
        parts[0] = _SIDE_PREFIXES[parts[0]]
        text = "_".join(parts)
    joined = _JOINED.match(text)
    if joined:
        text = f"{joined.group(1)}_{joined.group(2)}"
    return SYNONYMS.get(text.replace("_", ""), SYNONYMS.get(text, text))


def suggest(name: str, vocabulary: Iterable[str]) -> str | None:
    """The canonical name an alias most likely means, or None."""
    vocab = set(vocabulary)
    guess = normalise(name)
    return guess if guess in vocab else None


def canonical_names(
    names: Iterable[str],
    name_map: Mapping[str, str] | None = None,
    vocabulary: Iterable[str] = CANONICAL_BODY_PARTS,
    *,
    where: str = "",
) -> list[str]:
    """Map a model's body-part names to canonical names, refusing aliases.

    Parameters
    ----------
    names
        Body-part names as the DLC project's config.yaml lists them.
    name_map
        Explicit ``{dlc name: canonical name}`` from the model's registry entry.
    vocabulary
        Canonical names known to the platform.
    where
        What is being checked (file and key), put in front of error messages.

    Raises
    ------
    RegistryError
        An alias without a map (the canonical name is suggested), a map onto an unknown
        canonical name, a map entry naming a part the model does not have, or two names
        mapped onto the same canonical name.
    """
    vocab = set(vocabulary)
    name_map = dict(name_map or {})
    names = list(names)
    prefix = f"{where}: " if where else ""
    unknown_keys = sorted(set(name_map) - set(names))
    if unknown_keys:
        raise RegistryError(
            f"{prefix}body_part_map maps {unknown_keys}, which the model does not track "
            f"(its body parts: {names}). Remove those entries."
        )
    out = []
    problems = []
    for name in names:
        target = name_map.get(name, name)
        if target in vocab:
            out.append(target)
            continue
        if name in name_map:
            hint = suggest(target, vocab)
            problems.append(
                f"body_part_map maps {name!r} onto {target!r}, which is not a canonical body "
                f"part" + (f" (did you mean {hint!r}?)" if hint else "")
                + "; use a name of the vocabulary (`dlc-platform body-parts`) or add it there"
            )
            continue
        hint = suggest(name, vocab)
        if hint:
            problems.append(
                f"body part {name!r} is an alias of the canonical {hint!r}; add "
                f"`body_part_map: {{{name}: {hint}}}` to the model's registry entry "
                f"(or `--map {name}={hint}` on the command line)"
            )
        else:
            problems.append(
                f"body part {name!r} is not in the vocabulary; map it onto a canonical name "
                "with body_part_map, or add it to the vocabulary (registry `body_parts:`)"
            )
    if problems:
        raise RegistryError(prefix + "; ".join(problems))
    dupes = sorted({n for n in out if out.count(n) > 1})
    if dupes:
        raise RegistryError(f"{prefix}several body parts map onto {dupes}; each must be unique.")
    return out
