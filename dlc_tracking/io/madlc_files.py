"""Reading multi-animal DeepLabCut (maDLC) outputs.

Formats, as DeepLabCut 3.0.2 writes them (``analyze_videos`` of a project with
``multianimalproject: true``):

- Tracked ``<stem><scorer>_<tracker>.h5``: ``_el`` (ellipse tracker, the default), ``_bx``
  (box), ``_sk`` (skeleton), ``_el_tr`` (transformer re-identification on top of the
  tracklets), and ``..._filtered.h5`` after ``filterpredictions``. The stitcher
  (``refine_training_dataset.stitch.TrackletStitcher.write_tracks``) stores the table
  under the key ``tracks``; ``filterpredictions`` and ``create_df_from_prediction`` under
  ``df_with_missing``. Columns are a MultiIndex ``(scorer, individuals, bodyparts,
  coords)``; unique body parts (parts of no animal: arena corners, a feeder) sit under
  the individual ``single``.
- The CSV beside it (``save_as_csv``): four header rows ``scorer`` / ``individuals`` /
  ``bodyparts`` / ``coords``, the frame in column 0.
- Files whose animals are body-part name prefixes (``B_nose``, ``W_nose``) and no
  ``individuals`` level: read with a caller-given prefix -> individual mapping.
- Before tracking: ``<stem><scorer>_full.pickle`` (raw detections),
  ``<stem><scorer>_assemblies.pickle`` (animals assembled per frame) and tracklet
  pickles ``<stem><scorer>_el.pickle`` (``_bx``, ``_sk``). When the tracked ``.h5`` is
  missing they are re-tracked here with DeepLabCut's own functions
  (``pose_estimation_pytorch.apis.tracklets.build_tracklets`` and
  ``refine_training_dataset.stitch.TrackletStitcher``, what ``convert_detections2tracklets``
  and ``stitch_tracklets`` run).

Result: :class:`MultiAnimalPredictions`, poses ``(n_frames, n_individuals, n_parts, 3)``
``[x_px, y_px, likelihood]`` (NaN = missing) and unique body parts separately
``(n_frames, n_unique, 3)``; :meth:`MultiAnimalPredictions.to_long` gives the long table
with an ``individual`` column.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlc_tracking.errors import DLCFileError
from dlc_tracking.io.dlc_files import COORDS, H5_KEY, _read_h5

__all__ = [
    "SINGLE",
    "TRACKERS",
    "MultiAnimalPredictions",
    "find_madlc_outputs",
    "read_madlc",
    "read_madlc_pickles",
    "tracker_of",
    "write_madlc",
]

SINGLE = "single"
"""The individual DeepLabCut files unique body parts under."""

TRACKERS = {"el": "ellipse", "bx": "box", "sk": "skeleton", "tr": "transformer"}
"""Tracker file-name suffixes and DeepLabCut's names for them."""

_TRACKER_SUFFIX = re.compile(r"_(el|bx|sk)(_tr)?(_filtered)?$")


@dataclass
class MultiAnimalPredictions:
    """Multi-animal DLC predictions of one video.

    Attributes
    ----------
    scorer : str
        DLC scorer (top column level).
    individuals : list[str]
        Individuals as named in the file (``mus1``, ``ind1``...), order of axis 1.
    body_parts : list[str]
        Multi-animal body parts, order of axis 2.
    poses : np.ndarray
        float64 ``(n_frames, n_individuals, n_body_parts, 3)``; NaN = missing.
    unique_body_parts : list[str]
        Body parts of no animal (DLC's ``single`` individual).
    unique_poses : np.ndarray
        float64 ``(n_frames, n_unique, 3)``.
    frames : np.ndarray
        int64 ``(n_frames,)``.
    sources : list[pathlib.Path]
        Files read.
    tracker : str or None
        ``ellipse``, ``box``, ``skeleton``, ``transformer`` from the file name; None when
        the name does not say.
    filtered : bool
        A ``_filtered`` file (DLC's ``filterpredictions``).
    notes : list[str]
        What was tolerated or done while reading (re-tracking, prefix mapping).
    """

    scorer: str
    individuals: list[str]
    body_parts: list[str]
    poses: np.ndarray
    unique_body_parts: list[str] = field(default_factory=list)
    unique_poses: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 3)))
    frames: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    sources: list[Path] = field(default_factory=list)
    tracker: str | None = None
    filtered: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return int(self.poses.shape[0])

    def individual(self, name: str) -> np.ndarray:
        """Poses ``(n_frames, n_body_parts, 3)`` of one individual (a view)."""
        if name not in self.individuals:
            raise DLCFileError(
                f"{self._where()}: no individual {name!r}; the file has {self.individuals}. "
                "Check the session's `individuals:` mapping against the file.")
        return self.poses[:, self.individuals.index(name)]

    def _where(self) -> str:
        return str(self.sources[0]) if self.sources else "maDLC predictions"

    def to_long(self, recording_id: str, model_name: str, time_s: np.ndarray,
                individual_names: Mapping[str, str] | None = None) -> pd.DataFrame:
        """Long table, one row per frame x individual x body part (individual-major).

        The single-animal :func:`dlc_tracking.tracking.predictions.to_long` is run per
        individual and an ``individual`` column added, so every other column is exactly
        the single-animal table's.

        Parameters
        ----------
        recording_id, model_name : str
            Keys of the rows.
        time_s : np.ndarray
            ``(n_frames,)`` frame times.
        individual_names : mapping, optional
            File name -> name stored in ``individual`` (default: the file's names).
        """
        from dlc_tracking.tracking.predictions import to_long

        names = dict(individual_names or {})
        parts = []
        for k, ind in enumerate(self.individuals):
            df = to_long(recording_id, model_name, self.poses[:, k], self.body_parts, time_s)
            df.insert(2, "individual", names.get(ind, ind))
            parts.append(df)
        out = pd.concat(parts, ignore_index=True)
        out["individual"] = out["individual"].astype("category")
        return out

    def unique_to_long(self, recording_id: str, model_name: str, time_s: np.ndarray
                       ) -> pd.DataFrame:
        """Long table of the unique body parts (the ``unique_body_parts`` table)."""
        from dlc_tracking.tracking.predictions import to_long

        return to_long(recording_id, model_name, self.unique_poses,
                       self.unique_body_parts, time_s)


# ----------------------------------------------------------------------------- names


def tracker_of(name: str) -> tuple[str | None, bool]:
    """Tracker and ``_filtered`` flag from a maDLC file name.

    Examples: ``vidDLC_x_el.h5`` -> ``("ellipse", False)``; ``vidDLC_x_el_tr_filtered.csv``
    -> ``("transformer", True)``; ``vidDLC_x.h5`` -> ``(None, False)``.
    """
    stem = Path(name).stem
    match = _TRACKER_SUFFIX.search(stem)
    filtered = stem.endswith("_filtered")
    if match is None:
        return None, filtered
    return ("transformer" if match.group(2) else TRACKERS[match.group(1)]), filtered


def find_madlc_outputs(folder: str | os.PathLike[str]) -> dict[str, Path]:
    """The maDLC files of a folder, by kind, the best of each kind.

    Returns
    -------
    dict
        Keys among ``tracks`` (the tracked ``.h5``, else ``.csv``; a ``_filtered`` one
        wins, as it is what the lab chose to keep), ``tracklets`` (``_el/_bx/_sk.pickle``),
        ``assemblies``, ``full``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DLCFileError(f"maDLC outputs folder not found: {folder}.")
    out: dict[str, Path] = {}
    names = sorted(p.name for p in folder.iterdir() if p.is_file()
                   and not p.name.startswith("."))
    tracked = [n for n in names if n.lower().endswith((".h5", ".csv"))
               and tracker_of(n)[0] is not None]
    if tracked:
        # .h5 before .csv, filtered before raw
        tracked.sort(key=lambda n: (not n.endswith("_filtered" + Path(n).suffix),
                                    not n.lower().endswith(".h5"), n))
        out["tracks"] = folder / tracked[0]
    for n in names:
        if n.endswith("_assemblies.pickle"):
            out.setdefault("assemblies", folder / n)
        elif n.endswith("_full.pickle"):
            out.setdefault("full", folder / n)
        elif re.search(r"_(el|bx|sk)\.pickle$", n):
            out.setdefault("tracklets", folder / n)
    return out


# ----------------------------------------------------------------------------- tables


def read_madlc(path: str | os.PathLike[str], *,
               prefix_individuals: Mapping[str, str] | None = None,
               separator: str = "_", recording: str = "") -> MultiAnimalPredictions:
    """Read a maDLC tracked ``.h5`` or ``.csv``.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    prefix_individuals : mapping, optional
        For files whose animals are body-part name prefixes (no ``individuals`` level):
        prefix -> individual, e.g. ``{"B": "black", "W": "white"}`` reads ``B_nose`` as
        body part ``nose`` of ``black``. Body parts with no listed prefix become unique
        body parts (said in ``notes``).
    separator : str
        Between prefix and body part (``_``).
    recording : str
        Recording id named in error messages.

    Raises
    ------
    DLCFileError
        Missing/corrupt file; a single-animal file without ``prefix_individuals``;
        individuals with different body parts; a prefix mapping matching nothing.
    """
    path = Path(path)
    where = f"{path}" + (f" (recording {recording})" if recording else "")
    if not path.is_file():
        raise DLCFileError(f"maDLC predictions file not found: {where}. Check the path or "
                           "re-run DeepLabCut's analyze_videos (auto_track=True).")
    notes: list[str] = []
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        df = _read_h5(path, notes)
    elif suffix == ".csv":
        df = _read_madlc_csv(path, where, prefix_individuals is not None)
    else:
        raise DLCFileError(f"{where}: not a maDLC predictions file (expected .h5 or .csv).")
    tracker, filtered = tracker_of(path.name)
    out = _from_frame(df, where, prefix_individuals, separator, notes)
    out.sources, out.tracker, out.filtered = [path], tracker, filtered
    return out


def _read_madlc_csv(path: Path, where: str, prefixed: bool) -> pd.DataFrame:
    """A maDLC CSV: four header rows (three for a prefix-encoded file)."""
    with path.open("r", encoding="utf-8-sig") as f:
        labels = [f.readline().split(",", 1)[0].strip().lower() for _ in range(4)]
    if labels[:2] == ["scorer", "individuals"] and labels[2:] == ["bodyparts", "coords"]:
        header = [0, 1, 2, 3]
    elif labels[:3] == ["scorer", "bodyparts", "coords"] and prefixed:
        header = [0, 1, 2]
    elif labels[:3] == ["scorer", "bodyparts", "coords"]:
        raise DLCFileError(
            f"{where}: a single-animal DLC CSV (no 'individuals' header row). If its "
            "animals are body-part prefixes (B_nose, W_nose), list them under "
            "`individual_prefixes:` in session.yaml (docs/multi-animal.md); otherwise "
            "ingest it as a single-animal recording.")
    else:
        raise DLCFileError(
            f"{where}: broken maDLC CSV header: first cells {labels}; expected the rows "
            "scorer / individuals / bodyparts / coords that DeepLabCut writes. Re-export "
            "the CSV from the .h5 or ingest the .h5.")
    try:
        df = pd.read_csv(path, header=header, index_col=0, encoding="utf-8-sig",
                         float_precision="round_trip")
    except Exception as exc:
        raise DLCFileError(f"{where}: cannot parse the maDLC CSV ({exc}); re-export it from "
                           "DeepLabCut or ingest the .h5.") from exc
    df.columns = df.columns.set_names(["scorer", "individuals", "bodyparts", "coords"][
        : len(header)] if len(header) == 4 else ["scorer", "bodyparts", "coords"])
    return df.astype(np.float64)


def _from_frame(df: pd.DataFrame, where: str, prefixes: Mapping[str, str] | None,
                separator: str, notes: list[str]) -> MultiAnimalPredictions:
    cols = df.columns
    if not isinstance(cols, pd.MultiIndex) or cols.nlevels not in (3, 4):
        raise DLCFileError(f"{where}: columns are not DeepLabCut's MultiIndex "
                           "(scorer, [individuals,] bodyparts, coords).")
    if len(df) == 0:
        raise DLCFileError(f"{where}: the file holds no frames; re-run DeepLabCut.")
    scorers = list(dict.fromkeys(map(str, cols.get_level_values(0))))
    if len(scorers) != 1:
        raise DLCFileError(f"{where}: several scorers {scorers} in one file; keep one "
                           "model's output per file.")
    if cols.nlevels == 3:
        if prefixes is None:
            raise DLCFileError(
                f"{where}: a single-animal DLC file (no 'individuals' column level). If its "
                "animals are body-part prefixes (B_nose, W_nose), list them under "
                "`individual_prefixes:` in session.yaml (docs/multi-animal.md); otherwise "
                "ingest it as a single-animal recording.")
        df = _split_prefixes(df, where, prefixes, separator, notes)
        cols = df.columns
    frames = _frame_numbers(df, where)
    n = len(df)
    individuals = [i for i in dict.fromkeys(map(str, cols.get_level_values(1))) if i != SINGLE]
    parts_of: dict[str, list[str]] = {}
    for col in cols:  # names only: no data copied
        parts = parts_of.setdefault(str(col[1]), [])
        if str(col[2]) not in parts:
            parts.append(str(col[2]))
    if not individuals:
        raise DLCFileError(f"{where}: no individuals, only unique body parts ('single').")
    body_parts = parts_of[individuals[0]]
    for ind in individuals[1:]:
        if parts_of[ind] != body_parts:
            raise DLCFileError(
                f"{where}: individual {ind!r} has body parts {parts_of[ind]}, "
                f"{individuals[0]!r} has {body_parts}; every individual of a maDLC file "
                "has the same multi-animal body parts. The file was edited: re-export it.")
    scorer = scorers[0]
    wanted = pd.MultiIndex.from_product([[scorer], individuals, body_parts, list(COORDS)])
    absent = wanted.difference(cols)
    if len(absent):
        raise DLCFileError(f"{where}: columns {list(absent)[:3]} are missing; the file is "
                           "incomplete: re-export it from DeepLabCut.")
    # one positional take, then a reshape (no per-column loop, no reindexed frame copy)
    values = df.to_numpy(np.float64, copy=False)
    index = cols.get_indexer(wanted)
    if np.array_equal(index, np.arange(len(index))):  # DLC's own order: a contiguous copy
        poses = values[:, :len(index)].copy()
    else:
        poses = values[:, index]
    poses = poses.reshape(n, len(individuals), len(body_parts), 3)
    unique_parts = parts_of.get(SINGLE, [])
    unique = np.zeros((n, 0, 3))
    if unique_parts:
        uwanted = pd.MultiIndex.from_product([[scorer], [SINGLE], unique_parts, list(COORDS)])
        unique = values[:, cols.get_indexer(uwanted)].reshape(n, len(unique_parts), 3)
    return MultiAnimalPredictions(
        scorer=scorer, individuals=individuals, body_parts=body_parts,
        poses=_mask_missing(poses), unique_body_parts=unique_parts,
        unique_poses=_mask_missing(unique), frames=frames, notes=notes)


def _mask_missing(poses: np.ndarray) -> np.ndarray:
    """DLC's missing encodings (NaN anywhere in a point; -1 coordinates of the PyTorch
    engine's empty slots) as NaN in all three values."""
    with np.errstate(invalid="ignore"):
        bad = np.isnan(poses).any(-1) | (poses[..., :2] < 0).all(-1) & (poses[..., 2] <= 0)
    poses[bad] = np.nan  # in place: the callers pass a fresh array
    return poses


def _frame_numbers(df: pd.DataFrame, where: str) -> np.ndarray:
    index = df.index
    if isinstance(index, pd.MultiIndex):  # analyze_images-style (labeled-data, folder, img)
        return np.arange(len(df), dtype=np.int64)
    try:
        frames = np.asarray(index, dtype=np.int64)
    except (TypeError, ValueError):
        frames = np.array([int(re.findall(r"\d+", str(v))[-1]) for v in index])
    if len(frames) > 1 and np.any(np.diff(frames) <= 0):
        raise DLCFileError(f"{where}: frame numbers are not increasing; the file was "
                           "edited or concatenated: re-export it from DeepLabCut.")
    return frames


def _split_prefixes(df: pd.DataFrame, where: str, prefixes: Mapping[str, str],
                    separator: str, notes: list[str]) -> pd.DataFrame:
    """``(scorer, 'B_nose', coords)`` -> ``(scorer, individual, 'nose', coords)``."""
    scorer_level, parts, coords = (df.columns.get_level_values(i) for i in range(3))
    new = []
    matched: set[str] = set()
    unmatched: list[str] = []
    for s, bp, c in zip(scorer_level, parts, coords, strict=True):
        head, sep, rest = str(bp).partition(separator)
        if sep and head in prefixes and rest:
            new.append((s, prefixes[head], rest, c))
            matched.add(head)
        else:
            new.append((s, SINGLE, str(bp), c))
            if bp not in unmatched:
                unmatched.append(str(bp))
    missing = [p for p in prefixes if p not in matched]
    if missing:
        raise DLCFileError(
            f"{where}: no body part starts with {[p + separator for p in missing]}; the "
            f"file's body parts are {list(dict.fromkeys(map(str, parts)))}. Fix "
            "`individual_prefixes:` in session.yaml.")
    notes.append(f"{Path(where.split(' (')[0]).name}: individuals read from body-part "
                 f"prefixes {dict(prefixes)}")
    if unmatched:
        notes.append(f"body parts without an individual prefix kept as unique body parts: "
                     f"{unmatched}")
    out = df.copy()
    out.columns = pd.MultiIndex.from_tuples(
        new, names=["scorer", "individuals", "bodyparts", "coords"])
    return out


def write_madlc(path_h5: str | os.PathLike[str], predictions: MultiAnimalPredictions, *,
                individual_names: Mapping[str, str] | None = None, key: str = H5_KEY,
                csv: bool = False) -> Path:
    """Write predictions back as a maDLC tracked ``.h5`` (original scorer, individuals and
    body-part names; unique parts under ``single``), as the stitcher's ``format_df`` lays
    them out. ``individual_names`` renames individuals (e.g. to subject ids)."""
    p = predictions
    names = [dict(individual_names or {}).get(i, i) for i in p.individuals]
    n = p.n_frames
    cols = pd.MultiIndex.from_product([[p.scorer], names, p.body_parts, list(COORDS)],
                                      names=["scorer", "individuals", "bodyparts", "coords"])
    df = pd.DataFrame(p.poses.reshape(n, -1), columns=cols, index=p.frames)
    if p.unique_body_parts:
        ucols = pd.MultiIndex.from_product(
            [[p.scorer], [SINGLE], p.unique_body_parts, list(COORDS)], names=cols.names)
        df = df.join(pd.DataFrame(p.unique_poses.reshape(n, -1), columns=ucols,
                                  index=p.frames))
    path = Path(path_h5)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_hdf(path, key=key, format="table", mode="w")
    if csv:
        df.to_csv(path.with_suffix(".csv"))
    return path


# ----------------------------------------------------------------------------- pickles


DEFAULT_INFERENCE_CFG: dict[str, Any] = {
    "max_age": 100, "min_hits": 1, "iou_threshold": 0.6, "pcutoff": 0.1,
    "topktoretain": None, "boundingboxslack": 0, "oks_threshold": 0.5}
"""Tracker settings used when no ``inference_cfg.yaml`` is given (DeepLabCut's own
defaults of ``auxfun_multianimal.read_inferencecfg`` for the ellipse tracker);
``topktoretain`` is set to the number of individuals."""


def read_madlc_pickles(folder: str | os.PathLike[str], individuals: Sequence[str], *,
                       body_parts: Sequence[str] | None = None,
                       unique_body_parts: Sequence[str] = (),
                       track_method: str = "ellipse",
                       inference_cfg: Mapping[str, Any] | None = None,
                       min_length: int = 10, recording: str = "",
                       ) -> MultiAnimalPredictions:
    """Re-track a video from DeepLabCut's pickles when its tracked ``.h5`` is missing.

    Uses, in order of what is present: the tracklet pickle (``_el/_bx/_sk.pickle``,
    stitched directly), the ``_assemblies.pickle``, or the ``_full.pickle`` (assembled
    with DLC's ``_generate_assemblies_file`` first). Tracklets are built with DLC's
    ``build_tracklets`` and stitched with its ``TrackletStitcher`` (``build_graph``,
    ``stitch``, ``format_df``), as ``convert_detections2tracklets`` and
    ``stitch_tracklets`` do, so the result is what DeepLabCut itself would write.

    Parameters
    ----------
    folder : path
        Folder with the pickles of one video.
    individuals : sequence of str
        The project's ``individuals`` (number of tracks and their names).
    body_parts : sequence of str, optional
        Multi-animal body parts, needed for assemblies / full pickles (the project's
        ``multianimalbodyparts``); the tracklet pickle's header names them itself.
    unique_body_parts : sequence of str
        The project's ``uniquebodyparts``.
    track_method : str
        ``ellipse``, ``box`` or ``skeleton``.
    inference_cfg : mapping, optional
        DLC's ``inference_cfg.yaml`` values; default :data:`DEFAULT_INFERENCE_CFG`.
    min_length : int
        Shortest tracklet the stitcher keeps (DLC's default 10).
    """
    from deeplabcut.pose_estimation_pytorch.apis.tracklets import build_tracklets
    from deeplabcut.refine_training_dataset.stitch import TrackletStitcher

    folder = Path(folder)
    where = f"{folder}" + (f" (recording {recording})" if recording else "")
    found = find_madlc_outputs(folder)
    individuals = list(individuals)
    notes: list[str] = []
    if "tracklets" in found:
        source = found["tracklets"]
        tracklets = _load_pickle(source, where)
    elif "assemblies" in found or "full" in found:
        if body_parts is None:
            raise DLCFileError(f"{where}: re-tracking from the assemblies needs the model's "
                               "multi-animal body parts; register the maDLC model first.")
        if "assemblies" in found:
            source = found["assemblies"]
            assemblies = _load_pickle(source, where)
        else:
            source = found["full"]
            assemblies = _assemble_full(source, len(body_parts), len(unique_body_parts),
                                        where)
            notes.append(f"{source.name}: assembled with DeepLabCut's "
                         "_generate_assemblies_file")
        frame_keys = [k for k in assemblies if isinstance(k, int | np.integer)]
        n_frames = int(max(frame_keys)) + 1 if frame_keys else 0
        cfg = dict(DEFAULT_INFERENCE_CFG, **dict(inference_cfg or {}))
        cfg["topktoretain"] = cfg.get("topktoretain") or len(individuals)
        scorer = _scorer_from_name(source.name)
        joints = list(body_parts) + list(unique_body_parts)
        with kalman_fix():
            tracklets = build_tracklets(assemblies, track_method, cfg, joints, scorer,
                                        n_frames, unique_bodyparts=list(unique_body_parts))
        notes.append(f"{source.name}: tracklets built with DeepLabCut's build_tracklets "
                     f"({track_method} tracker)")
    else:
        raise DLCFileError(
            f"{where}: no maDLC tracks file (<video><scorer>_el.h5) and no _full.pickle, "
            "_assemblies.pickle or tracklet pickle to re-track from. Run DeepLabCut's "
            "analyze_videos(auto_track=True) on the video, or copy its outputs here.")
    try:
        stitcher = TrackletStitcher.from_dict_of_dict(dict(tracklets), len(individuals),
                                                      min_length=min_length)
        stitcher.build_graph()
        stitcher.stitch()
        df = stitcher.format_df(animal_names=individuals)
    except (OSError, ValueError) as exc:
        raise DLCFileError(f"{where}: DeepLabCut could not stitch the tracklets of "
                           f"{source.name} ({exc}). Run analyze_videos(auto_track=True) "
                           "and ingest its _el.h5.") from exc
    notes.append(f"{source.name}: stitched into {len(individuals)} tracks with "
                 "DeepLabCut's TrackletStitcher")
    if stitcher.single is not None and unique_body_parts:
        df = _rename_unique(df, list(unique_body_parts))
    out = _from_frame(df, where, None, "_", notes)
    # the stitched table spans the first to last tracked frame; frames before it are empty
    out.sources = [source]
    suffix = re.search(r"_(el|bx|sk)\.pickle$", source.name)
    out.tracker = TRACKERS[suffix.group(1)] if suffix else track_method
    return out


def kalman_is_broken() -> bool:
    """True when filterpy's ``kinematic_kf(..., order_by_dim=False)`` builds a wrong
    measurement matrix ``H`` (filterpy 2.0.0 sets every position column of every row to
    1, so each measurement reads the sum of all positions). DeepLabCut's ellipse, box and
    skeleton trackers (``deeplabcut.core.trackingutils.BaseTracker``) build their Kalman
    filters that way, so with such a filterpy their tracks drift off within frames."""
    from filterpy.common import kinematic_kf

    kf = kinematic_kf(2, 1, dim_z=2, order_by_dim=False)
    return not np.array_equal(kf.H, np.hstack([np.eye(2), np.zeros((2, 2))]))


@contextmanager
def kalman_fix():
    """While re-tracking, give DeepLabCut's trackers a ``kinematic_kf`` whose ``H`` reads
    the positions (``[I 0]``), as filterpy 1.4 built it; nothing changes when filterpy
    is correct. Only ``deeplabcut.core.trackingutils``' own reference is replaced, and
    restored afterwards."""
    from deeplabcut.core import trackingutils

    if not kalman_is_broken():
        yield
        return
    original = trackingutils.kinematic_kf

    def fixed(dim, order, dt=1.0, dim_z=1, order_by_dim=True, **kwargs):
        kf = original(dim, order, dt=dt, dim_z=dim_z, order_by_dim=order_by_dim, **kwargs)
        if not order_by_dim:
            kf.H = np.zeros_like(kf.H)
            kf.H[np.arange(dim_z), np.arange(dim_z)] = 1.0
        return kf

    trackingutils.kinematic_kf = fixed
    try:
        yield
    finally:
        trackingutils.kinematic_kf = original


def _rename_unique(df: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Give the ``single`` columns the project's unique body-part names (the stitcher
    takes them from the end of the header's body parts, which may hold only the
    multi-animal parts)."""
    cols = list(df.columns)
    single = [c for c in cols if c[1] == SINGLE]
    if len(single) != 3 * len(names):
        return df
    it = iter(range(len(single)))
    mapping = {}
    for c in single:
        k = next(it)
        mapping[c] = (c[0], SINGLE, names[k // 3], c[3])
    df = df.copy()
    df.columns = pd.MultiIndex.from_tuples([mapping.get(c, c) for c in cols],
                                           names=df.columns.names)
    return df


def _scorer_from_name(name: str) -> str:
    stem = re.sub(r"(_assemblies|_full|_el|_bx|_sk)\.pickle$", "", name)
    match = re.search(r"(DLC|DeepCut)_", stem)
    return stem[match.start():] if match else stem


def _load_pickle(path: Path, where: str) -> Any:
    try:
        with path.open("rb") as f:
            return pickle.load(f)
    except Exception as exc:
        raise DLCFileError(f"{where}: cannot read {path.name} ({type(exc).__name__}: "
                           f"{exc}); it is corrupt or incomplete: re-run DeepLabCut's "
                           "analyze_videos.") from exc


def _assemble_full(full: Path, n_parts: int, n_unique: int, where: str) -> dict:
    """Assemblies of a ``_full.pickle`` made by DeepLabCut's own code (in a temporary
    folder: nothing is written beside the lab's files)."""
    import tempfile

    from deeplabcut.pose_estimation_pytorch.apis.videos import _generate_assemblies_file

    with tempfile.TemporaryDirectory(prefix="madlc-") as tmp:
        out = Path(tmp) / full.name.replace("_full.pickle", "_assemblies.pickle")
        try:
            _generate_assemblies_file(full, out, n_parts, n_unique)
        except Exception as exc:
            raise DLCFileError(f"{where}: cannot assemble {full.name} ("
                               f"{type(exc).__name__}: {exc}); re-run DeepLabCut's "
                               "analyze_videos.") from exc
        return _load_pickle(out, where)
