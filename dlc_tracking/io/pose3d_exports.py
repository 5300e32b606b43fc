"""Exports of triangulated body parts in the layouts other tools read.

- DeepLabCut's ``_3D.h5``: key ``df_with_missing``, ``format="table"``, columns
  ``(scorer, bodyparts, coords)`` with coords ``x, y, z`` (DLC's ``triangulate``).
- Anipose's ``pose-3d/*.csv``: per body part ``<bp>_x, _y, _z, _error, _ncams, _score``,
  then the alignment ``M_00..M_22``, ``center_0..2`` and ``fnum`` (Anipose's
  ``triangulate``). Anipose writes rotated, centred points (``M @ (p - center)``); this
  export writes world points with ``M`` the identity and ``center`` 0, so a tool that undoes
  the alignment gets the same world points.
- movement: an ``xarray.Dataset`` from ``movement.io.load_poses.from_numpy`` with
  ``space`` = ``x, y, z``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dlc_tracking.io.atomic import atomic_write
from dlc_tracking.io.dlc_files import H5_KEY
from dlc_tracking.multiview.triangulation import Pose3D

__all__ = ["DLC_3D_SCORER", "POSE_3D_FORMATS", "export_pose_3d", "pose_from_table",
           "to_anipose_frame", "to_movement_dataset", "write_anipose_csv",
           "write_dlc_3d_h5"]

DLC_3D_SCORER = "DLC_3D"


def write_dlc_3d_h5(pose: Pose3D, path: str | os.PathLike[str],
                    scorer: str = DLC_3D_SCORER, csv: bool = False) -> Path:
    """Write DeepLabCut's ``<stem>_DLC_3D.h5`` layout (mm, world frame).

    Returns
    -------
    pathlib.Path
        The ``.h5`` (written to a temporary name, then renamed).
    """
    path = Path(path)
    columns = pd.MultiIndex.from_product([[scorer], pose.body_parts, ["x", "y", "z"]],
                                         names=["scorer", "bodyparts", "coords"])
    df = pd.DataFrame(pose.points.reshape(pose.n_frames, -1), columns=columns,
                      index=range(pose.n_frames))
    atomic_write(path, lambda tmp: df.to_hdf(tmp, key=H5_KEY, format="table", mode="w"))
    if csv:
        atomic_write(path.with_suffix(".csv"), lambda tmp: df.to_csv(tmp))
    return path


def to_anipose_frame(pose: Pose3D) -> pd.DataFrame:
    """Anipose's pose-3d table."""
    cols: dict[str, Any] = {}
    for j, bp in enumerate(pose.body_parts):
        for k, axis in enumerate("xyz"):
            cols[f"{bp}_{axis}"] = pose.points[:, j, k]
        cols[f"{bp}_error"] = pose.error_px[:, j]
        cols[f"{bp}_ncams"] = pose.n_cameras[:, j].astype(np.int64)
        cols[f"{bp}_score"] = pose.score[:, j]
    eye = np.eye(3)
    for i in range(3):
        for k in range(3):
            cols[f"M_{i}{k}"] = np.full(pose.n_frames, eye[i, k])
    for i in range(3):
        cols[f"center_{i}"] = np.zeros(pose.n_frames)
    cols["fnum"] = np.arange(pose.n_frames, dtype=np.int64)
    return pd.DataFrame(cols)


def write_anipose_csv(pose: Pose3D, path: str | os.PathLike[str]) -> Path:
    """Write Anipose's ``pose-3d`` CSV (no index column, as Anipose writes it)."""
    path = Path(path)
    df = to_anipose_frame(pose)
    atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))
    return path


def to_movement_dataset(pose: Pose3D, fps: float | None = None, individual: str = "subject",
                        ) -> Any:
    """A movement poses dataset with ``space`` = ``x, y, z`` (mm) and the 3D score as
    confidence."""
    from movement.io import load_poses

    position = pose.points.transpose(0, 2, 1)[..., None]       # time, space, keypoints, ind
    confidence = pose.score[..., None]                           # time, keypoints, ind
    ds = load_poses.from_numpy(position_array=position, confidence_array=confidence,
                               individual_names=[individual],
                               keypoint_names=list(pose.body_parts), fps=fps,
                               source_software="dlc-platform")
    ds.attrs["space_unit"] = "mm"
    return ds


POSE_3D_FORMATS = ("dlc-3d-h5", "anipose-csv", "movement-3d")


def pose_from_table(table: pd.DataFrame) -> Pose3D:
    """A :class:`Pose3D` from rows of the ``pose_3d`` warehouse table (one recording).

    The per-camera arrays (``used``, ``camera_error_px``) are not stored in the table and
    come back with no camera axis.
    """
    parts = list(dict.fromkeys(table["body_part"].astype(str)))
    frames = np.sort(table["frame"].unique())
    n, k = len(frames), len(parts)
    wide = table.assign(body_part=table["body_part"].astype(str)).set_index(
        ["frame", "body_part"]).reindex(pd.MultiIndex.from_product([frames, parts]))

    def grid(column: str) -> np.ndarray:
        return wide[column].to_numpy(np.float64).reshape(n, k)

    points = np.stack([grid("x_mm"), grid("y_mm"), grid("z_mm")], axis=-1)
    n_cams = np.nan_to_num(grid("n_cameras")).astype(np.int64)
    return Pose3D(parts, [], points, grid("reprojection_error_px"), n_cams, grid("score"),
                  np.zeros((0, n, k), dtype=bool), np.zeros((0, n, k)))


def export_pose_3d(table: pd.DataFrame, fmt: str, out: str | os.PathLike[str],
                   fps: float | None = None) -> Path:
    """Write one recording's ``pose_3d`` rows as ``dlc-3d-h5``, ``anipose-csv`` or
    ``movement-3d`` (netCDF)."""
    pose = pose_from_table(table)
    out = Path(out)
    if fmt == "dlc-3d-h5":
        return write_dlc_3d_h5(pose, out)
    if fmt == "anipose-csv":
        return write_anipose_csv(pose, out)
    if fmt == "movement-3d":
        ds = to_movement_dataset(pose, fps=fps)
        atomic_write(out, lambda tmp: ds.to_netcdf(tmp))
        return out
    raise ValueError(f"unknown 3D export format {fmt!r}; use one of {POSE_3D_FORMATS}.")
