"""Warehouse tables of multi-animal recordings: the specs now live in
:data:`dlc_tracking.warehouse.tables.TABLES` (see docs/multi-animal.md); this module names them.

The per-animal tables are the single-animal tables with two columns after their keys:
``individual`` (the track's name in the DLC file, e.g. ``mus1``) and ``subject`` (its
subject id from session.yaml ``individuals:``; NULL = anonymous track). Single-animal
tables and rows are unchanged. Unique body parts, identity events, the social table and
its per-pair summary are new.
"""

from dlc_tracking.warehouse.tables import MULTI_ANIMAL_TABLE_NAMES, TABLES, TableSpec

__all__ = ["MULTI_ANIMAL_TABLES"]

MULTI_ANIMAL_TABLES: dict[str, TableSpec] = {n: TABLES[n] for n in MULTI_ANIMAL_TABLE_NAMES}
