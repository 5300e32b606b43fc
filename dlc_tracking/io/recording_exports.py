"""Export one recording from the warehouse to a file: NWB, movement (netCDF), DLC h5, CSV.

The CLI (``dlc-platform export``) and the benchmarks call :func:`export_recording`; each
writer writes to a temporary file in the destination folder and renames it, so a failed
export never leaves half a file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dlc_tracking.errors import WarehouseError
from dlc_tracking.io.atomic import atomic_write
from dlc_tracking.io.stored_recording import StoredRecording

__all__ = ["FORMATS", "dlc_body_part_names", "dlc_scorer", "export_recording", "write_dlc_h5",
           "write_movement", "write_tracking_csv"]

FORMATS = ("nwb", "movement", "dlc-h5", "csv")
"""Formats of ``dlc-platform export --format``."""


def dlc_body_part_names(rec: StoredRecording) -> list[str]:
    """DeepLabCut's own names of the recording's body parts (see
    :meth:`StoredRecording.dlc_body_parts`).

    Raises
    ------
    WarehouseError
        They are unknown: the model has no row in the warehouse's ``models`` table and the
        ingested file is gone (canonical names are never written in their place).
    """
    names = rec.dlc_body_parts()
    if names is None:
        raise WarehouseError(
            f"recording {rec.recording_id}: the DeepLabCut body-part names of model "
            f"{rec.model_name!r} are unknown (the warehouse has no `models` row for it and "
            "the file that was ingested is gone), and a dlc-h5 export carries DLC's own "
            "names, never the platform's canonical ones. Materialize the registry tables "
            "(`dlc-platform reprocess` or the update_registry job), then export again.")
    return names


def dlc_scorer(rec: StoredRecording) -> str:
    """The DeepLabCut scorer of the recording's predictions (never the registry name).

    Raises
    ------
    WarehouseError
        Neither the ingested files' scorer nor the model's is in the warehouse.
    """
    if not rec.scorer:
        raise WarehouseError(
            f"recording {rec.recording_id}: the DeepLabCut scorer of its predictions is not "
            f"in the warehouse (no prediction_sources row, no `models` row for "
            f"{rec.model_name!r}); process the recording again, then export.")
    return rec.scorer


def write_dlc_h5(rec: StoredRecording, out: str | os.PathLike) -> Path:
    """The raw predictions as DeepLabCut writes them (``df_with_missing``), under the
    scorer and body-part names of the file that was ingested (or of the model's config):
    the platform ingests the file back into a session unchanged.

    Points the platform removed as outside the frame are NaN here (DLC's missing value).

    Raises
    ------
    WarehouseError
        The DLC scorer or body-part names are unknown (see :func:`dlc_body_part_names`).
    """
    from dlc_tracking.io.dlc_files import write_predictions

    scorer, names = dlc_scorer(rec), dlc_body_part_names(rec)
    return atomic_write(Path(out), lambda tmp: write_predictions(tmp, scorer, names,
                                                                 rec.poses))


def write_tracking_csv(rec: StoredRecording, out: str | os.PathLike) -> Path:
    """Processed tracking, one row per frame (the ``processed_tracking`` columns).

    Raises
    ------
    WarehouseError
        The recording was skipped or not processed.
    """
    df = rec.require_processed("export its processed tracking as CSV")
    return atomic_write(Path(out), lambda tmp: df.to_csv(tmp, index=False))


def write_movement(rec: StoredRecording, out: str | os.PathLike) -> Path:
    """The movement poses dataset as netCDF (``xarray.open_dataset`` reads it back)."""
    from dlc_tracking.io.movement_io import stored_to_movement

    ds = stored_to_movement(rec)
    # netCDF attributes cannot be None
    ds.attrs = {k: ("" if v is None else v) for k, v in ds.attrs.items()}
    return atomic_write(Path(out), lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf"))


def export_recording(rec: StoredRecording, fmt: str, out: str | os.PathLike, *,
                     params: Mapping[str, Any] | None = None,
                     labeled_video: str | os.PathLike | None = None) -> Path:
    """Write ``rec`` in ``fmt`` (one of :data:`FORMATS`) to ``out``.

    Parameters
    ----------
    rec : StoredRecording
        From :func:`~dlc_tracking.io.stored_recording.load_stored_recording`.
    fmt : str
        ``nwb``, ``movement`` (netCDF), ``dlc-h5`` or ``csv`` (processed tracking).
    out : path
        Output file.
    params : mapping, optional
        Processing parameters for the NWB description.
    labeled_video : path, optional
        NWB: the recording's labeled video, linked when it exists.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    WarehouseError
        Unknown format, or a format that needs processed tracking for a recording
        without it.
    """
    if fmt == "nwb":
        from dlc_tracking.io.nwb import export_nwb

        return export_nwb(rec, out, params=params, labeled_video=labeled_video)
    writers = {"movement": write_movement, "dlc-h5": write_dlc_h5, "csv": write_tracking_csv}
    if fmt not in writers:
        raise WarehouseError(f"unknown export format {fmt!r}; use one of {list(FORMATS)}.")
    return writers[fmt](rec, out)

