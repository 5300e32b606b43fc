"""Raw DLC predictions of one recording: from DLC outputs to the long warehouse table and
back, with body parts mapped to canonical names and DLC's missing encodings removed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dlc_tracking.errors import DLCFileError


def manual_outputs_present(folder: Path) -> bool:
    """True when the session's ``dlc_<video stem>/`` folder holds any prediction file."""
    return folder.is_dir() and any(
        p.suffix.lower() in (".h5", ".csv", ".nwb") and not p.name.startswith(".")
        for p in folder.iterdir()
    )


@dataclass
class ManualOutputs:
    """DLC outputs dropped in a session's ``dlc_<video stem>/`` folder, loaded."""

    predictions: object  # dlc_tracking.io.dlc_files.DLCPredictions
    files: list[str]
    start_timestamp: object | None  # datetime from the metadata's "Start Timestamp"
    dlc_fps: float | None  # the frame rate DLC's metadata states, when it has one
    notes: list[str]
    # Other models' outputs of the same video in the folder: {scorer: predictions files}.
    # Not the recording's predictions (the assignment says which model is current); the
    # asset keeps them as alternatives in model_predictions (docs/models.md).
    alternatives: dict[str, list[str]] = field(default_factory=dict)


def load_manual_outputs(folder: Path, expected_scorer: str, recording_id: str,
                        video_fps: float | None = None) -> ManualOutputs:
    """Load hand-produced DLC outputs for the assigned model (several sets concatenated in
    file order), or an NWB file with ndx-pose data when the folder holds no DLC .h5/.csv.
    Other models' outputs beside the assigned model's are left out and listed in
    ``alternatives``; a folder with no outputs of the assigned model is refused, naming
    the file and both scorers.
    """
    from dlc_tracking.io.dlc_files import find_output_sets, load_output_folder, read_metadata

    sets = find_output_sets(folder)
    if not sets:
        nwbs = sorted(p for p in folder.iterdir()
                      if p.suffix.lower() == ".nwb" and not p.name.startswith("."))
        if nwbs:
            return _load_nwb(nwbs, expected_scorer, recording_id, video_fps)
        raise DLCFileError(
            f"{folder} (recording {recording_id}) holds no DLC prediction files (.h5/.csv/.nwb)."
        )
    legacy = expected_scorer.replace("DLC", "DeepCut", 1)
    mine = [s for s in sets if s.scorer in (expected_scorer, legacy)]
    if not mine:  # only other models' outputs: refused, naming the file and both scorers
        load_output_folder(folder, expected_scorer)
    alternatives: dict[str, list[str]] = {}
    for s in sets:
        if s not in mine:
            alternatives.setdefault(s.scorer, []).append(str(s.predictions_path))
    loaded = load_output_folder(folder, expected_scorer, skip_other_scorers=True)
    start, fps = None, set()
    for output_set in mine:
        if output_set.metadata_path is not None:
            meta = read_metadata(output_set.metadata_path)
            start = start or meta.get("start_timestamp")
            if meta.get("fps"):
                fps.add(float(meta["fps"]))
    if len(fps) > 1:
        raise DLCFileError(
            f"{folder} (recording {recording_id}): the metadata of the output sets state "
            f"different frame rates {sorted(fps)}; they are not parts of one video. Keep the "
            "sets of this video only.")
    return ManualOutputs(loaded, [str(s.predictions_path) for s in mine], start,
                         fps.pop() if fps else None, list(getattr(loaded, "notes", []) or []),
                         alternatives)


def _load_nwb(paths: list[Path], expected_scorer: str, recording_id: str,
              video_fps: float | None) -> ManualOutputs:
    """One NWB file's ndx-pose pose, checked against the model and the video's rate."""
    from dlc_tracking.io.nwb_pose import check_nwb_frame_rate, read_nwb_predictions

    if len(paths) > 1:
        raise DLCFileError(
            f"{paths[0].parent} (recording {recording_id}) holds several NWB files "
            f"{[p.name for p in paths]}; keep the one with this video's pose.")
    from dlc_tracking.registry.scorers import match_scorer

    loaded, timestamps = read_nwb_predictions(paths[0])
    matched = match_scorer(loaded.scorer, expected_scorer) if loaded.scorer else ""
    if matched is None:
        raise DLCFileError(
            f"{paths[0]} (recording {recording_id}): pose from another model: scorer "
            f"{loaded.scorer!r}, expected {expected_scorer!r}. Move the file out, or assign "
            "the recording to the model that made it.")
    if video_fps is not None:
        check_nwb_frame_rate(timestamps, video_fps, paths[0], recording_id)
    notes = list(loaded.notes or []) + [f"read from NWB (ndx-pose) {paths[0].name}"]
    if matched:
        notes.append(f"{paths[0].name}: {matched}")
    return ManualOutputs(loaded, [str(paths[0])], None, None, notes)


def map_body_parts(names: list[str], to_canonical: dict[str, str], where: str) -> list[str]:
    """Canonical names of the body parts found in a predictions file; the set must be
    exactly the model's."""
    unknown = [n for n in names if n not in to_canonical]
    missing = [n for n in to_canonical if n not in names]
    if unknown or missing:
        raise DLCFileError(
            f"{where}: body parts {names} do not match the assigned model's "
            f"{list(to_canonical)} (unexpected {unknown}, missing {missing}). The outputs are "
            "from another model or project; remove them or fix the assignment."
        )
    return [to_canonical[n] for n in names]


def outside_frame(poses: np.ndarray, width: int, height: int, margin_px: float = 0.5
                  ) -> np.ndarray:
    """Which points lie outside the video frame (by more than ``margin_px``).

    Pixel centres run from 0 to width - 1 (height - 1); DLC's location refinement can
    place a point up to half a pixel beyond them legitimately. Missing points are not
    outside. The points themselves are not changed: the predictions stay as DLC wrote
    them, and the state-vector step decides (``outside_frame`` processing parameter).
    """
    x, y = poses[..., 0], poses[..., 1]
    with np.errstate(invalid="ignore"):
        return ((x < -margin_px) | (y < -margin_px) | (x > width - 1 + margin_px)
                | (y > height - 1 + margin_px))


def exclude_outside_frame(poses: np.ndarray, width: int, height: int, rule: str,
                          margin_px: float = 0.5) -> tuple[np.ndarray, int]:
    """Apply the ``outside_frame`` rule: ``"exclude"`` makes such points missing (a copy),
    ``"keep"`` leaves them. Returns the poses and how many points were excluded."""
    if rule == "keep":
        return poses, 0
    mask = outside_frame(poses, width, height, margin_px)
    if not mask.any():
        return poses, 0
    out = poses.copy()
    out[mask] = np.nan
    return out, int(mask.sum())


@dataclass(frozen=True)
class FrameFit:
    """How predictions were fitted to the video's frame count."""

    rows_in_files: int
    video_frames: int
    dropped: int
    padded: int

    @property
    def adjusted(self) -> bool:
        return bool(self.dropped or self.padded)


def fit_frame_count(poses: np.ndarray, n_video_frames: int, tolerance: int, where: str
                    ) -> tuple[np.ndarray, FrameFit]:
    """Match the predictions to the video's frames within ``tolerance`` frames.

    Extra trailing rows are dropped and missing trailing rows padded as missing (NaN);
    a larger difference is refused: the outputs belong to another or a cut video.

    Raises
    ------
    DLCFileError
        The difference exceeds ``tolerance``.
    """
    n = int(poses.shape[0])
    diff = n - int(n_video_frames)
    if abs(diff) > tolerance:
        raise DLCFileError(
            f"{where}: {n} frames of predictions but the video has {n_video_frames} "
            f"({'+' if diff > 0 else ''}{diff}, more than the frame_count_tolerance of "
            f"{tolerance}). The outputs belong to another (or a cut) video: remove them from "
            "the folder or analyse this video again; if the video's container miscounts its "
            "frames, raise `frame_count_tolerance` in the recording's processing parameter set "
            "(docs/processing.md).")
    fit = FrameFit(n, int(n_video_frames), max(diff, 0), max(-diff, 0))
    if diff > 0:
        poses = poses[:n_video_frames]
    elif diff < 0:
        pad = np.full((-diff, *poses.shape[1:]), np.nan)
        poses = np.concatenate([poses, pad], axis=0)
    return poses, fit


def to_long(recording_id: str, model_name: str, poses: np.ndarray, body_parts: list[str],
            time_s: np.ndarray, outside: np.ndarray | None = None) -> pd.DataFrame:
    """Long table: one row per frame x body part (frame-major order); ``outside`` is the
    :func:`outside_frame` mask (all False when not given)."""
    n_frames, n_parts, _ = poses.shape
    n = n_frames * n_parts

    def constant(value: str) -> pd.Categorical:  # cheap: one code array, one category
        return pd.Categorical.from_codes(np.zeros(n, np.int8), [value])

    return pd.DataFrame({
        "recording_id": constant(recording_id),
        "model_name": constant(model_name),
        "frame": np.repeat(np.arange(n_frames, dtype=np.int64), n_parts),
        "time_s": np.repeat(time_s, n_parts),
        "body_part": pd.Categorical.from_codes(
            np.tile(np.arange(n_parts, dtype=np.int8), n_frames), body_parts),
        "x_px": poses[..., 0].ravel(),
        "y_px": poses[..., 1].ravel(),
        "likelihood": poses[..., 2].ravel(),
        "outside_frame": (np.zeros(n, bool) if outside is None else
                          np.asarray(outside, bool).ravel()),
    })


def from_long(df: pd.DataFrame) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Back from the long table to ``poses`` (n_frames, n_parts, 3), names and frame times."""
    body_parts = list(dict.fromkeys(df["body_part"].astype(str)))
    n_parts = len(body_parts)
    df = df.sort_values(["frame", "body_part"], key=lambda s: s.map(
        {bp: i for i, bp in enumerate(body_parts)}) if s.name == "body_part" else s)
    n_frames = len(df) // n_parts
    poses = df[["x_px", "y_px", "likelihood"]].to_numpy(np.float64).reshape(n_frames, n_parts, 3)
    time_s = df["time_s"].to_numpy(np.float64)[::n_parts]
    return poses, body_parts, time_s
