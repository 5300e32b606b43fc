"""Suite2p output folders: frame count, sampling rate and planes from ``plane*/ops.npy``.

Suite2p saves its settings and results as a pickled dict (``ops.npy``) per plane:
``nframes`` (frames of that plane), ``fs`` (sampling rate per plane, Hz), ``nplanes``,
``nchannels``. Frame times come from elsewhere when known (ScanImage tifs, a frame-times
file); alone, ops.npy gives them as ``(k * nplanes + plane) / (fs * nplanes)``.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlc_tracking.imaging.errors import ImagingError

__all__ = ["Suite2pOps", "read_suite2p", "suite2p_frame_times"]


@dataclass(frozen=True)
class Suite2pOps:
    """What Suite2p says about an acquisition.

    Attributes
    ----------
    folder : Path
        The folder holding ``plane0/``, ``plane1/``...
    ops_files : list of Path
        ``plane*/ops.npy``, in plane order.
    n_frames : int
        Frames per plane (``nframes``; the most of any plane).
    fs_hz : float
        Sampling rate per plane (``fs``).
    n_planes, n_channels : int
    """

    folder: Path
    ops_files: list[Path]
    n_frames: int
    fs_hz: float
    n_planes: int
    n_channels: int
    frames_per_plane: tuple[int, ...] = ()


def _plane_folders(folder: Path) -> list[Path]:
    for base in (folder, folder / "suite2p"):
        planes = sorted((p for p in base.glob("plane*") if (p / "ops.npy").is_file()),
                        key=lambda p: int("".join(c for c in p.name if c.isdigit()) or 0))
        if planes:
            return planes
    return []


def _load_ops(path: Path) -> dict:
    try:
        # ops.npy is a pickled dict by Suite2p's design; only files the lab names are read.
        ops = np.load(path, allow_pickle=True)
        ops = ops.item() if ops.dtype == object and ops.shape == () else ops
    except (OSError, ValueError, EOFError, pickle.UnpicklingError, ImportError,
            AttributeError, TypeError, IndexError) as exc:  # what unpickling a bad file raises
        raise ImagingError(f"{path} cannot be read as Suite2p's ops.npy ({exc!r}): is it "
                           "complete, and written by Suite2p? Copy it again or re-run "
                           "Suite2p.") from exc
    if not isinstance(ops, dict):
        raise ImagingError(f"{path} is not Suite2p's ops.npy (a saved dict of settings).")
    return ops


def read_suite2p(folder: str | Path) -> Suite2pOps:
    """Read ``<folder>/plane*/ops.npy`` (or ``<folder>/suite2p/plane*/ops.npy``).

    Raises
    ------
    ImagingError
        No ops.npy; ``nframes`` or ``fs`` missing or not positive; planes that disagree.
    """
    folder = Path(folder)
    planes = _plane_folders(folder)
    if not planes:
        raise ImagingError(f"{folder}: no plane*/ops.npy (Suite2p output) in it; name the "
                           "suite2p/ folder under `imaging: suite2p:`.")
    files = [p / "ops.npy" for p in planes]
    counts, rates = [], []
    n_planes = n_channels = 1
    for path in files:
        ops = _load_ops(path)
        try:
            n, fs = int(ops["nframes"]), float(ops["fs"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ImagingError(f"{path}: no numeric `nframes` and `fs` (Suite2p writes both "
                               "after registration); run Suite2p to the end.") from exc
        if n <= 0 or fs <= 0:
            raise ImagingError(f"{path}: nframes {n} and fs {fs} must be positive.")
        counts.append(n)
        rates.append(fs)
        n_planes = int(ops.get("nplanes", len(files)) or len(files))
        n_channels = int(ops.get("nchannels", 1) or 1)
    # An acquisition stopped mid-volume leaves the first planes one frame ahead.
    if max(counts) - min(counts) > 1 or counts != sorted(counts, reverse=True):
        raise ImagingError(f"{folder}: planes have frame counts {counts}; the planes of a "
                           "volume acquisition have the same number of frames (the first "
                           "ones at most one more, when it stopped mid-volume). Is every "
                           "plane folder of the same Suite2p run?")
    if n_planes != len(files):
        raise ImagingError(f"{files[0]}: nplanes is {n_planes} but {len(files)} plane "
                           "folder(s) hold an ops.npy; copy the whole suite2p/ folder.")
    return Suite2pOps(folder=folder, ops_files=files, n_frames=max(counts), fs_hz=rates[0],
                      n_planes=n_planes, n_channels=n_channels,
                      frames_per_plane=tuple(counts))


def suite2p_frame_times(ops: Suite2pOps) -> tuple[np.ndarray, np.ndarray]:
    """Frame times (s from the acquisition start) and planes of all frames, interleaved
    in acquisition order, from ``fs`` alone (no ScanImage header or frame-times file)."""
    n = sum(ops.frames_per_plane) if ops.frames_per_plane else ops.n_frames * ops.n_planes
    index = np.arange(n, dtype=np.float64)
    return index / (ops.fs_hz * ops.n_planes), np.arange(n) % ops.n_planes
