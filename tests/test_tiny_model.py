"""Tiny offline DLC models: cache layout, DLC project layout, recorded accuracy.

The slow tests build both models once per machine (a few minutes each on CPU) or load
them from the cache (``$DLC_PLATFORM_CACHE`` or ``~/.cache/dlc-platform``).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from dlc_tracking.synthetic import openfield as synthetic
from dlc_tracking.synthetic import tiny_model
from dlc_tracking.synthetic.tiny_model import (
    build_tiny_model,
    content_hash,
    labelled_frame_indices,
    model_dir,
    read_metadata,
    write_labels,
)

# --------------------------------------------------------------------------------------
# Fast checks (no DeepLabCut run)
# --------------------------------------------------------------------------------------


def test_cache_location_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("DLC_PLATFORM_CACHE", str(tmp_path / "c"))
    d = model_dir("pytorch")
    assert d.parent == tmp_path / "c" / "models"
    assert d.name == f"pytorch-{content_hash('pytorch')}"
    assert model_dir("tensorflow", tmp_path / "x").parent == tmp_path / "x" / "models"
    monkeypatch.delenv("DLC_PLATFORM_CACHE")
    assert model_dir("pytorch").parent == Path.home() / ".cache" / "dlc-platform" / "models"


def test_content_hash_is_stable_and_per_engine():
    assert content_hash("pytorch") == content_hash("pytorch")
    assert content_hash("pytorch") != content_hash("tensorflow")
    assert len(content_hash("pytorch")) == 12
    with pytest.raises(ValueError, match="engine"):
        content_hash("caffe")


def test_labelled_frames_are_spread_and_unique():
    idx = labelled_frame_indices(600, 80)
    assert len(idx) == 80 and idx[0] == 0 and idx[-1] == 599
    assert (np.diff(idx) > 0).all()


def test_labels_in_dlc_format(tmp_path):
    gt = synthetic.simulate_openfield(n_frames=120, seed=1)
    video = synthetic.render_video(gt, tmp_path / "clip.mp4")
    project = tmp_path / "proj"
    h5 = write_labels(
        project, video, gt, np.array([0, 7, 64]), "synthetic", ["snout", "a", "b", "c"]
    )
    assert h5 == project / "labeled-data" / "clip" / "CollectedData_synthetic.h5"
    df = pd.read_hdf(h5, key="df_with_missing")
    assert df.columns.names == ["scorer", "bodyparts", "coords"]
    assert list(df.columns.get_level_values("bodyparts").unique()) == ["snout", "a", "b", "c"]
    # DLC names frames img<index zero-padded to ceil(log10(n_frames)) digits>.png
    assert list(df.index) == [
        ("labeled-data", "clip", "img000.png"),
        ("labeled-data", "clip", "img007.png"),
        ("labeled-data", "clip", "img064.png"),
    ]
    assert (project / "labeled-data" / "clip" / "img064.png").is_file()
    np.testing.assert_allclose(df.iloc[2].to_numpy().reshape(4, 2), gt.keypoints[64])


def _fake_worker(calls: list):
    """Stands in for the DLC build: writes a minimal project with absolute paths."""

    def run(workdir, spec, say, failed_log):
        calls.append(workdir)
        project = workdir / tiny_model.project_name(spec.engine)
        (project / "videos").mkdir(parents=True)
        (project / "config.yaml").write_text(
            f"Task: {spec.task}\nproject_path: {project}\n"
            f"video_sets:\n  {project}/videos/tinytrain.mp4:\n    crop: 0, 200, 0, 150\n"
        )
        (project / "checkpoint").write_text(f'model_checkpoint_path: "{project}/snapshot-1"\n')
        say("[tiny_model] fake build")
        return {"engine": spec.engine, "mean_error_px": 1.0}

    return run


def test_build_is_atomic_cached_and_relocated(monkeypatch, tmp_path):
    calls: list = []
    monkeypatch.setattr(tiny_model, "_run_worker", _fake_worker(calls))
    lines: list[str] = []
    config = build_tiny_model("pytorch", cache_dir=tmp_path, progress=lines.append)
    final = model_dir("pytorch", tmp_path)
    assert config == final / tiny_model.project_name("pytorch") / "config.yaml"
    cfg = yaml.safe_load(config.read_text())
    assert Path(cfg["project_path"]) == config.parent
    assert list(cfg["video_sets"]) == [str(config.parent / "videos" / "tinytrain.mp4")]
    assert str(config.parent) in (config.parent / "checkpoint").read_text()
    info = read_metadata(config)
    assert info["hash"] == content_hash("pytorch") and info["build_seconds"] >= 0
    assert any("fake build" in line for line in lines)
    # No temporary folder left; a second call is a cache hit (no build).
    assert [p.name for p in final.parent.iterdir() if p.name.startswith(".")] == []
    assert build_tiny_model("pytorch", cache_dir=tmp_path, progress=None) == config
    assert len(calls) == 1
    # force rebuilds in place.
    assert build_tiny_model("pytorch", cache_dir=tmp_path, force=True, progress=None) == config
    assert len(calls) == 2


def test_failed_build_leaves_no_model(monkeypatch, tmp_path):
    def boom(workdir, spec, say, failed_log):
        (workdir / "build.log").write_text("DLC said no\n")
        raise tiny_model.TinyModelError("training failed")

    monkeypatch.setattr(tiny_model, "_run_worker", boom)
    with pytest.raises(tiny_model.TinyModelError, match="training failed"):
        build_tiny_model("tensorflow", cache_dir=tmp_path, progress=None)
    final = model_dir("tensorflow", tmp_path)
    assert not final.exists()
    assert tiny_model.cached_config_path("tensorflow", tmp_path) is None
    assert [p.name for p in final.parent.iterdir() if p.is_dir()] == []
    assert (final.parent / f"{final.name}.failed.log").read_text() == "DLC said no\n"


# --------------------------------------------------------------------------------------
# Real builds (cached per machine)
# --------------------------------------------------------------------------------------


def _project_files_digest(project: Path) -> dict[str, str]:
    return {
        str(p.relative_to(project)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(project.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def pytorch_config() -> Path:
    return build_tiny_model("pytorch")


@pytest.fixture(scope="module")
def tensorflow_config() -> Path:
    return build_tiny_model("tensorflow")


@pytest.mark.slow
@pytest.mark.timeout(3600)  # a build takes minutes, more on a busy machine
def test_pytorch_model_layout_and_accuracy(pytorch_config):
    config = pytorch_config
    project = config.parent
    assert project.parent == model_dir("pytorch")
    cfg = yaml.safe_load(config.read_text())
    assert cfg["Task"] == "tinyopenfield"
    assert cfg["date"] == "Jan1"
    assert cfg["scorer"] == "synthetic"
    assert cfg["bodyparts"] == ["nose", "left_ear", "right_ear", "tail_base"]
    assert cfg["engine"] == "pytorch"
    assert cfg["iteration"] == 0
    assert cfg["TrainingFraction"] == [0.95]
    assert Path(cfg["project_path"]) == project
    assert all(Path(v).parent == project / "videos" for v in cfg["video_sets"])

    meta = yaml.safe_load(
        (
            project
            / "training-datasets/iteration-0/UnaugmentedDataSet_tinyopenfieldJan1/metadata.yaml"
        ).read_text()
    )
    assert meta["shuffles"][next(iter(meta["shuffles"]))]["engine"] == "pytorch"
    model_folder = project / "dlc-models-pytorch/iteration-0/tinyopenfieldJan1-trainset95shuffle1"
    assert (model_folder / "train" / "pytorch_config.yaml").is_file()
    assert (model_folder / "test" / "pose_cfg.yaml").is_file()
    info = read_metadata(config)
    snaps = sorted(p.name for p in (model_folder / "train").glob("snapshot-*.pt"))
    assert snaps == [f"snapshot-{info['epochs']:03d}.pt"]
    pose_cfg = yaml.safe_load((model_folder / "train" / "pytorch_config.yaml").read_text())
    assert Path(pose_cfg["metadata"]["project_path"]) == project

    assert info["engine"] == "pytorch"
    assert info["hash"] == content_hash("pytorch")
    assert info["body_parts"] == cfg["bodyparts"]
    assert info["mean_error_px"] < 3.0
    assert info["build_seconds"] > 0
    assert json.loads((project.parent / "tiny_model.json").read_text()) == info


@pytest.mark.slow
def test_pytorch_model_cache_hit_is_fast(pytorch_config):
    t0 = time.monotonic()
    again = build_tiny_model("pytorch", progress=None)
    assert again == pytorch_config
    assert time.monotonic() - t0 < 5.0


@pytest.mark.slow
def test_reading_the_cached_config_does_not_rewrite_it(pytorch_config):
    # DLC's read_config repairs (and writes back) project_path when it does not match
    # the file's location; a correct cache must never be written to by readers.
    from deeplabcut.core.config import read_config

    before = _project_files_digest(pytorch_config.parent)
    cfg = read_config(pytorch_config)
    assert Path(cfg["project_path"]) == pytorch_config.parent
    assert _project_files_digest(pytorch_config.parent) == before


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_tensorflow_model_layout_and_accuracy(tensorflow_config):
    config = tensorflow_config
    project = config.parent
    assert project.parent == model_dir("tensorflow")
    cfg = yaml.safe_load(config.read_text())
    assert cfg["Task"] == "tinylegacy"
    assert cfg["date"] == "Jan1"
    assert cfg["bodyparts"] == ["snout", "leftear", "rightear", "tailbase"]
    assert cfg["engine"] == "tensorflow"
    assert Path(cfg["project_path"]) == project

    model_folder = project / "dlc-models/iteration-0/tinylegacyJan1-trainset95shuffle1"
    assert not (project / "dlc-models-pytorch").exists() or not any(
        (project / "dlc-models-pytorch").rglob("*.pt")
    )
    train = model_folder / "train"
    info = read_metadata(config)
    snap = f"snapshot-{info['iterations']}"
    assert (train / f"{snap}.index").is_file()
    assert (train / f"{snap}.meta").is_file()
    assert list(train.glob(f"{snap}.data-*"))
    assert sorted({p.name.split(".")[0] for p in train.glob("snapshot-*")}) == [snap]
    test_cfg = yaml.safe_load((model_folder / "test" / "pose_cfg.yaml").read_text())
    assert test_cfg["all_joints_names"] == cfg["bodyparts"]
    train_cfg = yaml.safe_load((train / "pose_cfg.yaml").read_text())
    assert Path(train_cfg["project_path"]) == project
    assert Path(train_cfg["init_weights"]).parent.is_dir()

    assert info["engine"] == "tensorflow"
    assert info["hash"] == content_hash("tensorflow")
    assert info["mean_error_px"] < 10.0


@pytest.mark.slow
def test_tiny_model_cli_prints_cached_config(pytorch_config, capsys):
    assert tiny_model.main(["--engine", "pytorch"]) == 0
    assert capsys.readouterr().out.strip() == str(pytorch_config)
