"""Synthetic open-field recordings with several animals of known identity.

Two animals circle the arena centre in opposite directions on slightly different radii,
so their paths cross twice per lap and they pass within less than a body length of each
other (the close encounters that make DeepLabCut's trackers swap identities); a third
animal, when asked for, walks the single-animal simulator's random path. Every animal is
drawn with :func:`dlc_tracking.synthetic.openfield.render_frame` (the same mouse shape and
colours as the single-animal videos) and composited over the empty arena.

The maDLC output writers (:func:`write_madlc_outputs`) use DeepLabCut's own
``create_df_from_prediction`` (the table ``analyze_videos`` writes before tracking, key
``df_with_missing``) and the stitcher's layout for ``_el`` tracks, with ``single`` unique
body parts, ``_filtered`` copies and prefix-encoded files.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from dlc_tracking.errors import VideoError
from dlc_tracking.synthetic.openfield import (
    _BODY_LENGTH_FRAC,
    BODY_PARTS,
    GroundTruth,
    _smooth_noise,
    arena_layout,
    arena_to_image,
    keypoints_arena,
    render_frame,
    simulate_path,
)

__all__ = [
    "UNIQUE_BODY_PARTS",
    "make_multi_animal_session",
    "MultiAnimalTruth",
    "render_multi_frame",
    "render_multi_video",
    "simulate_multi_animal",
    "write_madlc_outputs",
    "write_madlc_pickles",
]

UNIQUE_BODY_PARTS = ["corner_tl", "corner_br"]
"""Unique body parts of the synthetic project: two arena corners (DLC's ``single``)."""


@dataclass
class MultiAnimalTruth:
    """Ground truth of a synthetic multi-animal recording.

    Attributes
    ----------
    individuals : list[str]
        Individual names (``mus1``...), order of axis 1.
    body_parts : list[str]
        :data:`~dlc_tracking.synthetic.openfield.BODY_PARTS`.
    keypoints : np.ndarray
        ``(n_frames, n_individuals, n_parts, 2)`` image coordinates.
    heading_deg : np.ndarray
        ``(n_frames, n_individuals)`` body heading in the arena frame (y up), degrees.
    time_s : np.ndarray
        ``(n_frames,)``.
    width, height : int
        Frame size.
    fps : float
    camera_view : str
    arena_px : tuple
        Arena floor ``(x_min, y_min, x_max, y_max)`` in image pixels.
    body_length_px : float
        Nose to tail-base distance.
    encounters : list[int]
        Frames where mus1 and mus2 are closest, one per encounter (the minimum of their
        centre distance over each run of frames closer than one body length).
    """

    individuals: list[str]
    body_parts: list[str]
    keypoints: np.ndarray
    heading_deg: np.ndarray
    time_s: np.ndarray
    width: int
    height: int
    fps: float
    camera_view: str
    arena_px: tuple[float, float, float, float]
    body_length_px: float
    encounters: list[int]

    @property
    def n_frames(self) -> int:
        return int(self.keypoints.shape[0])

    def poses(self) -> np.ndarray:
        """``(n_frames, n_individuals, n_parts, 3)`` with likelihood 1."""
        ones = np.ones(self.keypoints.shape[:3] + (1,))
        return np.concatenate([self.keypoints, ones], axis=3)

    def unique_keypoints(self) -> np.ndarray:
        """``(n_frames, 2, 2)`` the arena's top-left and bottom-right floor corners."""
        x0, y0, x1, y1 = self.arena_px
        corners = np.array([[x0, y0], [x1, y1]], dtype=float)
        return np.broadcast_to(corners, (self.n_frames, 2, 2)).copy()

    def single(self, k: int) -> GroundTruth:
        """Individual ``k`` as a single-animal :class:`GroundTruth` (for rendering)."""
        kp = self.keypoints[:, k]
        head = 0.5 * (kp[:, 1] + kp[:, 2])
        return GroundTruth(
            body_parts=list(self.body_parts), keypoints=kp,
            visible=np.ones(kp.shape[:2], bool), time_s=self.time_s,
            head_direction_deg=self.heading_deg[:, k], head_xy_px=head,
            head_speed_px_s=np.zeros(self.n_frames), camera_view=self.camera_view,
            width=self.width, height=self.height, fps=self.fps, arena_px=self.arena_px,
            occluders=np.full((self.n_frames, 3), np.nan),
            tail_phase=np.linspace(0, 2 * np.pi * 1.5 * self.n_frames / self.fps,
                                   self.n_frames) + k)


def simulate_multi_animal(n_frames: int = 300, fps: float = 30.0, width: int = 320,
                          height: int = 240, n_animals: int = 2, seed: int = 0,
                          camera_view: str = "above", laps: float = 1.0) -> MultiAnimalTruth:
    """Simulate two or three animals (trajectories and keypoints, no pixels).

    mus1 circles counter-clockwise on radius ``0.30 x side``, mus2 clockwise on
    ``0.30 x side + 0.7 body lengths`` (they pass each other side by side, closer than a
    body length, twice per lap); mus3 (``n_animals=3``) walks a random path.

    Parameters
    ----------
    n_frames, fps, width, height : numbers
        Recording size.
    n_animals : int
        2 or 3.
    seed : int
        Random seed (radius wobble, mus3's path).
    camera_view : str
        ``"above"`` or ``"below"``.
    laps : float
        Laps of the circling animals over the recording.
    """
    if n_animals not in (2, 3):
        raise ValueError(f"n_animals must be 2 or 3, got {n_animals}")
    rng = np.random.default_rng(seed)
    ax0, ay0, ax1, ay1 = arena_layout(width, height)
    arena_xy = (ax0, height - ay1, ax1, height - ay0)
    side = ax1 - ax0
    body = _BODY_LENGTH_FRAC * side
    centre = np.array([(arena_xy[0] + arena_xy[2]) / 2, (arena_xy[1] + arena_xy[3]) / 2])
    phase = 2 * np.pi * laps * np.arange(n_frames) / n_frames
    centres, headings = [], []
    for k, (direction, radius, start) in enumerate(
            [(1.0, 0.24 * side, 0.0), (-1.0, 0.24 * side + 0.7 * body, np.pi / 2)]):
        wobble = 0.03 * side * _smooth_noise(rng, n_frames, 0.5 * fps)
        r = radius + wobble
        ang = start + direction * phase
        c = centre + np.column_stack((r * np.cos(ang), r * np.sin(ang)))
        heading = ang + direction * np.pi / 2  # along the motion
        centres.append(c)
        headings.append(heading)
        del k
    if n_animals == 3:
        c, h = simulate_path(n_frames, fps, arena_xy, body, rng, 0.15 * side)
        centres.append(c)
        headings.append(h)
    kps = [arena_to_image(keypoints_arena(c, h, body), width, height, camera_view)
           for c, h in zip(centres, headings, strict=True)]
    keypoints = np.stack(kps, axis=1)
    d = np.linalg.norm(centres[0] - centres[1], axis=1)
    close = np.concatenate(([False], d < body, [False]))
    edges = np.flatnonzero(np.diff(close.astype(np.int8)))
    minima = [int(a + np.argmin(d[a:b])) for a, b in zip(edges[::2], edges[1::2], strict=True)]
    return MultiAnimalTruth(
        individuals=[f"mus{k + 1}" for k in range(n_animals)], body_parts=list(BODY_PARTS),
        keypoints=keypoints,
        heading_deg=np.mod(np.degrees(np.stack(headings, axis=1)), 360.0),
        time_s=np.arange(n_frames) / fps, width=int(width), height=int(height),
        fps=float(fps), camera_view=camera_view, arena_px=(ax0, ay0, ax1, ay1),
        body_length_px=float(body), encounters=minima)


def render_multi_frame(truth: MultiAnimalTruth, i: int) -> np.ndarray:
    """Frame ``i``: each animal drawn by the single-animal renderer, composited over
    the empty arena (later individuals on top). BGR uint8 ``(height, width, 3)``."""
    singles = [truth.single(k) for k in range(len(truth.individuals))]
    empty = replace(singles[0], keypoints=singles[0].keypoints - 1e4)  # out of frame
    background = render_frame(empty, i)
    out = background.copy()
    for gt in singles:
        img = render_frame(gt, i)
        mask = (img != background).any(axis=2)
        out[mask] = img[mask]
    return out


def render_multi_video(truth: MultiAnimalTruth, path: str | Path, noise: float = 0.0,
                       seed: int = 0) -> Path:
    """Write the recording as an MP4 (``mp4v``), like ``openfield.render_video``."""
    path = Path(path)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(truth.fps),
                             (truth.width, truth.height))
    if not writer.isOpened():
        raise VideoError(f"Cannot write video {path}: OpenCV has no mp4v writer for it.")
    rng = np.random.default_rng(seed)
    try:
        for i in range(truth.n_frames):
            img = render_multi_frame(truth, i)
            if noise > 0:
                noisy = img.astype(np.float32) + rng.normal(0, noise, img.shape[:2])[..., None]
                img = np.clip(np.round(noisy), 0, 255).astype(np.uint8)
            writer.write(img)
    finally:
        writer.release()
    return path


def write_madlc_outputs(folder: str | Path, video_stem: str, scorer: str,
                        truth: MultiAnimalTruth, *, poses: np.ndarray | None = None,
                        tracker: str = "el", filtered: bool = False,
                        unique: bool = True, save_as_csv: bool = True,
                        prefix_encoded: dict[str, str] | None = None) -> dict[str, Path]:
    """Write maDLC outputs of a synthetic recording as DeepLabCut lays them out.

    The table is made by DeepLabCut's ``create_df_from_prediction`` (multi-animal, unique
    body parts under ``single``); it is then stored under the tracked file's name
    ``<stem><scorer>_<tracker>.h5`` with the stitcher's key ``tracks`` (and
    ``_<tracker>_filtered.h5`` with ``df_with_missing`` as ``filterpredictions`` writes,
    when ``filtered``), and its CSV by pandas' ``to_csv``.

    Parameters
    ----------
    poses : np.ndarray, optional
        ``(n_frames, n_individuals, n_parts, 3)`` to write instead of the ground truth
        (e.g. with an injected swap).
    prefix_encoded : dict, optional
        individual -> prefix: write a single-animal-layout file whose body parts are
        ``<prefix>_<part>`` (no ``individuals`` level), as some labs' files are.
    """
    from deeplabcut.pose_estimation_pytorch.apis.videos import create_df_from_prediction

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    poses = truth.poses() if poses is None else np.asarray(poses, np.float64)
    uniq = np.concatenate([truth.unique_keypoints(), np.ones((truth.n_frames, 2, 1))], 2)
    model_cfg = {"metadata": {"bodyparts": list(truth.body_parts),
                              "unique_bodyparts": UNIQUE_BODY_PARTS if unique else [],
                              "individuals": list(truth.individuals)}}
    preds = []
    for i in range(truth.n_frames):
        p = {"bodyparts": poses[i]}
        if unique:
            p["unique_bodyparts"] = uniq[i]
        preds.append(p)
    raw_prefix = f"{video_stem}{scorer}"
    df = create_df_from_prediction(preds, scorer, True, model_cfg, folder, raw_prefix,
                                   save_as_csv=False)
    (folder / f"{raw_prefix}.h5").unlink()  # the untracked table; tracks written below
    out: dict[str, Path] = {}
    if prefix_encoded:
        flat = {}
        for ind, pre in prefix_encoded.items():
            sub = df.xs(ind, axis=1, level="individuals")
            for (s, bp, c), values in sub.items():
                flat[(s, f"{pre}_{bp}", c)] = values.to_numpy()
        if unique:
            for (s, bp, c), values in df.xs("single", axis=1, level="individuals").items():
                flat[(s, bp, c)] = values.to_numpy()
        df = pd.DataFrame(flat, index=df.index)
        df.columns = df.columns.set_names(["scorer", "bodyparts", "coords"])
        path = folder / f"{raw_prefix}.h5"
        df.to_hdf(path, key="df_with_missing", format="table", mode="w")
        out["h5"] = path
        if save_as_csv:
            df.to_csv(path.with_suffix(".csv"))
            out["csv"] = path.with_suffix(".csv")
        return out
    name = f"{raw_prefix}_{tracker}"
    path = folder / f"{name}.h5"
    df.to_hdf(path, key="tracks", format="table", mode="w")
    out["h5"] = path
    if save_as_csv:
        df.to_csv(path.with_suffix(".csv"))
        out["csv"] = path.with_suffix(".csv")
    if filtered:
        fpath = folder / f"{name}_filtered.h5"
        df.to_hdf(fpath, key="df_with_missing", format="table", mode="w")
        out["filtered"] = fpath
    return out


def write_madlc_pickles(folder: str | Path, video_stem: str, scorer: str,
                        truth: MultiAnimalTruth, *, poses: np.ndarray | None = None,
                        seed: int = 0, assemblies: bool = True, tracklets: bool = False,
                        ) -> dict[str, Path]:
    """Write the pickles ``analyze_videos(auto_track=False)`` leaves, with DLC's own code.

    ``<stem><scorer>_full.pickle`` from ``pose_estimation_pytorch.apis.videos.
    _generate_output_data`` (detections per frame in a shuffled order: a detector does
    not know identities), ``_assemblies.pickle`` from ``_generate_assemblies_file`` and,
    with ``tracklets``, ``_el.pickle`` from ``apis.tracklets.build_tracklets`` (what
    ``convert_detections2tracklets`` writes).
    """
    import pickle

    from deeplabcut.pose_estimation_pytorch.apis.tracklets import build_tracklets
    from deeplabcut.pose_estimation_pytorch.apis.videos import (
        _generate_assemblies_file,
        _generate_output_data,
    )

    from dlc_tracking.io.madlc_files import DEFAULT_INFERENCE_CFG, kalman_fix

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    poses = truth.poses() if poses is None else np.asarray(poses, np.float64)
    uniq = np.concatenate([truth.unique_keypoints(), np.ones((truth.n_frames, 2, 1))], 2)
    joints = list(truth.body_parts) + UNIQUE_BODY_PARTS
    pose_cfg = {"all_joints": [[i] for i in range(len(joints))], "all_joints_names": joints}
    preds = [{"bodyparts": poses[i][rng.permutation(poses.shape[1])],
              "unique_bodyparts": uniq[i][None]} for i in range(truth.n_frames)]
    prefix = f"{video_stem}{scorer}"
    out = {"full": folder / f"{prefix}_full.pickle"}
    with out["full"].open("wb") as f:
        pickle.dump(_generate_output_data(pose_cfg, preds), f, pickle.HIGHEST_PROTOCOL)
    if assemblies or tracklets:
        out["assemblies"] = folder / f"{prefix}_assemblies.pickle"
        _generate_assemblies_file(out["full"], out["assemblies"], len(truth.body_parts),
                                  len(UNIQUE_BODY_PARTS))
    if tracklets:
        with out["assemblies"].open("rb") as f:
            data = pickle.load(f)
        cfg = dict(DEFAULT_INFERENCE_CFG, topktoretain=len(truth.individuals))
        with kalman_fix():
            built = build_tracklets(data, "ellipse", cfg, joints, scorer, truth.n_frames,
                                    unique_bodyparts=UNIQUE_BODY_PARTS)
        out["tracklets"] = folder / f"{prefix}_el.pickle"
        with out["tracklets"].open("wb") as f:
            pickle.dump(built, f, pickle.HIGHEST_PROTOCOL)
        if not assemblies:
            out.pop("assemblies").unlink()
    return out


def make_multi_animal_session(data_root: str | Path, subject: str, session: str,
                              truth: MultiAnimalTruth, scorer: str, *,
                              individuals: dict[str, str] | None = None,
                              start_time: str = "2026-03-01T10:00:00+01:00",
                              arena_cm: float = 40.0,
                              assignment: dict[str, str] | None = None,
                              video: bool = True) -> Path:
    """A multi-animal session folder as a lab drops it: ``session.yaml`` (with
    ``individuals:``), ``social.mp4`` and DeepLabCut's tracked outputs in ``dlc_social/``
    (written first; session.yaml last, renamed into place, so a folder watcher never sees
    half a session).

    Returns
    -------
    Path
        The session folder ``<data_root>/<subject>/<session>/``.
    """
    import os

    import yaml

    folder = Path(data_root) / subject / session
    folder.mkdir(parents=True, exist_ok=True)
    write_madlc_outputs(folder / "dlc_social", "social", scorer, truth, filtered=False)
    if video:
        render_multi_video(truth, folder / "social.mp4")
    x0, _, x1, _ = truth.arena_px
    meta: dict = {"tracking_type": "openfield", "start_time": start_time,
                  "camera_view": truth.camera_view,
                  "arena": {"shape": "square", "width_cm": float(arena_cm),
                            "height_cm": float(arena_cm)},
                  "pixels_per_cm": float((x1 - x0) / arena_cm),
                  "individuals": dict(individuals or {})}
    if assignment:
        meta["assignment"] = dict(assignment)
    tmp = folder / f".session.yaml.tmp-{os.getpid()}"
    tmp.write_text(yaml.safe_dump(meta, sort_keys=False))
    os.replace(tmp, folder / "session.yaml")
    return folder
