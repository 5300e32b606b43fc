"""Helpers of the model-review tests: warehouse rows of synthetic recordings, and a
second model version made from the tiny model (its weights perturbed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from dlc_tracking.warehouse import TABLES

PARTS = ["nose", "left_ear", "right_ear", "tail_base"]


def recordings_row(rid: str, video: Path | str | None, n_frames: int, model: str,
                   width: int = 200, height: int = 150, has_video: bool = True,
                   method: str = "two_ears_loose") -> pd.DataFrame:
    """A ``recordings`` partition with the columns the review reads (others NULL)."""
    row = {c: None for c in TABLES["recordings"].column_names}
    row.update({"recording_id": rid, "subject": rid.split("__")[0], "session": "s",
                "video_path": str(video) if video is not None else None,
                "n_frames": n_frames, "fps": 30.0, "width_px": width, "height_px": height,
                "model_name": model, "method_name": method, "has_video": has_video,
                "state_vector_status": "supported", "source": "inference",
                "fps_source": "video", "video_facts_source": "video"})
    return pd.DataFrame([row])


def predictions_long(rid: str, model: str, poses: np.ndarray, fps: float = 30.0
                     ) -> pd.DataFrame:
    """A ``predictions`` partition from poses (n_frames, 4, 3)."""
    from dlc_tracking.tracking.predictions import to_long

    n = poses.shape[0]
    return to_long(rid, model, poses, PARTS, np.arange(n) / fps)


def write_evaluation(store, model: str, test_rmse_px: float = 2.0) -> None:
    """Rows of ``model`` in ``model_evaluations``, in whatever schema the table has."""
    spec = TABLES.get("model_evaluations")
    if spec is None:  # the training side has not declared it: a free table will do
        df = pd.DataFrame([{"model_name": model, "body_part": "all",
                            "test_rmse_px": test_rmse_px}])
        try:
            old = store.read_table("model_evaluations")
            df = pd.concat([old[old["model_name"] != model], df], ignore_index=True)
        except Exception:  # noqa: BLE001 - not written yet
            pass
        store.write_table("model_evaluations", df)
        return
    row = {}
    for col in spec.columns:
        kind = str(col.type)
        row[col.name] = ("" if kind == "string" else 0 if "int" in kind else
                         False if kind == "bool" else None if "timestamp" in kind else 1.0)
    row.update({"model_name": model, "body_part": "all", "test_rmse_px": test_rmse_px,
                "registered_snapshot": True, "snapshot": "snapshot-001.pt"})
    if "evaluated_at" in row:
        row["evaluated_at"] = pd.Timestamp.now(tz="UTC")
    df = pd.DataFrame([row])
    if spec.partitioned:
        store.write_partition("model_evaluations", model, df)
    else:
        store.write_table("model_evaluations", df)


def perturbed_copy(config: Path, dest: Path, shuffle: int = 2, scale: float = 0.05,
                   seed: int = 0) -> Path:
    """Copy a tiny PyTorch project and add shuffle ``shuffle`` holding the trained
    weights plus Gaussian noise (``scale`` x each conv weight's std): a second, slightly
    different model version of the same project, made in a second."""
    import torch

    from dlc_tracking.training.projects import copy_project

    copy = copy_project(config, dest)
    models = copy.parent / "dlc-models-pytorch" / "iteration-0"
    src = next(models.glob("*shuffle1"))
    dst = models / src.name.replace("shuffle1", f"shuffle{shuffle}")
    shutil.copytree(src, dst)
    for cfg in dst.rglob("*.yaml"):
        cfg.write_text(cfg.read_text().replace(src.name, dst.name))
    snapshot = next((dst / "train").glob("snapshot-*.pt"))
    state = torch.load(snapshot, map_location="cpu", weights_only=False)
    gen = torch.Generator().manual_seed(seed)
    weights = state["model"] if "model" in state else state
    for name, tensor in weights.items():
        # Convolution weights only: noise on BatchNorm's running variance could make it
        # negative (NaN everywhere).
        if torch.is_tensor(tensor) and tensor.is_floating_point() and tensor.dim() >= 2 \
                and name.endswith("weight"):
            noise = torch.randn(tensor.shape, generator=gen) * float(tensor.std()) * scale
            weights[name] = tensor + noise
    torch.save(state, snapshot)
    return copy


def prediction_source_row(rid: str, model: str, source: str) -> pd.DataFrame:
    """A ``prediction_sources`` partition: where the recording's predictions came from."""
    row = {c: None for c in TABLES["prediction_sources"].column_names}
    row.update({"recording_id": rid, "model_name": model, "source": source,
                "scorer": f"scorer_of_{model}", "files": "[]", "notes": "[]"})
    return pd.DataFrame([row])


def processed_frames(rid: str, model: str, n: int, step_cm: float,
                     method: str = "two_ears_loose") -> pd.DataFrame:
    """A ``processed_tracking`` partition: the animal walks ``step_cm`` per frame along x
    (distance = (n - 1) * step_cm)."""
    df = pd.DataFrame({c: None for c in TABLES["processed_tracking"].column_names},
                      index=range(n))
    df = df.assign(recording_id=rid, model_name=model, method_name=method,
                   params_name="default", params_hash="h", frame=np.arange(n),
                   time_s=np.arange(n) / 30.0, x_cm=1.0 + np.arange(n) * step_cm, y_cm=5.0,
                   speed_cm_s=step_cm * 30.0, interpolated=False)
    return df
