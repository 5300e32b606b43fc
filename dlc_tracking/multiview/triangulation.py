"""Triangulation of per-camera 2D body parts into 3D, with aniposelib.

Per frame and body part: x/y/z (mm, world frame), mean reprojection error (px) over the
cameras used, the number of cameras used and a score (mean 2D likelihood of those
cameras). Steps:

1. 2D points below the likelihood cutoff (or NaN) are left out.
2. All remaining cameras: aniposelib's ``CameraGroup.triangulate`` (linear, undistorted;
   its OpenCV two-view path where exactly two cameras saw the point: same solution).
3. Robust (3+ cameras, on by default): where the mean reprojection error exceeds
   ``outlier_px``, each camera in turn is left out (aniposelib's triangulation again, for
   all such points at once) and the subset with the lowest error is kept if it is below
   the all-camera error; repeated while 3+ cameras remain. This is the choice
   aniposelib's ``triangulate_ransac`` makes, vectorised: ``triangulate_ransac`` loops in
   Python over points and is too slow for hour-long sessions (bench/triangulation.py).
4. Optional refinement (off by default): aniposelib's ``optim_points`` (Anipose's
   spatio-temporal filter: smoothness and limb-length constraints).

A body part seen by fewer than 2 cameras stays missing (NaN) and is counted, never
invented.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dlc_tracking.multiview.calibration import RigCalibration, check_camera_names
from dlc_tracking.multiview.errors import MultiviewError
from dlc_tracking.tracking.methods import DEFAULT_LIKELIHOOD_CUTOFF, short_hash

__all__ = ["CalibrationFit", "Pose3D", "TriangulationParams", "assess_calibration_fit",
           "triangulate_poses"]


@dataclass(frozen=True)
class TriangulationParams:
    """How 2D points become 3D (a named processing parameter set holds one).

    Attributes
    ----------
    likelihood_cutoff : float
        2D points below it are left out.
    robust : bool
        Leave out a disagreeing camera (3+ cameras).
    outlier_px : float
        Mean reprojection error above which a camera is looked for to leave out.
    refine : bool
        aniposelib's spatio-temporal optimisation (slow; off by default).
    scale_smooth, scale_length, reproj_error_threshold, reproj_loss, n_deriv_smooth
        ``CameraGroup.optim_points`` parameters (Anipose's defaults).
    constraints : tuple of (str, str)
        Body-part pairs whose distance is constant (limb lengths) for the refinement.
    max_error_px : float
        Median session reprojection error above which the calibration is flagged as not
        this rig's (:func:`assess_calibration_fit`).
    """

    likelihood_cutoff: float = DEFAULT_LIKELIHOOD_CUTOFF
    robust: bool = True
    outlier_px: float = 10.0
    refine: bool = False
    scale_smooth: float = 4.0
    scale_length: float = 2.0
    reproj_error_threshold: float = 15.0
    reproj_loss: str = "soft_l1"
    n_deriv_smooth: int = 1
    constraints: tuple[tuple[str, str], ...] = ()
    max_error_px: float = 5.0

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.likelihood_cutoff) <= 1.0:
            raise MultiviewError(f"likelihood_cutoff {self.likelihood_cutoff!r} must be in "
                                 "[0, 1].")
        if not self.outlier_px > 0 or not self.max_error_px > 0:
            raise MultiviewError("outlier_px and max_error_px must be > 0 pixels.")
        if self.reproj_loss not in ("soft_l1", "huber", "linear"):
            raise MultiviewError(f"reproj_loss {self.reproj_loss!r}: use soft_l1, huber or "
                                 "linear (aniposelib's).")
        object.__setattr__(self, "constraints",
                           tuple((str(a), str(b)) for a, b in self.constraints))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        d = asdict(self)
        d["constraints"] = [list(c) for c in self.constraints]
        return d

    @property
    def param_hash(self) -> str:
        """16-hex-digit hash of the parameters."""
        return short_hash(self.to_dict())


@dataclass(frozen=True)
class CalibrationFit:
    """How well a calibration explains a session's 2D points.

    Attributes
    ----------
    median_error_px : float
        Median reprojection error over triangulated points (NaN when none).
    per_camera_px : dict
        Camera -> median reprojection error of its used points.
    flagged : bool
        True when the median exceeds the threshold: likely another rig's calibration (or
        a camera moved).
    message : str
        What to do, naming the calibration.
    """

    median_error_px: float
    per_camera_px: dict[str, float]
    flagged: bool
    message: str


@dataclass(frozen=True, eq=False)
class Pose3D:
    """Triangulated body parts of one multi-camera recording.

    Attributes
    ----------
    body_parts : list of str
    cameras : list of str
        Camera order of ``used``.
    points : np.ndarray
        ``(n_frames, n_parts, 3)`` world x/y/z (mm); NaN = missing.
    error_px : np.ndarray
        ``(n_frames, n_parts)`` mean reprojection error over the cameras used.
    n_cameras : np.ndarray
        ``(n_frames, n_parts)`` int, cameras used (0 where missing).
    score : np.ndarray
        ``(n_frames, n_parts)`` mean 2D likelihood of the cameras used.
    used : np.ndarray
        ``(n_cameras, n_frames, n_parts)`` bool.
    camera_error_px : np.ndarray
        ``(n_cameras, n_frames, n_parts)`` reprojection error per camera (NaN if unused).
    stats : dict
        Counts: points seen by fewer than 2 cameras per body part, cameras left out...
    """

    body_parts: list[str]
    cameras: list[str]
    points: np.ndarray
    error_px: np.ndarray
    n_cameras: np.ndarray
    score: np.ndarray
    used: np.ndarray
    camera_error_px: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return int(self.points.shape[0])

    def to_frame(self) -> pd.DataFrame:
        """Long table, one row per frame and body part (the ``pose_3d`` table's columns):
        ``frame, body_part, x_mm, y_mm, z_mm, reprojection_error_px, n_cameras, score``."""
        n, k = self.points.shape[:2]
        return pd.DataFrame({
            "frame": np.repeat(np.arange(n, dtype=np.int64), k),
            "body_part": pd.Categorical(np.tile(np.asarray(self.body_parts, dtype=object), n),
                                        categories=self.body_parts),
            "x_mm": self.points[..., 0].ravel(),
            "y_mm": self.points[..., 1].ravel(),
            "z_mm": self.points[..., 2].ravel(),
            "reprojection_error_px": self.error_px.ravel(),
            "n_cameras": self.n_cameras.ravel().astype(np.int16),
            "score": self.score.ravel(),
        })


def stack_camera_poses(poses: Mapping[str, np.ndarray], source: str) -> np.ndarray:
    """``{camera: (n_frames, n_parts, 3)}`` -> ``(n_cameras, n_frames, n_parts, 3)``.

    Raises
    ------
    MultiviewError
        Cameras whose frame counts or body parts differ (synchronise first:
        :mod:`dlc_tracking.multiview.sync`).
    """
    shapes = {c: np.shape(p) for c, p in poses.items()}
    if len({s for s in shapes.values()}) != 1:
        raise MultiviewError(
            f"{source}: the cameras' 2D predictions differ in shape {shapes} "
            "(frames, body parts, 3); synchronise the cameras (same frame count, or frame "
            "times) and use one body-part list for every camera.")
    arr = np.stack([np.asarray(p, dtype=np.float64) for p in poses.values()])
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise MultiviewError(f"{source}: predictions must be (n_frames, n_parts, 3) per "
                             f"camera, got {arr.shape[1:]}.")
    return arr


def _triangulate(group: Any, pts: np.ndarray) -> np.ndarray:
    """aniposelib's triangulation of ``(C, N, 2)`` points (NaN = not seen) -> ``(N, 3)``.

    Points seen by exactly two cameras are solved per camera pair as aniposelib's
    ``triangulate(fast=True)`` does (undistorted, then OpenCV's two-view
    ``triangulatePoints``, what DeepLabCut uses), without its median over the one valid
    pair: the same linear solution as aniposelib's default jax path for two views (1e-10
    mm apart, tests/test_multiview_triangulation.py) at several times its speed. Points
    seen by three or more cameras keep the default all-camera solution (``fast`` would
    take the median of the camera pairs instead).
    """
    import itertools

    import cv2

    seen = np.isfinite(pts[..., 0])
    n_seen = seen.sum(axis=0)
    if not (n_seen == 2).any():
        return group.triangulate(pts)  # no copy of an hour of points when none is 2-view
    out = np.full((pts.shape[1], 3), np.nan)
    more = n_seen >= 3
    if more.any():
        out[more] = group.triangulate(pts[:, more])
    cams = group.cameras
    for i, j in itertools.combinations(range(len(cams)), 2):
        pair = (n_seen == 2) & seen[i] & seen[j]
        if not pair.any():
            continue
        a = cams[i].undistort_points(np.ascontiguousarray(pts[i, pair]))
        b = cams[j].undistort_points(np.ascontiguousarray(pts[j, pair]))
        tri = cv2.triangulatePoints(cams[i].get_extrinsics_mat()[:3],
                                    cams[j].get_extrinsics_mat()[:3],
                                    a.reshape(-1, 2).T, b.reshape(-1, 2).T)
        out[pair] = (tri[:3] / tri[3]).T
    return out


def _tri_err(group: Any, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """aniposelib triangulation of ``(C, N, 2)`` and the per-camera error ``(C, N)``."""
    p3d = _triangulate(group, pts)
    err = np.linalg.norm(group.reprojection_error(p3d, pts, mean=False), axis=2)
    return p3d, err


def _mean_err(err: np.ndarray) -> np.ndarray:
    """Mean over cameras of ``(C, N)`` errors, NaN where no camera has one."""
    import warnings

    if not err.size:
        return err
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: NaN, as meant
        return np.nanmean(err, axis=0)


def triangulate_poses(calibration: RigCalibration, poses: Mapping[str, np.ndarray],
                      body_parts: Sequence[str], params: TriangulationParams | None = None,
                      *, source: str = "recording") -> Pose3D:
    """Triangulate per-camera 2D predictions.

    Parameters
    ----------
    calibration : RigCalibration
        The rig's calibration (its camera names must include the session's).
    poses : mapping
        Camera -> ``(n_frames, n_parts, 3)`` ``[x_px, y_px, likelihood]`` (conventions),
        synchronised (same frames).
    body_parts : sequence of str
        Names of axis 1, the same for every camera.
    params : TriangulationParams, optional
    source : str
        Recording named in errors.

    Returns
    -------
    Pose3D
    """
    import warnings

    params = params or TriangulationParams()
    cams = list(poses)
    idx = check_camera_names(calibration, cams, source)
    group = calibration.group.subset_cameras(idx)
    arr = stack_camera_poses(poses, source)
    n_cams, n_frames, n_parts, _ = arr.shape
    if n_parts != len(body_parts):
        raise MultiviewError(f"{source}: {n_parts} body parts in the predictions, "
                             f"{len(body_parts)} names given ({list(body_parts)}).")
    with np.errstate(invalid="ignore"):
        keep = np.isfinite(arr[..., :2]).all(axis=-1) & (arr[..., 2] >= params.likelihood_cutoff)
    pts = np.where(keep[..., None], arr[..., :2], np.nan).reshape(n_cams, -1, 2)
    used = keep.reshape(n_cams, -1).copy()
    enough = used.sum(axis=0) >= 2
    p3d = np.full((pts.shape[1], 3), np.nan)
    err = np.full((n_cams, pts.shape[1]), np.nan)
    dropped = np.zeros(n_cams, dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if enough.any():
            sub = pts[:, enough]
            p_sub, e_sub = _tri_err(group, sub)
            p3d[enough], err[:, enough] = p_sub, e_sub
        # the fit of the calibration is judged before any camera is left out: leaving
        # cameras out can make any calibration look good on 2 cameras
        first_err = err.copy()
        if params.robust and n_cams >= 3:
            for _ in range(n_cams - 2):
                mean = _mean_err(err)
                cand = np.flatnonzero((used.sum(axis=0) >= 3) & (mean > params.outlier_px))
                if cand.size == 0:
                    break
                best_err = mean[cand].copy()
                best_drop = np.full(cand.size, -1)
                best_p = p3d[cand].copy()
                best_e = err[:, cand].copy()
                for c in range(n_cams):
                    trial = pts[:, cand].copy()
                    trial[c] = np.nan
                    ok = used[c, cand]  # leaving out a camera not used changes nothing
                    if not ok.any():
                        continue
                    p_t, e_t = _tri_err(group, trial[:, ok])
                    m_t = _mean_err(e_t)
                    better = m_t < best_err[ok]
                    where = np.flatnonzero(ok)[better]
                    best_err[where] = m_t[better]
                    best_drop[where] = c
                    best_p[where] = p_t[better]
                    best_e[:, where] = e_t[:, better]
                hit = best_drop >= 0
                if not hit.any():
                    break
                rows = cand[hit]
                used[best_drop[hit], rows] = False
                pts[best_drop[hit], rows] = np.nan
                p3d[rows], err[:, rows] = best_p[hit], best_e[:, hit]
                np.add.at(dropped, best_drop[hit], 1)
    points = p3d.reshape(n_frames, n_parts, 3)
    if params.refine:
        points = _refine(group, pts.reshape(n_cams, n_frames, n_parts, 2), points, body_parts,
                         params, source)
        err = np.linalg.norm(group.reprojection_error(
            points.reshape(-1, 3), pts, mean=False), axis=2)
    err = np.where(used, err, np.nan)
    with np.errstate(invalid="ignore"):
        n_used = used.sum(axis=0)
        mean_err = np.where(n_used >= 2, _mean_err(err), np.nan)
        lik = np.where(used, arr[..., 2].reshape(n_cams, -1), np.nan)
        score = np.where(n_used >= 2, _mean_err(lik), np.nan)
    missing = n_used < 2
    flat_points = points.reshape(-1, 3)
    flat_points[missing] = np.nan
    n_used = np.where(missing, 0, n_used)
    missing_2d = missing.reshape(n_frames, n_parts)
    stats = {
        "n_frames": n_frames,
        "cameras": cams,
        "params": params.to_dict(),
        "param_hash": params.param_hash,
        "missing_by_part": {bp: int(missing_2d[:, j].sum()) for j, bp in enumerate(body_parts)},
        "fewer_than_two_cameras": int(missing.sum()),
        "camera_left_out": {c: int(d) for c, d in zip(cams, dropped, strict=True)},
        "below_cutoff_by_camera": {c: int((~keep[i]).sum()) for i, c in enumerate(cams)},
        "all_cameras_error_px": _medians(first_err, cams),
    }
    return Pose3D(body_parts=list(body_parts), cameras=cams,
                  points=calibration.to_world(points),
                  error_px=mean_err.reshape(n_frames, n_parts),
                  n_cameras=n_used.reshape(n_frames, n_parts).astype(np.int16),
                  score=score.reshape(n_frames, n_parts),
                  used=used.reshape(n_cams, n_frames, n_parts) & ~missing_2d[None],
                  camera_error_px=err.reshape(n_cams, n_frames, n_parts), stats=stats)


def _medians(err: np.ndarray, cams: list[str]) -> dict[str, Any]:
    """Median reprojection error overall (of the per-point means) and per camera."""
    mean = _mean_err(err)
    mean = mean[np.isfinite(mean)]
    per_cam = {}
    for i, cam in enumerate(cams):
        e = err[i][np.isfinite(err[i])]
        per_cam[cam] = float(np.median(e)) if e.size else float("nan")
    return {"median": float(np.median(mean)) if mean.size else float("nan"),
            "per_camera": per_cam}


def _refine(group: Any, pts: np.ndarray, points: np.ndarray, body_parts: Sequence[str],
            params: TriangulationParams, source: str) -> np.ndarray:
    """aniposelib's spatio-temporal optimisation of ``points`` (calibration frame)."""
    names = list(body_parts)
    bad = [p for pair in params.constraints for p in pair if p not in names]
    if bad:
        raise MultiviewError(f"{source}: refinement constraints name body parts {bad} that "
                             f"are not tracked ({names}).")
    if np.isfinite(points[..., 0]).sum() < 20:
        return points  # aniposelib needs 20+ points; too few to refine
    constraints = [[names.index(a), names.index(b)] for a, b in params.constraints]
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        out = group.optim_points(pts, points, constraints=constraints,
                                 scale_smooth=params.scale_smooth,
                                 scale_length=params.scale_length,
                                 reproj_error_threshold=params.reproj_error_threshold,
                                 reproj_loss=params.reproj_loss,
                                 n_deriv_smooth=params.n_deriv_smooth)
    out = np.asarray(out, dtype=np.float64)
    out[~np.isfinite(points[..., 0])] = np.nan  # refinement never invents a missing part
    return out


def assess_calibration_fit(pose: Pose3D, max_error_px: float | None = None,
                           calibration_source: str = "the calibration",
                           source: str = "recording") -> CalibrationFit:
    """Flag a calibration that does not explain the session (another rig's, a moved camera).

    The errors are those of the first, all-camera triangulation (before a disagreeing
    camera is left out).

    Returns
    -------
    CalibrationFit
        ``flagged`` when the median reprojection error exceeds ``max_error_px`` (default
        the params' ``max_error_px``).
    """
    limit = float(max_error_px if max_error_px is not None
                  else pose.stats.get("params", {}).get("max_error_px", 5.0))
    first = pose.stats.get("all_cameras_error_px") or _medians(
        pose.camera_error_px.reshape(len(pose.cameras), -1), pose.cameras)
    median, per_cam = first["median"], dict(first["per_camera"])
    flagged = not (median <= limit)
    if flagged:
        worst = max(per_cam, key=lambda c: -np.inf if np.isnan(per_cam[c]) else per_cam[c])
        message = (f"{source}: median reprojection error {median:.1f} px with "
                   f"{calibration_source} exceeds {limit:g} px (worst camera {worst!r}: "
                   f"{per_cam[worst]:.1f} px). The calibration is likely from another rig or "
                   "day, or a camera moved: name the right calibration in session.yaml "
                   "(`calibration:`) or recalibrate the rig.")
    else:
        message = f"median reprojection error {median:.2f} px (limit {limit:g} px)"
    return CalibrationFit(median_error_px=median, per_camera_px=per_cam, flagged=flagged,
                          message=message)
