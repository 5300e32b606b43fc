"""Reading and writing DeepLabCut (DLC) output files.

Formats, as written by DeepLabCut 3.0.2 (``analyze_videos``) and older 2.x releases:

- Predictions ``<video stem><scorer>.h5``: a pandas DataFrame stored with
  ``to_hdf(key="df_with_missing", format="table")``, columns a MultiIndex
  ``(scorer, bodyparts, coords)`` with coords ``x, y, likelihood``, index = frame number.
  Multi-animal projects add an ``individuals`` level (not supported here).
  ``save_as_csv=True`` writes the same frame as ``<video stem><scorer>.csv`` (three
  header rows ``scorer`` / ``bodyparts`` / ``coords``, the frame index in column 0).
- Metadata ``<video stem><scorer>_meta.pickle`` (DLC >= 2.2), or
  ``<video stem><scorer>includingmetadata.pickle`` before: ``{"data": {...}}`` with
  ``Scorer``, ``fps``, ``nframes``, ``frame_dimensions``, ``cropping_parameters``...
  The TensorFlow engine stores ``frame_dimensions`` as (height, width), the PyTorch engine
  as (width, height). Manual runs of the seed pipeline add a ``"Start Timestamp"``
  (ISO 8601).
- PyTorch also writes ``<video stem><scorer>_full.pickle`` (raw per-frame predictions);
  it is not needed here and is ignored.

Poses follow ``docs/conventions.md``: float64 ``(n_frames, n_body_parts, 3)`` with
``[x_px, y_px, likelihood]`` in image coordinates; missing points are NaN in all three.
"""

from __future__ import annotations

import csv
import os
import pickle
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlc_tracking.errors import DLCFileError
from dlc_tracking.io.atomic import atomic_write
from dlc_tracking.io.times_files import is_number

__all__ = [
    "COORDS",
    "H5_KEY",
    "DLCPredictions",
    "OutputSet",
    "find_output_sets",
    "load_output_folder",
    "mask_missing",
    "output_names",
    "parse_start_timestamp",
    "read_metadata",
    "read_predictions",
    "scorer_from_filename",
    "write_metadata",
    "write_predictions",
]

H5_KEY = "df_with_missing"
"""The HDF5 key DeepLabCut stores its predictions under."""

COORDS = ("x", "y", "likelihood")
"""The ``coords`` level of DLC's column MultiIndex, in order."""

START_TIMESTAMP_KEY = "Start Timestamp"
"""Entry that manual runs add to the metadata pickle (ISO 8601 with a time zone)."""

_META_SUFFIXES = ("_meta.pickle", "includingmetadata.pickle")
# Post-processing outputs of DLC in the same folder that are not independent output sets.
_DERIVED_SUFFIXES = ("_filtered", "_skeleton", "_el", "_bx", "_sk", "_labeled")
_SCORER_START = re.compile(r"(DLC|DeepCut)_")


@dataclass
class DLCPredictions:
    """Single-animal DLC predictions of one video (or of several concatenated parts).

    Attributes
    ----------
    scorer : str
        DLC scorer name (the top column level of the file), e.g.
        ``DLC_Resnet50_openfieldJan1shuffle1_snapshot_200``.
    body_parts : list[str]
        Body-part names as DLC wrote them (not canonicalised), order of axis 1.
    poses : np.ndarray
        float64 ``(n_frames, n_body_parts, 3)``: ``[x_px, y_px, likelihood]``; NaN = missing.
    frames : np.ndarray
        int64 ``(n_frames,)`` frame numbers.
    sources : list[pathlib.Path]
        The files the predictions were read from, in order.
    notes : list[str]
        What was tolerated while reading (e.g. a CSV re-saved by pandas), one sentence
        each, for the recording's metadata; empty for a file exactly as DLC writes it.
    """

    scorer: str
    body_parts: list[str]
    poses: np.ndarray
    frames: np.ndarray
    sources: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return int(self.poses.shape[0])


@dataclass(frozen=True)
class OutputSet:
    """One DLC output set in a folder: a predictions file and its metadata pickle.

    Attributes
    ----------
    predictions_path : pathlib.Path
        The ``.h5`` file (or the ``.csv`` when there is no ``.h5`` of the same stem).
    metadata_path : pathlib.Path | None
        ``<prefix>_meta.pickle`` or ``<prefix>includingmetadata.pickle``; None if absent.
    scorer : str
        The scorer stored in the predictions file (authoritative).
    video_stem : str
        The file name's part before the scorer (the video's stem); "" when the name does
        not contain the scorer.
    """

    predictions_path: Path
    metadata_path: Path | None
    scorer: str
    video_stem: str


# ----------------------------------------------------------------------------- names


def output_names(video_stem: str, scorer: str) -> tuple[str, str]:
    """File names DeepLabCut gives the outputs of one video.

    Parameters
    ----------
    video_stem : str
        The video's file name without extension.
    scorer : str
        DLC scorer name.

    Returns
    -------
    tuple[str, str]
        ``(<stem><scorer>.h5, <stem><scorer>_meta.pickle)``.
    """
    prefix = f"{video_stem}{scorer}"
    return f"{prefix}.h5", f"{prefix}_meta.pickle"


def scorer_from_filename(name: str, video_stem: str | None = None) -> tuple[str, str]:
    """Split a DLC output file name into video stem and scorer.

    Parameters
    ----------
    name : str
        File name, e.g. ``openfieldDLC_Resnet50_tinyJan1shuffle1_snapshot_200.h5`` or
        ``..._meta.pickle``.
    video_stem : str, optional
        The video stem when known (e.g. from the ``dlc_<stem>`` folder name); used when the
        name starts with it.

    Returns
    -------
    tuple[str, str]
        ``(video_stem, scorer)``; scorer is "" when none can be found.
    """
    prefix = _prefix_of(name)
    if video_stem and prefix.startswith(video_stem) and len(prefix) > len(video_stem):
        return video_stem, prefix[len(video_stem):]
    match = _SCORER_START.search(prefix)
    if match is None:
        return prefix, ""
    return prefix[: match.start()], prefix[match.start():]


def _prefix_of(name: str) -> str:
    """File name without the output suffix (``.h5``, ``.csv``, ``_meta.pickle``...)."""
    for suffix in (*_META_SUFFIXES, ".h5", ".csv"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


# ----------------------------------------------------------------------------- predictions


def read_predictions(path: str | os.PathLike[str]) -> DLCPredictions:
    """Read single-animal DLC predictions from an ``.h5`` or ``.csv`` file.

    Values are returned exactly as written (negative and out-of-frame coordinates
    included). Tolerated, and said in ``notes``: a CSV re-saved by pandas (``.1``, ``.2``
    suffixes on the scorer row, an extra leading index column, an index-name row), a UTF-8
    byte-order mark and CRLF line endings (Excel); an ``.h5`` in ``fixed`` as well as
    ``table`` format, under DLC's other keys (``predictions`` of ``analyze_images``) or
    under a single other key.

    Parameters
    ----------
    path : str or os.PathLike
        ``<stem><scorer>.h5`` (key ``df_with_missing``, or the only key present) or
        ``<stem><scorer>.csv``.

    Returns
    -------
    DLCPredictions
        Poses with DLC's missing encodings (NaN anywhere in a point, or x == y ==
        likelihood == 0) set to NaN in all three values; ``notes`` says what was tolerated.

    Raises
    ------
    DLCFileError
        The file is missing, unreadable, corrupt, empty, multi-animal, or not laid out
        as DLC writes it.
    """
    path = Path(path)
    if not path.is_file():
        raise DLCFileError(f"DLC predictions file not found: {path}. Check the path, or "
                           "re-run DLC's analyze_videos for this video.")
    suffix = path.suffix.lower()
    notes: list[str] = []
    if suffix in (".h5", ".hdf5", ".hdf"):
        df = _read_h5(path, notes)
    elif suffix == ".csv":
        df = _read_csv(path, notes)
    else:
        raise DLCFileError(f"{path}: not a DLC predictions file (expected .h5 or .csv). "
                           "Give DLC's <video><scorer>.h5 or .csv output.")
    return _predictions_from_frame(df, path, notes)


# Keys DeepLabCut has stored predictions under, in order of preference: analyze_videos
# (every release), analyze_images (DLC 3). Multi-animal "tracks" files are refused later.
_H5_KEYS = (H5_KEY, "predictions", "tracks")


def _h5_key(path: Path, keys: list[str]) -> str:
    """The key of the predictions table in an HDF5 file holding ``keys``."""
    for key in _H5_KEYS:
        if key in keys:
            return key
    if len(keys) == 1:
        return keys[0]
    if not keys:
        raise DLCFileError(f"{path}: the HDF5 file holds no table. Re-export the "
                           "predictions from DeepLabCut, or delete the file.")
    raise DLCFileError(
        f"{path}: the HDF5 file holds several tables {keys} and none is '{H5_KEY}'; keep "
        "DLC's own output only (one table, key 'df_with_missing').")


def _read_h5(path: Path, notes: list[str] | None = None) -> pd.DataFrame:
    """The DataFrame stored in a DLC ``.h5`` file (``fixed`` or ``table`` format)."""
    try:
        with pd.HDFStore(path, mode="r") as store:
            key = _h5_key(path, [k.lstrip("/") for k in store.keys()])
            df = store.get(key)
        if key != H5_KEY and notes is not None:
            notes.append(f"{path.name}: HDF5 key {key!r} read (DLC's analyze_videos "
                         f"writes {H5_KEY!r})")
    except DLCFileError:
        raise
    except Exception as exc:  # HDF5 raises many types for damaged files
        raise DLCFileError(
            f"{path}: cannot read the DLC predictions ({type(exc).__name__}: {exc}). The "
            "file is corrupt or incomplete: re-export it from DeepLabCut or delete it."
        ) from exc
    if not isinstance(df, pd.DataFrame):
        raise DLCFileError(f"{path}: the HDF5 table is not a DataFrame; not a DLC output.")
    return df


_CSV_LABELS = ("scorer", "bodyparts", "coords")
_CSV_EXPECTED = ("three header rows whose first cells read scorer / bodyparts / coords, as "
                 "DeepLabCut's save_as_csv writes them, then one row per frame")


@dataclass(frozen=True)
class _CsvLayout:
    """Where the parts of a DLC CSV are, as found in its first rows."""

    label_col: int                  # column holding scorer / bodyparts / coords
    data_rows_start: int            # rows to skip before the first frame
    scorer: str
    body_parts: list[str]           # one per value column
    coords: list[str]               # one per value column
    notes: list[str]


def _csv_head(path: Path, n_rows: int = 6) -> tuple[list[list[str]], list[str]]:
    """The first rows of a CSV (quotes resolved) and notes on its encoding."""
    notes = []
    try:
        with path.open("rb") as f:
            start = f.read(65536)
        with path.open("r", encoding="utf-8-sig", newline="") as f:
            rows = []
            for row in csv.reader(f):
                rows.append(row)
                if len(rows) >= n_rows:
                    break
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DLCFileError(f"{path}: cannot read the CSV ({exc}). Save it as UTF-8 text, "
                           "or re-export it from DeepLabCut (save_as_csv=True).") from exc
    if start.startswith(b"\xef\xbb\xbf"):
        notes.append(f"{path.name}: UTF-8 byte-order mark (Excel) ignored")
    if b"\r\n" in start:
        notes.append(f"{path.name}: CRLF line endings (Windows/Excel) read as lines")
    return rows, notes


def _label(rows: list[list[str]], r: int, c: int) -> str:
    return rows[r][c].strip().lower() if r < len(rows) and c < len(rows[r]) else ""


def _csv_layout(path: Path) -> _CsvLayout:
    """Find DLC's header in a CSV as DLC, pandas or Excel saved it, or refuse clearly.

    DLC writes ``scorer,S,S,...`` / ``bodyparts,...`` / ``coords,...`` then frames.
    ``pd.read_csv(f).to_csv(out)`` turns the scorer row into the column names
    (``S, S.1, S.2...``) and adds a leading index column (so the labels move to column 1
    and the header row's first cell is empty); ``index=False`` keeps only the suffixes.
    """
    rows, notes = _csv_head(path)
    found = None
    for r in range(3):
        for c in range(2):
            if _label(rows, r, c) == "scorer" and _label(rows, r + 1, c) in (
                    "bodyparts", "individuals"):
                found = (r, c)
                break
        if found:
            break
    if found is None or _label(rows, found[0] + 1, found[1]) == "individuals":
        if found is not None or any(_label(rows, r, c) == "individuals"
                                    for r in range(len(rows)) for c in range(2)):
            _refuse_multi_animal(path)
        seen = [row[:2] for row in rows[:4]]
        raise DLCFileError(
            f"{path}: broken DLC CSV header: the first rows begin {seen}; expected "
            f"{_CSV_EXPECTED}. Fix: re-export the CSV from the .h5 with DeepLabCut "
            "(or pandas: pd.read_hdf(h5).to_csv(csv)), or ingest the .h5 instead.")
    r, c = found
    if _label(rows, r + 2, c) != "coords":
        raise DLCFileError(
            f"{path}: broken DLC CSV header: row {r + 3} begins "
            f"{rows[r + 2][:2] if r + 2 < len(rows) else 'nothing'}, expected 'coords'; "
            f"expected {_CSV_EXPECTED}. Fix: re-export the CSV from the .h5 with DeepLabCut, "
            "or ingest the .h5 instead.")
    if c == 1:
        notes.append(f"{path.name}: CSV re-saved by pandas with an extra leading index "
                     "column; column ignored, DLC's frame column used")
    scorers, body_parts, coords = (rows[r + i][c + 1:] for i in range(3))
    if not (len(scorers) == len(body_parts) == len(coords)) or not scorers or any(
            not cell.strip() for cell in (*scorers, *body_parts, *coords)):
        raise DLCFileError(
            f"{path}: broken DLC CSV header: the scorer / bodyparts / coords rows have "
            f"{len(scorers)} / {len(body_parts)} / {len(coords)} cells (or empty ones); "
            f"expected {_CSV_EXPECTED}, each row with one cell per value column. Fix: "
            "re-export the CSV from the .h5 with DeepLabCut, or ingest the .h5 instead.")
    first = scorers[0]
    if len(set(scorers)) > 1 and all(s == f"{first}.{k}" for k, s in enumerate(scorers)
                                     if k):
        notes.append(f"{path.name}: CSV re-saved by pandas: scorer header row had .1/.2 "
                     "suffixes; read as DLC wrote it")
        scorers = [first] * len(scorers)
    if len(set(scorers)) != 1:
        raise DLCFileError(f"{path}: several scorers {list(dict.fromkeys(scorers))} in one "
                           "file; keep one DLC model's output per file.")
    skip = r + 3
    after = rows[skip] if skip < len(rows) else []
    # pandas writes an index-name row after a MultiIndex header when the index is named.
    if after and after[c].strip() and not is_number(after[c]) and not any(
            cell.strip() for cell in after[c + 1:]):
        notes.append(f"{path.name}: index-name row {after[c]!r} after the header skipped")
        skip += 1
    return _CsvLayout(label_col=c, data_rows_start=skip, scorer=first,
                      body_parts=body_parts, coords=coords, notes=notes)


def _read_csv(path: Path, notes: list[str] | None = None) -> pd.DataFrame:
    """The DataFrame stored in a DLC ``.csv`` file (header found and checked first)."""
    layout = _csv_layout(path)
    if notes is not None:
        notes.extend(layout.notes)
    n_values = len(layout.coords)
    first_value = layout.label_col + 1
    try:
        raw = pd.read_csv(
            path, header=None, skiprows=layout.data_rows_start, encoding="utf-8-sig",
            float_precision="round_trip", usecols=range(layout.label_col,
                                                        first_value + n_values),
            dtype={i: np.float64 for i in range(first_value, first_value + n_values)})
    except Exception as exc:
        raise DLCFileError(f"{path}: cannot parse the DLC CSV below its header ({exc}). The "
                           "file is corrupt or truncated: re-export it from DeepLabCut or "
                           "delete it.") from exc
    _check_last_row(path, first_value + n_values)
    columns = pd.MultiIndex.from_arrays(
        [[layout.scorer] * n_values, layout.body_parts, layout.coords],
        names=list(_CSV_LABELS))
    return pd.DataFrame(raw.iloc[:, 1:].to_numpy(dtype=np.float64), columns=columns,
                        index=pd.Index(raw.iloc[:, 0].to_numpy()))


def _check_last_row(path: Path, n_cells: int) -> None:
    """Refuse a CSV whose last row is cut short (pandas would pad it with NaN silently)."""
    with path.open("rb") as f:
        f.seek(max(0, f.seek(0, os.SEEK_END) - 65536))
        tail = f.read().decode("utf-8", errors="replace").rstrip("\r\n")
    last = next(csv.reader([tail.rsplit("\n", 1)[-1].rstrip("\r")]), [])
    if 0 < len(last) < n_cells:
        raise DLCFileError(
            f"{path}: the last row has {len(last)} of {n_cells} cells: the file was cut "
            "short (an interrupted copy or save). Copy it again or re-export it from "
            "DeepLabCut; the .h5 of the same run can be ingested instead.")


def _refuse_multi_animal(path: Path) -> None:
    raise DLCFileError(
        f"{path}: multi-animal DLC output (an 'individuals' column level); this platform "
        "tracks one animal per recording. Use a single-animal DLC model for this recording.")


def _predictions_from_frame(df: pd.DataFrame, path: Path,
                            notes: list[str] | None = None) -> DLCPredictions:
    """Turn a DLC-layout DataFrame into :class:`DLCPredictions`."""
    columns = df.columns
    if not isinstance(columns, pd.MultiIndex):
        raise DLCFileError(f"{path}: columns are not DLC's (scorer, bodyparts, coords) "
                           "MultiIndex; not a DLC predictions file.")
    names = [str(n).lower() if n is not None else "" for n in columns.names]
    if columns.nlevels == 4 or "individuals" in names:
        _refuse_multi_animal(path)
    if columns.nlevels != 3:
        raise DLCFileError(f"{path}: expected 3 column levels (scorer, bodyparts, coords), "
                           f"found {columns.nlevels}; not a single-animal DLC output.")
    scorers = list(dict.fromkeys(str(s) for s in columns.get_level_values(0)))
    if len(scorers) != 1:
        raise DLCFileError(f"{path}: several scorers {scorers} in one file; keep one "
                           "DLC model's output per file.")
    body_parts = list(dict.fromkeys(str(b) for b in columns.get_level_values(1)))
    coords = {str(c) for c in columns.get_level_values(2)}
    if not set(COORDS) <= coords:
        raise DLCFileError(f"{path}: coords level must hold {list(COORDS)}, found "
                           f"{sorted(coords)}; not a DLC predictions file.")
    if len(df) == 0 or not body_parts:
        raise DLCFileError(f"{path}: the predictions file holds no frames. Re-run DLC on "
                           "the video, or delete the file.")
    wanted = pd.MultiIndex.from_product([[scorers[0]], body_parts, list(COORDS)])
    flat = [(str(a), str(b), str(c)) for a, b, c in columns]
    position = {key: i for i, key in enumerate(flat)}
    try:
        order = [position[key] for key in wanted]
    except KeyError as exc:
        raise DLCFileError(f"{path}: body part {exc.args[0][1]!r} lacks one of x, y, "
                           "likelihood; the file is incomplete.") from None
    try:
        values = df.to_numpy(dtype=np.float64)[:, order]
    except (TypeError, ValueError) as exc:
        raise DLCFileError(f"{path}: non-numeric prediction values ({exc}); the file is "
                           "corrupt: re-export it from DeepLabCut.") from exc
    poses = values.reshape(len(df), len(body_parts), 3)
    return DLCPredictions(scorer=scorers[0], body_parts=body_parts,
                          poses=mask_missing(poses), frames=_frame_numbers(df.index),
                          sources=[path], notes=list(notes or []))


def mask_missing(poses: np.ndarray) -> np.ndarray:
    """Set DLC's missing encodings to NaN in all three values (in place, returned).

    Parameters
    ----------
    poses : np.ndarray
        float64 ``(..., 3)`` ``[x, y, likelihood]``.

    Returns
    -------
    np.ndarray
        The same array; points with any NaN or with ``x == y == likelihood == 0`` are NaN.
    """
    missing = np.isnan(poses).any(axis=-1) | (poses == 0).all(axis=-1)
    poses[missing] = np.nan
    return poses


def _frame_numbers(index: pd.Index) -> np.ndarray:
    """Integer frame numbers from the DataFrame index (0..n-1 when it is not numeric)."""
    try:
        frames = np.asarray(index, dtype=np.int64)
    except (TypeError, ValueError):
        return np.arange(len(index), dtype=np.int64)
    if len(frames) and not np.array_equal(frames, np.asarray(index, dtype=np.float64)):
        return np.arange(len(index), dtype=np.int64)
    return frames


def write_predictions(
    path_h5: str | os.PathLike[str],
    scorer: str,
    body_parts: Sequence[str],
    poses: np.ndarray,
    *,
    csv: bool = False,
    frames: np.ndarray | None = None,
) -> Path:
    """Write predictions exactly as DeepLabCut's ``analyze_videos`` does.

    Parameters
    ----------
    path_h5 : str or os.PathLike
        Destination ``.h5`` (see :func:`output_names`).
    scorer : str
        DLC scorer name (top column level).
    body_parts : sequence of str
        Body-part names, order of ``poses`` axis 1.
    poses : np.ndarray
        ``(n_frames, n_body_parts, 3)`` ``[x, y, likelihood]``; NaN is written as NaN.
    csv : bool, default False
        Also write ``<same name>.csv`` (DLC's ``save_as_csv``).
    frames : np.ndarray, optional
        Frame numbers (index); default ``0..n_frames-1`` as DLC writes.

    Returns
    -------
    pathlib.Path
        The ``.h5`` path. Both files are written to a temporary name and renamed, so a
        folder watcher never sees half a file.
    """
    path_h5 = Path(path_h5)
    poses = np.asarray(poses, dtype=np.float64)
    body_parts = list(body_parts)
    if poses.ndim != 3 or poses.shape[1:] != (len(body_parts), 3):
        raise ValueError(f"poses must have shape (n_frames, {len(body_parts)}, 3), "
                         f"got {poses.shape}")
    index = range(poses.shape[0]) if frames is None else pd.Index(np.asarray(frames))
    columns = pd.MultiIndex.from_product([[scorer], body_parts, list(COORDS)],
                                         names=["scorer", "bodyparts", "coords"])
    df = pd.DataFrame(poses.reshape(poses.shape[0], len(body_parts) * 3), columns=columns,
                      index=index)
    atomic_write(path_h5, lambda tmp: df.to_hdf(tmp, key=H5_KEY, format="table", mode="w"))
    if csv:
        atomic_write(path_h5.with_suffix(".csv"), lambda tmp: df.to_csv(tmp))
    return path_h5


# ----------------------------------------------------------------------------- metadata


class _Placeholder(dict):
    """Stands in for objects of classes that cannot be imported (e.g. ``easydict``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.update(state)


class _LenientUnpickler(pickle.Unpickler):
    """Unpickler that replaces classes from modules not installed here by a dict.

    DLC 2.x TensorFlow metadata embeds its model config as an object of a helper class;
    the fields we need are plain values, so the config itself may stay opaque.
    """

    def find_class(self, module: str, name: str) -> Any:
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            return _Placeholder


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a DLC metadata pickle (``_meta.pickle`` or ``includingmetadata.pickle``).

    Parameters
    ----------
    path : str or os.PathLike
        The pickle. Only open pickles from your own data: unpickling runs code.

    Returns
    -------
    dict
        The inner ``"data"`` dict, as stored (``frame_dimensions`` raw), plus:

        - ``engine``: ``"pytorch"``, ``"tensorflow"`` or None, from the entries DLC writes
          (``pytorch-config`` / ``DLC-model-config file``; a pre-2.2
          ``includingmetadata`` pickle is always TensorFlow);
        - ``frame_width_px``, ``frame_height_px``: int or None, from ``frame_dimensions``
          read in the engine's order ((w, h) PyTorch, (h, w) TensorFlow), else from
          ``cropping_parameters`` ``[0, w, 0, h]`` when not cropping;
        - ``start_timestamp``: timezone-aware :class:`datetime.datetime` from a
          ``"Start Timestamp"`` entry (top level or inside ``"data"``), else None.

    Raises
    ------
    DLCFileError
        Missing, corrupt or not a DLC metadata dict; a Start Timestamp that is not ISO 8601
        with a time zone.
    """
    path = Path(path)
    if not path.is_file():
        raise DLCFileError(f"DLC metadata pickle not found: {path}. Copy it next to the "
                           "predictions file, or re-run DLC's analyze_videos.")
    try:
        with path.open("rb") as f:
            raw = _LenientUnpickler(f).load()
    except Exception as exc:  # pickle raises many types for damaged files
        raise DLCFileError(
            f"{path}: corrupt DLC metadata pickle ({type(exc).__name__}: {exc}). Re-export "
            "it from DeepLabCut, or delete it (and its predictions file) and re-run DLC."
        ) from exc
    if not isinstance(raw, dict):
        raise DLCFileError(f"{path}: not a DLC metadata pickle (holds a "
                           f"{type(raw).__name__}, expected a dict). Re-export or delete it.")
    inner = raw.get("data") if isinstance(raw.get("data"), dict) else raw
    data = dict(inner)
    stamp = data.get(START_TIMESTAMP_KEY, raw.get(START_TIMESTAMP_KEY))
    data["start_timestamp"] = (None if stamp is None
                               else parse_start_timestamp(stamp, source=path))
    data["engine"] = _engine_of(data, legacy=path.name.endswith("includingmetadata.pickle"))
    data["frame_width_px"], data["frame_height_px"] = _frame_size(data, data["engine"])
    return data


def _engine_of(data: dict[str, Any], *, legacy: bool) -> str | None:
    """DLC engine that wrote the metadata, from the entries only it writes."""
    if "pytorch-config" in data:
        return "pytorch"
    if "DLC-model-config file" in data or legacy:
        return "tensorflow"
    return None


def _frame_size(data: dict[str, Any], engine: str | None) -> tuple[int | None, int | None]:
    """(width, height) in pixels when they can be told reliably, else (None, None)."""
    dims = data.get("frame_dimensions")
    if engine is not None and isinstance(dims, list | tuple) and len(dims) == 2:
        a, b = (int(v) for v in dims)
        return (a, b) if engine == "pytorch" else (b, a)
    crop = data.get("cropping_parameters")
    if (not data.get("cropping") and isinstance(crop, list | tuple) and len(crop) == 4
            and int(crop[0]) == 0 and int(crop[2]) == 0):
        return int(crop[1]), int(crop[3])
    return None, None


def parse_start_timestamp(value: Any, *, source: str | os.PathLike[str] = "") -> datetime:
    """Parse a "Start Timestamp" (ISO 8601 with a time zone) into an aware datetime.

    Parameters
    ----------
    value : str or datetime.datetime
        e.g. ``"2024-01-31T10:15:00+01:00"`` or ``"2024-01-31T09:15:00Z"``.
    source : str or os.PathLike, optional
        File the value came from, for the error message.

    Raises
    ------
    DLCFileError
        Not ISO 8601, or without a time zone.
    """
    where = f"{source}: " if source else ""
    if isinstance(value, datetime):
        stamp = value
    else:
        try:
            stamp = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise DLCFileError(
                f"{where}Start Timestamp {value!r} is not ISO 8601; write it like "
                "'2024-01-31T10:15:00+01:00'.") from None
    if stamp.tzinfo is None or stamp.utcoffset() is None:
        raise DLCFileError(
            f"{where}Start Timestamp {value!r} has no time zone; add the offset, e.g. "
            "'2024-01-31T10:15:00+01:00' (or 'Z' for UTC).")
    return stamp


def write_metadata(
    path_pickle: str | os.PathLike[str],
    data: dict[str, Any],
    start_timestamp: str | datetime | None = None,
) -> Path:
    """Write a DLC metadata pickle ``{"data": {...}}`` as DeepLabCut does.

    Parameters
    ----------
    path_pickle : str or os.PathLike
        Destination, normally ``<stem><scorer>_meta.pickle`` (see :func:`output_names`).
    data : dict
        The metadata entries (``Scorer``, ``fps``, ``nframes``, ``frame_dimensions``...).
    start_timestamp : str or datetime, optional
        Stored as ``data["Start Timestamp"]`` (ISO 8601 string with a time zone); checked
        before anything is written.

    Returns
    -------
    pathlib.Path
        The pickle path (written to a temporary name, then renamed).
    """
    path_pickle = Path(path_pickle)
    payload = dict(data)
    if start_timestamp is not None:
        stamp = parse_start_timestamp(start_timestamp, source=path_pickle)
        payload[START_TIMESTAMP_KEY] = (start_timestamp if isinstance(start_timestamp, str)
                                        else stamp.isoformat())

    def dump(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            pickle.dump({"data": payload}, f, pickle.HIGHEST_PROTOCOL)

    atomic_write(path_pickle, dump)
    return path_pickle


# ----------------------------------------------------------------------------- folders


def _is_ignored(name: str) -> bool:
    """Hidden, temporary, editor-backup or partial-download files."""
    lower = name.lower()
    return (name.startswith((".", "~", "#")) or lower.endswith(
        (".tmp", ".temp", ".part", ".partial", ".crdownload", ".swp", "~")))


def find_output_sets(folder: str | os.PathLike[str], scorer: str | None = None,
                     ) -> list[OutputSet]:
    """DLC output sets in a manual outputs folder (``dlc_<video stem>/``), in file order.

    Parameters
    ----------
    folder : str or os.PathLike
        Folder holding ``<stem><scorer>.h5`` / ``.csv`` and their metadata pickles.
    scorer : str, optional
        Keep only sets of this scorer (also matches DLC's legacy ``DeepCut_`` spelling).

    Returns
    -------
    list[OutputSet]
        Sorted by predictions file name. ``.h5`` wins over a ``.csv`` of the same stem.
        Hidden and temporary files, ``_full.pickle`` and DLC's derived outputs
        (``_filtered``, ``_skeleton``, tracklet ``_el`` / ``_bx`` / ``_sk``) are ignored.

    Raises
    ------
    DLCFileError
        The folder does not exist, or a predictions file cannot be read.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DLCFileError(f"DLC outputs folder not found: {folder}. Create it and put the "
                           "DLC .h5 and _meta.pickle files in it.")
    folder_stem = folder.name[4:] if folder.name.startswith("dlc_") else None
    names = sorted(p.name for p in folder.iterdir() if p.is_file() and not _is_ignored(p.name))
    by_prefix: dict[str, str] = {}
    for name in names:
        lower = name.lower()
        if not lower.endswith((".h5", ".csv")):
            continue
        prefix = _prefix_of(name) if lower.endswith(".h5") else name[:-4]
        if prefix.endswith(_DERIVED_SUFFIXES):
            continue
        if prefix not in by_prefix or lower.endswith(".h5"):
            by_prefix[prefix] = name
    metas = {_prefix_of(n): n for n in names if n.endswith(_META_SUFFIXES)}
    sets = []
    for prefix, name in sorted(by_prefix.items(), key=lambda item: item[1]):
        path = folder / name
        found = _scorer_in_file(path)
        stem = (prefix[: -len(found)] if found and prefix.endswith(found)
                else scorer_from_filename(name, folder_stem)[0])
        if scorer is not None and found not in (scorer, scorer.replace("DLC", "DeepCut", 1)):
            continue
        meta = metas.get(prefix)
        sets.append(OutputSet(predictions_path=path,
                              metadata_path=folder / meta if meta else None,
                              scorer=found, video_stem=stem))
    return sets


def _scorer_in_file(path: Path) -> str:
    """The scorer column level of a predictions file, reading as little as possible."""
    if path.suffix.lower() == ".csv":
        return _csv_layout(path).scorer
    try:
        with pd.HDFStore(path, mode="r") as store:
            keys = [k.lstrip("/") for k in store.keys()]
            key = next((k for k in _H5_KEYS if k in keys),
                       keys[0] if len(keys) == 1 else None)
            if key is not None:
                try:
                    head = store.select(key, stop=1)
                except (TypeError, ValueError, NotImplementedError):
                    head = store.get(key)
                if isinstance(head.columns, pd.MultiIndex):
                    scorers = list(dict.fromkeys(map(str, head.columns.get_level_values(0))))
                    if len(scorers) == 1:
                        return scorers[0]
    except Exception:
        pass
    # Unreadable or unusual: let read_predictions give the precise reason.
    return read_predictions(path).scorer


def load_output_folder(folder: str | os.PathLike[str], expected_scorer: str,
                       *, skip_other_scorers: bool = False) -> DLCPredictions:
    """Load and concatenate every DLC output set in a folder, in file order.

    Parameters
    ----------
    folder : str or os.PathLike
        Manual outputs folder (``dlc_<video stem>/``).
    expected_scorer : str
        Scorer of the model the recording is assigned to.
    skip_other_scorers : bool
        Leave out the sets of other scorers (other models' outputs of the same video, kept
        beside them) instead of refusing the folder; at least one set must be
        ``expected_scorer``'s.

    Returns
    -------
    DLCPredictions
        All sets one after the other; frames renumbered ``0..n-1``; ``sources`` lists the
        files read.

    Raises
    ------
    DLCFileError
        No output sets; a set from another scorer (another model); sets with different body
        parts; any unreadable file.
    """
    folder = Path(folder)
    sets = find_output_sets(folder)
    if not sets:
        raise DLCFileError(f"{folder}: no DLC predictions (.h5 or .csv) found. Put the DLC "
                           "outputs of this video here, or remove the folder to run DLC.")
    legacy = expected_scorer.replace("DLC", "DeepCut", 1)
    if skip_other_scorers:
        mine = [s for s in sets if s.scorer in (expected_scorer, legacy)]
        if not mine:
            found = sorted({s.scorer for s in sets})
            raise DLCFileError(
                f"{folder}: no outputs of scorer {expected_scorer!r} (the assigned model's); "
                f"the folder holds outputs of {found}. Assign the recording to the model "
                "that made them, or put the assigned model's outputs beside them.")
        sets = mine
    for s in sets:
        if s.scorer not in (expected_scorer, legacy):
            raise DLCFileError(
                f"{s.predictions_path}: outputs from another model: scorer {s.scorer!r}, "
                f"expected {expected_scorer!r}. Move the file out of {folder}, or assign "
                "the recording to the model that made it.")
    parts = [read_predictions(s.predictions_path) for s in sets]
    first = parts[0]
    for s, p in zip(sets[1:], parts[1:], strict=True):
        if p.body_parts != first.body_parts:
            raise DLCFileError(
                f"{s.predictions_path}: body parts {p.body_parts} differ from "
                f"{first.body_parts} in {sets[0].predictions_path.name}; all sets in a "
                "folder must come from the same model.")
    poses = np.concatenate([p.poses for p in parts], axis=0)
    return DLCPredictions(scorer=first.scorer, body_parts=list(first.body_parts),
                          poses=poses, frames=np.arange(len(poses), dtype=np.int64),
                          sources=[s.predictions_path for s in sets],
                          notes=[note for p in parts for note in p.notes])
