"""Warehouse tables of multi-animal recordings (not yet registered in
:data:`dlc_tracking.warehouse.tables.TABLES`; see docs/multi-animal.md).

The per-animal tables are the single-animal tables with two columns after their keys:
``individual`` (the track's name in the DLC file, e.g. ``mus1``) and ``subject`` (its
subject id from session.yaml ``individuals:``; NULL = anonymous track). Single-animal
tables and rows are unchanged. Unique body parts, identity events, the social table and
its per-pair summary are new.
"""

from dataclasses import replace

from dlc_tracking.warehouse.tables import _BOOL, _F64, _I64, _STR, TABLES, TableSpec, _c

__all__ = ["MULTI_ANIMAL_TABLES"]

_INDIVIDUAL = _c("individual", _STR, "Track (DLC individual) name as in the file, e.g. mus1.",
                 nullable=False)
_SUBJECT = _c("subject", _STR, "Subject id the track is mapped to (session.yaml "
              "`individuals:`); NULL = an anonymous track.")
_KEYS = ("recording_id", "model_name", "method_name", "method_hash", "params_name",
         "params_hash")


def _per_individual(source: str, name: str, description: str) -> TableSpec:
    """``source``'s columns with ``individual`` and ``subject`` after its keys."""
    cols = TABLES[source].columns
    n_keys = next(i for i, c in enumerate(cols) if c.name not in _KEYS)
    return replace(TABLES[source], name=name, description=description,
                   columns=(*cols[:n_keys], _INDIVIDUAL, _SUBJECT, *cols[n_keys:]))


_A = _c("individual_a", _STR, "First individual of the pair (file order).", nullable=False)
_B = _c("individual_b", _STR, "Second individual of the pair.", nullable=False)
_SA = _c("subject_a", _STR, "Subject of individual_a; NULL = anonymous.")
_SB = _c("subject_b", _STR, "Subject of individual_b; NULL = anonymous.")
_PN = _c("params_name", _STR, "Social parameter set name.", nullable=False)
_PH = _c("params_hash", _STR, "Hash of the social parameters.", nullable=False)
_RID = TABLES["predictions"].columns[0]
_MODEL = TABLES["predictions"].columns[1]

MULTI_ANIMAL_TABLES: dict[str, TableSpec] = {t.name: t for t in [
    _per_individual("predictions", "individual_predictions",
                    "Raw maDLC predictions, one row per frame x individual x body part."),
    replace(TABLES["predictions"], name="unique_body_parts",
            description="Unique body parts of a multi-animal model (parts of no animal: "
            "arena corners, an object), one row per frame x part; DLC's `single`."),
    _per_individual("raw_state_vectors", "individual_state_vectors",
                    "Raw state vector per frame and individual (image pixels)."),
    _per_individual("processed_tracking", "individual_tracking",
                    "Processed tracking per frame and individual; all individuals of a "
                    "recording share one calibration (arena frame, cm)."),
    _per_individual("processed_body_parts", "individual_body_parts",
                    "Processed body parts per frame and individual (arena frame, cm)."),
    TableSpec("identity_events", "Identity problems of a multi-animal recording, one row "
              "per event: identity_swap (labels of two tracks exchanged between frame-1 and "
              "frame), appears / vanishes / reappears, two_tracks_one_animal.",
              (_RID, _c("event", _STR, "Kind of event.", nullable=False,
                        allowed=("identity_swap", "appears", "vanishes", "reappears",
                                 "never_present", "two_tracks_one_animal")),
               _INDIVIDUAL, _SUBJECT,
               _c("other_individual", _STR, "The other track (swaps, duplicates)."),
               _c("frame", _I64, "First frame of the event.", nullable=False),
               _c("stop_frame", _I64, "Frame after the event (exclusive)."),
               _c("value_px", _F64, "Swap: cost of keeping the labels (px of motion); "
                  "duplicate: mean distance of matching body parts.", "px"),
               _c("other_value_px", _F64, "Swap: cost of exchanging the labels.", "px"))),
    TableSpec("social", "Social measures per frame and pair of individuals (arena frame).",
              (_RID, _A, _B, _SA, _SB,
               _c("frame", _I64, "Video frame.", nullable=False),
               _c("time_s", _F64, "Frame time.", "s"),
               _c("distance_cm", _F64, "Between the state-vector positions.", "cm"),
               _c("nose_nose_cm", _F64, "Nose to nose.", "cm"),
               _c("a_nose_b_tail_base_cm", _F64, "a's nose to b's tail base.", "cm"),
               _c("b_nose_a_tail_base_cm", _F64, "b's nose to a's tail base.", "cm"),
               _c("a_facing_b_deg", _F64, "Angle between a's head direction and the "
                  "direction a -> b (0 = looking at b).", "deg"),
               _c("b_facing_a_deg", _F64, "The same for b.", "deg"),
               _c("a_faces_b", _BOOL, "a_facing_b_deg < facing_deg."),
               _c("b_faces_a", _BOOL, "b_facing_a_deg < facing_deg."),
               _c("in_proximity", _BOOL, "distance_cm < proximity_cm."),
               _c("contact", _BOOL, "Nose-nose or nose-tail-base < contact_cm."),
               _PN, _PH)),
    TableSpec("social_summary", "Social measures per recording and pair.",
              (_RID, _A, _B, _SA, _SB,
               _c("n_frames", _I64, "Frames.", "frames"),
               _c("n_frames_known", _I64, "Frames where both positions are known.", "frames"),
               _c("mean_distance_cm", _F64, "Mean distance.", "cm"),
               _c("time_in_proximity_s", _F64, "Time closer than proximity_cm.", "s"),
               _c("fraction_in_proximity", _F64, "Share of known frames in proximity."),
               _c("n_contacts", _I64, "Contacts lasting at least min_event_s."),
               _c("contact_time_s", _F64, "Time in those contacts.", "s"),
               _c("n_approaches_a_to_b", _I64, "Approaches by a to b."),
               _c("n_approaches_b_to_a", _I64, "Approaches by b to a."),
               _PN, _PH)),
]}
