"""DLC output files as real labs have them, written with DeepLabCut's and pandas' own writers.

Test fixtures for the readers in :mod:`dlc_tracking.io.dlc_files`. Nothing here imitates a
format by hand where DLC's own code can write it:

- :func:`write_pytorch_outputs`: DLC 3.0.2 PyTorch ``analyze_videos``: the DataFrame, ``.h5``
  and ``.csv`` from ``pose_estimation_pytorch.apis.videos.create_df_from_prediction``, and
  the ``_meta.pickle`` dumped as that module does (``frame_dimensions`` (w, h));
- :func:`write_tensorflow_outputs`: the TensorFlow engine's ``utils.auxiliaryfunctions.
  save_data`` (``.h5``, ``.csv``, ``_meta.pickle`` with ``frame_dimensions`` (h, w));
- :func:`write_legacy_outputs`: DLC 2.0 / 2.1, before ``_meta.pickle``: the same ``.h5``
  with ``<stem><scorer>includingmetadata.pickle`` beside it;
- :func:`resave_csv`, :func:`resave_h5`, :func:`break_csv_header`: what happens to those
  files afterwards (pandas re-saves, Excel, ``format="fixed"``, a damaged header).

Importing DeepLabCut takes tens of seconds; it is imported when a writer first runs.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "RESAVES",
    "break_csv_header",
    "resave_csv",
    "resave_h5",
    "write_legacy_outputs",
    "write_pytorch_outputs",
    "write_tensorflow_outputs",
]

RESAVES = ("pandas", "pandas_no_index", "pandas_multiheader", "excel")
"""The CSV re-saves :func:`resave_csv` makes (see there)."""


def write_pytorch_outputs(folder: str | Path, video_stem: str, scorer: str,
                          body_parts: Sequence[str], poses: np.ndarray, *,
                          fps: float = 30.0, frame_size: tuple[int, int] = (640, 480),
                          individuals: Sequence[str] | None = None,
                          save_as_csv: bool = True, prefix: str | None = None,
                          ) -> dict[str, Path]:
    """Write what DLC 3.0.2's PyTorch ``analyze_videos`` writes for one video.

    Parameters
    ----------
    folder : str or Path
        Destination folder (created).
    video_stem, scorer : str
        Files are named ``<video_stem><scorer>.h5`` / ``.csv`` / ``_meta.pickle``.
    body_parts : sequence of str
        Body-part names.
    poses : np.ndarray
        ``(n_frames, n_body_parts, 3)``, or ``(n_frames, n_individuals, n_body_parts, 3)``
        with ``individuals`` (a multi-animal output).
    fps : float
        Frame rate stored in the metadata.
    frame_size : tuple[int, int]
        (width, height) of the video.
    individuals : sequence of str, optional
        Multi-animal: the individuals' names (adds DLC's ``individuals`` column level).
    save_as_csv : bool
        Also write the CSV, as ``analyze_videos(save_as_csv=True)``.
    prefix : str, optional
        File name prefix instead of ``<video_stem><scorer>`` (for scorers holding ``/``).

    Returns
    -------
    dict[str, Path]
        ``{"h5": ..., "csv": ... (if written), "meta": ...}``.
    """
    from deeplabcut.pose_estimation_pytorch.apis.videos import create_df_from_prediction

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    poses = np.asarray(poses, dtype=np.float64)
    multi = individuals is not None
    per_frame = poses if multi else poses[:, None]
    model_cfg = {"metadata": {"bodyparts": list(body_parts), "unique_bodyparts": [],
                              "individuals": list(individuals or ["animal"])}}
    predictions = [{"bodyparts": frame} for frame in per_frame]
    prefix = prefix or f"{video_stem}{scorer}"
    create_df_from_prediction(predictions, scorer, multi, model_cfg, folder, prefix,
                              save_as_csv=save_as_csv)
    width, height = frame_size
    metadata = {"data": {
        "start": 0.0, "stop": 1.0, "run_duration": 1.0, "Scorer": scorer,
        "pytorch-config": {"net_type": "resnet_50", **model_cfg}, "fps": fps,
        "batch_size": 8, "frame_dimensions": (width, height), "nframes": len(poses),
        "iteration (active-learning)": 0, "training set fraction": 0.95, "cropping": False,
        "cropping_parameters": [0, width, 0, height],
        **model_cfg["metadata"]}}
    meta = folder / f"{prefix}_meta.pickle"
    with meta.open("wb") as f:  # as pose_estimation_pytorch.apis.videos dumps it
        pickle.dump(metadata, f, pickle.HIGHEST_PROTOCOL)
    out = {"h5": folder / f"{prefix}.h5", "meta": meta}
    if save_as_csv:
        out["csv"] = folder / f"{prefix}.csv"
    return out


def _tf_metadata(scorer: str, fps: float, frame_size: tuple[int, int], nframes: int) -> dict:
    """The metadata dict of DLC's TensorFlow ``predict_videos`` (frame_dimensions (h, w))."""
    width, height = frame_size
    return {"data": {
        "start": 0.0, "stop": 1.0, "run_duration": 1.0, "Scorer": scorer,
        "DLC-model-config file": {"net_type": "resnet_50", "batch_size": 1}, "fps": fps,
        "batch_size": 1, "frame_dimensions": (height, width), "nframes": nframes,
        "iteration (active-learning)": 0, "training set fraction": 0.95, "cropping": False,
        "cropping_parameters": [0, width, 0, height]}}


def _tf_columns(scorer: str, body_parts: Sequence[str]) -> pd.MultiIndex:
    """The column index of DLC's TensorFlow ``predict_videos`` (its ``pdindex``)."""
    return pd.MultiIndex.from_product([[scorer], list(body_parts), ["x", "y", "likelihood"]],
                                      names=["scorer", "bodyparts", "coords"])


def write_tensorflow_outputs(folder: str | Path, video_stem: str, scorer: str,
                             body_parts: Sequence[str], poses: np.ndarray, *,
                             fps: float = 30.0, frame_size: tuple[int, int] = (640, 480),
                             save_as_csv: bool = True, prefix: str | None = None,
                             ) -> dict[str, Path]:
    """Write what DLC's TensorFlow ``analyze_videos`` writes, with its own ``save_data``.

    Parameters are those of :func:`write_pytorch_outputs` (single animal only).
    """
    from deeplabcut.utils.auxiliaryfunctions import save_data

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    poses = np.asarray(poses, dtype=np.float64)
    prefix = prefix or f"{video_stem}{scorer}"
    dataname = folder / f"{prefix}.h5"
    save_data(poses.reshape(len(poses), -1), _tf_metadata(scorer, fps, frame_size,
                                                          len(poses)),
              dataname, _tf_columns(scorer, body_parts), range(len(poses)), save_as_csv)
    out = {"h5": dataname, "meta": folder / f"{prefix}_meta.pickle"}
    if save_as_csv:
        out["csv"] = dataname.with_suffix(".csv")
    return out


def write_legacy_outputs(folder: str | Path, video_stem: str, scorer: str,
                         body_parts: Sequence[str], poses: np.ndarray, *,
                         fps: float = 30.0, frame_size: tuple[int, int] = (640, 480),
                         ) -> dict[str, Path]:
    """Write DLC 2.0 / 2.1 outputs: ``.h5`` and ``<stem><scorer>includingmetadata.pickle``.

    DLC 2.0's ``save_data`` wrote the same table (``to_hdf(dataname, "df_with_missing",
    format="table", mode="w")``) and pickled the metadata next to it under the older name.
    Parameters are those of :func:`write_tensorflow_outputs`.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    poses = np.asarray(poses, dtype=np.float64)
    dataname = folder / f"{video_stem}{scorer}.h5"
    frame = pd.DataFrame(poses.reshape(len(poses), -1), columns=_tf_columns(scorer,
                                                                             body_parts),
                         index=range(len(poses)))
    frame.to_hdf(dataname, key="df_with_missing", format="table", mode="w")
    meta = folder / f"{video_stem}{scorer}includingmetadata.pickle"
    with meta.open("wb") as f:
        pickle.dump(_tf_metadata(scorer, fps, frame_size, len(poses)), f,
                    pickle.HIGHEST_PROTOCOL)
    return {"h5": dataname, "meta": meta}


def resave_csv(src: str | Path, dst: str | Path, how: str) -> Path:
    """Re-save a DLC CSV the ways users do.

    Parameters
    ----------
    src, dst : str or Path
        DLC's CSV and where to write the re-saved copy.
    how : str
        ``"pandas"``: ``pd.read_csv(src).to_csv(dst)`` (scorer row suffixed ``.1``, ``.2``,
        a leading index column); ``"pandas_no_index"``: the same with ``index=False``;
        ``"pandas_multiheader"``: ``pd.read_csv(src, header=[0, 1, 2], index_col=0)
        .to_csv(dst)``; ``"excel"``: the multiheader frame saved with a UTF-8 byte-order mark
        and CRLF line endings, as Excel saves "CSV UTF-8".

    Returns
    -------
    Path
        ``dst``.
    """
    dst = Path(dst)
    if how == "pandas":
        pd.read_csv(src).to_csv(dst)
    elif how == "pandas_no_index":
        pd.read_csv(src).to_csv(dst, index=False)
    elif how == "pandas_multiheader":
        pd.read_csv(src, header=[0, 1, 2], index_col=0).to_csv(dst)
    elif how == "excel":
        pd.read_csv(src, header=[0, 1, 2], index_col=0).to_csv(
            dst, encoding="utf-8-sig", lineterminator="\r\n")
    else:
        raise ValueError(f"how must be one of {RESAVES}, got {how!r}")
    return dst


def resave_h5(src: str | Path, dst: str | Path, *, key: str = "df_with_missing",
              fmt: str = "fixed") -> Path:
    """Re-save a DLC ``.h5`` with pandas under another key and/or format."""
    pd.read_hdf(src).to_hdf(dst, key=key, format=fmt, mode="w")
    return Path(dst)


def break_csv_header(src: str | Path, dst: str | Path, *, drop_row: int = 2) -> Path:
    """Copy a CSV without one of its header rows (row 2 = ``coords``), as a bad edit does."""
    lines = Path(src).read_text(encoding="utf-8").splitlines(keepends=True)
    Path(dst).write_text("".join(lines[:drop_row] + lines[drop_row + 1:]), encoding="utf-8")
    return Path(dst)
