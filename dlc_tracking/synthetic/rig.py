"""A synthetic multi-camera rig filming the synthetic open field, with exact ground truth.

The scene is the open-field walk of :mod:`dlc_tracking.synthetic.openfield` (its
:func:`~dlc_tracking.synthetic.openfield.simulate_path`) in millimetres, lifted into 3D:
the head floats above the floor and pitches and rolls smoothly, so the head points (ears,
nose) move in all three dimensions. Pinhole cameras with known intrinsics and extrinsics
(OpenCV convention: ``X_cam = R X_world + t``) project it; the projections are written as
DeepLabCut ``.h5`` files (DLC's layout, pandas' writer) and SLEAP files (``sleap-io``).
Calibration material: ChArUco board videos (OpenCV's aruco module draws the board) and
checkerboard images for DeepLabCut's own ``calibrate_cameras``.

World frame (``docs/conventions.md``): x and y on the floor (x right, y up when seen from
above, origin at the arena's lower-left corner), z up, millimetres.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dlc_tracking.errors import VideoError
from dlc_tracking.multiview.boards import Board
from dlc_tracking.synthetic.openfield import _smooth_noise, simulate_path

BODY_PARTS_3D: list[str] = ["nose", "left_ear", "right_ear", "tail_base"]
HEAD_HEIGHT_MM = 35.0       # ear-midpoint height above the floor
EAR_HALF_WIDTH_MM = 9.0     # half the ear-to-ear distance
NOSE_FORWARD_MM = 22.0      # nose ahead of the ear midpoint along the head's forward axis
TAIL_BACK_MM = 75.0         # tail base behind the ear midpoint, on the floor
TAIL_HEIGHT_MM = 10.0


@dataclass(frozen=True)
class SyntheticCamera:
    """A pinhole camera (no distortion) of the synthetic rig.

    Attributes
    ----------
    name : str
        Camera name.
    matrix : np.ndarray
        ``(3, 3)`` intrinsics (fx = fy, principal point at the image centre).
    rvec, tvec : np.ndarray
        ``(3,)`` Rodrigues rotation and translation (mm), world -> camera.
    size : tuple of int
        ``(width, height)`` in pixels.
    """

    name: str
    matrix: np.ndarray
    rvec: np.ndarray
    tvec: np.ndarray
    size: tuple[int, int]

    @property
    def rotation(self) -> np.ndarray:
        """``(3, 3)`` rotation matrix world -> camera."""
        return cv2.Rodrigues(np.asarray(self.rvec, dtype=np.float64))[0]

    def project(self, points: np.ndarray) -> np.ndarray:
        """Project world points.

        Parameters
        ----------
        points : np.ndarray
            ``(..., 3)`` world points (mm); NaN rows give NaN.

        Returns
        -------
        np.ndarray
            ``(..., 2)`` image coordinates (px).
        """
        pts = np.asarray(points, dtype=np.float64)
        flat = pts.reshape(-1, 3)
        ok = np.isfinite(flat).all(axis=1)
        out = np.full((flat.shape[0], 2), np.nan)
        if ok.any():
            proj, _ = cv2.projectPoints(flat[ok].reshape(-1, 1, 3), self.rvec, self.tvec,
                                        self.matrix, np.zeros(5))
            out[ok] = proj.reshape(-1, 2)
        return out.reshape(pts.shape[:-1] + (2,))

    def depth(self, points: np.ndarray) -> np.ndarray:
        """Distance along the optical axis (mm) of world points ``(..., 3)``."""
        pts = np.asarray(points, dtype=np.float64)
        return (pts @ self.rotation.T + np.asarray(self.tvec))[..., 2]

    def to_aniposelib(self) -> dict:
        """The camera as an aniposelib / Anipose ``calibration.toml`` table."""
        return {"name": self.name, "size": list(self.size), "matrix": self.matrix.tolist(),
                "distortions": [0.0] * 5, "rotation": list(map(float, self.rvec)),
                "translation": list(map(float, self.tvec))}


def look_at_camera(name: str, position: np.ndarray, target: np.ndarray, *,
                   focal_px: float = 600.0, size: tuple[int, int] = (640, 480),
                   up: tuple[float, float, float] = (0.0, 0.0, 1.0)) -> SyntheticCamera:
    """A camera at ``position`` looking at ``target`` (world mm), image "up" towards ``up``.

    A camera straight above the arena (``up`` then must be +y) sees the arena with x to the
    right and y up in the image, the 2D platform's ``above`` view.
    """
    position = np.asarray(position, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - position
    forward /= np.linalg.norm(forward)
    down = -np.asarray(up, dtype=np.float64)
    down = down - forward * (down @ forward)
    down /= np.linalg.norm(down)
    right = np.cross(down, forward)
    rotation = np.stack([right, down, forward])  # rows: camera x, y, z in world coordinates
    rvec = cv2.Rodrigues(rotation)[0].ravel()
    tvec = -rotation @ position
    width, height = size
    matrix = np.array([[focal_px, 0.0, width / 2.0], [0.0, focal_px, height / 2.0],
                       [0.0, 0.0, 1.0]])
    return SyntheticCamera(name=name, matrix=matrix, rvec=rvec, tvec=tvec, size=(width, height))


def make_rig(n_cameras: int = 3, arena_mm: float = 500.0, size: tuple[int, int] = (640, 480),
             focal_px: float = 560.0, azimuth_offset_deg: float = 0.0,
             ) -> list[SyntheticCamera]:
    """Cameras around a square arena: ``top`` straight above, then side cameras.

    Parameters
    ----------
    n_cameras : int
        3 or more: ``top`` plus ``n_cameras - 1`` cameras at 45 deg elevation evenly
        around the arena (``side_1``, ``side_2``...).
    arena_mm : float
        Side of the arena floor.
    size : tuple of int
        Frame size of every camera.
    focal_px : float
        Focal length in pixels.
    azimuth_offset_deg : float
        Turns the side cameras around the arena (another rig: same names, other places).

    Returns
    -------
    list of SyntheticCamera
    """
    if n_cameras < 2:
        raise ValueError(f"a rig needs 2 or more cameras, got {n_cameras}")
    centre = np.array([arena_mm / 2.0, arena_mm / 2.0, 0.0])
    cams = [look_at_camera("top", centre + [0.0, 0.0, 1.9 * arena_mm], centre,
                           focal_px=focal_px, size=size, up=(0.0, 1.0, 0.0))]
    n_side = n_cameras - 1
    for k in range(n_side):
        az = 2.0 * math.pi * k / n_side - math.pi / 2.0 + math.radians(azimuth_offset_deg)
        dist = 1.6 * arena_mm
        pos = centre + dist * np.array([math.cos(az) * math.cos(math.pi / 4),
                                        math.sin(az) * math.cos(math.pi / 4),
                                        math.sin(math.pi / 4)])
        cams.append(look_at_camera(f"side_{k + 1}", pos, centre, focal_px=focal_px, size=size))
    return cams


# --------------------------------------------------------------------------- the scene


@dataclass(frozen=True)
class Scene3D:
    """Ground truth of the 3D scene.

    Attributes
    ----------
    body_parts : list of str
        Order of axis 1 of ``points``.
    points : np.ndarray
        ``(n_frames, n_parts, 3)`` world points (mm).
    time_s : np.ndarray
        ``(n_frames,)`` seconds.
    azimuth_deg, pitch_deg, roll_deg : np.ndarray
        ``(n_frames,)`` head orientation (docs/conventions.md): azimuth counter-clockwise
        from +x in the floor plane [0, 360); pitch positive nose up; roll positive when
        the left ear goes up.
    fps : float
        Frame rate.
    arena_mm : float
        Side of the square arena.
    """

    body_parts: list[str]
    points: np.ndarray
    time_s: np.ndarray
    azimuth_deg: np.ndarray
    pitch_deg: np.ndarray
    roll_deg: np.ndarray
    fps: float
    arena_mm: float

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return int(self.points.shape[0])

    def head_mm(self) -> np.ndarray:
        """``(n_frames, 3)`` ear midpoint (mm)."""
        return 0.5 * (self.points[:, 1] + self.points[:, 2])


def head_rotation(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """Head-to-world rotations ``(n, 3, 3)``; columns forward, left, up of the head.

    ``R = Rz(yaw) Ry(-pitch) Rx(roll)`` (angles in radians; pitch nose-up positive).
    """
    cy, sy = np.cos(yaw), np.sin(yaw)
    cp, sp = np.cos(-pitch), np.sin(-pitch)
    cr, sr = np.cos(roll), np.sin(roll)
    n = np.shape(yaw)[0]
    rz = np.zeros((n, 3, 3))
    rz[:, 0, 0], rz[:, 0, 1], rz[:, 1, 0], rz[:, 1, 1], rz[:, 2, 2] = cy, -sy, sy, cy, 1.0
    ry = np.zeros((n, 3, 3))
    ry[:, 0, 0], ry[:, 0, 2], ry[:, 2, 0], ry[:, 2, 2], ry[:, 1, 1] = cp, sp, -sp, cp, 1.0
    rx = np.zeros((n, 3, 3))
    rx[:, 1, 1], rx[:, 1, 2], rx[:, 2, 1], rx[:, 2, 2], rx[:, 0, 0] = cr, -sr, sr, cr, 1.0
    return rz @ ry @ rx


def simulate_scene(n_frames: int = 300, fps: float = 30.0, arena_mm: float = 500.0,
                   seed: int = 0, max_pitch_deg: float = 30.0,
                   max_roll_deg: float = 25.0) -> Scene3D:
    """The open-field walk in 3D, head pitching and rolling.

    Parameters
    ----------
    n_frames, fps, seed
        As :func:`~dlc_tracking.synthetic.openfield.simulate_openfield`.
    arena_mm : float
        Side of the square arena floor (mm); the arena spans ``[0, arena_mm]`` in x and y.
    max_pitch_deg, max_roll_deg : float
        Amplitude of the smooth pitch and roll.

    Returns
    -------
    Scene3D
    """
    rng = np.random.default_rng(seed)
    body_length = 0.2 * arena_mm
    centre, heading = simulate_path(n_frames, fps, (0.0, 0.0, arena_mm, arena_mm),
                                    body_length, rng)
    pitch = np.radians(max_pitch_deg) * np.tanh(_smooth_noise(rng, n_frames, 0.5 * fps))
    roll = np.radians(max_roll_deg) * np.tanh(_smooth_noise(rng, n_frames, 0.5 * fps))
    rot = head_rotation(heading, pitch, roll)
    fwd, left = rot[:, :, 0], rot[:, :, 1]
    flat_fwd = np.stack([np.cos(heading), np.sin(heading), np.zeros(n_frames)], axis=1)
    head = np.concatenate([centre, np.full((n_frames, 1), HEAD_HEIGHT_MM)], axis=1)
    head[:, :2] += 0.25 * body_length * flat_fwd[:, :2]
    nose = head + NOSE_FORWARD_MM * fwd
    lear = head + EAR_HALF_WIDTH_MM * left
    rear = head - EAR_HALF_WIDTH_MM * left
    tail = head - TAIL_BACK_MM * flat_fwd
    tail[:, 2] = TAIL_HEIGHT_MM
    points = np.stack([nose, lear, rear, tail], axis=1)
    return Scene3D(body_parts=list(BODY_PARTS_3D), points=points,
                   time_s=np.arange(n_frames) / float(fps),
                   azimuth_deg=np.mod(np.degrees(heading), 360.0),
                   pitch_deg=np.degrees(pitch), roll_deg=np.degrees(roll), fps=float(fps),
                   arena_mm=float(arena_mm))


def project_scene(scene: Scene3D, cameras: list[SyntheticCamera], *, noise_px: float = 0.0,
                  seed: int = 0) -> np.ndarray:
    """DLC-style poses per camera.

    Returns
    -------
    np.ndarray
        ``(n_cameras, n_frames, n_parts, 3)`` ``[x_px, y_px, likelihood]``; likelihood
        0.99, NaN where the point falls outside the frame; Gaussian noise ``noise_px``.
    """
    rng = np.random.default_rng(seed)
    out = np.empty((len(cameras), scene.n_frames, len(scene.body_parts), 3))
    for c, cam in enumerate(cameras):
        xy = cam.project(scene.points)
        if noise_px > 0:
            xy = xy + rng.normal(0.0, noise_px, xy.shape)
        w, h = cam.size
        inside = (xy[..., 0] >= 0) & (xy[..., 0] < w) & (xy[..., 1] >= 0) & (xy[..., 1] < h)
        out[c, ..., :2] = xy
        out[c, ..., 2] = 0.99
        out[c][~inside] = np.nan
    return out


def write_dlc_predictions(poses: np.ndarray, cameras: list[SyntheticCamera],
                          body_parts: list[str], folder: str | Path,
                          scorer: str = "DLC_Resnet50_rigDec1shuffle1_snapshot_100",
                          ) -> dict[str, Path]:
    """One DLC ``.h5`` per camera (``<camera><scorer>.h5``), written by pandas as DLC does.

    Returns
    -------
    dict
        Camera name -> path.
    """
    from dlc_tracking.io.dlc_files import output_names, write_predictions

    folder = Path(folder)
    paths = {}
    for cam, cam_poses in zip(cameras, poses, strict=True):
        paths[cam.name] = write_predictions(folder / output_names(cam.name, scorer)[0],
                                            scorer, body_parts, cam_poses)
    return paths


def write_sleap_predictions(poses: np.ndarray, cameras: list[SyntheticCamera],
                            body_parts: list[str], folder: str | Path, *,
                            analysis_h5: bool = False) -> dict[str, Path]:
    """One SLEAP predictions file per camera, written with ``sleap-io``.

    Parameters
    ----------
    poses : np.ndarray
        ``(n_cameras, n_frames, n_parts, 3)``; NaN = not predicted.
    analysis_h5 : bool
        False: ``<camera>.predictions.slp``; True: SLEAP's analysis HDF5
        ``<camera>.analysis.h5``.

    Returns
    -------
    dict
        Camera name -> path.
    """
    import sleap_io as sio

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    skeleton = sio.Skeleton(list(body_parts))
    paths = {}
    for cam, cam_poses in zip(cameras, poses, strict=True):
        video = sio.Video(filename=str(folder / f"{cam.name}.mp4"), open_backend=False)
        frames = []
        for i, frame in enumerate(cam_poses):
            if np.isnan(frame[:, 0]).all():
                continue
            inst = sio.PredictedInstance.from_numpy(
                points_data=frame[:, :2], point_scores=np.nan_to_num(frame[:, 2]),
                score=float(np.nanmean(frame[:, 2])), skeleton=skeleton)
            frames.append(sio.LabeledFrame(video=video, frame_idx=i, instances=[inst]))
        labels = sio.Labels(labeled_frames=frames, videos=[video], skeletons=[skeleton])
        name = f"{cam.name}.analysis.h5" if analysis_h5 else f"{cam.name}.predictions.slp"
        path = folder / name
        if analysis_h5:
            sio.save_analysis_h5(labels, str(path))
        else:
            sio.save_slp(labels, str(path))
        paths[cam.name] = path
    return paths


def write_anipose_calibration(cameras: list[SyntheticCamera], path: str | Path) -> Path:
    """The rig's true calibration as an Anipose ``calibration.toml``, written by aniposelib."""
    from aniposelib.cameras import CameraGroup

    group = CameraGroup.from_dicts([c.to_aniposelib() for c in cameras])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    group.dump(str(path))
    return path


# --------------------------------------------------------------------------- boards


def board_poses(n_frames: int, arena_mm: float = 500.0, seed: int = 0,
                max_tilt_deg: float = 35.0, max_spin_deg: float = 180.0) -> np.ndarray:
    """Board -> world transforms of a board waved over the arena.

    ``max_spin_deg`` bounds the turn in the board's plane: a checkerboard turned past 90
    deg is found with its corners in the opposite order (it has no identifiable corner),
    as with a real board, so checkerboard material keeps it small.

    Returns
    -------
    np.ndarray
        ``(n_frames, 4, 4)``; board x/y in its plane (as in the board's image: x right,
        y down), z into the board; the printed face looks up.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames)
    out = np.zeros((n_frames, 4, 4))
    centre = np.array([arena_mm / 2, arena_mm / 2, 0.0])
    phases = rng.uniform(0, 2 * np.pi, 6)
    freqs = rng.uniform(0.02, 0.07, 6)
    for i in t:
        s = np.sin(freqs * i + phases)
        pos = centre + np.array([0.25 * arena_mm * s[0], 0.25 * arena_mm * s[1],
                                 60.0 + 50.0 * (1 + s[2])])
        rvec = np.radians(max_tilt_deg) * np.array([s[3], s[4], 0.0])
        spin = np.radians(max_spin_deg) * s[5]
        rot = cv2.Rodrigues(rvec)[0] @ cv2.Rodrigues(np.array([0.0, 0.0, spin]))[0]
        # printed face up: the board's z axis (into the board) points down
        out[i, :3, :3] = rot @ np.diag([1.0, -1.0, -1.0])
        out[i, :3, 3] = pos
        out[i, 3, 3] = 1.0
    return out


def _board_image(board: Board, px_per_square: int) -> np.ndarray:
    ani = board.to_aniposelib()
    size = (board.squares_x * px_per_square, board.squares_y * px_per_square)
    return ani.draw(size)


def render_board_frame(cam: SyntheticCamera, board: Board, board_to_world: np.ndarray,
                       board_img: np.ndarray, px_per_square: int) -> np.ndarray | None:
    """One camera's grey frame of the board at a pose, or None if seen from behind."""
    w, h = cam.size
    # board-image pixel (u, v) -> board plane mm: u right, v down; OpenCV's ChArUco board
    # puts its object points with the same axes (origin at the top-left corner).
    scale = board.square_mm / px_per_square
    rot_cw = cam.rotation @ board_to_world[:3, :3]
    t_cw = cam.rotation @ board_to_world[:3, 3] + cam.tvec
    if rot_cw[:, 2] @ t_cw <= 0:  # the printed face must look at the camera
        return None
    homography = cam.matrix @ np.column_stack([rot_cw[:, 0] * scale, rot_cw[:, 1] * scale,
                                               t_cw])
    canvas = cv2.warpPerspective(board_img, homography, (w, h), flags=cv2.INTER_AREA,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=110)
    # white margin around the board, as printed boards have one
    mask = cv2.warpPerspective(np.full_like(board_img, 255), homography, (w, h),
                               flags=cv2.INTER_NEAREST, borderValue=0)
    return np.where(mask > 0, canvas, 110).astype(np.uint8)


def write_board_videos(cameras: list[SyntheticCamera], folder: str | Path, *,
                       board: Board | None = None, n_frames: int = 60, fps: float = 30.0,
                       seed: int = 0, arena_mm: float = 500.0,
                       blank_cameras: tuple[str, ...] = ()) -> dict[str, Path]:
    """Render one ChArUco calibration video per camera (``calib-<camera>.mp4``).

    Parameters
    ----------
    blank_cameras : tuple of str
        Cameras whose video shows no board (the "board never found" case).

    Returns
    -------
    dict
        Camera name -> video path.
    """
    board = board or Board()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    px = 60
    img = _board_image(board, px)
    poses = board_poses(n_frames, arena_mm, seed)
    paths = {}
    for cam in cameras:
        path = folder / f"calib-{cam.name}.mp4"
        tmp = folder / f".calib-{cam.name}.tmp-{os.getpid()}.mp4"
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, cam.size)
        if not writer.isOpened():
            raise VideoError(f"Cannot write video {tmp}: OpenCV has no mp4v writer.")
        try:
            for pose in poses:
                frame = (None if cam.name in blank_cameras
                         else render_board_frame(cam, board, pose, img, px))
                if frame is None:
                    frame = np.full((cam.size[1], cam.size[0]), 110, np.uint8)
                writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
        finally:
            writer.release()
        os.replace(tmp, path)
        paths[cam.name] = path
    return paths


def checkerboard_image(inner_cols: int, inner_rows: int, px_per_square: int) -> np.ndarray:
    """A checkerboard with ``inner_cols x inner_rows`` inner corners and a white margin."""
    sq_x, sq_y = inner_cols + 1, inner_rows + 1
    yy, xx = np.mgrid[0:sq_y * px_per_square, 0:sq_x * px_per_square] // px_per_square
    board = np.where((xx + yy) % 2 == 0, 0, 255).astype(np.uint8)
    m = px_per_square
    return cv2.copyMakeBorder(board, m, m, m, m, cv2.BORDER_CONSTANT, value=255)


def write_checkerboard_images(cameras: list[SyntheticCamera], folder: str | Path, *,
                              inner_cols: int = 8, inner_rows: int = 5,
                              square_mm: float = 30.0, n_images: int = 25, seed: int = 1,
                              arena_mm: float = 500.0) -> list[Path]:
    """Checkerboard images ``<camera>-<n>.jpg`` as DeepLabCut's calibrate_cameras wants.

    The board's first inner corner is its origin; images are JPEG (quality 98).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    px = 40
    img = checkerboard_image(inner_cols, inner_rows, px)
    # board-image pixel -> board mm with the origin at the first inner corner
    # stills far apart in the waving motion: varied poses constrain the intrinsics
    poses = board_poses(n_images * 9, arena_mm, seed, max_tilt_deg=40.0, max_spin_deg=30.0)[::9]
    out = []
    scale = square_mm / px
    shift = np.array([[1, 0, -2 * px], [0, 1, -2 * px], [0, 0, 1]], dtype=np.float64)
    for i, pose in enumerate(poses):
        for cam in cameras:
            rot_cw = cam.rotation @ pose[:3, :3]
            t_cw = cam.rotation @ pose[:3, 3] + cam.tvec
            homography = cam.matrix @ np.column_stack(
                [rot_cw[:, 0] * scale, rot_cw[:, 1] * scale, t_cw]) @ shift
            frame = cv2.warpPerspective(img, homography, cam.size, flags=cv2.INTER_AREA,
                                        borderValue=110)
            path = folder / f"{cam.name}-{i + 1:02d}.jpg"
            cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, 98])
            out.append(path)
    return out


def make_multicamera_session(data_root: str | Path, subject: str, session: str, *,
                             n_frames: int = 300, fps: float = 30.0, rig: str = "rig_3cam",
                             n_cameras: int = 3, seed: int = 0) -> Path:
    """A multi-camera session folder (docs/3d.md) with each camera's DLC outputs.

    ``<data_root>/<subject>/<session>/``: ``session.yaml`` naming ``rig`` and its
    ``cameras:`` (``<camera>.mp4``), and ``dlc_<camera>/<camera><scorer>.h5`` per camera
    written by DeepLabCut's layout (pandas' writer); no videos (an outputs-only take:
    ``fps:`` gives the frame times). Cameras are those of :func:`make_rig`.

    Returns
    -------
    Path
        The session folder.
    """
    import yaml

    cameras = make_rig(n_cameras)
    scene = simulate_scene(n_frames=n_frames, fps=fps, seed=seed)
    poses = project_scene(scene, cameras)
    folder = Path(data_root) / subject / session
    folder.mkdir(parents=True, exist_ok=True)
    for cam, cam_poses in zip(cameras, poses, strict=True):
        write_dlc_predictions(cam_poses[None], [cam], BODY_PARTS_3D, folder / f"dlc_{cam.name}")
    meta = {"tracking_type": "openfield", "start_time": "2026-01-05T10:00:00+01:00",
            "camera_view": "above", "rig": rig, "fps": float(fps),
            "cameras": {cam.name: f"{cam.name}.mp4" for cam in cameras}}
    (folder / "session.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    return folder
