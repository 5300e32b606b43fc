"""The DLC inference resource with the real tiny models (PyTorch and TensorFlow)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dlc_tracking.errors import InferenceError, ModelNotAvailableError, VideoError
from dlc_tracking.registry.registry_file import load_registry
from dlc_tracking.synthetic.openfield import (
    read_ground_truth,
    render_video,
    simulate_openfield,
    write_ground_truth,
)
from resources import DLCInference

# The tiny PyTorch model's keypoints on frames it never saw, mean over body parts and
# frames (its build reports its own figure in tiny_model.json, ~1-2 px).
MAX_MEAN_ERROR_PX = 3.0


class LogSink:
    """Collects what the resource logs (a Dagster context.log stand-in for plain calls)."""

    def __init__(self):
        self.lines: list[str] = []

    def info(self, msg: str) -> None:
        self.lines.append(msg)


def tree_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(folder)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


@pytest.fixture(scope="module")
def unseen_video(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("unseen")
    gt = simulate_openfield(n_frames=60, fps=30, width=200, height=150, seed=987)
    video = render_video(gt, folder / "unseen.mp4") or folder / "unseen.mp4"
    truth = write_ground_truth(gt, folder / "unseen.groundtruth.csv")
    return Path(video), truth


@pytest.fixture
def inference(tmp_path) -> DLCInference:
    return DLCInference(device="cpu", batch_size=8, work_dir=str(tmp_path / "work"),
                        progress_interval_s=0.0)


def _layout_ok(h5: Path, scorer: str, parts: list[str]) -> pd.DataFrame:
    df = pd.read_hdf(h5, "df_with_missing")
    assert list(df.columns.names) == ["scorer", "bodyparts", "coords"]
    assert set(df.columns.get_level_values("scorer")) == {scorer}
    assert list(dict.fromkeys(df.columns.get_level_values("bodyparts"))) == parts
    assert set(df.columns.get_level_values("coords")) == {"x", "y", "likelihood"}
    return df


@pytest.mark.slow
def test_pytorch_model_infers_accurately(registry, inference, unseen_video):
    model = registry.model("tiny_openfield")
    video, truth = unseen_video
    before = tree_digest(model.project_dir)
    sink = LogSink()
    result = inference.analyze(model, video, "rec1", log=sink)
    assert tree_digest(model.project_dir) == before  # the project is never written to
    df = _layout_ok(result.h5_path, model.scorer, model.dlc_body_parts)
    assert len(df) == 60 and result.n_frames == 60
    assert result.engine == "pytorch" and result.device == "cpu"
    assert result.frame_size == (200, 150) and result.fps == pytest.approx(30)
    assert result.frames_per_s > 0 and result.dlc_version.startswith("3.")
    assert result.h5_path.parent == inference.output_dir("rec1", model.name)
    assert any("frames/s" in line and "60/60" in line for line in sink.lines), sink.lines
    gt = read_ground_truth(truth)
    pred = df.to_numpy().reshape(60, 4, 3)[..., :2]
    error = np.linalg.norm(pred - gt.keypoints, axis=-1)
    assert np.nanmean(error) < MAX_MEAN_ERROR_PX, np.nanmean(error, axis=0)


@pytest.mark.slow
def test_tensorflow_model_infers(legacy_registry_path, inference, unseen_video):
    model = load_registry(legacy_registry_path).model("tiny_legacy")
    video, truth = unseen_video
    before = tree_digest(model.project_dir)
    result = inference.analyze(model, video, "rec1")
    assert tree_digest(model.project_dir) == before
    assert result.engine == "tensorflow"
    df = _layout_ok(result.h5_path, model.scorer, ["snout", "leftear", "rightear", "tailbase"])
    gt = read_ground_truth(truth)
    pred = df.to_numpy().reshape(len(df), 4, 3)[..., :2]
    assert np.nanmean(np.linalg.norm(pred - gt.keypoints, axis=-1)) < 10


def test_missing_and_truncated_video(registry, inference, unseen_video, tmp_path):
    model = registry.model("tiny_openfield")
    with pytest.raises(VideoError, match="nope.mp4"):
        inference.analyze(model, tmp_path / "nope.mp4", "r")
    cut = tmp_path / "cut.mp4"
    data = unseen_video[0].read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(VideoError, match="cut.mp4"):
        inference.analyze(model, cut, "r")


def test_model_not_on_this_worker(registry, inference, unseen_video, tmp_path):
    from dataclasses import replace

    model = registry.model("tiny_openfield")
    moved = replace(model, project_config=tmp_path / "gone" / "config.yaml")
    with pytest.raises(ModelNotAvailableError, match="not on this worker"):
        inference.analyze(moved, unseen_video[0], "r")
    copy = tmp_path / "copy"
    shutil.copytree(model.project_dir, copy, symlinks=True)
    (copy / model.derived["snapshot"]).unlink()
    no_snapshot = replace(model, project_config=copy / "config.yaml")
    with pytest.raises(ModelNotAvailableError, match="snapshot files missing"):
        inference.analyze(no_snapshot, unseen_video[0], "r")


def test_cuda_without_gpu_and_unknown_engine(registry, tmp_path, unseen_video):
    import torch

    from dlc_tracking.inference.dlc_runner import resolve_device, run_analyze_videos

    if torch.cuda.is_available():
        pytest.skip("this worker has a GPU")
    with pytest.raises(InferenceError, match="no CUDA GPU"):
        resolve_device("cuda:0")
    with pytest.raises(InferenceError, match="unknown device"):
        resolve_device("tpu")
    model = registry.model("tiny_openfield")
    d = model.derived
    with pytest.raises(InferenceError, match="unknown engine 'jax'"):
        run_analyze_videos(project_config=model.project_config, engine="jax", shuffle=1,
                           trainingsetindex=0, snapshot_rel=d["snapshot"],
                           model_folder=d["model_folder"], iteration=0, task_date="x",
                           expected_scorer=model.scorer, video=unseen_video[0],
                           output_dir=tmp_path / "o", staging_root=tmp_path / "s")
