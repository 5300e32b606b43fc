"""Raw DLC predictions of one recording: from DLC outputs to the long warehouse table and
back, with body parts mapped to canonical names and DLC's missing encodings removed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dlc_tracking.errors import DLCFileError

PREDICTION_COLUMNS = ["recording_id", "model_name", "frame", "time_s", "body_part", "x_px",
                      "y_px", "likelihood"]


@dataclass
class RecordingPredictions:
    """Per-frame, per-body-part predictions of one recording, in canonical names."""

    poses: np.ndarray  # (n_frames, n_parts, 3) image coordinates
    body_parts: list[str]
    time_s: np.ndarray
    scorer: str
    source: str  # "inference" or "manual"
    files: list[str]
    start_timestamp: str | None = None

    @property
    def n_frames(self) -> int:
        return int(self.poses.shape[0])


def manual_outputs_present(folder: Path) -> bool:
    """True when the session's ``dlc_<video stem>/`` folder holds any prediction file."""
    return folder.is_dir() and any(
        p.suffix in (".h5", ".csv") and not p.name.startswith(".") for p in folder.iterdir()
    )


def load_manual_outputs(folder: Path, expected_scorer: str, recording_id: str):
    """Load hand-produced DLC outputs for the assigned model (several sets concatenated in
    file order). Refuses outputs of another model, naming the file and both scorers."""
    from dlc_tracking.io.dlc_files import find_output_sets, load_output_folder, read_metadata

    sets = find_output_sets(folder)
    if not sets:
        raise DLCFileError(
            f"{folder} (recording {recording_id}) holds no DLC prediction files (.h5/.csv)."
        )
    loaded = load_output_folder(folder, expected_scorer)
    start = None
    for output_set in sets:
        if output_set.metadata_path is not None:
            start = start or read_metadata(output_set.metadata_path).get("start_timestamp")
    return loaded, [str(s.predictions_path) for s in sets], start


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


def clean_coordinates(poses: np.ndarray, width: int, height: int, margin_px: float = 0.5
                      ) -> tuple[np.ndarray, int]:
    """Points outside the frame (negative, or beyond width/height) become missing.

    DLC cannot legitimately place a keypoint outside the image; such points come from
    corrupted or mis-assigned files. Returns the cleaned copy and how many were removed.
    """
    x, y = poses[..., 0], poses[..., 1]
    outside = (x < -margin_px) | (y < -margin_px) | (x > width - 1 + margin_px + 0.5) | (
        y > height - 1 + margin_px + 0.5)
    outside &= ~np.isnan(x)
    cleaned = poses.copy()
    cleaned[outside] = np.nan
    return cleaned, int(outside.sum())


def to_long(recording_id: str, model_name: str, poses: np.ndarray, body_parts: list[str],
            time_s: np.ndarray) -> pd.DataFrame:
    """Long table: one row per frame x body part (frame-major order)."""
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
