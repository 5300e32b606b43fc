"""Global context for crops: networks whose layers look at the whole frame at once.

CSPNeXt (DLC's ``cspnext_*`` backbones) scales its channels by an attention computed
from the *global average* of each feature map (``ChannelAttention``). A crop changes
those averages, so its features are not windows of the full frame's, whatever the
margin: measured on the tiny cspnext_s model, crops moved confident keypoints by 3-10 px.
The fix: the crop runs with the global averages of the last full frame (the frames
around it look alike: the animal is a small part of the picture), so every other layer
sees exactly what it sees on the full frame.

Two graphs per model, exported to ONNX once and cached like the engine's:

- the full-frame graph also returns each attention's pooled input, ``(n, C, 1, 1)``;
- the crop graph takes them as extra inputs instead of pooling its own crop.

Models without such layers (ResNet, HRNet) need none of this: :func:`install_taps`
finds no layer and the engine uses its plain graphs.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn


class ContextTap(nn.Module):
    """Stands in for a ``global_avgpool``: records its result, or returns an injected one."""

    def __init__(self):
        super().__init__()
        self.injected: torch.Tensor | None = None
        self.recorded: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.injected is not None:
            return self.injected
        out = nn.functional.adaptive_avg_pool2d(x, 1)
        self.recorded = out
        return out


def install_taps(model: nn.Module) -> list[ContextTap]:
    """Replace the global pooling of every DLC ``ChannelAttention`` in ``model`` (in place)
    by a :class:`ContextTap`; returns them in module order (none: a model without)."""
    from deeplabcut.pose_estimation_pytorch.models.modules.csp import ChannelAttention

    taps = []
    for module in model.modules():
        if isinstance(module, ChannelAttention):
            tap = ContextTap()
            module.global_avgpool = tap
            taps.append(tap)
    return taps


def has_global_context(model: nn.Module) -> bool:
    """Whether ``model`` has layers that pool the whole frame (see the module docstring)."""
    from deeplabcut.pose_estimation_pytorch.models.modules.csp import ChannelAttention

    return any(isinstance(m, ChannelAttention) for m in model.modules())


class FullWithContext(nn.Module):
    """``frames -> (*maps, *contexts)``: the network, plus each tap's pooled features."""

    def __init__(self, network: nn.Module, taps: list[ContextTap]):
        super().__init__()
        self.network = network
        self.taps = taps

    def forward(self, frames: torch.Tensor):
        maps = self.network(frames)
        return (*maps, *[t.recorded for t in self.taps])


class CropWithContext(nn.Module):
    """``(frames, *contexts) -> maps``: the network with the taps fed from outside."""

    def __init__(self, network: nn.Module, taps: list[ContextTap]):
        super().__init__()
        self.network = network
        self.taps = taps

    def forward(self, frames: torch.Tensor, *contexts: torch.Tensor):
        for tap, ctx in zip(self.taps, contexts, strict=True):
            tap.injected = ctx
        try:
            return self.network(frames)
        finally:
            for tap in self.taps:
                tap.injected = None


def export_graph(module: nn.Module, dummy: tuple, input_names: list[str],
                 output_names: list[str], target: Path, log=None) -> Path:
    """Export ``module`` to ``target`` once (free batch axis everywhere), under a lock."""
    from filelock import FileLock

    from dlc_tracking.inference.export import OPSET

    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_file():
        return target
    with FileLock(str(target) + ".lock"):
        if target.is_file():
            return target
        if log is not None:
            log(f"exporting the crop-context graph to ONNX (once): {target}")
        fd, tmp = tempfile.mkstemp(suffix=".onnx.tmp", dir=target.parent)
        os.close(fd)
        try:
            axes = {n: {0: "batch"} for n in [*input_names, *output_names]}
            with torch.no_grad():
                torch.onnx.export(module, dummy, tmp, dynamo=False, opset_version=OPSET,
                                  input_names=input_names, output_names=output_names,
                                  dynamic_axes=axes)
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)
    return target


class OnnxContextNetwork:
    """An exported context graph in ONNX Runtime: ``__call__(frames, contexts=None)``."""

    runtime = "onnxruntime"

    def __init__(self, path: Path, n_maps: int, threads: int | None = None):
        from dlc_tracking.inference.runtimes import OnnxNetwork

        self.session = OnnxNetwork(path, threads=threads).session
        self.names = [i.name for i in self.session.get_inputs()]
        self.n_maps = n_maps

    def __call__(self, frames: np.ndarray, contexts: list[np.ndarray] | None = None):
        feed = {self.names[0]: np.ascontiguousarray(frames)}
        for name, ctx in zip(self.names[1:], contexts or [], strict=True):
            feed[name] = np.ascontiguousarray(ctx, dtype=np.float32)
        return self.session.run(None, feed)


def _modules(loaded, kind: str):
    import copy

    from dlc_tracking.inference.export import (
        FramesToMaps,
        head_output_keys,
        swap_sync_batchnorm,
    )

    model = swap_sync_batchnorm(copy.deepcopy(loaded.model)).eval()
    keys = head_output_keys(model)
    taps = install_taps(model)
    inner = FramesToMaps(model, normalize=True, output_keys=keys).eval()
    wrap = FullWithContext(inner, taps) if kind == "full" else CropWithContext(inner, taps)
    return wrap.eval(), keys, taps


def _key(loaded, height: int, width: int, kind: str) -> str:
    import hashlib

    from dlc_tracking.inference.export import export_key

    cfg = loaded.model_cfg.get("model")
    cfg = cfg.to_dict() if hasattr(cfg, "to_dict") else cfg
    tag = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:8]
    return f"{export_key(loaded.snapshot_digest, cfg, height, width, True)}.ctx-{kind}-{tag}"


def full_context_graph(loaded, height: int, width: int, log=None) -> OnnxContextNetwork:
    """The full-frame graph that also returns the contexts: ``net(frames)`` ->
    ``[*maps, *contexts]``; checked against DLC's module on a test frame (1e-3)."""
    import copy

    from dlc_tracking.inference.cropping import CroppingError
    from dlc_tracking.inference.export import (
        FramesToMaps,
        map_tolerance,
        max_abs_difference,
        onnx_cache_dir,
        swap_sync_batchnorm,
    )

    module, keys, taps = _modules(loaded, "full")
    names = [f"{h}.{k}" for h, k in keys] + [f"context{i}" for i in range(len(taps))]
    dummy = torch.zeros(2, height, width, 3, dtype=torch.uint8)
    target = onnx_cache_dir() / f"{_key(loaded, height, width, 'full')}.onnx"
    fresh = not target.is_file()
    path = export_graph(module, (dummy,), ["frames"], names, target, log)
    net = OnnxContextNetwork(path, len(keys))
    if fresh:
        rng = np.random.default_rng(0)
        probe = rng.integers(0, 256, size=(1, height, width, 3), dtype=np.uint8)
        plain = FramesToMaps(swap_sync_batchnorm(copy.deepcopy(loaded.model)).eval(),
                             normalize=True, output_keys=keys).eval()
        with torch.inference_mode():
            reference = [o.numpy() for o in plain(torch.from_numpy(probe))]
        diff = max_abs_difference(net(probe)[:len(keys)], reference)
        if diff > map_tolerance(reference):
            path.unlink(missing_ok=True)
            raise CroppingError(f"the full-frame context graph differs from DLC's network "
                                f"by {diff:.2e} on a test frame")
    return net


def crop_context_graph(loaded, width: int, height: int, log=None) -> OnnxContextNetwork:
    """The crop graph fed with contexts: ``net(crops, contexts)`` -> maps."""
    from dlc_tracking.inference.export import onnx_cache_dir

    module, keys, taps = _modules(loaded, "crop")
    contexts = _grey_contexts(loaded, height, width)
    names = [f"context{i}" for i in range(len(taps))]
    dummy = torch.zeros(2, height, width, 3, dtype=torch.uint8)
    target = onnx_cache_dir() / f"{_key(loaded, height, width, 'crop')}.onnx"
    path = export_graph(module, (dummy, *[c.repeat(2, 1, 1, 1) for c in contexts]),
                        ["frames", *names], [f"{h}.{k}" for h, k in keys], target, log)
    return OnnxContextNetwork(path, len(keys))


def _grey_contexts(loaded, height: int, width: int) -> list[torch.Tensor]:
    """The contexts of a grey, lightly noisy frame (export dummies, receptive field)."""
    module, keys, _taps = _modules(loaded, "full")
    rng = np.random.default_rng(0)
    frame = np.clip(128 + rng.normal(0, 8, (1, height, width, 3)), 0, 255).astype(np.float32)
    with torch.no_grad():
        return [c.detach() for c in module(torch.from_numpy(frame))[len(keys):]]


def crop_module_with_grey_context(loaded, height: int, width: int):
    """DLC's network as the crop graph runs it, contexts fixed to a grey frame's: a
    callable ``frames -> maps`` (for the receptive field, which then excludes the
    global pooling the crop does not do)."""
    module, _keys, _taps = _modules(loaded, "crop")
    contexts = _grey_contexts(loaded, height, width)
    return lambda frames: module(frames, *contexts)
