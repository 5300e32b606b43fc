"""State-vector methods: how tracked body parts become ONE subject state vector.

This is the seed pipeline's ``DLCTrackingProcessingMethod``: a named, hashed recipe
that declares the exact body parts it needs, its parameters and the tracking type it
applies to, and a pure function (:func:`compute_state_vector`) that applies it to
DeepLabCut predictions.

Conventions (``docs/conventions.md``):

- ``poses`` is ``(n_frames, n_body_parts, 3)`` float64, last axis
  ``[x_px, y_px, likelihood]`` in **image coordinates** (origin top-left, y down);
  missing points are NaN.
- The arena frame has x right and y **up**. Camera ``"above"``: ``X = x, Y = H - y``;
  camera ``"below"`` (the image is mirrored left/right): ``X = W - x, Y = H - y``.
- Angles are counter-clockwise from +x of the arena frame; the state vector's head
  angle is in radians in ``[0, 2 pi)``, NaN where unknown.
- Positions of a state vector stay in image pixels, unflipped (seed convention).

Kinds of method
---------------
``two_ears``  (body parts ``(left, right)``)
    Position = midpoint of the ears. Head direction perpendicular to the left->right
    ear line, pointing forward: ``HD = atan2(yL - yR, xL - xR) - 90 deg`` in the arena
    frame (the Axona formula with the front LED bearing 90 deg). Labels are anatomical
    (the animal's own left ear). Seen from below, the image is mirrored, so in the image
    the left ear lies on the other side of the heading than seen from above; mapping to
    the arena frame with ``X = W - x`` undoes the mirror, so the formula is always
    applied to arena-frame coordinates and never needs a manual left/right swap.
``front_back``  (body parts ``(front, back)``, e.g. nose + neck)
    Direction along back -> front. Position: param ``position`` = ``"midpoint"``
    (default), ``"front"``, ``"back"`` or a fraction in ``[0, 1]`` from back (0) to
    front (1).
``single_point``  (one body part)
    Position only; head direction NaN (``has_head_direction`` is False).
``centroid``  (one or more body parts)
    Likelihood-weighted centroid of the parts above the cutoff on each frame; param
    ``min_parts`` (default 1) = fewest parts above the cutoff for a position. No head
    direction. A centroid of a subset is biased towards the remaining parts, so frames
    where not all parts were seen have ``valid`` False even when a position exists.

Likelihood cutoff
-----------------
A point whose likelihood is below ``likelihood_cutoff`` (or NaN) counts as missing.
The default, :data:`DEFAULT_LIKELIHOOD_CUTOFF` = 0.9, sits between DeepLabCut's and
movement's 0.6 and spyglass's 0.95. For a trained single-animal model the likelihood is
strongly bimodal (near 1 when the part is visible, near 0 when occluded), so any value
in 0.6-0.95 drops nearly the same frames; 0.9 errs on the side of dropping uncertain
points because a short gap is cheap to interpolate downstream, whereas a confident-looking
wrong point becomes a position jump or a head-direction flip.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dlc_tracking.errors import ProcessingError

TWO_PI = 2.0 * math.pi

#: Camera views: the camera films the arena from above or from below (mirrored image).
CAMERA_VIEWS: tuple[str, ...] = ("above", "below")

#: Kinds of state-vector method.
KINDS: tuple[str, ...] = ("two_ears", "front_back", "single_point", "centroid")

#: Kinds whose state vector has a head direction.
HEAD_DIRECTION_KINDS: tuple[str, ...] = ("two_ears", "front_back")

#: Tracking types :func:`compute_state_vector` can process (others are recorded only).
SUPPORTED_TRACKING_TYPES: tuple[str, ...] = ("openfield",)

#: Default likelihood cutoff (see the module docstring for the choice).
DEFAULT_LIKELIHOOD_CUTOFF = 0.9

_FRONT_BACK_POSITIONS = {"back": 0.0, "midpoint": 0.5, "front": 1.0}
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_METHOD_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def canonical_json(obj: Any) -> str:
    """Serialise ``obj`` as canonical JSON (sorted keys, no spaces, no NaN).

    Parameters
    ----------
    obj
        JSON-serialisable object.

    Returns
    -------
    str
        The canonical JSON text, suitable for hashing.
    """
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )


def short_hash(obj: Any) -> str:
    """First 16 hex digits of the SHA-256 of ``canonical_json(obj)``."""
    return hashlib.sha256(canonical_json(obj).encode("ascii")).hexdigest()[:16]


def _prefix(source: str | None) -> str:
    return f"{source}: " if source else ""


# --------------------------------------------------------------------------- checks


def check_camera_view(camera_view: Any, source: str | None = None) -> str:
    """Return ``camera_view`` if it is ``"above"`` or ``"below"``, else raise.

    Raises
    ------
    ProcessingError
        When the view is missing or unknown (it is never guessed).
    """
    if camera_view not in CAMERA_VIEWS:
        raise ProcessingError(
            f"{_prefix(source)}camera_view is {camera_view!r}; it must be one of "
            f"{list(CAMERA_VIEWS)}. Set `camera_view` in the session's session.yaml "
            "(it is never guessed: a camera below the arena mirrors the image)."
        )
    return str(camera_view)


def check_frame_size(frame_size: Any, source: str | None = None) -> tuple[float, float]:
    """Return ``(width, height)`` in pixels as floats, or raise.

    Raises
    ------
    ProcessingError
        When ``frame_size`` is not two positive finite numbers.
    """
    try:
        width, height = (float(v) for v in frame_size)
    except (TypeError, ValueError):
        raise ProcessingError(
            f"{_prefix(source)}frame_size is {frame_size!r}; give (width, height) in pixels "
            "as probed from the video."
        ) from None
    if not (math.isfinite(width) and math.isfinite(height) and width > 0 and height > 0):
        raise ProcessingError(
            f"{_prefix(source)}frame_size is {frame_size!r}; width and height must be "
            "positive pixel counts (probe the video for its frame size)."
        )
    return width, height


def check_poses(
    poses: Any, body_parts: Sequence[str], source: str | None = None
) -> tuple[np.ndarray, list[str]]:
    """Validate a pose array against its body-part names.

    Parameters
    ----------
    poses
        Array-like ``(n_frames, n_body_parts, 3)`` with ``[x_px, y_px, likelihood]``.
    body_parts
        Names of axis 1, unique.
    source
        File or recording named in error messages.

    Returns
    -------
    poses : np.ndarray
        float64 view/copy of the input.
    body_parts : list of str

    Raises
    ------
    ProcessingError
        On a wrong shape, a non-numeric array, or names that do not match axis 1.
    """
    try:
        arr = np.asarray(poses, dtype=np.float64)
    except (TypeError, ValueError):
        raise ProcessingError(
            f"{_prefix(source)}poses must be a numeric array (n_frames, n_body_parts, 3) "
            "of [x_px, y_px, likelihood]."
        ) from None
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ProcessingError(
            f"{_prefix(source)}poses has shape {arr.shape}; expected "
            "(n_frames, n_body_parts, 3) with last axis [x_px, y_px, likelihood]."
        )
    if isinstance(body_parts, str):
        raise ProcessingError(
            f"{_prefix(source)}body_parts must be a list of names, not the string {body_parts!r}."
        )
    names = [str(b) for b in body_parts]
    if len(names) != arr.shape[1]:
        raise ProcessingError(
            f"{_prefix(source)}poses has {arr.shape[1]} body parts on axis 1 but "
            f"{len(names)} names were given ({names}); give one name per body part, "
            "in the order of the prediction file."
        )
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ProcessingError(
            f"{_prefix(source)}body part names are repeated: {dupes}; each name must appear once."
        )
    return arr, names


def image_to_arena(
    x_px: np.ndarray, y_px: np.ndarray, camera_view: str, frame_size: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Map image coordinates to the arena frame (x right, y up), in pixels.

    Camera ``"above"``: ``X = x, Y = H - y``; camera ``"below"`` (mirrored image):
    ``X = W - x, Y = H - y``. The map is its own inverse (see :func:`arena_to_image`).

    Parameters
    ----------
    x_px, y_px
        Image coordinates (origin top-left, y down).
    camera_view
        ``"above"`` or ``"below"``.
    frame_size
        ``(width, height)`` of the video frame in pixels.

    Returns
    -------
    X, Y : np.ndarray
        Arena-frame coordinates in pixels.
    """
    view = check_camera_view(camera_view)
    width, height = check_frame_size(frame_size)
    x = np.asarray(x_px, dtype=np.float64)
    y = np.asarray(y_px, dtype=np.float64)
    big_x = x.copy() if view == "above" else width - x
    return big_x, height - y


def arena_to_image(
    x_arena: np.ndarray, y_arena: np.ndarray, camera_view: str, frame_size: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`image_to_arena` (the same map: it is an involution)."""
    return image_to_arena(x_arena, y_arena, camera_view, frame_size)


def wrap_angle_rad(angle: np.ndarray) -> np.ndarray:
    """Wrap angles (radians) into ``[0, 2 pi)``; NaN stays NaN."""
    out = np.mod(np.asarray(angle, dtype=np.float64), TWO_PI)
    out[out >= TWO_PI] = 0.0  # np.mod(-tiny, 2 pi) rounds to 2 pi
    return out


# --------------------------------------------------------------------------- method


def _validate_params(name: str, kind: str, n_parts: int, params: Mapping[str, Any]) -> dict:
    """Return the effective (defaults filled, normalised) params or raise."""
    where = f"state-vector method {name!r} (kind {kind!r})"
    params = dict(params)
    if kind in ("two_ears", "single_point"):
        if params:
            raise ProcessingError(f"{where} takes no params but got {sorted(params)}; remove them.")
        return {}
    if kind == "front_back":
        unknown = sorted(set(params) - {"position"})
        if unknown:
            raise ProcessingError(
                f"{where}: unknown params {unknown}; the only param is 'position' "
                "('midpoint', 'front', 'back' or a fraction 0..1 from back to front)."
            )
        pos = params.get("position", "midpoint")
        if isinstance(pos, str):
            if pos not in _FRONT_BACK_POSITIONS:
                raise ProcessingError(
                    f"{where}: position {pos!r} is not one of "
                    f"{sorted(_FRONT_BACK_POSITIONS)}; or give a fraction 0..1 from back "
                    "to front."
                )
            frac = _FRONT_BACK_POSITIONS[pos]
        elif isinstance(pos, bool) or not isinstance(pos, int | float):
            raise ProcessingError(
                f"{where}: position {pos!r} must be 'midpoint', 'front', 'back' or a "
                "number 0..1 (0 = back, 1 = front)."
            )
        else:
            frac = float(pos)
            if not (0.0 <= frac <= 1.0):
                raise ProcessingError(
                    f"{where}: position {pos!r} is outside 0..1; use a fraction from back "
                    "(0) to front (1)."
                )
        return {"position": frac}
    # centroid
    unknown = sorted(set(params) - {"min_parts"})
    if unknown:
        raise ProcessingError(
            f"{where}: unknown params {unknown}; the only param is 'min_parts' (the fewest "
            "body parts above the cutoff for a position, 1..number of parts)."
        )
    min_parts = params.get("min_parts", 1)
    if (
        isinstance(min_parts, bool)
        or not isinstance(min_parts, int)
        or not (1 <= min_parts <= n_parts)
    ):
        raise ProcessingError(
            f"{where}: min_parts {min_parts!r} must be an integer from 1 to {n_parts} "
            "(the number of body parts of the method)."
        )
    return {"min_parts": int(min_parts)}


@dataclass(frozen=True)
class StateVectorMethod:
    """A named recipe turning body parts into one subject state vector.

    Parameters
    ----------
    name
        Lab-friendly unique name (letters, digits, ``_ . -``), e.g. ``"two_ears"``.
    kind
        One of :data:`KINDS`.
    body_parts
        Canonical snake_case names the method needs; their number depends on the kind
        (``two_ears``: (left, right); ``front_back``: (front, back); ``single_point``: one;
        ``centroid``: one or more).
    tracking_type
        Tracking type the method applies to (``"openfield"``).
    likelihood_cutoff
        Points with a likelihood below it count as missing; in ``[0, 1]``.
    params
        Kind-specific parameters (``front_back``: ``position``; ``centroid``:
        ``min_parts``); excluded from the dataclass hash, included in ``param_hash``.
    description
        Free text.

    Raises
    ------
    ProcessingError
        On an unknown kind, a wrong number of body parts, bad names or bad params.
    """

    name: str
    kind: str
    body_parts: tuple[str, ...]
    tracking_type: str = "openfield"
    likelihood_cutoff: float = DEFAULT_LIKELIHOOD_CUTOFF
    params: dict[str, Any] = field(default_factory=dict, hash=False)
    description: str = ""

    def __post_init__(self) -> None:
        name = self.name
        if not isinstance(name, str) or not _METHOD_NAME_RE.match(name):
            raise ProcessingError(
                f"state-vector method name {name!r} is invalid; use letters, digits, "
                "'_', '.' or '-' (e.g. 'two_ears')."
            )
        if self.kind not in KINDS:
            raise ProcessingError(
                f"state-vector method {name!r}: unknown kind {self.kind!r}; use one of "
                f"{list(KINDS)}."
            )
        if isinstance(self.body_parts, str):
            raise ProcessingError(
                f"state-vector method {name!r}: body_parts must be a list of names, not "
                f"the string {self.body_parts!r}."
            )
        parts = tuple(self.body_parts)
        object.__setattr__(self, "body_parts", parts)
        expected = {"two_ears": 2, "front_back": 2, "single_point": 1}.get(self.kind)
        hint = {
            "two_ears": "(left_ear, right_ear)",
            "front_back": "(front, back), e.g. (nose, neck)",
            "single_point": "exactly one body part",
        }
        if expected is not None and len(parts) != expected:
            raise ProcessingError(
                f"state-vector method {name!r} of kind {self.kind!r} needs {expected} body "
                f"part(s) {hint[self.kind]}, got {len(parts)}: {list(parts)}."
            )
        if self.kind == "centroid" and not parts:
            raise ProcessingError(
                f"state-vector method {name!r} of kind 'centroid' needs at least one body part."
            )
        bad = [p for p in parts if not isinstance(p, str) or not _NAME_RE.match(p)]
        if bad:
            raise ProcessingError(
                f"state-vector method {name!r}: body part names {bad} are not canonical "
                "snake_case (e.g. 'left_ear'); use the vocabulary's canonical names."
            )
        if len(set(parts)) != len(parts):
            raise ProcessingError(
                f"state-vector method {name!r}: body parts {list(parts)} repeat a name; "
                "each part must appear once."
            )
        if not isinstance(self.tracking_type, str) or not _NAME_RE.match(self.tracking_type):
            raise ProcessingError(
                f"state-vector method {name!r}: tracking_type {self.tracking_type!r} must "
                "be a snake_case name such as 'openfield'."
            )
        cut = self.likelihood_cutoff
        if (
            isinstance(cut, bool)
            or not isinstance(cut, int | float)
            or not (0.0 <= float(cut) <= 1.0)
        ):
            raise ProcessingError(
                f"state-vector method {name!r}: likelihood_cutoff {cut!r} must be a number "
                f"in [0, 1] (default {DEFAULT_LIKELIHOOD_CUTOFF})."
            )
        object.__setattr__(self, "likelihood_cutoff", float(cut))
        if not isinstance(self.params, Mapping):
            raise ProcessingError(
                f"state-vector method {name!r}: params must be a mapping, got "
                f"{type(self.params).__name__}."
            )
        object.__setattr__(self, "params", dict(self.params))
        _validate_params(name, self.kind, len(parts), self.params)
        if not isinstance(self.description, str):
            raise ProcessingError(f"state-vector method {name!r}: description must be text.")

    # -- derived -------------------------------------------------------------------

    @property
    def has_head_direction(self) -> bool:
        """Whether the method yields a head direction (``two_ears``, ``front_back``)."""
        return self.kind in HEAD_DIRECTION_KINDS

    @property
    def effective_params(self) -> dict[str, Any]:
        """Params with defaults filled in and normalised (what the computation uses)."""
        return _validate_params(self.name, self.kind, len(self.body_parts), self.params)

    @property
    def param_hash(self) -> str:
        """Stable 16-hex-digit hash of what changes the result.

        SHA-256 of the canonical JSON of kind, body parts, likelihood cutoff and the
        effective params (defaults filled, so ``{}`` and ``{"position": "midpoint"}``
        hash the same). Name, tracking type and description are not part of it.
        """
        return short_hash(
            {
                "kind": self.kind,
                "body_parts": list(self.body_parts),
                "likelihood_cutoff": self.likelihood_cutoff,
                "params": self.effective_params,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (with derived ``has_head_direction`` and ``param_hash``)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "body_parts": list(self.body_parts),
            "tracking_type": self.tracking_type,
            "likelihood_cutoff": self.likelihood_cutoff,
            "params": dict(self.params),
            "description": self.description,
            "has_head_direction": self.has_head_direction,
            "param_hash": self.param_hash,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StateVectorMethod:
        """Build a method from :meth:`to_dict` output (or a hand-written registry entry).

        ``param_hash`` and ``has_head_direction``, when present, are checked against the
        definition so that an edited registry entry cannot keep a stale hash.

        Raises
        ------
        ProcessingError
            On missing or unknown keys, invalid values or a stale hash.
        """
        if not isinstance(data, Mapping):
            raise ProcessingError(
                f"a state-vector method definition must be a mapping, got {type(data).__name__}."
            )
        label = data.get("name", "<unnamed>")
        allowed = {
            "name",
            "kind",
            "body_parts",
            "tracking_type",
            "likelihood_cutoff",
            "params",
            "description",
            "has_head_direction",
            "param_hash",
        }
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ProcessingError(
                f"state-vector method {label!r}: unknown keys {unknown}; allowed keys are "
                f"{sorted(allowed)}."
            )
        missing = [k for k in ("name", "kind", "body_parts") if k not in data]
        if missing:
            raise ProcessingError(
                f"state-vector method {label!r}: missing keys {missing}; every method needs "
                "name, kind and body_parts."
            )
        kwargs = {k: data[k] for k in allowed - {"has_head_direction", "param_hash"} if k in data}
        if kwargs.get("params") is None:
            kwargs.pop("params", None)
        method = cls(**kwargs)
        if "param_hash" in data and data["param_hash"] != method.param_hash:
            raise ProcessingError(
                f"state-vector method {label!r}: recorded param_hash {data['param_hash']!r} "
                f"does not match its definition ({method.param_hash!r}); the definition was "
                "edited: register it under a new name (results made with the old one keep "
                "the old hash), or drop the stale param_hash."
            )
        if "has_head_direction" in data and bool(data["has_head_direction"]) != (
            method.has_head_direction
        ):
            raise ProcessingError(
                f"state-vector method {label!r}: has_head_direction="
                f"{data['has_head_direction']!r} contradicts kind {method.kind!r}; remove "
                "the key or fix the kind."
            )
        return method


@dataclass(frozen=True, eq=False)
class StateVector:
    """Per-frame subject state vector (positions in image pixels, unflipped).

    Attributes
    ----------
    x_px, y_px
        Subject position in image coordinates, NaN where unknown.
    head_angle_rad
        Head direction in the arena frame, radians in ``[0, 2 pi)``, NaN where unknown
        (always NaN for methods without head direction).
    valid
        True where every body part the method needs is above the likelihood cutoff.
    method_name, method_hash
        Provenance: the method and its ``param_hash``.
    camera_view, frame_size
        The view and ``(width, height)`` the head angle was computed with.
    """

    x_px: np.ndarray
    y_px: np.ndarray
    head_angle_rad: np.ndarray
    valid: np.ndarray
    method_name: str
    method_hash: str
    camera_view: str
    frame_size: tuple[float, float]

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return int(self.x_px.shape[0])


def compute_state_vector(
    method: StateVectorMethod,
    poses: np.ndarray,
    body_parts: Sequence[str],
    camera_view: str,
    frame_size: Sequence[float],
    *,
    source: str | None = None,
) -> StateVector:
    """Apply a state-vector method to DeepLabCut predictions.

    Parameters
    ----------
    method
        The method to apply.
    poses
        ``(n_frames, n_parts, 3)`` ``[x_px, y_px, likelihood]`` in image coordinates.
    body_parts
        Names of axis 1 of ``poses``; may contain more parts than the method needs.
    camera_view
        ``"above"`` or ``"below"`` (required; below mirrors the image left/right).
    frame_size
        ``(width, height)`` of the video in pixels.
    source
        File or recording named in error messages.

    Returns
    -------
    StateVector
        Position in image pixels, head angle in the arena frame, validity per frame.

    Raises
    ------
    ProcessingError
        When required body parts are missing from ``body_parts``, on bad shapes, an
        unknown camera view, a bad frame size, or an unsupported tracking type.
    """
    if not isinstance(method, StateVectorMethod):
        raise ProcessingError(
            f"{_prefix(source)}method must be a StateVectorMethod, got "
            f"{type(method).__name__}; build one with StateVectorMethod.from_dict()."
        )
    view = check_camera_view(camera_view, source)
    size = check_frame_size(frame_size, source)
    arr, names = check_poses(poses, body_parts, source)
    if method.tracking_type not in SUPPORTED_TRACKING_TYPES:
        raise ProcessingError(
            f"{_prefix(source)}method {method.name!r} is for tracking type "
            f"{method.tracking_type!r}; only {list(SUPPORTED_TRACKING_TYPES)} recordings "
            "are turned into state vectors. Assign an openfield method or skip the recording."
        )
    missing = [p for p in method.body_parts if p not in names]
    if missing:
        raise ProcessingError(
            f"{_prefix(source)}method {method.name!r} needs body parts {missing} that are not "
            f"in the predictions (they have {names}). Assign a method whose body parts the "
            "model tracks, or a model that tracks them."
        )

    idx = [names.index(p) for p in method.body_parts]
    # (3, k, n): contiguous rows per body part, so reductions over parts are fast
    sub = np.ascontiguousarray(arr[:, idx, :].transpose(2, 1, 0))
    x, y, lik = sub[0], sub[1], sub[2]
    with np.errstate(invalid="ignore"):
        present = np.isfinite(x) & np.isfinite(y) & (lik >= method.likelihood_cutoff)
    n = arr.shape[0]
    head = np.full(n, np.nan)
    valid = np.logical_and.reduce(present, axis=0)
    params = method.effective_params

    if method.kind in HEAD_DIRECTION_KINDS:
        a_ok, b_ok = present[0], present[1]
        both = a_ok & b_ok
        # direction in the arena frame; only differences matter, so map the differences:
        # above: (dX, dY) = (dx, -dy); below (mirrored): (dX, dY) = (-dx, -dy)
        dx = x[0] - x[1]
        dy = y[1] - y[0]
        if view == "below":
            dx = -dx
        angle = np.arctan2(dy, dx)
        if method.kind == "two_ears":
            # left - right points to the animal's left; forward is 90 deg clockwise of it
            angle -= 0.5 * math.pi
            frac = 0.5
            pos_ok = both
        else:
            frac = params["position"]  # fraction from back (index 1) to front (index 0)
            pos_ok = a_ok if frac == 1.0 else b_ok if frac == 0.0 else both
        with np.errstate(invalid="ignore"):
            direction_ok = both & ((dx != 0.0) | (dy != 0.0))
        head = wrap_angle_rad(angle)
        head[~direction_ok] = np.nan
        if frac == 1.0:
            px, py = x[0].copy(), y[0].copy()
        elif frac == 0.0:
            px, py = x[1].copy(), y[1].copy()
        else:
            px = x[1] + frac * (x[0] - x[1])
            py = y[1] + frac * (y[0] - y[1])
        px[~pos_ok] = np.nan
        py[~pos_ok] = np.nan
        x_out, y_out = px, py
    elif method.kind == "single_point":
        ok = present[0]
        x_out = np.where(ok, x[0], np.nan)
        y_out = np.where(ok, y[0], np.nan)
    else:  # centroid
        w = np.where(present, lik, 0.0)
        sw = w.sum(axis=0)
        ok = (present.sum(axis=0) >= params["min_parts"]) & (sw > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            cx = (w * np.where(present, x, 0.0)).sum(axis=0) / sw
            cy = (w * np.where(present, y, 0.0)).sum(axis=0) / sw
        x_out = np.where(ok, cx, np.nan)
        y_out = np.where(ok, cy, np.nan)

    return StateVector(
        x_px=np.ascontiguousarray(x_out, dtype=np.float64),
        y_px=np.ascontiguousarray(y_out, dtype=np.float64),
        head_angle_rad=np.ascontiguousarray(head, dtype=np.float64),
        valid=np.ascontiguousarray(valid, dtype=bool),
        method_name=method.name,
        method_hash=method.param_hash,
        camera_view=view,
        frame_size=size,
    )


# --------------------------------------------------------------------------- built-ins


def _builtin(*methods: StateVectorMethod) -> dict[str, StateVectorMethod]:
    return {m.name: m for m in methods}


#: Built-in method definitions, by name.
BUILTIN_METHODS: dict[str, StateVectorMethod] = _builtin(
    StateVectorMethod(
        name="two_ears",
        kind="two_ears",
        body_parts=("left_ear", "right_ear"),
        description=(
            "Head position = midpoint of the ears; head direction perpendicular to the "
            "left->right ear line, pointing forward (seed method '2points_leftrightear')."
        ),
    ),
    StateVectorMethod(
        name="nose_tail_base",
        kind="front_back",
        body_parts=("nose", "tail_base"),
        params={"position": "midpoint"},
        description=(
            "Body centre = midpoint of nose and tail base; direction along tail base -> "
            "nose (body axis, a proxy for head direction)."
        ),
    ),
    StateVectorMethod(
        name="nose",
        kind="single_point",
        body_parts=("nose",),
        description="Position = nose; no head direction.",
    ),
    StateVectorMethod(
        name="centroid_all",
        kind="centroid",
        body_parts=("nose", "left_ear", "right_ear", "tail_base"),
        params={"min_parts": 1},
        description=(
            "Position = likelihood-weighted centroid of nose, ears and tail base above the "
            "cutoff; no head direction."
        ),
    ),
)
