"""Export one recording from the warehouse to a file: NWB, movement (netCDF), DLC h5, CSV.

The CLI (``dlc-platform export``) and the benchmarks call :func:`export_recording`; each
writer writes to a temporary file in the destination folder and renames it, so a failed
export never leaves half a file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from dlc_tracking.errors import WarehouseError
from dlc_tracking.io.stored_recording import StoredRecording

__all__ = ["FORMATS", "dlc_body_part_names", "export_recording", "write_dlc_h5",
           "write_movement", "write_tracking_csv"]

FORMATS = ("nwb", "movement", "dlc-h5", "csv")
"""Formats of ``dlc-platform export --format``."""


def _atomic(out: Path, write: Callable[[Path], Any]) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=f".tmp{out.suffix}",
                               dir=out.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def dlc_body_part_names(rec: StoredRecording) -> list[str]:
    """The model's own (DLC) names of the recording's canonical body parts, where known."""
    model = rec.model or {}
    dlc = str(model.get("dlc_body_parts") or "").split(",")
    canonical = str(model.get("body_parts") or "").split(",")
    back = dict(zip(canonical, dlc, strict=False)) if len(dlc) == len(canonical) else {}
    return [back.get(name, name) for name in rec.body_parts]


def write_dlc_h5(rec: StoredRecording, out: str | os.PathLike) -> Path:
    """The raw predictions as DeepLabCut writes them (``df_with_missing``; DLC names).

    Points the platform removed as outside the frame are NaN here (DLC's missing value).
    """
    from dlc_tracking.io.dlc_files import write_predictions

    scorer = rec.scorer or rec.model_name
    return _atomic(Path(out), lambda tmp: write_predictions(
        tmp, scorer, dlc_body_part_names(rec), rec.poses))


def write_tracking_csv(rec: StoredRecording, out: str | os.PathLike) -> Path:
    """Processed tracking, one row per frame (the ``processed_tracking`` columns).

    Raises
    ------
    WarehouseError
        The recording was skipped or not processed.
    """
    df = rec.require_processed("export its processed tracking as CSV")
    return _atomic(Path(out), lambda tmp: df.to_csv(tmp, index=False))


def write_movement(rec: StoredRecording, out: str | os.PathLike) -> Path:
    """The movement poses dataset as netCDF (``xarray.open_dataset`` reads it back)."""
    from dlc_tracking.io.movement_io import stored_to_movement

    ds = stored_to_movement(rec)
    # netCDF attributes cannot be None
    ds.attrs = {k: ("" if v is None else v) for k, v in ds.attrs.items()}
    return _atomic(Path(out), lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf"))


def export_recording(rec: StoredRecording, fmt: str, out: str | os.PathLike, *,
                     params: Mapping[str, Any] | None = None) -> Path:
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

        return export_nwb(rec, out, params=params)
    writers = {"movement": write_movement, "dlc-h5": write_dlc_h5, "csv": write_tracking_csv}
    if fmt not in writers:
        raise WarehouseError(f"unknown export format {fmt!r}; use one of {list(FORMATS)}.")
    return writers[fmt](rec, out)

