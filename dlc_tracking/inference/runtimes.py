"""The runtimes that run an exported or PyTorch network: a batch of uint8 RGB frames in,
the heads' maps out (numpy, float32).

- :class:`OnnxNetwork`: the exported graph in ONNX Runtime (CPU, fp32);
- :class:`OpenVinoNetwork`: the exported graph in OpenVINO (CPU; bf16 opt-in or fp32);
- :class:`TorchNetwork`: DLC's PyTorch module (CUDA, or the CPU), frames normalised on
  the device, optional autocast.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class OnnxNetwork:
    """The exported graph in ONNX Runtime (CPU, fp32)."""

    runtime = "onnxruntime"

    def __init__(self, path: Path, threads: int | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or os.cpu_count() or 1
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # threads sleep instead of spinning between ops: measured 10-25 % less CPU per
        # frame on this shared 2-core machine, and the decoder thread gets its turn
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, frames: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(frames)})


class OpenVinoNetwork:
    """The exported graph in OpenVINO on the CPU: bfloat16 (the ``bf16`` opt-in) or fp32.

    bf16: compiled for a fixed batch (static shapes); a last, shorter batch is padded with
    black frames whose outputs are dropped. fp32 (``precision="fp32"``, a candidate of the
    measured runtime choice): the graph's free batch dimension is kept, and the precision
    hint is set to f32 explicitly (OpenVINO would pick bf16 by itself on a CPU that has
    it). ``precision`` is what OpenVINO actually runs: ``fp32`` on a CPU without bf16
    instructions.
    """

    runtime = "openvino"

    def __init__(self, path: Path, batch: int, height: int, width: int,
                 threads: int | None = None, precision: str = "bf16"):
        import openvino as ov

        core = ov.Core()
        model = core.read_model(str(path))
        if precision == "bf16":
            model.reshape({model.inputs[0].get_any_name(): [batch, height, width, 3]})
        self.compiled = core.compile_model(model, "CPU", {
            "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": threads or os.cpu_count() or 1})
        used = str(self.compiled.get_property("INFERENCE_PRECISION_HINT"))
        self.precision = "bf16" if "bf" in used.lower() else "fp32"
        self.request = self.compiled.create_infer_request()
        self.batch = batch if precision == "bf16" else 0
        self.outputs = list(self.compiled.outputs)

    def __call__(self, frames: np.ndarray) -> list[np.ndarray]:
        n = len(frames)
        if n < self.batch:
            pad = np.zeros((self.batch - n, *frames.shape[1:]), frames.dtype)
            frames = np.concatenate([frames, pad])
        result = self.request.infer([np.ascontiguousarray(frames)])
        return [np.array(result[o][:n]) for o in self.outputs]


class TorchNetwork:
    """DLC's PyTorch module on a CUDA device (or the CPU), frames normalised on the device.

    ``autocast`` (``torch.bfloat16``): the ``bf16`` opt-in, PyTorch's autocast
    (``torch.float16``: the GPU benchmark's fp16). ``channels_last`` (default: on CUDA
    only): the weights' memory layout (the frames arrive NHWC, so they already are).
    """

    runtime = "torch"

    def __init__(self, network, device: str, autocast=None, channels_last: bool | None = None):
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.on_cuda = self.device.type == "cuda"
        self.autocast = autocast
        self.precision = {None: "fp32", torch.bfloat16: "bf16",
                          torch.float16: "fp16"}.get(autocast, str(autocast))
        if self.on_cuda:
            torch.backends.cudnn.benchmark = True
        self.network = network.to(self.device).eval()
        if channels_last if channels_last is not None else self.on_cuda:
            self.network = self.network.to(memory_format=torch.channels_last)

    def __call__(self, frames: np.ndarray) -> list[np.ndarray]:
        torch = self.torch
        with torch.inference_mode(), torch.autocast(
                self.device.type, dtype=self.autocast, enabled=self.autocast is not None):
            x = torch.from_numpy(frames).to(self.device, non_blocking=self.on_cuda)
            outputs = self.network(x)
            return [o.float().cpu().numpy() for o in outputs]


class ChunkedNetwork:
    """A network run on slices of each batch (``chunk`` frames at a time), the heads'
    maps joined again.

    The engine keeps decoding, batching and writing in batches of ``batch_size`` while the
    network itself sees ``chunk`` frames per call: on a CPU, large inputs can run faster
    in small batches, whose activations stay in the caches (DeepLabCut's own
    ``analyze_videos`` measured 1.6x faster at batch 1 than at batch 8 for ``resnet_50``
    at 640x480 on a 2-core Zen 4; BENCHMARKS.md). The measured runtime table decides.
    The maps are the same up to float rounding (a runtime's kernels may round differently
    for another batch size: measured <= 1.3e-4 px on keypoints); the table admits a slice
    size only at map parity.
    """

    def __init__(self, network, chunk: int):
        self.network = network
        self.chunk = int(chunk)

    def __getattr__(self, name: str):
        # runtime, precision, ... of the wrapped network (only called for missing names)
        return getattr(self.__dict__["network"], name)

    def __call__(self, frames: np.ndarray) -> list[np.ndarray]:
        if len(frames) <= self.chunk:
            return self.network(frames)
        parts = [self.network(frames[i:i + self.chunk])
                 for i in range(0, len(frames), self.chunk)]
        return [np.concatenate([part[k] for part in parts]) for k in range(len(parts[0]))]


def pinned_allocator(shape: tuple[int, ...]) -> np.ndarray:
    """A page-locked host buffer (fast, asynchronous host-to-GPU copies)."""
    import torch

    return torch.empty(shape, dtype=torch.uint8, pin_memory=True).numpy()
