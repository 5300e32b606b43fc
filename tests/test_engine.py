"""The platform's inference engine against DeepLabCut's analyze_videos (real tiny model).

Parity: x and y within 1e-3 px on every keypoint DLC gives a likelihood >= 0.6, and the
likelihood within 1e-3 everywhere (low-likelihood keypoints sit on flat heatmaps whose
peak pixel can flip with rounding, so their x/y are not compared).
"""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dlc_tracking.errors import InferenceError, VideoError
from dlc_tracking.inference.postprocess import HeatmapDecoding, heatmap_poses
from dlc_tracking.synthetic.openfield import render_video, simulate_openfield
from dlc_tracking.synthetic.video_variants import grayscale_copy, mjpeg_with_corrupt_frame
from resources import DLCInference

PX_TOL, LIKELIHOOD_TOL, CONFIDENT = 1e-3, 1e-3, 0.6


class LogSink:
    def __init__(self):
        self.lines: list[str] = []

    def info(self, msg: str) -> None:
        self.lines.append(msg)


def _video(folder: Path, name: str, n_frames: int, width: int, height: int,
           seed: int) -> Path:
    gt = simulate_openfield(n_frames=n_frames, fps=30, width=width, height=height, seed=seed)
    return render_video(gt, folder / f"{name}.mp4", noise=2.0, seed=seed)


def _resource(tmp_path: Path, engine: str, name: str) -> DLCInference:
    return DLCInference(device="cpu", engine=engine, work_dir=str(tmp_path / name),
                        progress_interval_s=0.0)


def _compare(platform_h5: Path, dlc_h5: Path, confident_at: float = CONFIDENT,
             min_confident: float = 0.3) -> dict:
    a = pd.read_hdf(platform_h5, "df_with_missing")
    b = pd.read_hdf(dlc_h5, "df_with_missing")
    assert a.columns.equals(b.columns) and a.index.equals(b.index)
    assert list(a.dtypes) == list(b.dtypes)
    pa = a.to_numpy().reshape(len(a), -1, 3)
    pb = b.to_numpy().reshape(len(b), -1, 3)
    confident = pb[..., 2] >= confident_at
    assert confident.mean() >= min_confident, f"{confident.mean():.2f} confident: too few to judge"
    dxy = np.abs(pa[..., :2] - pb[..., :2])[confident]
    dlik = np.abs(pa[..., 2] - pb[..., 2])
    bad = np.argwhere((np.abs(pa[..., :2] - pb[..., :2]).max(-1) > PX_TOL) & confident)
    assert dxy.max() <= PX_TOL, (dxy.max(), bad, pa[tuple(bad.T)], pb[tuple(bad.T)])
    assert dlik.max() <= LIKELIHOOD_TOL, dlik.max()
    return {"max_px": float(dxy.max()), "max_likelihood": float(dlik.max())}


def _both(registry, tmp_path: Path, video: Path, rid: str):
    model = registry.model("tiny_openfield")
    sink = LogSink()
    ours = _resource(tmp_path, "platform", "plat").analyze(model, video, rid, log=sink)
    ref = _resource(tmp_path, "dlc", "dlc").analyze(model, video, rid)
    assert ours.inference_engine == "platform" and ref.inference_engine == "dlc"
    return ours, ref, sink


# ----------------------------------------------------------------------------------------
# Heatmap decoding against DLC's own predictor (no model needed)
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("sigmoid,clip,locref", [(False, True, True), (True, False, True),
                                                 (False, False, False)])
def test_heatmap_poses_equal_dlc_predictor(sigmoid, clip, locref):
    import torch
    from deeplabcut.pose_estimation_pytorch.models.predictors.single_predictor import (
        HeatmapPredictor,
    )

    rng = np.random.default_rng(3)
    heat = rng.normal(0.3, 0.4, size=(5, 4, 31, 41)).astype(np.float32)
    heat[0, 1] = 0.5  # a flat map: the first maximum wins
    heat[1, 2, 7, 9] = heat[1, 2, 20, 3] = 5.0  # two equal peaks
    loc = rng.normal(0, 1, size=(5, 8, 31, 41)).astype(np.float32)
    dlc = HeatmapPredictor(apply_sigmoid=sigmoid, clip_scores=clip,
                           location_refinement=locref, locref_std=7.2801)
    expected = dlc(8.0, {"heatmap": torch.from_numpy(heat),
                         "locref": torch.from_numpy(loc)})["poses"][:, 0].numpy()
    got = heatmap_poses(heat, loc if locref else None,
                        HeatmapDecoding(stride=8.0, locref_std=7.2801, apply_sigmoid=sigmoid,
                                        clip_scores=clip, location_refinement=locref))
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    if not locref:  # a flat map peaks at its first cell, (0, 0): x = y = stride / 2
        assert got[0, 1, 0] == 4.0 and got[0, 1, 1] == 4.0


# ----------------------------------------------------------------------------------------
# Parity with analyze_videos on the tiny model
# ----------------------------------------------------------------------------------------


def test_parity_odd_frame_count(registry, tmp_path):
    """21 frames at batch 8: two full batches and a partial one; DLC's file layout."""
    video = _video(tmp_path, "odd", 21, 320, 240, seed=21)
    ours, ref, sink = _both(registry, tmp_path, video, "odd")
    _compare(ours.h5_path, ref.h5_path)
    assert ours.n_frames == 21 and ours.batch_size == 8 and ours.device == "cpu"
    assert [p.name for p in ours.files] == [p.name for p in ref.files]
    assert ours.extra["runtime"] == "onnxruntime"
    assert any("frames/s" in line and "21/21" in line for line in sink.lines), sink.lines
    meta_a = pickle.loads(ours.meta_path.read_bytes())["data"]
    meta_b = pickle.loads(ref.meta_path.read_bytes())["data"]
    for key in ("Scorer", "fps", "frame_dimensions", "nframes", "bodyparts", "cropping",
                "cropping_parameters", "training set fraction"):
        assert meta_a[key] == meta_b[key], key
    assert meta_a["dlc_platform_engine"]["runtime"] == "onnxruntime"


@pytest.mark.slow
def test_parity_size_not_a_multiple_of_the_stride(registry, tmp_path):
    video = _video(tmp_path, "odd_size", 13, 203, 157, seed=5)
    ours, ref, _ = _both(registry, tmp_path, video, "odd_size")
    _compare(ours.h5_path, ref.h5_path)


@pytest.mark.slow
def test_parity_grayscale_video(registry, tmp_path):
    colour = _video(tmp_path, "colour", 12, 320, 240, seed=9)
    grey = grayscale_copy(colour, tmp_path / "grey.mp4")
    ours, ref, _ = _both(registry, tmp_path, grey, "grey")
    # the tiny model never saw grey frames: every likelihood is < 0.3 (measured), so no
    # keypoint is "confident"; x/y are compared on all of them instead (stricter)
    _compare(ours.h5_path, ref.h5_path, confident_at=0.0, min_confident=1.0)


@pytest.mark.slow
def test_parity_larger_frames(registry, tmp_path):
    video = _video(tmp_path, "large", 9, 640, 480, seed=33)
    ours, ref, _ = _both(registry, tmp_path, video, "large")
    # the tiny model was trained on 200x150 frames and is confident on few keypoints here
    _compare(ours.h5_path, ref.h5_path, min_confident=0.05)


# ----------------------------------------------------------------------------------------
# Engine choice
# ----------------------------------------------------------------------------------------


def test_registry_override_runs_dlc(registry, tmp_path):
    model = replace(registry.model("tiny_openfield"), inference_engine="dlc")
    video = _video(tmp_path, "v", 5, 160, 120, seed=1)
    result = _resource(tmp_path, "platform", "w").analyze(model, video, "r")
    assert result.inference_engine == "dlc" and result.h5_path.is_file()


def test_engine_choice_rules():
    from dlc_tracking.inference.choice import chosen_engine

    assert chosen_engine("platform", "pytorch", None) == "platform"
    assert chosen_engine("dlc", "pytorch", None) == "dlc"
    assert chosen_engine("dlc", "pytorch", "platform") == "platform"
    assert chosen_engine("platform", "tensorflow", None) == "dlc"  # legacy: DLC's path
    with pytest.raises(InferenceError, match="unknown inference engine 'fast'"):
        chosen_engine("fast", "pytorch", None)


def test_uncovered_models_are_named():
    from dlc_tracking.inference.engine import unsupported_reason

    base = {"method": "bu", "metadata": {"individuals": ["a"], "unique_bodyparts": []},
            "model": {"heads": {"bodypart": {"predictor": {"type": "HeatmapPredictor"}}}},
            "data": {"inference": {"normalize_images": True, "resize": None}}}
    assert unsupported_reason({}, base) is None
    assert "multi-animal" in unsupported_reason({"multianimalproject": True}, base)
    resized = {**base, "data": {"inference": {"normalize_images": True,
                                              "resize": {"height": 256, "width": 256}}}}
    assert "resize" in unsupported_reason({}, resized)
    td = {**base, "method": "td"}
    assert "bottom-up" in unsupported_reason({}, td)


def test_auto_padding_is_covered_where_it_pads_nothing():
    """HRNet's default inference config pads to multiples of 32: 640x480 frames are left
    as they are (the engine runs them); 650x490 would be padded (DLC's path, with why)."""
    from dlc_tracking.inference.engine import pad_divisors, padding_reason, unsupported_reason

    hrnet = {"method": "bu", "metadata": {"individuals": ["a"], "unique_bodyparts": []},
             "model": {"heads": {"bodypart": {"predictor": {"type": "HeatmapPredictor"}}}},
             "data": {"inference": {"normalize_images": True, "auto_padding": {
                 "pad_width_divisor": 32, "pad_height_divisor": 32}}}}
    assert unsupported_reason({}, hrnet) is None
    assert pad_divisors(hrnet) == (32, 32)
    assert pad_divisors({"data": {"inference": {"normalize_images": True}}}) == (1, 1)
    assert padding_reason((32, 32), 640, 480) is None
    reason = padding_reason((32, 32), 650, 490)
    assert "650x490" in reason and "32x32" in reason and "auto_padding" in reason


# ----------------------------------------------------------------------------------------
# Failures
# ----------------------------------------------------------------------------------------


def test_corrupt_frame_fails_with_frame_and_file_then_rerun_works(registry, tmp_path):
    model = registry.model("tiny_openfield")
    good = _video(tmp_path, "src", 20, 160, 120, seed=4)
    bad = mjpeg_with_corrupt_frame(good, tmp_path / "damaged.avi", corrupt_frame=11)
    inference = _resource(tmp_path, "platform", "w")
    with pytest.raises(VideoError, match=r"damaged\.avi.*frame 11 of 20"):
        inference.analyze(model, bad, "rec")
    out = inference.output_dir("rec", model.name)
    assert not out.exists() or not list(out.glob("*.h5"))  # nothing half-written
    assert not list(out.parent.glob(".*partial*"))
    result = inference.analyze(model, good, "rec")  # the recording can be rerun
    assert len(pd.read_hdf(result.h5_path)) == 20


def test_cuda_out_of_memory_halves_the_batch_once_then_fails(registry, tmp_path,
                                                             monkeypatch):
    """The real retry path, with ONNX Runtime made to raise torch's OOM above a size."""
    import torch

    from dlc_tracking.inference import engine

    calls: list[int] = []
    real_call = engine.OnnxNetwork.__call__

    def limited(limit):
        def call(self, frames):
            calls.append(len(frames))
            if len(frames) > limit:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (test)")
            return real_call(self, frames)
        return call

    model = registry.model("tiny_openfield")
    video = _video(tmp_path, "oom", 10, 160, 120, seed=8)
    monkeypatch.setenv("DLC_PLATFORM_RUNTIME", "onnxruntime")  # no runtime table: ORT runs
    monkeypatch.setattr(engine.OnnxNetwork, "__call__", limited(4))
    sink = LogSink()
    result = _resource(tmp_path, "platform", "w").analyze(model, video, "r", log=sink)
    assert result.batch_size == 4 and result.extra["batch_halved"] is True
    assert len(pd.read_hdf(result.h5_path)) == 10
    assert 8 in calls and max(c for c in calls[calls.index(8) + 1:]) <= 4
    assert any("retrying with batch size 4" in line for line in sink.lines)

    monkeypatch.setattr(engine.OnnxNetwork, "__call__", limited(2))
    inference = _resource(tmp_path, "platform", "w2")
    with pytest.raises(InferenceError, match="CUDA ran out of memory.*batch size 4"):
        inference.analyze(model, video, "r")
    assert not list(inference.output_dir("r", model.name).parent.glob("**/*.h5"))


# ----------------------------------------------------------------------------------------
# Reduced precision: an opt-in held to its bound on every recording
# ----------------------------------------------------------------------------------------


def test_precision_check_judges_the_999th_percentile_on_confident_keypoints():
    from dlc_tracking.inference.precision import BOUND_P999_PX, compare_poses

    rng = np.random.default_rng(0)
    ref = np.zeros((200, 4, 3), np.float32)
    ref[..., :2] = rng.uniform(0, 300, size=(200, 4, 2))
    ref[..., 2] = 0.9
    close = ref.copy()
    close[..., :2] += rng.normal(0, 0.05, size=(200, 4, 2))
    assert compare_poses(ref, close).within_bound
    flipped = close.copy()
    flipped[:4, :, 0] += 16.0  # 2 % of the keypoints jump by a stride
    check = compare_poses(ref, flipped)
    assert not check.within_bound and check.p999_px > BOUND_P999_PX and check.max_px > 15
    unsure = ref.copy()
    unsure[..., 2] = 0.3  # nothing confident: the bound cannot be judged, fp32 is kept
    unsure_check = compare_poses(ref * [1, 1, 0.3], unsure)
    assert unsure_check.confident == 0 and not unsure_check.within_bound
    assert "cannot be judged" in unsure_check.reason()


def test_unknown_precision_is_refused_with_the_choices():
    from dlc_tracking.inference.precision import check_precision

    assert check_precision(None) == "fp32" and check_precision(" BF16 ") == "bf16"
    with pytest.raises(InferenceError, match="fp32.*bf16"):
        check_precision("fp16")


def _cpu_has_bf16() -> bool:
    """Whether OpenVINO runs bf16 on this CPU (AVX-512 BF16 or AMX; not on every machine)."""
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def test_bf16_opt_in_keeps_fp32_results_unless_within_its_bound(registry, tmp_path):
    """The first 64 frames run in both precisions and are written in fp32; the rest runs
    in bf16 only when the check passed (on the tiny model it does not: its heatmap peaks
    move a cell, 5-10 px, on ~1 % of the confident keypoints); the check is recorded."""
    from dlc_tracking.inference.precision import BOUND_P999_PX, PROBE_FRAMES

    model = registry.model("tiny_openfield")
    video = _video(tmp_path, "bf16", PROBE_FRAMES + 16, 320, 240, seed=44)
    sink = LogSink()
    low = DLCInference(device="cpu", precision="bf16", work_dir=str(tmp_path / "bf16"),
                       progress_interval_s=0.0).analyze(model, video, "bf16", log=sink)
    full = _resource(tmp_path, "platform", "fp32").analyze(model, video, "fp32")
    a = pd.read_hdf(low.h5_path, "df_with_missing").to_numpy()
    b = pd.read_hdf(full.h5_path, "df_with_missing").to_numpy()
    if not _cpu_has_bf16():
        # The opt-in on a CPU without bf16 instructions: said, and exactly fp32.
        assert any("no bf16 instructions: running fp32" in line for line in sink.lines)
        assert low.extra["precision"] == "fp32" and "precision_check" not in low.extra
        np.testing.assert_array_equal(a, b)
        return
    check = low.extra["precision_check"]
    # bf16 really ran on the probe frames and gave the same kind of maps (likelihoods).
    assert check["confident"] > 0 and check["max_likelihood_diff"] < 0.05, check
    assert low.extra["precision"] == ("bf16" if check["within_bound"] else "fp32")
    assert check["frames"] == PROBE_FRAMES and check["within_bound"] == (
        check["confident"] >= 20 and check["p999_px"] <= BOUND_P999_PX)
    assert any("bf16:" in line and "running the rest in" in line for line in sink.lines)
    np.testing.assert_array_equal(a[:PROBE_FRAMES], b[:PROBE_FRAMES])
    if low.extra["precision"] == "fp32":
        np.testing.assert_array_equal(a, b)
    meta = pickle.loads(low.meta_path.read_bytes())["data"]["dlc_platform_engine"]
    assert meta["precision"] == low.extra["precision"] and meta["precision_check"] == check
    assert full.extra["precision"] == "fp32" and "precision_check" not in full.extra


def test_full_pickle_is_dlc_s_object_streamed(tmp_path):
    """``_full.pickle`` written frame by frame unpickles to exactly the dict DLC's own
    ``_generate_output_data`` builds (keys, order, shapes, values)."""
    from deeplabcut.pose_estimation_pytorch.apis import videos as dlc_videos

    from dlc_tracking.inference.engine import write_full_pickle

    pose_cfg = {"all_joints": [[0], [1], [2]], "all_joints_names": ["nose", "ear", "tail"],
                "nmsradius": 5, "minconfidence": 0.01}
    poses = np.random.default_rng(2).random((1234, 3, 3), dtype=np.float32)
    write_full_pickle(tmp_path / "full.pickle", pose_cfg, poses)
    ours = pickle.loads((tmp_path / "full.pickle").read_bytes())
    dlc = dlc_videos._generate_output_data(
        pose_cfg, [{"bodyparts": poses[i:i + 1]} for i in range(len(poses))])
    assert type(ours) is dict and list(ours) == list(dlc)

    def same(a, b):
        assert type(a) is type(b)
        if isinstance(a, dict):
            assert list(a) == list(b)
            for k in a:
                same(a[k], b[k])
        elif isinstance(a, list | tuple):
            assert len(a) == len(b)
            for x, y in zip(a, b, strict=True):
                same(x, y)
        elif isinstance(a, np.ndarray):
            assert a.shape == b.shape and a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
        else:
            assert a == b

    same(ours, dlc)


def test_a_worker_builds_a_model_once_until_its_files_change(registry, tmp_path):
    """Recording after recording in one process: DLC's loader, the model build and the
    runtime session are paid once; a changed file of the model folder builds it again."""
    import os

    model = registry.model("tiny_openfield")
    video = _video(tmp_path, "again", 6, 160, 120, seed=8)
    resource = _resource(tmp_path, "platform", "again")
    first, second = LogSink(), LogSink()
    a = resource.analyze(model, video, "a", log=first)
    b = resource.analyze(model, video, "b", log=second)
    assert any("model reused" in line for line in second.lines), second.lines
    assert b.model_load_s < a.model_load_s or not any("model reused" in x for x in first.lines)
    np.testing.assert_array_equal(pd.read_hdf(a.h5_path).to_numpy(),
                                  pd.read_hdf(b.h5_path).to_numpy())
    pose_cfg = next((model.project_config.parent / model.derived["model_folder"])
                    .rglob("pytorch_config.yaml"))
    stat = pose_cfg.stat()
    os.utime(pose_cfg, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    try:
        third = LogSink()
        resource.analyze(model, video, "c", log=third)
        assert not any("model reused" in line for line in third.lines), third.lines
    finally:
        os.utime(pose_cfg, ns=(stat.st_atime_ns, stat.st_mtime_ns))
