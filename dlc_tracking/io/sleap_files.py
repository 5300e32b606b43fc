"""Reading SLEAP predictions (``.slp`` and analysis ``.h5``) through ``sleap-io``.

The result is the same :class:`~dlc_tracking.io.dlc_files.DLCPredictions` structure as
DeepLabCut's files: ``poses`` ``(n_frames, n_nodes, 3)`` ``[x_px, y_px, score]``, NaN where
SLEAP predicted nothing, body parts = SLEAP's node names (map them to canonical names with
the registry's body-part maps, as for DLC). Single-animal: a file with several tracks (or
several instances in one frame) needs ``track`` to name the one to read.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dlc_tracking.errors import DLCFileError
from dlc_tracking.io.dlc_files import DLCPredictions

__all__ = ["SLEAP_SUFFIXES", "find_sleap_files", "is_sleap_file", "read_sleap_predictions"]

SLEAP_SUFFIXES = (".slp", ".h5", ".analysis.h5")


def is_sleap_file(path: str | os.PathLike[str]) -> bool:
    """True for a SLEAP ``.slp`` or a SLEAP analysis ``.h5`` (datasets ``tracks`` and
    ``node_names``); False for DeepLabCut's ``.h5`` (a pandas table) and anything else.

    Only the file's layout is looked at, so a DLC and a SLEAP file may share a folder name.
    """
    path = Path(path)
    if path.name.startswith(".") or not path.is_file():
        return False
    suffix = path.suffix.lower()
    if suffix == ".slp":
        return True
    if suffix != ".h5":
        return False
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return "tracks" in f and "node_names" in f
    except OSError:  # not HDF5 at all: the DLC reader reports it
        return False


def find_sleap_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The SLEAP predictions files (:func:`is_sleap_file`) in a folder, sorted by name;
    empty when the folder does not exist."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if is_sleap_file(p))


def read_sleap_predictions(path: str | os.PathLike[str], *, track: str | None = None,
                           n_frames: int | None = None) -> DLCPredictions:
    """Read SLEAP predictions of one video.

    Parameters
    ----------
    path : str or os.PathLike
        A SLEAP ``.slp`` (predictions) or an analysis ``.h5``.
    track : str, optional
        Track name to read when the file holds several.
    n_frames : int, optional
        Frames of the video; default the last predicted frame + 1 (``.slp``) or the analysis
        file's length. Frames without a prediction are NaN.

    Returns
    -------
    DLCPredictions
        ``scorer`` ``"SLEAP"`` (plus the model's folder name when the file records one,
        ``SLEAP_<model folder>``),
        ``frames`` ``0..n-1``.

    Raises
    ------
    DLCFileError
        Missing or unreadable file; several tracks without ``track``; an unknown track;
        more predicted frames than ``n_frames``.
    """
    import sleap_io as sio

    path = Path(path)
    if not path.is_file():
        raise DLCFileError(f"SLEAP predictions file not found: {path}. Check the path, or "
                           "export the predictions from SLEAP (File > Export Analysis HDF5).")
    try:
        labels = (sio.load_analysis_h5(str(path)) if path.suffix.lower() == ".h5"
                  else sio.load_slp(str(path)))
    except Exception as exc:  # noqa: BLE001 - h5py / sleap-io raise many kinds
        raise DLCFileError(f"{path}: cannot read SLEAP predictions ({type(exc).__name__}: "
                           f"{exc}); is it a SLEAP .slp or analysis .h5? Export it again.") from exc
    if not labels.skeletons:
        raise DLCFileError(f"{path}: no skeleton in the SLEAP file; not a predictions file.")
    skeleton = labels.skeletons[0]
    nodes = [n.name for n in skeleton.nodes]
    names = [t.name for t in labels.tracks]
    if track is not None and track not in names:
        raise DLCFileError(f"{path}: track {track!r} not in the file (tracks: {names}).")
    if track is None and len(names) > 1:
        raise DLCFileError(f"{path}: {len(names)} tracks {names}; this reader is single-animal: "
                           "name the track to read, or use the multi-animal ingestion.")
    frames = [lf for lf in labels.labeled_frames]
    last = max((lf.frame_idx for lf in frames), default=-1)
    n = int(n_frames) if n_frames is not None else last + 1
    if last >= n:
        raise DLCFileError(f"{path}: predictions up to frame {last} but the video has {n} "
                           "frames; the file belongs to another (longer) video.")
    poses = np.full((n, len(nodes), 3), np.nan)
    for lf in frames:
        insts = [i for i in lf.instances if hasattr(i, "score")]  # predictions only
        if track is not None:
            insts = [i for i in insts if i.track is not None and i.track.name == track]
        if not insts:
            continue
        if len(insts) > 1 and track is None:
            raise DLCFileError(f"{path}: frame {lf.frame_idx} holds {len(insts)} predicted "
                               "instances without tracks; track the animals in SLEAP or use "
                               "the multi-animal ingestion.")
        inst = insts[0]
        arr = inst.numpy(scores=True)  # (n_nodes, 3): x, y, score
        poses[lf.frame_idx] = arr
    poses[~np.isfinite(poses[..., :2]).all(axis=2)] = np.nan
    provenance = getattr(labels, "provenance", {}) or {}
    model = provenance.get("model_paths") or provenance.get("model")
    first = Path(str(np.ravel(model)[0])) if model else None
    if first is not None and first.suffix.lower() == ".json":  # .../<model>/training_config.json
        first = first.parent
    scorer = "SLEAP" if first is None else f"SLEAP_{first.name}"
    return DLCPredictions(scorer=scorer, body_parts=nodes, poses=poses,
                          frames=np.arange(n, dtype=np.int64), sources=[path],
                          notes=[f"{path.name}: read with sleap-io {sio.__version__}"])
