"""The network a DLC PyTorch model runs, as one graph: uint8 RGB frames in, head maps out.

:class:`FramesToMaps` wraps DLC's own ``PoseModel`` (built by DLC's builders from the
project's ``pytorch_config.yaml``, weights from the registered snapshot) with DLC's input
normalisation in front, so a batch of decoded frames goes in as it is (``uint8``,
``(batch, height, width, 3)``, RGB) and is converted once, inside the graph:
``(frame - 255 * mean) / (255 * std)`` per channel, albumentations' ``Normalize``.

For the CPU it is exported to ONNX (:func:`exported_onnx`), with a fixed frame size and a
free batch dimension, and cached by content hash under ``<cache>/onnx/`` (the tiny
model's cache root, ``$DLC_PLATFORM_CACHE`` or ``~/.cache/dlc-platform``): the hash covers
the snapshot's bytes, the model config, the frame size, the torch version and this
module's source, so a retrained snapshot or a new export never reuses a stale graph.
DLC builds ``SyncBatchNorm`` layers (CSPNeXt); they are swapped for ``BatchNorm2d`` with
the same running statistics before export (same eval-mode arithmetic, exportable).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

# albumentations' Normalize as DLC configures it (data/transforms.py, normalize_images)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
EXPORT_VERSION = "1"  # bump to invalidate cached graphs when the export changes
OPSET = 17


class FramesToMaps(nn.Module):
    """DLC's network with its input conversion folded in.

    Parameters
    ----------
    model : nn.Module
        DLC's ``PoseModel`` (eval mode).
    normalize : bool
        Apply albumentations' ImageNet normalisation (``normalize_images: true``).
    output_keys : list of (head, key)
        Which head outputs to return, in this order (e.g. ``("bodypart", "heatmap")``).
    """

    def __init__(self, model: nn.Module, normalize: bool,
                 output_keys: list[tuple[str, str]]):
        super().__init__()
        self.model = model
        self.output_keys = list(output_keys)
        mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32) * 255.0
        inv_std = 1.0 / (torch.tensor(IMAGENET_STD, dtype=torch.float32) * 255.0)
        if not normalize:
            mean, inv_std = torch.zeros(3), torch.ones(3)
        self.register_buffer("mean", mean.view(1, 3, 1, 1))
        self.register_buffer("inv_std", inv_std.view(1, 3, 1, 1))

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = frames.permute(0, 3, 1, 2).float()
        x = (x - self.mean) * self.inv_std
        outputs = self.model(x)
        return tuple(outputs[head][key] for head, key in self.output_keys)


def head_output_keys(model: nn.Module, height: int = 64, width: int = 64) -> list[tuple[str, str]]:
    """The (head, key) pairs a PoseModel returns, found by running it once on zeros."""
    with torch.inference_mode():
        out = model(torch.zeros(1, 3, height, width))
    return [(head, key) for head, maps in out.items() for key in maps]


def swap_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``SyncBatchNorm`` by a ``BatchNorm2d`` holding the same parameters.

    In eval mode both compute ``(x - running_mean) / sqrt(running_var + eps) * w + b``;
    only ``BatchNorm2d`` runs without a process group and exports to ONNX.
    """
    for name, child in module.named_children():
        if isinstance(child, nn.SyncBatchNorm):
            bn = nn.BatchNorm2d(child.num_features, eps=child.eps, momentum=child.momentum,
                                affine=child.affine,
                                track_running_stats=child.track_running_stats)
            bn.load_state_dict(child.state_dict())
            bn.train(child.training)
            setattr(module, name, bn)
        else:
            swap_sync_batchnorm(child)
    return module


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_key(snapshot_digest: str, model_cfg: dict, height: int, width: int,
               normalize: bool) -> str:
    """Content hash naming one exported graph (16 hex digits)."""
    h = hashlib.sha256(snapshot_digest.encode())
    h.update(json.dumps(model_cfg, sort_keys=True, default=str).encode())
    h.update(f"{height}x{width}:{normalize}:{torch.__version__}:{EXPORT_VERSION}".encode())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()[:16]


def onnx_cache_dir() -> Path:
    """``<cache>/onnx``, next to the tiny models."""
    from dlc_tracking.synthetic.tiny_model import default_cache_dir

    return default_cache_dir() / "onnx"


def exported_onnx(network: FramesToMaps, key: str, height: int, width: int,
                  cache_dir: Path | None = None, log=None) -> Path:
    """The ONNX file of ``network`` for ``height`` x ``width`` frames, exported once.

    Written to a temporary file and renamed, under a file lock, so concurrent steps never
    read a half-written graph and only one of them exports.
    """
    from filelock import FileLock

    folder = Path(cache_dir) if cache_dir is not None else onnx_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{key}.onnx"
    if target.is_file():
        return target
    with FileLock(str(folder / f"{key}.lock")):
        if target.is_file():
            return target
        if log is not None:
            log(f"exporting the network to ONNX for {width}x{height} frames (once per model "
                f"and frame size): {target}")
        fd, tmp = tempfile.mkstemp(suffix=".onnx.tmp", dir=folder)
        os.close(fd)
        try:
            names = [f"{head}.{k}" for head, k in network.output_keys]
            dummy = torch.zeros(2, height, width, 3, dtype=torch.uint8)
            with torch.no_grad():  # tracing; inference-mode tensors cannot be traced
                torch.onnx.export(
                    network, (dummy,), tmp, dynamo=False, opset_version=OPSET,
                    input_names=["frames"], output_names=names,
                    dynamic_axes={"frames": {0: "batch"}, **{n: {0: "batch"} for n in names}},
                )
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)
    return target


def max_abs_difference(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Largest absolute difference between two lists of same-shaped arrays."""
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b, strict=True))


MAP_ATOL = 1e-3
MAP_RTOL = 1e-5


def map_tolerance(reference: list[np.ndarray], atol: float = MAP_ATOL,
                  rtol: float = MAP_RTOL) -> float:
    """How far another runtime's maps may be from ``reference`` (DLC's module): ``atol``
    plus ``rtol`` times the largest reference value.

    Trained heads give maps of order 1-10, where this is ~1e-3. Untrained weights of deep
    nets (the benchmark's speed models: HRNet-W32's maps reach 5e6) differ by float32
    rounding alone far above 1e-3 (measured: 12.8 on values of 5.5e6, i.e. 2.3e-6
    relative), which says nothing about the runtime.
    """
    return atol + rtol * max(float(np.max(np.abs(m))) for m in reference)
