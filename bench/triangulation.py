"""Triangulation benchmark (issue 23): ``python -m bench.triangulation [--quick]``.

1. One hour at 50 Hz (180,000 frames), 4 cameras x 6 body parts (1.08 million points):
   the platform's :func:`~dlc_tracking.multiview.triangulation.triangulate_poses`
   (cutoff, aniposelib triangulation, reprojection errors, robust pass, scores, counts)
   vs aniposelib called directly on the same arrays (``CameraGroup.triangulate`` +
   ``reprojection_error``), alternated, in the same process. Target: overhead <= 10 %.
2. Two cameras: the platform vs DeepLabCut's own triangulation math
   (``_undistort_points`` + ``auxiliaryfunctions_3d.triangulatePoints``, what
   ``deeplabcut.triangulate`` runs) on the same arrays; agreement in mm.
3. Calibration time of 4 board videos of ``--calib-frames`` frames (default 300).
4. Peak memory (max RSS of the process) after each part.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _data(n_frames: int, fps: float, seed: int = 0):
    from dlc_tracking.synthetic.rig import make_rig, project_scene, simulate_scene

    cams = make_rig(4)
    scene = simulate_scene(n_frames, fps=fps, seed=seed)
    # 6 body parts: the scene's 4 plus a head-cap point and the body centre
    head = scene.head_mm() + [0.0, 0.0, 8.0]
    body = 0.5 * (scene.head_mm() + scene.points[:, 3])
    points = np.concatenate([scene.points, head[:, None], body[:, None]], axis=1)
    parts = scene.body_parts + ["head_cap", "body_centre"]
    scene6 = type(scene)(body_parts=parts, points=points, time_s=scene.time_s,
                         azimuth_deg=scene.azimuth_deg, pitch_deg=scene.pitch_deg,
                         roll_deg=scene.roll_deg, fps=scene.fps, arena_mm=scene.arena_mm)
    poses = project_scene(scene6, cams, noise_px=0.5, seed=seed + 1)
    return cams, scene6, poses


def run(quick: bool = False, calib_frames: int = 300, repeats: int = 2, dlc: bool = True,
        calibration: bool = True) -> dict:
    """Run the benchmark; returns the figures (also printed as JSON)."""
    from aniposelib.cameras import CameraGroup

    from dlc_tracking.multiview.boards import Board
    from dlc_tracking.multiview.calibration import RigCalibration, calibrate_videos
    from dlc_tracking.multiview.triangulation import TriangulationParams, triangulate_poses
    from dlc_tracking.synthetic.rig import write_board_videos

    out: dict = {"quick": quick}
    n_frames = 18_000 if quick else 180_000
    t0 = time.perf_counter()
    cams, scene, poses = _data(n_frames, 50.0)
    out["data_s"] = time.perf_counter() - t0
    out["n_points"] = int(poses.shape[1] * poses.shape[2])
    out["rss_after_data_mb"] = _rss_mb()
    group = CameraGroup.from_dicts([c.to_aniposelib() for c in cams])
    calib = RigCalibration(group=group, source="anipose_toml")
    by_cam = {c.name: p for c, p in zip(cams, poses, strict=True)}
    params = TriangulationParams()

    def direct():
        pts = np.where((poses[..., 2:3] >= params.likelihood_cutoff), poses[..., :2], np.nan)
        pts = pts.reshape(len(cams), -1, 2)
        p3d = group.triangulate(pts)
        err = group.reprojection_error(p3d, pts, mean=True)
        return p3d, err

    def platform():
        return triangulate_poses(calib, by_cam, scene.body_parts, params)

    direct()  # jax compiles once per shape: warm both paths on the real arrays
    platform()
    times = {"direct": [], "platform": []}
    cpu = {"direct": [], "platform": []}
    for _ in range(repeats):
        for name, fn in (("direct", direct), ("platform", platform)):
            t, c = time.perf_counter(), time.process_time()
            res = fn()
            times[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
    pose = res
    d_p3d, _ = direct()
    out["direct_s"] = times["direct"]
    out["platform_s"] = times["platform"]
    out["direct_cpu_s"] = cpu["direct"]
    out["platform_cpu_s"] = cpu["platform"]
    out["overhead_pct"] = 100.0 * (min(times["platform"]) / min(times["direct"]) - 1.0)
    # CPU seconds of the process (all threads): less sensitive to other processes
    out["overhead_cpu_pct"] = 100.0 * (min(cpu["platform"]) / min(cpu["direct"]) - 1.0)
    out["platform_vs_direct_max_mm"] = float(np.nanmax(np.abs(
        pose.points.reshape(-1, 3) - d_p3d)))
    err = np.linalg.norm(pose.points - scene.points, axis=2)
    out["median_error_mm"] = float(np.nanmedian(err))
    out["rss_after_triangulation_mb"] = _rss_mb()

    # two cameras: DeepLabCut's triangulation math on the same arrays
    if not dlc:
        out["dlc_2cam"] = "not run (--no-dlc)"
    try:
        if not dlc:
            raise ImportError("skipped")
        import cv2
        from deeplabcut.pose_estimation_3d.triangulation import _undistort_points
        from deeplabcut.utils.auxiliaryfunctions_3d import triangulatePoints

        c1, c2 = cams[0], cams[1]
        rot = c2.rotation @ c1.rotation.T
        tvec = c2.tvec - rot @ c1.tvec
        r1, r2, p1, p2, *_ = cv2.stereoRectify(c1.matrix, np.zeros(5), c2.matrix, np.zeros(5),
                                               c1.size, rot, tvec.reshape(3, 1), alpha=0.9)
        n = poses.shape[1] * poses.shape[2]
        two = {c1.name: poses[0], c2.name: poses[1]}
        t = time.perf_counter()
        und = [_undistort_points(poses[i].reshape(n, 3).copy(), c.matrix, np.zeros(5), p, r)
               for i, (c, p, r) in enumerate(((c1, p1, r1), (c2, p2, r2)))]
        dlc = triangulatePoints(p1, p2, und[0][:, :2].T, und[1][:, :2].T)[:3].T
        out["dlc_2cam_s"] = time.perf_counter() - t
        t = time.perf_counter()
        pose2 = triangulate_poses(calib, two, scene.body_parts, params)
        out["platform_2cam_s"] = time.perf_counter() - t
        # DLC's points are in camera 1's rectified frame: back to the world
        dlc_world = ((dlc @ r1) - c1.tvec) @ c1.rotation
        out["platform_vs_dlc_median_mm"] = float(np.nanmedian(np.linalg.norm(
            pose2.points.reshape(-1, 3) - dlc_world, axis=1)))
    except ImportError as exc:
        out["dlc_2cam"] = f"not run: {exc}"

    print(json.dumps(out, indent=1, default=str), flush=True)  # in case calibration fails
    if not calibration:
        out["rss_peak_mb"] = _rss_mb()
        return out
    # calibration time
    with tempfile.TemporaryDirectory() as tmp:
        board = Board()
        videos = write_board_videos(cams, Path(tmp), board=board, n_frames=calib_frames)
        t = time.perf_counter()
        cal = calibrate_videos(videos, board)
        out["calibration_s"] = time.perf_counter() - t
        out["calibration_frames_per_camera"] = calib_frames
        out["calibration_error_px"] = cal.reprojection_error_px
    out["rss_peak_mb"] = _rss_mb()
    return out


def main() -> None:
    """Command line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="6 minutes of data instead of 1 h")
    ap.add_argument("--calib-frames", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--no-dlc", action="store_true", help="skip DeepLabCut's triangulation")
    ap.add_argument("--no-calibration", action="store_true", help="skip the calibration time")
    args = ap.parse_args()
    print(json.dumps(run(args.quick, args.calib_frames, args.repeats, not args.no_dlc,
                         not args.no_calibration), indent=1, default=str))


if __name__ == "__main__":
    main()
