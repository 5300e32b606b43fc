"""The platform's inference engine for registered PyTorch (DLC 3) models.

DeepLabCut builds the model (the project's ``pytorch_config.yaml``, DLC's ``DLCLoader``
and ``get_pose_inference_runner``, the registered snapshot), so architectures, heads and
weights stay DLC's. The engine owns the pipeline around the network:

1. frames are decoded in a thread into a bounded queue of ready ``uint8`` batches
   (:mod:`~dlc_tracking.inference.decoding`);
2. the network runs in the fastest runtime that keeps DLC's numbers: on the CPU, the
   network exported once to ONNX (normalisation folded in, cached by content hash) in
   ONNX Runtime; on CUDA, DLC's PyTorch module itself, frames uploaded from pinned
   buffers and normalised on the GPU, channels-last, ``cudnn.benchmark``; bfloat16 only
   as an opt-in held to a bound on every recording (:mod:`~dlc_tracking.inference.precision`);
3. DLC's heatmap peak + location refinement, vectorised over the batch
   (:mod:`~dlc_tracking.inference.postprocess`);
4. DLC's output files, written by DLC's own writers (h5 with its columns and scorer,
   ``_meta.pickle``, ``_full.pickle``), into a private folder that replaces the output
   folder only when complete.

What it covers: single-animal bottom-up models whose heads use DLC's
``HeatmapPredictor`` and whose inference transforms are only ImageNet normalisation
(DLC's defaults for single-animal projects), with or without ``cropping`` in config.yaml.
Anything else raises :class:`EngineNotApplicable`, and the caller runs DLC's own
``analyze_videos`` instead.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlc_tracking.errors import InferenceError
from dlc_tracking.inference.allocator import keep_freed_memory
from dlc_tracking.inference.cropping import (
    CroppingError,
    CropSettings,
    DynamicCropper,
    cached_receptive_field,
    check_cropping,
    check_margin,
)
from dlc_tracking.inference.decoding import Crop, FrameBatches, dlc_crop
from dlc_tracking.inference.dlc_runner import (
    InferenceResult,
    ProgressCallback,
    claim_device,
    resolve_device,
    stage_project,
)
from dlc_tracking.inference.postprocess import HeatmapDecoding, decoding_from_config, heatmap_poses
from dlc_tracking.inference.runtimes import (  # noqa: F401 (pinned_allocator: public here)
    OnnxNetwork,
    OpenVinoNetwork,
    TorchNetwork,
    pinned_allocator,
)
from dlc_tracking.io.video import VideoInfo, probe_video

DEFAULT_CPU_BATCH = 8  # CPU s/frame vs batch measured flat from 4 to 8 (BENCHMARKS.md)
DEFAULT_CUDA_BATCH = 32
QUEUE_BATCHES = 3
CROPPING_ENV = "DLC_PLATFORM_CROPPING"
DEFAULT_CROPPING = "off"
"""Cropping is an opt-in: its keypoints are within 0.5 px (p99) of the full frame's, not
DLC's exact numbers (measured: docs/inference.md, BENCHMARKS.md)."""
# inference transforms the engine reproduces; any other one set in the config -> DLC's path
_COVERED_TRANSFORMS = {"normalize_images", "auto_padding"}
# auto_padding (DLC's default for HRNet: pad to multiples of 32) is covered where it pads
# nothing, i.e. frames already a multiple of its divisors (640x480 at 32): it is then the
# identity. Anything it would pad (DLC's albumentations PadIfNeeded, at a random position
# by default) runs DLC's path: padding_reason().
_IGNORED_TRANSFORM_KEYS = {"top_down_crop", "collate"}  # top-down / training-only keys


class EngineNotApplicable(InferenceError):
    """The engine does not cover this model; DeepLabCut's ``analyze_videos`` must run it."""


@dataclass
class LoadedModel:
    """A registered model built by DeepLabCut's code, ready for the engine."""

    model: object  # DLC's PoseModel, eval mode, on the CPU
    model_cfg: dict
    project_cfg: dict
    pose_cfg: dict
    scorer: str
    snapshot: Path
    snapshot_digest: str
    train_fraction: float
    decodings: dict[str, HeatmapDecoding]
    output_keys: list[tuple[str, str]] = field(default_factory=list)
    crop_box: tuple[int, int, int, int] | None = None
    networks: dict = field(default_factory=dict)
    """The last runtimes built for it: (device, height, width, batch, precision) -> them."""
    runtime_setting: str | None = None
    """The CPU runtime asked for (None: ``$DLC_PLATFORM_RUNTIME`` or ``auto``)."""
    pad_divisors: tuple[int, int] = (1, 1)
    """``auto_padding``'s (height, width) divisors; (1, 1) without it."""


def pad_divisors(model_cfg: dict) -> tuple[int, int]:
    """``data.inference.auto_padding``'s (height, width) divisors; (1, 1) without it."""
    pad = ((model_cfg.get("data") or {}).get("inference") or {}).get("auto_padding") or {}
    return (int(pad.get("pad_height_divisor") or 1), int(pad.get("pad_width_divisor") or 1))


def padding_reason(divisors: tuple[int, int], width: int, height: int) -> str | None:
    """Why the engine cannot run frames of this size for a model with ``auto_padding``
    (None where the padding is the identity: both sides already multiples)."""
    h_div, w_div = divisors
    if height % h_div or width % w_div:
        return (f"the model pads its input to multiples of {w_div}x{h_div} px "
                f"(auto_padding) and {width}x{height} frames are not: only frames it "
                "leaves as they are are covered")
    return None


_LAST_MODEL: dict = {}
"""This process's last built model: ``{"key": files signature, "model": LoadedModel}``.

A worker that processes recording after recording (a Celery worker, ``predict`` on many
videos) builds a model and its runtime once: the 0.3-0.9 s of DLC's loader, model build
and runtime session per call is paid again only when the model's files change. One model
only, so a worker that alternates models holds one in memory.
"""


def model_files_key(project_config: Path, model_folder: str, snapshot_rel: str,
                    shuffle: int, trainingsetindex: int) -> tuple:
    """What a built model depends on: its config.yaml and every file of its model folder
    (path, size, modification time), and the registered snapshot, shuffle and split."""
    project_config = Path(project_config).resolve()
    files = []
    for root, _dirs, names in os.walk(project_config.parent / model_folder):
        for name in names:
            stat = os.stat(os.path.join(root, name))
            files.append((os.path.join(root, name), stat.st_size, stat.st_mtime_ns))
    stat = project_config.stat()
    return (str(project_config), stat.st_size, stat.st_mtime_ns, model_folder, snapshot_rel,
            shuffle, trainingsetindex, tuple(sorted(files)))


def unsupported_reason(project_cfg: dict, model_cfg: dict) -> str | None:
    """Why the engine cannot run this model (None when it can)."""
    if project_cfg.get("multianimalproject"):
        return "multi-animal project (DLC assembles and tracks individuals)"
    if model_cfg.get("method", "bu").lower() not in ("bu", "bottom_up", "bottom-up"):
        return f"pose task {model_cfg.get('method')!r} (only bottom-up models are covered)"
    meta = model_cfg.get("metadata", {})
    if meta.get("unique_bodyparts"):
        return "unique body parts"
    if meta.get("with_identity"):
        return "identity head"
    if len(meta.get("individuals") or ["x"]) != 1:
        return "more than one individual"
    for name, head in (model_cfg.get("model", {}).get("heads") or {}).items():
        predictor = (head.get("predictor") or {}).get("type")
        if predictor != "HeatmapPredictor":
            return f"head {name!r} uses predictor {predictor!r} (only HeatmapPredictor)"
    transforms = (model_cfg.get("data") or {}).get("inference") or {}
    extra = sorted(k for k, v in transforms.items()
                   if v and k not in _COVERED_TRANSFORMS | _IGNORED_TRANSFORM_KEYS)
    if extra:
        return (f"inference transforms {extra} (only normalize_images and auto_padding "
                "are covered)")
    if not transforms.get("normalize_images"):
        return "normalize_images is off"
    return None


def load_model(staged_config: Path, shuffle: int, trainingsetindex: int) -> LoadedModel:
    """Build the registered model with DeepLabCut's own loader and builders (CPU).

    Raises
    ------
    EngineNotApplicable
        The model is of a kind the engine does not cover.
    """
    from deeplabcut.pose_estimation_pytorch.apis import utils as dlc_utils
    from deeplabcut.pose_estimation_pytorch.data import DLCLoader
    from deeplabcut.utils import auxiliaryfunctions

    from dlc_tracking.inference.export import file_digest

    loader = DLCLoader(staged_config, trainset_index=trainingsetindex, shuffle=shuffle)
    model_cfg = loader.model_cfg
    model_dict = model_cfg.to_dict() if hasattr(model_cfg, "to_dict") else dict(model_cfg)
    reason = unsupported_reason(loader.project_cfg, model_dict)
    if reason:
        raise EngineNotApplicable(f"the platform engine does not cover this model: {reason}")
    snapshot = dlc_utils.get_model_snapshots(-1, loader.model_folder, loader.pose_task)[0]
    runner = dlc_utils.get_pose_inference_runner(
        model_config=model_cfg, snapshot_path=snapshot.path, batch_size=1, device="cpu")
    model = runner.model.eval()
    decodings = {
        name: decoding_from_config(head.get("predictor") or {}, model.get_stride(name))
        for name, head in model_dict["model"]["heads"].items()
    }
    pose_cfg = auxiliaryfunctions.read_plainconfig(
        str(loader.model_folder.parent / "test" / "pose_cfg.yaml"))
    project_cfg = loader.project_cfg
    crop_box = None
    if project_cfg.get("cropping", False):
        crop_box = tuple(int(project_cfg[k]) for k in ("x1", "x2", "y1", "y2"))
    return LoadedModel(
        model=model, model_cfg=model_cfg, project_cfg=project_cfg, pose_cfg=pose_cfg,
        scorer=loader.scorer(snapshot, None), snapshot=Path(snapshot.path),
        snapshot_digest=file_digest(Path(snapshot.path)),
        train_fraction=project_cfg["TrainingFraction"][trainingsetindex],
        decodings=decodings, crop_box=crop_box, pad_divisors=pad_divisors(model_dict),
    )


# ----------------------------------------------------------------------------------------
# Runtimes: a batch of uint8 RGB frames in, the heads' maps out (numpy, float32)
# ----------------------------------------------------------------------------------------


def build_network(loaded: LoadedModel, device: str, height: int, width: int,
                  log: Callable[[str], None], batch: int = DEFAULT_CPU_BATCH,
                  precision: str = "fp32"):
    """The runtimes for ``device``: ONNX Runtime on the CPU, PyTorch on CUDA (fp32), and
    for ``precision="bf16"`` the reduced-precision one (OpenVINO on the CPU, autocast on
    CUDA; see :mod:`~dlc_tracking.inference.precision`).

    Returns
    -------
    tuple
        The fp32 network, and the bf16 network or None.
    """
    import copy

    from dlc_tracking.inference.export import (
        FramesToMaps,
        export_key,
        exported_onnx,
        head_output_keys,
        map_tolerance,
        max_abs_difference,
        swap_sync_batchnorm,
    )

    model = swap_sync_batchnorm(copy.deepcopy(loaded.model)).eval()
    keys = head_output_keys(model)
    loaded.output_keys = keys
    network = FramesToMaps(model, normalize=True, output_keys=keys).eval()
    if device.startswith("cuda"):
        import torch

        reduced = (TorchNetwork(copy.deepcopy(network), device, autocast=torch.bfloat16)
                   if precision == "bf16" else None)
        return TorchNetwork(network, device), reduced
    key = export_key(loaded.snapshot_digest, _plain(loaded.model_cfg.get("model")), height,
                     width, True)
    fresh = not (_onnx_dir() / f"{key}.onnx").is_file()
    path = exported_onnx(network, key, height, width, log=log)
    onnx_net = OnnxNetwork(path)
    if fresh:  # a new graph: check it against DLC's module once before trusting it
        rng = np.random.default_rng(0)
        probe = rng.integers(0, 256, size=(1, height, width, 3), dtype=np.uint8)
        reference = TorchNetwork(network, "cpu")(probe)
        diff = max_abs_difference(onnx_net(probe), reference)
        if diff > map_tolerance(reference):
            path.unlink(missing_ok=True)
            raise EngineNotApplicable(
                f"the exported graph differs from DLC's network by {diff:.2e} on a test frame")
        log(f"exported graph checked against DLC's network: max difference {diff:.1e}")
    from dlc_tracking.inference.runtime_choice import chosen_runtime

    onnx_net = chosen_runtime(path, key, batch, height, width, onnx_net, log=log,
                              setting=loaded.runtime_setting, torch_module=network)
    reduced = None
    if precision == "bf16":
        reduced = OpenVinoNetwork(path, batch, height, width)
        if reduced.precision != "bf16":
            log("bf16 requested but this CPU has no bf16 instructions: running fp32")
            reduced = None
    return onnx_net, reduced


def _onnx_dir() -> Path:
    from dlc_tracking.inference.export import onnx_cache_dir

    return onnx_cache_dir()


def _plain(value):
    return value.to_dict() if hasattr(value, "to_dict") else value


# ----------------------------------------------------------------------------------------
# The batch loop, with one halving of the batch on CUDA out-of-memory
# ----------------------------------------------------------------------------------------


@dataclass
class BatchState:
    """The batch size the network runs at, and whether it was already halved."""

    batch_size: int
    halved: bool = False
    device: str = "cpu"


def run_network(network, frames: np.ndarray, state: BatchState,
                log: Callable[[str], None]) -> list[np.ndarray]:
    """Maps for ``frames``, in chunks of ``state.batch_size``.

    A CUDA out-of-memory error halves the batch once and retries; a second one fails.
    """
    import torch

    while True:
        try:
            parts = [network(frames[i:i + state.batch_size])
                     for i in range(0, len(frames), state.batch_size)]
            if len(parts) == 1:
                return parts[0]
            return [np.concatenate(p, axis=0) for p in zip(*parts, strict=True)]
        except torch.cuda.OutOfMemoryError as exc:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if state.halved or state.batch_size == 1:
                raise InferenceError(
                    f"CUDA ran out of memory on {state.device} at batch size "
                    f"{state.batch_size}{' (already halved once)' if state.halved else ''}. "
                    "Lower the inference batch size (resource config batch_size, "
                    "`dlc-platform predict --batch-size`), or run on a GPU with more free "
                    f"memory. ({exc})"
                ) from exc
            state.batch_size = max(1, state.batch_size // 2)
            state.halved = True
            log(f"CUDA out of memory: retrying with batch size {state.batch_size}")


def poses_of(maps: list[np.ndarray], loaded: LoadedModel) -> np.ndarray:
    """Keypoints ``(frames, keypoints, 3)`` of the ``bodypart`` head's maps."""
    by_key = dict(zip(loaded.output_keys, maps, strict=True))
    decoding = loaded.decodings["bodypart"]
    locref = by_key.get(("bodypart", "locref"))
    return heatmap_poses(by_key[("bodypart", "heatmap")], locref, decoding)


def _networks(loaded: LoadedModel, device: str, height: int, width: int, batch: int,
              precision: str, say: Callable[[str], None]):
    """The runtimes for one input size, built once per model (a few sizes kept: the full
    frame and the crop)."""
    key = (device, height, width, batch, precision, loaded.runtime_setting)
    if key not in loaded.networks:
        if len(loaded.networks) >= 3 or any(k[0] != device for k in loaded.networks):
            loaded.networks.clear()  # bounded: runtimes (and GPU memory) per model
        loaded.networks[key] = build_network(loaded, device, height, width, say,
                                             batch=batch, precision=precision)
    return loaded.networks[key]


def receptive_field(loaded: LoadedModel, height: int, width: int) -> dict:
    """The model's measured receptive field (:func:`~dlc_tracking.inference.cropping.
    receptive_field_px`), cached per snapshot and configuration."""
    import copy

    from dlc_tracking.inference.context import (
        crop_module_with_grey_context,
        has_global_context,
    )
    from dlc_tracking.inference.export import FramesToMaps, export_key, swap_sync_batchnorm

    key = export_key(loaded.snapshot_digest, _plain(loaded.model_cfg.get("model")), 0, 0, True)
    if has_global_context(loaded.model):  # as the crop runs it: global pooling fixed
        size = max(128, (min(512, height, width) // 32) * 32)
        network = crop_module_with_grey_context(loaded, size, size)
        return cached_receptive_field(network, key + "-ctx", height, width)
    model = swap_sync_batchnorm(copy.deepcopy(loaded.model)).eval()
    keys = [("bodypart", "heatmap")]
    network = FramesToMaps(model, normalize=True, output_keys=keys).eval()
    return cached_receptive_field(network, key, height, width)


def _cropper(loaded: LoadedModel, device: str, width: int, height: int, batch: int,
             settings: CropSettings, say: Callable[[str], None]) -> DynamicCropper:
    """A :class:`DynamicCropper` on this model's networks (the crop's built when needed)."""
    from dlc_tracking.inference.context import (
        crop_context_graph,
        full_context_graph,
        has_global_context,
    )

    rf = receptive_field(loaded, height, width)
    margin = check_margin(settings, rf["effective_px"])
    _networks(loaded, device, height, width, batch, "fp32", say)  # sets output_keys
    decoding = loaded.decodings["bodypart"]
    state = BatchState(batch_size=batch, device=device)
    n_kpts = len(loaded.project_cfg["bodyparts"])

    context = None
    if has_global_context(loaded.model):
        if device.startswith("cuda"):
            raise CroppingError(
                "cropping a model with global channel attention (CSPNeXt) runs on the CPU "
                "only for now; turn cropping off on CUDA")
        # the crops run with the last full frame's global averages (context.py)
        context = {"full": full_context_graph(loaded, height, width, say), "last": None}
    n_maps = len(loaded.output_keys)

    def full(frames: np.ndarray):
        if context is not None:
            outs = run_network(context["full"], frames, state, say)
            maps = outs[:n_maps]
            context["last"] = [c[-1:] for c in outs[n_maps:]]
        else:
            network, _ = _networks(loaded, device, height, width, batch, "fp32", say)
            maps = run_network(network, frames, state, say)
        by_key = dict(zip(loaded.output_keys, maps, strict=True))
        return poses_of(maps, loaded), by_key[("bodypart", "heatmap")]

    def make_crop_run(w: int, h: int):
        if context is not None:
            crop_net = crop_context_graph(loaded, w, h, say)

            def crop_run(crops: np.ndarray) -> np.ndarray:
                ctx = [np.repeat(c, len(crops), axis=0) for c in context["last"]]
                return poses_of(crop_net(crops, ctx), loaded)
            return crop_run

        def crop_run(crops: np.ndarray) -> np.ndarray:
            network, _ = _networks(loaded, device, h, w, batch, "fp32", say)
            return poses_of(run_network(network, crops, state, say), loaded)
        _networks(loaded, device, h, w, batch, "fp32", say)  # build (export) now
        return crop_run

    say(f"cropping on: margin {margin} px (receptive field {rf['effective_px']:.0f} px "
        f"effective, {rf['theoretical_px']:.0f} px theoretical), threshold "
        f"{settings.threshold}, full frame every {settings.refresh_every} frames")
    return DynamicCropper(width, height, n_kpts, settings, margin, decoding.stride,
                          decoding.apply_sigmoid, full, make_crop_run, log=say,
                          receptive_field=rf)


def run_summary(runtime: str, precision: str, cropping: dict, frames_per_s: float,
                precision_check: dict | None = None) -> str:
    """One line saying what ran, for users (``predict``'s last line, the run log)."""
    parts = [f"{runtime} {precision}"]
    if precision_check is not None:
        parts[0] += f" (bf16 check p99.9 {precision_check.get('p999_px')} px)"
    if cropping.get("cropping") == "on" or cropping.get("crop_size"):
        gate = cropping.get("parity_gate") or {}
        share = cropping.get("full_frame_share")
        text = (f"cropping {cropping['cropping']} ({100 * (share or 0):.0f} % full frames, "
                f"parity gate p99 {gate.get('p99_px')} px on {gate.get('points')} keypoints")
        if cropping.get("off_reason"):
            text += f"; stopped: {cropping['off_reason']}"
        parts.append(text + ")")
    else:
        parts.append(f"cropping off ({cropping.get('off_reason') or 'not enabled'})")
    parts.append(f"{frames_per_s:.1f} frames/s")
    return ", ".join(parts)


# ----------------------------------------------------------------------------------------
# The entry point
# ----------------------------------------------------------------------------------------


def run_engine(
    *, project_config: Path, shuffle: int, trainingsetindex: int, snapshot_rel: str,
    model_folder: str, iteration: int, task_date: str, expected_scorer: str, video: Path,
    output_dir: Path, staging_root: Path, device: str = "auto", batch_size: int | None = None,
    progress: ProgressCallback | None = None, progress_interval_s: float = 5.0,
    video_info: VideoInfo | None = None, log: Callable[[str], None] | None = None,
    precision: str = "fp32", cropping: str | bool | None = None,
    crop_settings: CropSettings | None = None, runtime: str | None = None,
) -> InferenceResult:
    """Infer one video with one registered PyTorch model; write DLC's output files.

    Same arguments and result as :func:`~dlc_tracking.inference.dlc_runner.run_analyze_videos`
    (``engine`` is always ``"pytorch"``). ``batch_size`` None picks the device's default
    (:data:`DEFAULT_CPU_BATCH`, :data:`DEFAULT_CUDA_BATCH`). ``precision="bf16"``: the
    reduced-precision opt-in, held to its bound (:mod:`~dlc_tracking.inference.precision`).
    ``cropping`` ``"on"``/``"off"`` (None: ``$DLC_PLATFORM_CROPPING``, else
    :data:`DEFAULT_CROPPING`): dynamic cropping around the animal with ``crop_settings``
    (:mod:`~dlc_tracking.inference.cropping`; fp32 only). ``extra`` of the result says what
    ran: ``runtime``, ``precision``, ``cropping`` (the cropper's report), ``full_frame_share``,
    ``parity_gate``, ``summary`` (one line for users). ``runtime`` (CPU): ``auto`` (the
    measured table, :func:`~dlc_tracking.inference.choice.chosen_runtime`),
    ``onnxruntime`` or ``openvino``; None = ``$DLC_PLATFORM_RUNTIME``, else ``auto``.

    Raises
    ------
    EngineNotApplicable
        The model is of a kind the engine does not cover (run DLC's path instead).
    VideoError
        Missing or unreadable video, or one that ends early / has an undecodable frame
        (the frame number is in the message); the output folder is then left empty.
    InferenceError
        Scorer mismatch, CUDA requested without a GPU, CUDA out of memory twice.
    """
    from dlc_tracking.inference.precision import check_precision

    say = log or (lambda _msg: None)
    precision = check_precision(precision)
    cropping = check_cropping(cropping if cropping is not None
                              else os.environ.get(CROPPING_ENV, DEFAULT_CROPPING))
    if cropping == "on" and precision != "fp32":
        say(f"cropping runs with fp32 only: off with precision {precision}")
        cropping = "off"
    info = video_info or probe_video(video)
    resolve_device(device)
    keep_freed_memory()
    output_dir = Path(output_dir)
    if output_dir.exists():  # a failed run leaves no outputs, not an older run's
        shutil.rmtree(output_dir)
    start = time.monotonic()
    key = model_files_key(project_config, model_folder, snapshot_rel, shuffle,
                          trainingsetindex)
    if _LAST_MODEL.get("key") == key:
        loaded = _LAST_MODEL["model"]
        say("model reused from this process's previous call (its files are unchanged)")
    else:
        _LAST_MODEL.clear()
        loaded = _build_model(project_config, model_folder, iteration, task_date,
                              snapshot_rel, staging_root, shuffle, trainingsetindex)
        _LAST_MODEL.update(key=key, model=loaded)
    if loaded.scorer != expected_scorer:
        raise InferenceError(
            f"{project_config}: the model's scorer is {loaded.scorer!r} but it was registered "
            f"as {expected_scorer!r}: the project changed since registration. Run "
            "`dlc-platform registry validate` and register the model again."
        )
    crop = dlc_crop(loaded.crop_box, info.width_px, info.height_px) if loaded.crop_box else None
    import deeplabcut

    with claim_device(device, staging_root / "gpu-locks") as resolved:
        on_cuda = resolved.startswith("cuda")
        batch = batch_size or (DEFAULT_CUDA_BATCH if on_cuda else DEFAULT_CPU_BATCH)
        width = (crop.x2 - crop.x1) if crop else info.width_px
        height = (crop.y2 - crop.y1) if crop else info.height_px
        if reason := padding_reason(loaded.pad_divisors, width, height):
            raise EngineNotApplicable(f"the platform engine does not cover this video: "
                                      f"{reason}")
        crop_off_reason = "not enabled"
        if cropping == "on" and loaded.pad_divisors != (1, 1):
            crop_off_reason = "the model pads its input (auto_padding)"
            say("cropping off: the model pads its input (auto_padding), so a crop's keypoints "
                "would not be the full frame's")
            cropping = "off"
        from dlc_tracking.inference.runtime_choice import RUNTIME_ENV, check_runtime

        # resolved here: the built runtimes are kept per setting (_networks' key)
        loaded.runtime_setting = check_runtime(runtime or os.environ.get(RUNTIME_ENV))
        network, reduced = _networks(loaded, resolved, height, width, batch, precision, say)
        cropper = None
        if cropping == "on":
            cropper = _cropper(loaded, resolved, width, height, batch,
                               crop_settings or CropSettings(), say)
        load_s = time.monotonic() - start
        poses, timing = _infer(network, loaded, video, info, batch, crop, resolved,
                               progress, progress_interval_s, say, reduced=reduced,
                               cropper=cropper)
    seconds = time.monotonic() - start
    stop = time.time()
    files = _write_outputs(loaded, poses, video, output_dir, batch, crop,
                           runtime=(stop - seconds, stop),
                           engine_info={"runtime": network.runtime, "device": resolved,
                                        "batch_size": timing["batch_size"],
                                        "precision": timing["precision"],
                                        "cropping": cropper.report() if cropper else None,
                                        "precision_check": timing.get("precision_check")})
    infer_s = timing["infer_s"]
    frames_per_s = len(poses) / infer_s if infer_s > 0 else float("nan")
    report = cropper.report() if cropper is not None else {"cropping": "off",
                                                           "off_reason": crop_off_reason}
    share = report.get("full_frame_share", 1.0 if cropper is None else None)
    h5 = output_dir / f"{video.stem}{loaded.scorer}.h5"
    return InferenceResult(
        h5_path=h5, meta_path=output_dir / f"{video.stem}{loaded.scorer}_meta.pickle",
        files=files, scorer=loaded.scorer, engine="pytorch", fps=info.fps,
        n_frames=len(poses), frame_size=(info.width_px, info.height_px), device=resolved,
        batch_size=timing["batch_size"], seconds=seconds, model_load_s=load_s,
        frames_per_s=frames_per_s,
        dlc_version=deeplabcut.__version__, inference_engine="platform",
        extra={"runtime": network.runtime,
               **({"runtime_choice": network.choice} if getattr(network, "choice", None)
                  else {}),
               "cropping": report, "full_frame_share": share,
               **({"parity_gate": report["parity_gate"]} if report.get("parity_gate")
                  else {}),
               "summary": run_summary(network.runtime + (
                   f" ({network.chunk} frames per network call)"
                   if getattr(network, "chunk", None) else ""), timing["precision"], report,
                                      frames_per_s, timing.get("precision_check")),
               "network_s": round(timing["network_s"], 3),
               "decode_wait_s": round(timing["wait_s"], 3),
               "postprocess_s": round(timing["post_s"], 3),
               "batch_halved": timing["halved"], "precision": timing["precision"],
               **({"precision_check": timing["precision_check"]}
                  if "precision_check" in timing else {})},
    )


def _build_model(project_config: Path, model_folder: str, iteration: int, task_date: str,
                 snapshot_rel: str, staging_root: Path, shuffle: int,
                 trainingsetindex: int) -> LoadedModel:
    """Stage the registered snapshot and build the model with DLC's code."""
    staged = stage_project(project_config, model_folder, iteration, task_date, snapshot_rel,
                           staging_root)
    try:
        return load_model(staged, shuffle, trainingsetindex)
    except InferenceError:
        raise
    except Exception as exc:  # DLC raises bare exceptions; name what was being loaded
        raise InferenceError(
            f"DeepLabCut could not build the model of {project_config} (shuffle {shuffle}, "
            f"snapshot {snapshot_rel}): {type(exc).__name__}: {exc}. Run `dlc-platform "
            "registry validate`."
        ) from exc
    finally:
        shutil.rmtree(staged.parent, ignore_errors=True)


def _infer(network, loaded: LoadedModel, video: Path, info: VideoInfo, batch: int,
           crop: Crop | None, device: str, progress: ProgressCallback | None,
           interval_s: float, say: Callable[[str], None], reduced=None,
           cropper: DynamicCropper | None = None) -> tuple[np.ndarray, dict]:
    """Poses of every frame, and timings. With ``reduced`` (the bf16 network), the first
    :data:`~dlc_tracking.inference.precision.PROBE_FRAMES` frames run in both
    precisions and the rest in bf16 only if the check passes (``timing["precision"]``)."""
    from dlc_tracking.inference.precision import PROBE_FRAMES, compare_poses

    allocate = pinned_allocator if device.startswith("cuda") else None
    batches = FrameBatches(video, info.n_frames, batch, info.width_px, info.height_px,
                           crop=crop, queue_batches=QUEUE_BATCHES, allocate=allocate)
    state = BatchState(batch_size=batch, device=device)
    chunks: list[np.ndarray] = []
    probe: list[np.ndarray] = []
    timing: dict = {"network_s": 0.0, "wait_s": 0.0, "post_s": 0.0, "precision": "fp32"}
    t0 = last = time.monotonic()
    done = 0
    tw = time.perf_counter()
    active = network
    for first, frames in batches:
        t1 = time.perf_counter()
        timing["wait_s"] += t1 - tw
        if cropper is not None:
            chunks.append(cropper.run(frames, first))
            t2 = time.perf_counter()
        else:
            maps = run_network(active, frames, state, say)
            if reduced is not None:
                probe.append(poses_of(run_network(reduced, frames, state, say), loaded))
            t2 = time.perf_counter()
            chunks.append(poses_of(maps, loaded))
        if reduced is not None and (done + len(frames) >= PROBE_FRAMES
                                    or done + len(frames) >= info.n_frames):
            check = compare_poses(np.concatenate(chunks), np.concatenate(probe))
            timing["precision_check"] = check.as_dict()
            if check.within_bound:
                active, timing["precision"] = reduced, "bf16"
            say(f"bf16: {check.reason()}; running the rest in {timing['precision']}")
            reduced = None
        tw = time.perf_counter()
        timing["network_s"] += t2 - t1
        timing["post_s"] += tw - t2
        done += len(frames)
        now = time.monotonic()
        if progress is not None and (now - last >= interval_s or done >= info.n_frames):
            last = now
            progress(done, max(info.n_frames, done), now - t0)
    timing["infer_s"] = time.monotonic() - t0
    timing["batch_size"] = state.batch_size
    timing["halved"] = state.halved
    if progress is not None and done < info.n_frames:  # pragma: no cover (errors raise)
        progress(done, info.n_frames, timing["infer_s"])
    poses = np.concatenate(chunks, axis=0) if chunks else np.zeros((0, 0, 3), np.float32)
    return poses, timing


class _StreamedDict:
    """Pickles as a plain ``dict`` whose items come from an iterator: written in batches
    of 1,000 as they are made, never all in memory (unpickles as a ``dict``)."""

    def __init__(self, items):
        self.items = items

    def __reduce__(self):
        return (dict, (), None, None, self.items)


class _Length:
    """A sequence of ``n`` items that yields none (DLC's metadata only needs the count)."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        return iter(())


def write_full_pickle(path: Path, pose_cfg: dict, poses: np.ndarray) -> None:
    """DLC's ``_full.pickle`` of ``poses`` ``(frames, keypoints, 3)``, streamed.

    The same object DLC's ``_generate_output_data`` builds (its own function makes the
    metadata and every frame's entry), but pickled frame by frame without the memo: DLC's
    way holds ~6.5 KB per frame at once (1.2 GB for an hour at 50 Hz); this holds a batch.
    """
    from deeplabcut.pose_estimation_pytorch.apis import videos as dlc_videos

    n = len(poses)
    metadata = dlc_videos._generate_output_data(pose_cfg, _Length(n))["metadata"]
    width = metadata["key_str_width"]

    def items():
        yield "metadata", metadata
        for i in range(n):
            frame = dlc_videos._generate_output_data(pose_cfg, [{"bodyparts": poses[i:i + 1]}])
            yield "frame" + str(i).zfill(width), frame["frame0"]

    with open(path, "wb") as f:
        pickler = pickle.Pickler(f, pickle.HIGHEST_PROTOCOL)
        pickler.fast = True  # no memo: it would keep every pickled object alive; no cycles
        pickler.dump(_StreamedDict(items()))


def _write_outputs(loaded: LoadedModel, poses: np.ndarray, video: Path, output_dir: Path,
                   batch: int, crop: Crop | None, runtime: tuple[float, float],
                   engine_info: dict) -> list[Path]:
    """DLC's files for ``poses``, written by DLC's own writers, published all at once."""
    from deeplabcut.pose_estimation_pytorch.apis import videos as dlc_videos

    output_dir = Path(output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.partial-", dir=output_dir.parent))
    try:
        prefix = f"{video.stem}{loaded.scorer}"
        predictions = [{"bodyparts": poses[i:i + 1]} for i in range(len(poses))]
        iterator = dlc_videos.VideoIterator(
            video, cropping=[crop.x1, crop.x2, crop.y1, crop.y2] if crop else None)
        metadata = dlc_videos._generate_metadata(
            cfg=loaded.project_cfg, pytorch_config=loaded.model_cfg, dlc_scorer=loaded.scorer,
            train_fraction=loaded.train_fraction, batch_size=batch,
            cropping=[crop.x1, crop.x2, crop.y1, crop.y2] if crop else None,
            runtime=runtime, video=iterator)
        iterator.close()
        metadata["data"]["dlc_platform_engine"] = engine_info  # provenance; DLC ignores it
        with (tmp / f"{prefix}_meta.pickle").open("wb") as f:
            pickle.dump(metadata, f, pickle.HIGHEST_PROTOCOL)
        write_full_pickle(tmp / f"{prefix}_full.pickle", loaded.pose_cfg, poses)
        dlc_videos.create_df_from_prediction(
            predictions=predictions, dlc_scorer=loaded.scorer, multi_animal=False,
            model_cfg=loaded.model_cfg, output_path=tmp, output_prefix=prefix)
        if output_dir.exists():
            shutil.rmtree(output_dir)
        os.replace(tmp, output_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return sorted(output_dir.iterdir())
