"""Social measures per pair of individuals: distances, relative heading, proximity,
approaches and contacts.

Inputs are the processed per-individual tracking of
:func:`dlc_tracking.social.individuals.process_individuals` (arena frame, cm, all
individuals in one calibration), so every measure is in cm and seconds.

Per frame and unordered pair ``(a, b)`` (``a`` before ``b`` in the file's order):

- ``distance_cm``: between the state-vector positions;
- ``nose_nose_cm``, ``a_nose_b_tail_base_cm``, ``b_nose_a_tail_base_cm``: between the
  processed body parts named by ``nose_part`` / ``tail_base_part`` (NaN when the model
  has no such part);
- ``a_facing_b_deg``: angle between a's head direction and the direction from a to b
  (0 = a looks straight at b; NaN without head direction), ``a_faces_b`` when below
  ``facing_deg``; the same for ``b``;
- ``in_proximity``: ``distance_cm < proximity_cm``;
- ``contact``: nose-to-nose or nose-to-tail-base closer than ``contact_cm``.

Per recording and pair (:func:`social_summary`): time and share in proximity, number and
time of contacts (runs of contact frames lasting at least ``min_event_s``), approaches by
a to b and by b to a: runs of at least ``min_event_s`` in which the approacher moves
towards the other faster than ``approach_speed_cm_s`` and faster than the other moves
towards it, the distance shrinks by at least ``approach_min_cm`` and ends within
``proximity_cm``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from dlc_tracking.errors import ProcessingError
from dlc_tracking.social.individuals import IndividualTracking
from dlc_tracking.tracking.methods import short_hash

__all__ = ["SocialParams", "social_frames", "social_summary"]


@dataclass(frozen=True)
class SocialParams:
    """Parameters of the social measures (the ``social:`` section of a named processing
    parameter set).

    Parameters
    ----------
    name
        Name of the set (not hashed).
    proximity_cm
        Two animals closer than this are "in proximity" (10 cm: about one mouse body
        length plus tail base, the usual social-zone radius for mice).
    contact_cm
        Nose-to-nose or nose-to-tail-base closer than this is a contact (2 cm).
    facing_deg
        A faces B when its head points within this angle of B (30 degrees).
    approach_speed_cm_s
        Smallest speed towards the other animal during an approach (5 cm/s).
    approach_min_cm
        Smallest shrinkage of the distance during an approach (5 cm).
    min_event_s
        Shortest contact or approach counted (0.2 s).
    nose_part, tail_base_part
        Canonical body-part names used for nose-to-nose and nose-to-tail-base.
    """

    name: str = "default"
    proximity_cm: float = 10.0
    contact_cm: float = 2.0
    facing_deg: float = 30.0
    approach_speed_cm_s: float = 5.0
    approach_min_cm: float = 5.0
    min_event_s: float = 0.2
    nose_part: str = "nose"
    tail_base_part: str = "tail_base"

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "float" and (isinstance(value, bool) or not isinstance(
                    value, int | float) or not np.isfinite(value) or value < 0):
                raise ProcessingError(f"social parameter {f.name}={value!r} must be a finite "
                                      "number >= 0.")
            if f.type == "float":
                object.__setattr__(self, f.name, float(value))
        for key in ("name", "nose_part", "tail_base_part"):
            value = getattr(self, key)
            if not isinstance(value, str) or not value:
                raise ProcessingError(f"social parameter {key}={value!r} must be a non-empty "
                                      "name" + (" (a canonical body part, e.g. 'nose')."
                                                if key != "name" else "."))
        if self.facing_deg > 180:
            raise ProcessingError(f"social parameter facing_deg={self.facing_deg} must be "
                                  "at most 180.")

    def _hashed(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "name"}

    @property
    def param_hash(self) -> str:
        """16-hex-digit hash of every parameter except ``name``."""
        return short_hash(self._hashed())

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self._hashed(), "param_hash": self.param_hash}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SocialParams:
        """From a processing parameter set's ``social:`` mapping; unknown keys refused."""
        if not isinstance(data, Mapping):
            raise ProcessingError(f"social parameters must be a mapping, got "
                                  f"{type(data).__name__}.")
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - allowed - {"param_hash"})
        if unknown:
            import difflib

            hints = [f"{k!r} -> {m[0]!r}" for k in unknown
                     if (m := difflib.get_close_matches(str(k), sorted(allowed), n=1))]
            raise ProcessingError(
                f"social parameters: unknown keys {unknown}"
                + (f" (did you mean {', '.join(hints)}?)" if hints else "")
                + f"; allowed keys are {sorted(allowed - {'name'})}.")
        return cls(**{k: v for k, v in data.items() if k in allowed})


def _angle_to(head_deg: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Absolute angle (deg, 0-180) between a heading and the direction (dx, dy)."""
    bearing = np.degrees(np.arctan2(dy, dx))
    diff = np.mod(bearing - head_deg + 180.0, 360.0) - 180.0
    return np.abs(diff)


def _part(t: IndividualTracking, name: str) -> tuple[np.ndarray, np.ndarray]:
    if name in t.parts:
        return t.parts[name]
    nan = np.full(t.processed.n_frames, np.nan)
    return nan, nan


def social_frames(tracks: Mapping[str, IndividualTracking], params: SocialParams | None = None,
                  *, recording_id: str = "") -> pd.DataFrame:
    """The ``social`` table of one recording: one row per frame and pair.

    Parameters
    ----------
    tracks
        individual -> :class:`~dlc_tracking.social.individuals.IndividualTracking`, all of
        one recording (one calibration).
    params
        :class:`SocialParams`.
    recording_id
        Stored in the rows.

    Returns
    -------
    pandas.DataFrame
        Columns ``recording_id, individual_a, individual_b, subject_a, subject_b, frame,
        time_s, distance_cm, nose_nose_cm, a_nose_b_tail_base_cm, b_nose_a_tail_base_cm,
        a_facing_b_deg, b_facing_a_deg, a_faces_b, b_faces_a, in_proximity, contact,
        params_name, params_hash``; pair-major.
    """
    params = SocialParams() if params is None else params
    names = list(tracks)
    if len(names) < 2:
        raise ProcessingError(f"recording {recording_id}: social measures need at least two "
                              f"individuals; it has {names}.")
    first = tracks[names[0]].processed
    for ind in names[1:]:
        other = tracks[ind].processed
        if other.n_frames != first.n_frames or other.calibration != first.calibration:
            raise ProcessingError(
                f"recording {recording_id}: individuals {names[0]!r} and {ind!r} have different "
                "frame counts or calibrations; process them together with "
                "process_individuals().")
    frames = []
    for a, b in combinations(names, 2):
        ta, tb = tracks[a], tracks[b]
        pa, pb = ta.processed, tb.processed
        dx, dy = pb.x_cm - pa.x_cm, pb.y_cm - pa.y_cm
        dist = np.hypot(dx, dy)
        na, nb = _part(ta, params.nose_part), _part(tb, params.nose_part)
        tla, tlb = _part(ta, params.tail_base_part), _part(tb, params.tail_base_part)
        nose_nose = np.hypot(na[0] - nb[0], na[1] - nb[1])
        a_nose_b_tail = np.hypot(na[0] - tlb[0], na[1] - tlb[1])
        b_nose_a_tail = np.hypot(nb[0] - tla[0], nb[1] - tla[1])
        a_facing = _angle_to(pa.head_direction_deg, dx, dy)
        b_facing = _angle_to(pb.head_direction_deg, -dx, -dy)
        with np.errstate(invalid="ignore"):
            contact = ((nose_nose < params.contact_cm) | (a_nose_b_tail < params.contact_cm)
                       | (b_nose_a_tail < params.contact_cm))
            frames.append(pd.DataFrame({
                "recording_id": recording_id, "individual_a": a, "individual_b": b,
                "subject_a": ta.subject, "subject_b": tb.subject,
                "frame": np.arange(pa.n_frames, dtype=np.int64), "time_s": pa.time_s,
                "distance_cm": dist, "nose_nose_cm": nose_nose,
                "a_nose_b_tail_base_cm": a_nose_b_tail, "b_nose_a_tail_base_cm": b_nose_a_tail,
                "a_facing_b_deg": a_facing, "b_facing_a_deg": b_facing,
                "a_faces_b": a_facing < params.facing_deg,
                "b_faces_a": b_facing < params.facing_deg,
                "in_proximity": dist < params.proximity_cm, "contact": contact,
            }))
    out = pd.concat(frames, ignore_index=True)
    out["params_name"] = params.name
    out["params_hash"] = params.param_hash
    for col in ("individual_a", "individual_b", "recording_id", "params_name",
                "params_hash"):
        out[col] = out[col].astype("category")
    return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _approaches(t: np.ndarray, dist: np.ndarray, toward_self: np.ndarray,
                toward_other: np.ndarray, params: SocialParams) -> list[tuple[int, int]]:
    """Runs where one animal closes in on the other (see the module docstring)."""
    with np.errstate(invalid="ignore"):
        moving = (toward_self > params.approach_speed_cm_s) & (toward_self > toward_other)
    dt = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
    found = []
    for start, stop in _runs(moving):
        if (stop - start) * dt < params.min_event_s:
            continue
        d0, d1 = dist[start], dist[stop - 1]
        if np.isfinite(d0) and np.isfinite(d1) and d0 - d1 >= params.approach_min_cm \
                and d1 < params.proximity_cm:
            found.append((start, stop))
    return found


def social_summary(tracks: Mapping[str, IndividualTracking], social: pd.DataFrame,
                   params: SocialParams | None = None) -> pd.DataFrame:
    """Per pair: ``time_in_proximity_s, fraction_in_proximity, n_contacts, contact_time_s,
    n_approaches_a_to_b, n_approaches_b_to_a, mean_distance_cm`` (frames where the
    distance is known), plus the parameters' name and hash."""
    params = SocialParams() if params is None else params
    rows = []
    for (a, b), pair in social.groupby(["individual_a", "individual_b"], observed=True,
                                       sort=False):
        t = pair["time_s"].to_numpy()
        dt = float(np.median(np.diff(t))) if len(t) > 1 else 0.0
        known = np.isfinite(pair["distance_cm"].to_numpy())
        prox = pair["in_proximity"].to_numpy()
        contacts = [(s, e) for s, e in _runs(pair["contact"].to_numpy())
                    if (e - s) * dt >= params.min_event_s]
        pa, pb = tracks[a].processed, tracks[b].processed
        dx, dy = pb.x_cm - pa.x_cm, pb.y_cm - pa.y_cm
        dist = np.hypot(dx, dy)
        with np.errstate(invalid="ignore", divide="ignore"):
            ux, uy = dx / dist, dy / dist
        va = (np.gradient(pa.x_cm, t), np.gradient(pa.y_cm, t))
        vb = (np.gradient(pb.x_cm, t), np.gradient(pb.y_cm, t))
        a_toward = va[0] * ux + va[1] * uy      # a's speed towards b
        b_toward = -(vb[0] * ux + vb[1] * uy)   # b's speed towards a
        rows.append({
            "individual_a": a, "individual_b": b,
            "subject_a": tracks[a].subject, "subject_b": tracks[b].subject,
            "n_frames": len(pair), "n_frames_known": int(known.sum()),
            "mean_distance_cm": float(np.nanmean(dist)) if known.any() else np.nan,
            "time_in_proximity_s": float(prox.sum() * dt),
            "fraction_in_proximity": float(prox.sum() / known.sum()) if known.any() else np.nan,
            "n_contacts": len(contacts),
            "contact_time_s": float(sum(e - s for s, e in contacts) * dt),
            "n_approaches_a_to_b": len(_approaches(t, dist, a_toward, b_toward, params)),
            "n_approaches_b_to_a": len(_approaches(t, dist, b_toward, a_toward, params)),
            "params_name": params.name, "params_hash": params.param_hash,
        })
    return pd.DataFrame(rows)
