"""Camera calibration of a rig: from board videos, or imported from Anipose or DeepLabCut.

Three sources, one result (:class:`RigCalibration`, an aniposelib ``CameraGroup`` plus
provenance, per-camera reprojection error and the world axes):

- :func:`calibrate_videos`: ChArUco or checkerboard videos, one per camera, through
  aniposelib (intrinsics, extrinsics, iterative bundle adjustment). Lengths are in the
  board's unit: millimetres.
- :func:`load_anipose_toml`: an Anipose ``calibration.toml`` (``CameraGroup.load``),
  unchanged.
- :func:`load_dlc_3d`: a DeepLabCut 3D project's ``camera_matrix/`` (two cameras:
  ``stereo_params.pickle``); DLC calibrates in units of one checkerboard square, so the
  square's size in mm is required.

World axes (docs/3d.md): the calibration's own frame (the first camera's), or aligned to
the arena with :func:`align_to_points` (origin, a point on +x, a point in the floor with
positive y: z then points up) or :func:`align_to_board` (the board lying on the floor).
The alignment is a rigid transform stored with the calibration and applied to every
triangulated point; the cameras themselves are never changed.
"""

from __future__ import annotations

import contextlib
import io
import json
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from dlc_tracking.multiview.boards import Board
from dlc_tracking.multiview.errors import MultiviewError

__all__ = [
    "RigCalibration",
    "align_to_board",
    "align_to_image_points",
    "align_to_points",
    "calibrate_videos",
    "check_camera_names",
    "load_anipose_toml",
    "load_dlc_3d",
]


@dataclass
class RigCalibration:
    """A rig's cameras (intrinsics, distortion, extrinsics) and where they came from.

    Attributes
    ----------
    group : aniposelib.cameras.CameraGroup
        The cameras, in calibration-frame millimetres.
    source : str
        ``"charuco_videos"``, ``"checkerboard_videos"``, ``"anipose_toml"`` or ``"dlc_3d"``.
    source_files : list of str
        Files it was made from.
    reprojection_error_px : dict
        Camera -> mean reprojection error (px) on the calibration's own board detections;
        None where the source does not give it (an imported toml).
    world_from_calibration : np.ndarray
        ``(4, 4)`` rigid transform from the calibration frame to the world frame.
    axes : str
        ``"calibration"`` (identity), ``"points"`` or ``"floor_board"``.
    board : Board, optional
        The board of a video calibration.
    notes : list of str
        What the import had to tell (e.g. DLC's unit conversion).
    """

    group: Any
    source: str
    source_files: list[str] = field(default_factory=list)
    reprojection_error_px: dict[str, float | None] = field(default_factory=dict)
    world_from_calibration: np.ndarray = field(default_factory=lambda: np.eye(4))
    axes: str = "calibration"
    board: Board | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def camera_names(self) -> list[str]:
        """Camera names, in calibration order."""
        return list(self.group.get_names())

    @property
    def image_sizes(self) -> dict[str, tuple[int, int] | None]:
        """Camera -> ``(width, height)`` in pixels (None when unknown)."""
        return {c.get_name(): (None if c.get_size() is None else
                               (int(c.get_size()[0]), int(c.get_size()[1])))
                for c in self.group.cameras}

    def to_world(self, points: np.ndarray) -> np.ndarray:
        """Calibration-frame points ``(..., 3)`` -> world frame (NaN stays NaN)."""
        m = self.world_from_calibration
        return np.asarray(points, dtype=np.float64) @ m[:3, :3].T + m[:3, 3]

    def to_calibration_frame(self, points: np.ndarray) -> np.ndarray:
        """World points ``(..., 3)`` -> calibration frame."""
        m = self.world_from_calibration
        return (np.asarray(points, dtype=np.float64) - m[:3, 3]) @ m[:3, :3]

    def project(self, world_points: np.ndarray) -> np.ndarray:
        """World points ``(n, 3)`` -> ``(n_cameras, n, 2)`` pixels."""
        pts = self.to_calibration_frame(np.asarray(world_points).reshape(-1, 3))
        return self.group.project(pts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (cameras as Anipose's tables)."""
        return {
            "cameras": self.group.get_dicts(),
            "source": self.source,
            "source_files": list(self.source_files),
            "reprojection_error_px": dict(self.reprojection_error_px),
            "world_from_calibration": self.world_from_calibration.tolist(),
            "axes": self.axes,
            "board": self.board.to_dict() if self.board else None,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RigCalibration:
        """Inverse of :meth:`to_dict`."""
        from aniposelib.cameras import CameraGroup

        return cls(group=CameraGroup.from_dicts(list(data["cameras"])), source=data["source"],
                   source_files=list(data.get("source_files") or []),
                   reprojection_error_px=dict(data.get("reprojection_error_px") or {}),
                   world_from_calibration=np.asarray(data.get("world_from_calibration",
                                                              np.eye(4)), dtype=np.float64),
                   axes=str(data.get("axes") or "calibration"),
                   board=Board.from_dict(data["board"]) if data.get("board") else None,
                   notes=list(data.get("notes") or []))

    def to_json(self) -> str:
        """Canonical JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), sort_keys=True)

    def write_toml(self, path: str | Path) -> Path:
        """An Anipose ``calibration.toml`` (aniposelib's writer); the world alignment and
        the errors go to its ``[metadata]`` table, which Anipose keeps and ignores."""
        group = self.group.copy()
        group.metadata = {"world_from_calibration": self.world_from_calibration.tolist(),
                          "axes": self.axes, "source": self.source,
                          "reprojection_error_px": {k: v for k, v in
                                                    self.reprojection_error_px.items()
                                                    if v is not None}}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        group.dump(str(path))
        return path

    def with_axes(self, world_from_calibration: np.ndarray, axes: str) -> RigCalibration:
        """A copy with other world axes."""
        m = np.asarray(world_from_calibration, dtype=np.float64)
        if m.shape != (4, 4) or not np.allclose(m[:3, :3] @ m[:3, :3].T, np.eye(3), atol=1e-6):
            raise MultiviewError(f"world alignment {m.tolist()} is not a rigid 4x4 transform.")
        return RigCalibration(group=self.group, source=self.source,
                              source_files=list(self.source_files),
                              reprojection_error_px=dict(self.reprojection_error_px),
                              world_from_calibration=m, axes=axes, board=self.board,
                              notes=list(self.notes))


# --------------------------------------------------------------------------- checks


def check_camera_names(calibration: RigCalibration, cameras: Sequence[str], source: str,
                       calibration_source: str = "") -> list[int]:
    """Indices of the session's cameras in the calibration, or a clear error.

    Raises
    ------
    MultiviewError
        A session camera the calibration does not have (naming both lists).
    """
    names = calibration.camera_names
    missing = [c for c in cameras if c not in names]
    if missing:
        origin = calibration_source or (calibration.source_files[0]
                                        if calibration.source_files else calibration.source)
        raise MultiviewError(
            f"{source}: cameras {missing} are not in the calibration {origin} (its cameras: "
            f"{names}). The camera names in session.yaml `cameras:` must be the rig's and the "
            "calibration's: rename them, or calibrate the rig with these cameras.")
    return [names.index(c) for c in cameras]


# --------------------------------------------------------------------------- videos


def _quiet(fn, *args, **kwargs):
    """Call an aniposelib function without its progress prints (they go nowhere useful)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args, **kwargs)


def calibrate_videos(videos: Mapping[str, str | Path | Sequence[str | Path]], board: Board, *,
                     min_detections: int = 5, seed: int = 0) -> RigCalibration:
    """Calibrate a rig from board videos filmed by every camera at the same time.

    Parameters
    ----------
    videos : mapping
        Camera name -> its calibration video (or a list of videos, filmed in the same
        order by every camera); the cameras' order is the mapping's.
    board : Board
        The board filmed.
    min_detections : int
        Fewest frames with the board found per camera.
    seed : int
        Seed of aniposelib's random point sampling (numpy's global generator), so a
        calibration can be repeated exactly.

    Returns
    -------
    RigCalibration
        Source ``"charuco_videos"`` / ``"checkerboard_videos"``, per-camera mean
        reprojection error on the board detections seen by 2+ cameras.

    Raises
    ------
    MultiviewError
        A missing or unreadable video; a video in which the board is never (or too rarely)
        found, naming it; cameras that never see the board at the same time.
    """
    from aniposelib.boards import extract_points, merge_rows
    from aniposelib.cameras import CameraGroup

    names = [str(n) for n in videos]
    if len(names) < 2:
        raise MultiviewError(f"calibration needs videos of 2 or more cameras, got {names}.")
    lists = {n: [Path(v)] if isinstance(v, str | Path) else [Path(p) for p in v]
             for n, v in videos.items()}
    for name, paths in lists.items():
        for path in paths:
            cap = cv2.VideoCapture(str(path))
            ok = path.is_file() and cap.isOpened()
            cap.release()
            if not ok:
                raise MultiviewError(f"{path}: calibration video of camera {name!r} is missing "
                                     "or cannot be read; copy it in again.")
    ani_board = board.to_aniposelib()
    group = CameraGroup.from_names(names)
    video_lists = [[str(p) for p in lists[n]] for n in names]
    rows = _quiet(group.get_rows_videos, video_lists, ani_board, verbose=False)
    for name, cam_rows in zip(names, rows, strict=True):
        if len(cam_rows) < min_detections:
            files = ", ".join(str(p) for p in lists[name])
            raise MultiviewError(
                f"{files}: the {board.kind} board ({board.squares_x} x {board.squares_y}) is "
                f"found in {len(cam_rows)} frame(s) of camera {name!r}'s calibration video; "
                f"{min_detections} or more are needed. Check that the board given matches the "
                "printed one (squares, dictionary), that it is in view and in focus, and film "
                "it again.")
    _quiet(group.set_camera_sizes_videos, video_lists)
    np.random.seed(seed)  # aniposelib samples points with numpy's global generator
    try:
        _quiet(group.calibrate_rows, rows, ani_board, init_intrinsics=True,
               init_extrinsics=True, verbose=False)
    except ValueError as exc:
        raise MultiviewError(
            f"calibration videos {[str(p) for n in names for p in lists[n]]}: {exc} Film the "
            "board so that each camera sees it at the same time as another camera.") from exc
    merged = merge_rows(rows)
    imgp, _ = extract_points(merged, ani_board, min_cameras=2)
    errors = _per_camera_error(group, imgp)
    return RigCalibration(group=group, source=f"{board.kind}_videos",
                          source_files=[str(p) for n in names for p in lists[n]],
                          reprojection_error_px=dict(zip(names, errors, strict=True)),
                          board=board)


def _per_camera_error(group: Any, points_2d: np.ndarray) -> list[float | None]:
    """Mean reprojection error (px) per camera of points ``(n_cams, n, 2)``."""
    p3d = group.triangulate(points_2d)
    err = np.linalg.norm(group.reprojection_error(p3d, points_2d, mean=False), axis=2)
    out: list[float | None] = []
    for row in err:
        ok = np.isfinite(row)
        out.append(float(row[ok].mean()) if ok.any() else None)
    return out


# --------------------------------------------------------------------------- imports


def load_anipose_toml(path: str | Path) -> RigCalibration:
    """Import an Anipose / aniposelib ``calibration.toml`` unchanged.

    A ``[metadata]`` table written by :meth:`RigCalibration.write_toml` restores the world
    alignment; any other metadata is kept in ``notes``.

    Raises
    ------
    MultiviewError
        Missing file, not TOML, or a camera table without the keys Anipose writes.
    """
    from aniposelib.cameras import CameraGroup

    path = Path(path)
    if not path.is_file():
        raise MultiviewError(f"{path}: calibration file not found; copy the rig's Anipose "
                             "calibration.toml here or fix its path.")
    try:
        group = CameraGroup.load(str(path))
    except Exception as exc:  # noqa: BLE001 - toml and aniposelib raise many kinds
        raise MultiviewError(
            f"{path}: not an Anipose calibration.toml ({type(exc).__name__}: {exc}). It needs "
            "one [cam_N] table per camera with name, size, matrix, distortions, rotation, "
            "translation.") from exc
    if len(group.cameras) < 2:
        raise MultiviewError(f"{path}: {len(group.cameras)} camera(s); a 3D calibration "
                             "has 2 or more [cam_N] tables.")
    meta = dict(group.metadata or {})
    m = np.asarray(meta.get("world_from_calibration", np.eye(4)), dtype=np.float64)
    errors = {str(k): float(v) for k, v in (meta.get("reprojection_error_px") or {}).items()}
    calib = RigCalibration(group=group, source="anipose_toml", source_files=[str(path)],
                           reprojection_error_px={n: errors.get(n) for n in group.get_names()},
                           axes=str(meta.get("axes", "calibration")))
    return calib.with_axes(m, calib.axes) if "world_from_calibration" in meta else calib


def load_dlc_3d(path: str | Path, square_mm: float,
                camera_names: Sequence[str] | None = None) -> RigCalibration:
    """Import a DeepLabCut 3D project's calibration (``camera_matrix/stereo_params.pickle``).

    Parameters
    ----------
    path : str or Path
        The 3D project folder (with ``camera_matrix/``), the ``camera_matrix`` folder, or
        the ``stereo_params.pickle`` itself.
    square_mm : float
        Side of the checkerboard square in mm: DLC measures in squares.
    camera_names : sequence of str, optional
        Names for DLC's two cameras (default DLC's own, from the pair key ``cam1-cam2``).

    Returns
    -------
    RigCalibration
        Two cameras; the calibration frame is DLC's first camera's (not DLC's rectified
        frame in which its ``_3D.h5`` files are written: see ``notes``).

    Raises
    ------
    MultiviewError
        Missing or unreadable pickle, not DLC's layout, a non-positive square size.
    """
    from aniposelib.cameras import Camera, CameraGroup

    path = Path(path)
    pickle_path = path
    if path.is_dir():
        pickle_path = (path / "stereo_params.pickle" if (path / "stereo_params.pickle").is_file()
                       else path / "camera_matrix" / "stereo_params.pickle")
    if not pickle_path.is_file():
        raise MultiviewError(f"{path}: no DeepLabCut stereo_params.pickle (looked for "
                             f"{pickle_path}); run deeplabcut.calibrate_cameras(config, "
                             "calibrate=True) in the 3D project first.")
    if not square_mm or square_mm <= 0:
        raise MultiviewError(f"{pickle_path}: square_mm must be the checkerboard square's side "
                             "in mm (DLC's calibration is in squares).")
    try:
        with pickle_path.open("rb") as f:
            params = pickle.load(f)
    except Exception as exc:  # noqa: BLE001 - pickle raises many kinds on damaged files
        raise MultiviewError(f"{pickle_path}: unreadable ({type(exc).__name__}: {exc}); "
                             "re-run deeplabcut.calibrate_cameras.") from exc
    if not isinstance(params, dict) or not params:
        raise MultiviewError(f"{pickle_path}: not DeepLabCut's stereo_params (a dict keyed "
                             "'cam1-cam2').")
    pair = next(iter(params))
    p = params[pair]
    needed = {"cameraMatrix1", "cameraMatrix2", "distCoeffs1", "distCoeffs2", "R", "T",
              "image_shape"}
    if not isinstance(p, dict) or needed - set(p):
        raise MultiviewError(f"{pickle_path}: entry {pair!r} lacks {sorted(needed - set(p))}; "
                             "not written by deeplabcut.calibrate_cameras.")
    names = list(camera_names) if camera_names else _dlc_camera_names(pickle_path, str(pair))
    if len(names) != 2:
        raise MultiviewError(f"{pickle_path}: pair {pair!r}; give camera_names for its two "
                             "cameras.")
    sizes = [tuple(int(v) for v in s) for s in p["image_shape"]]  # (w, h): gray.shape[::-1]
    cam1 = Camera(matrix=p["cameraMatrix1"], dist=np.ravel(p["distCoeffs1"])[:5],
                  size=sizes[0], rvec=np.zeros(3), tvec=np.zeros(3), name=names[0])
    rvec2 = cv2.Rodrigues(np.asarray(p["R"], dtype=np.float64))[0].ravel()
    cam2 = Camera(matrix=p["cameraMatrix2"], dist=np.ravel(p["distCoeffs2"])[:5],
                  size=sizes[1], rvec=rvec2,
                  tvec=np.ravel(p["T"]).astype(np.float64) * float(square_mm), name=names[1])
    return RigCalibration(
        group=CameraGroup([cam1, cam2]), source="dlc_3d", source_files=[str(pickle_path)],
        reprojection_error_px={n: None for n in names},
        notes=[f"DeepLabCut calibration in squares, scaled by square_mm={square_mm}; frame "
               f"of camera {names[0]!r} (DLC's own _3D.h5 is in its rectified frame)"])


def _dlc_camera_names(pickle_path: Path, pair: str) -> list[str]:
    """DLC's camera names: the project's config.yaml ``camera_names``, else the pair key
    ``<cam1>-<cam2>`` split at its middle dash (camera names hold dashes: camera-1)."""
    import yaml

    config = pickle_path.parent.parent / "config.yaml"
    if config.is_file():
        with contextlib.suppress(OSError, yaml.YAMLError, AttributeError):
            names = (yaml.safe_load(config.read_text()) or {}).get("camera_names")
            if isinstance(names, list) and len(names) == 2 and "-".join(names) == pair:
                return [str(n) for n in names]
    dashes = [i for i, ch in enumerate(pair) if ch == "-"]
    if not dashes:
        return [pair]
    cut = min(dashes, key=lambda i: abs(i - (len(pair) - 1) / 2))
    return [pair[:cut], pair[cut + 1:]]


# --------------------------------------------------------------------------- world axes


def _frame_from_points(origin: np.ndarray, x_point: np.ndarray, plane_point: np.ndarray,
                       up_hint: np.ndarray | None = None) -> np.ndarray:
    """World-from-calibration transform: origin, +x through ``x_point``, ``plane_point``
    on the +y side of the floor plane; z = x cross y."""
    x = x_point - origin
    if np.linalg.norm(x) < 1e-9:
        raise MultiviewError("world axes: the origin and the +x point coincide.")
    x = x / np.linalg.norm(x)
    y = plane_point - origin
    y = y - x * (y @ x)
    if np.linalg.norm(y) < 1e-6 * max(1.0, np.linalg.norm(plane_point - origin)):
        raise MultiviewError("world axes: the three points are on one line; pick a third "
                             "point off the x axis.")
    y = y / np.linalg.norm(y)
    z = np.cross(x, y)
    if up_hint is not None and z @ up_hint < 0:
        y, z = -y, -z
    rot = np.stack([x, y, z])  # rows: world axes in calibration coordinates
    m = np.eye(4)
    m[:3, :3] = rot
    m[:3, 3] = -rot @ origin
    return m


def align_to_points(calibration: RigCalibration, origin: Sequence[float],
                    x_point: Sequence[float], plane_point: Sequence[float]) -> RigCalibration:
    """World axes from 3 points given in the calibration frame (e.g. triangulated arena
    corners): origin, a point on +x, a floor point on the +y side; z = x cross y (up when
    the points go counter-clockwise seen from above).

    Returns
    -------
    RigCalibration
        A copy with ``axes="points"``.
    """
    pts = [np.asarray(p, dtype=np.float64).reshape(3) for p in (origin, x_point, plane_point)]
    if not all(np.isfinite(p).all() for p in pts):
        raise MultiviewError("world axes: a point is missing (NaN); label it in 2+ cameras.")
    return calibration.with_axes(_frame_from_points(*pts), "points")


ALIGN_POINTS = ("origin", "x_axis", "floor")
"""The three named points of :func:`align_to_image_points`, in the order of
:func:`align_to_points`."""


def align_to_image_points(calibration: RigCalibration,
                          points: Mapping[str, Mapping[str, Sequence[float]]],
                          source: str = "align points") -> RigCalibration:
    """World axes from three points marked in the images of two or more cameras.

    A lab marks three arena landmarks (e.g. arena corners) in a frame of each of 2+
    cameras: the world origin, a point on +x, and a floor point on the +y side. They are
    triangulated with the calibration (aniposelib) and given to :func:`align_to_points`.

    Parameters
    ----------
    calibration : RigCalibration
    points : mapping
        ``{"origin" | "x_axis" | "floor": {camera: (x_px, y_px)}}``, pixel positions in
        each camera's image (undistorted by the calibration's lens model).
    source : str
        Named in errors (the calibration.yaml).

    Returns
    -------
    RigCalibration
        A copy with ``axes="points"``.

    Raises
    ------
    MultiviewError
        A point missing, marked in fewer than 2 cameras, or in a camera the calibration
        lacks.
    """
    names = calibration.camera_names
    missing = [p for p in ALIGN_POINTS if p not in points]
    extra = sorted(set(points) - set(ALIGN_POINTS))
    if missing or extra:
        raise MultiviewError(f"{source}: align needs exactly the points {list(ALIGN_POINTS)}"
                             f" (missing {missing}, unknown {extra}).")
    xy = np.full((len(names), len(ALIGN_POINTS), 2), np.nan)
    for j, point in enumerate(ALIGN_POINTS):
        per_camera = points[point]
        unknown = [c for c in per_camera if c not in names]
        if unknown:
            raise MultiviewError(f"{source}: align point {point!r} names cameras {unknown} "
                                 f"that the calibration lacks (it has {names}).")
        if len(per_camera) < 2:
            raise MultiviewError(f"{source}: align point {point!r} is marked in "
                                 f"{len(per_camera)} camera(s); mark it in 2 or more.")
        for cam, value in per_camera.items():
            try:
                pair = np.asarray(value, dtype=np.float64).reshape(-1)
            except (TypeError, ValueError):
                pair = np.full(0, np.nan)
            if pair.shape != (2,) or not np.isfinite(pair).all():
                raise MultiviewError(f"{source}: align point {point!r} in camera {cam!r} "
                                     f"must be [x_px, y_px], got {value!r}.")
            xy[names.index(cam), j] = pair
    calib_points = np.asarray(_quiet(calibration.group.triangulate, xy), dtype=np.float64)
    return align_to_points(calibration, *calib_points)


def align_to_board(calibration: RigCalibration, frames: Mapping[str, np.ndarray],
                   board: Board | None = None, source: str = "floor board") -> RigCalibration:
    """World axes from the board lying on the floor, seen by 2+ cameras in one frame each.

    The board's first corner is the origin, its x axis the world's +x, the floor its plane;
    z points up (towards the cameras).

    Parameters
    ----------
    frames : mapping
        Camera name -> the image (BGR or grey) of the board on the floor.
    board : Board, optional
        Default: the calibration's own board.

    Raises
    ------
    MultiviewError
        The board is found in fewer than 2 cameras.
    """
    board = board or calibration.board
    if board is None:
        raise MultiviewError(f"{source}: give the board (the calibration has none recorded).")
    ani = board.to_aniposelib()
    names = calibration.camera_names
    n_corners = ani.get_empty_detection().reshape(-1, 2).shape[0]
    pts = np.full((len(names), n_corners, 2), np.nan)
    found = []
    for cam, image in frames.items():
        if cam not in names:
            raise MultiviewError(f"{source}: camera {cam!r} is not in the calibration "
                                 f"({names}).")
        corners, ids = ani.detect_image(image)
        if corners is not None and len(corners) >= 4:
            pts[names.index(cam)] = ani.fill_points(corners, ids).reshape(-1, 2)
            found.append(cam)
    if len(found) < 2:
        raise MultiviewError(f"{source}: the board is found in {found or 'no camera'}; the "
                             "floor needs it in 2 or more cameras.")
    p3d = calibration.group.triangulate(pts)
    obj = ani.get_object_points().reshape(-1, 3)
    ok = np.isfinite(p3d).all(axis=1)
    if ok.sum() < 3:
        raise MultiviewError(f"{source}: fewer than 3 board corners triangulated.")
    # least-squares rigid fit board -> calibration (Kabsch), then invert
    a, b = obj[ok], p3d[ok]
    ca, cb = a.mean(axis=0), b.mean(axis=0)
    u, _, vt = np.linalg.svd((a - ca).T @ (b - cb))
    d = np.sign(np.linalg.det(vt.T @ u.T))
    rot = vt.T @ np.diag([1.0, 1.0, d]) @ u.T  # board -> calibration
    origin = cb - rot @ ca
    x_axis, y_axis = rot[:, 0], rot[:, 1]
    # up = towards the cameras: camera centres in the calibration frame
    centres = np.array([-cv2.Rodrigues(c.get_rotation())[0].T @ c.get_translation()
                        for c in calibration.group.cameras])
    up_hint = centres.mean(axis=0) - origin
    m = _frame_from_points(origin, origin + x_axis, origin + y_axis, up_hint)
    return calibration.with_axes(m, "floor_board")
