"""The platform engine's CPU runtime, chosen per network and machine by a measured table.

Not by default: the first time an exported graph runs at a frame size and batch size on
a machine, each candidate (:func:`runtime_candidates`: ONNX Runtime with all cores and
with one core left to the decoder, OpenVINO fp32, DLC's PyTorch module with NCHW and
channels-last weights) is timed on one batch, alternated; then the fastest of them again,
alternated with itself run on slices of the batch (:data:`CHUNKS` frames per network call,
:class:`~dlc_tracking.inference.runtimes.ChunkedNetwork`: large inputs can be faster in
small batches on a CPU); the fastest whose head maps equal the checked ONNX Runtime
graph's within :data:`RUNTIME_PARITY_TOL` is kept. The table is cached per machine
(:func:`runtime_table_path`); ``$DLC_PLATFORM_RUNTIME`` (or a model's registry
``inference: {runtime: ...}``) may force one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dlc_tracking.errors import InferenceError

RUNTIME_ENV = "DLC_PLATFORM_RUNTIME"
RUNTIME_CHOICES = ("auto", "onnxruntime", "openvino", "torch")
RUNTIME_PARITY_TOL = 1e-3
"""Largest head-map difference from the checked ONNX Runtime graph a candidate may show,
plus 1e-5 of the largest map value (``export.map_tolerance``: the same bound the export
is held to against DLC's PyTorch network)."""
MEASURE_ROUNDS = 2
CHUNKS = (1, 2)
"""Frames per network call tried for the fastest runtime (when below the batch size)."""


def check_runtime(name: str | None) -> str:
    """``auto`` (None), ``onnxruntime`` or ``openvino``, or an error listing the choices."""
    value = (name or "auto").strip().lower()
    if value not in RUNTIME_CHOICES:
        raise InferenceError(
            f"unknown CPU runtime {name!r}: use one of {RUNTIME_CHOICES} "
            f"(${RUNTIME_ENV}).")
    return value


def runtime_candidates(cpus: int | None = None, torch_module: bool = False) -> list[dict]:
    """What the table measures: ONNX Runtime with all cores and with one left to the
    decoder thread, OpenVINO fp32 with all cores (both take the graph's NHWC uint8 input;
    the NCHW conversion is inside the graph), and with ``torch_module`` DLC's PyTorch
    module itself with its weights in NCHW and in channels-last layout (oneDNN)."""
    n = cpus or os.cpu_count() or 1
    out = [{"runtime": "onnxruntime", "threads": n}]
    if n > 1:
        out.append({"runtime": "onnxruntime", "threads": n - 1})
    out.append({"runtime": "openvino", "threads": n})
    if torch_module:
        out += [{"runtime": "torch", "threads": n, "layout": "nchw"},
                {"runtime": "torch", "threads": n, "layout": "channels_last"}]
    return out


def build_runtime(spec: dict, path: Path, batch: int, height: int, width: int,
                  torch_module=None):
    """The network object of a table row's ``spec`` (fp32); ``chunk`` (frames per
    network call, below the batch) wraps it in a ChunkedNetwork."""
    from dlc_tracking.inference.runtimes import (
        ChunkedNetwork,
        OnnxNetwork,
        OpenVinoNetwork,
        TorchNetwork,
    )

    if spec["runtime"] == "onnxruntime":
        network = OnnxNetwork(path, threads=spec["threads"])
    elif spec["runtime"] == "torch":
        import copy

        network = TorchNetwork(copy.deepcopy(torch_module), "cpu",
                               channels_last=spec.get("layout") == "channels_last")
    else:
        network = OpenVinoNetwork(path, batch, height, width, threads=spec["threads"],
                                  precision="fp32")
    chunk = spec.get("chunk")
    return ChunkedNetwork(network, chunk) if chunk and chunk < batch else network


def machine_key() -> str:
    """This machine as the table sees it: CPU model, flags, cores, runtime versions."""
    import hashlib
    import platform

    cpu = platform.processor()
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not cpu:
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = []
    for module in ("onnxruntime", "openvino"):
        try:
            versions.append(__import__(module).__version__)
        except ImportError:
            versions.append("-")
    text = f"{cpu}|{flags}|{os.cpu_count()}|{'|'.join(versions)}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def measure_runtimes(path: Path, batch: int, height: int, width: int, reference,
                     candidates: list[dict] | None = None, rounds: int = MEASURE_ROUNDS,
                     log: Callable[[str], None] | None = None,
                     torch_module=None) -> list[dict]:
    """Frames/s of each candidate on one batch of frames, alternated, and its parity.

    Parameters
    ----------
    path : Path
        The exported ONNX graph.
    batch, height, width : int
        The input the engine will give it.
    reference : callable
        The checked ONNX Runtime network (frames -> maps).

    Returns
    -------
    list of dict
        One row per candidate: ``runtime``, ``threads``, ``frames_per_s`` (median of the
        rounds), ``max_map_difference`` (vs ``reference``), ``parity`` (within
        :data:`RUNTIME_PARITY_TOL`), or ``error`` when it could not be built.
    """
    import time

    from dlc_tracking.inference.export import map_tolerance, max_abs_difference

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(batch, height, width, 3), dtype=np.uint8)
    ref_maps = reference(frames[:1])
    rows, nets = [], []
    for spec in candidates or runtime_candidates(torch_module=torch_module is not None):
        row = dict(spec)
        try:
            net = build_runtime(spec, path, batch, height, width, torch_module)
            diff = max_abs_difference(net(frames[:1]), ref_maps)
            net(frames)  # warm-up: first-call allocations and kernel selection
            row.update(max_map_difference=float(f"{diff:.3g}"),
                       parity=bool(diff <= map_tolerance(ref_maps, RUNTIME_PARITY_TOL)),
                       samples=[])
            nets.append((row, net))
        except Exception as exc:  # a runtime that cannot run this graph is just not chosen
            row.update(error=f"{type(exc).__name__}: {exc}"[:300], parity=False)
        rows.append(row)
    for r in range(rounds):
        for row, net in (nets if r % 2 == 0 else nets[::-1]):
            t0 = time.perf_counter()
            net(frames)
            row["samples"].append(round(batch / (time.perf_counter() - t0), 3))
    for row, _net in nets:
        row["frames_per_s"] = float(np.median(row["samples"]))
    if log is not None:
        log("CPU runtime table ({}x{}, batch {}): {}".format(width, height, batch, "; ".join(
            f"{r['runtime']} {r['threads']} threads"
            + (f" {r['layout']}" if r.get("layout") else "")
            + (f" {r['chunk']} frames per call" if r.get("chunk") else "") + ": "
            + (f"{r['frames_per_s']:.2f} frames/s, parity {r['parity']}" if "samples" in r
               else r["error"]) for r in rows)))
    return rows


def runtime_table_path(cache_dir: Path | None = None) -> Path:
    """``<cache>/runtime-choice/<machine key>.json``."""
    from dlc_tracking.synthetic.tiny_model import default_cache_dir

    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / "runtime-choice" / f"{machine_key()}.json"


def chosen_runtime(path: Path, key: str, batch: int, height: int, width: int, checked,
                   log: Callable[[str], None] | None = None, setting: str | None = None,
                   cache_dir: Path | None = None, torch_module=None):
    """The CPU network to run: the fastest candidate at parity in this machine's table.

    The table is measured once per machine, exported graph and batch size, and cached
    (:func:`runtime_table_path`). ``setting`` (default ``$DLC_PLATFORM_RUNTIME``, else
    ``auto``) may force ``onnxruntime`` or ``openvino``. The returned network carries
    ``choice``: the setting, the chosen row and the table.

    Parameters
    ----------
    checked : OnnxNetwork
        The graph already checked against DLC's PyTorch network (all cores): the
        reference, and what runs when it is the fastest.
    torch_module : FramesToMaps, optional
        DLC's module itself: also a candidate (NCHW and channels-last weights).
    """
    import json

    from filelock import FileLock

    say = log or (lambda _m: None)
    setting = check_runtime(setting if setting is not None else os.environ.get(RUNTIME_ENV))
    n = os.cpu_count() or 1
    if setting == "onnxruntime":
        checked.choice = {"setting": setting, "chosen": {"runtime": "onnxruntime",
                                                         "threads": n}}
        return checked
    table_path = runtime_table_path(cache_dir)
    table_path.parent.mkdir(parents=True, exist_ok=True)
    entry = f"{key}:batch{batch}:chunks"  # tables from before chunks: measured again
    with FileLock(str(table_path) + ".lock"):
        table = json.loads(table_path.read_text()) if table_path.is_file() else {}
        rows = table.get(entry)
        if rows is None:
            say(f"measuring the CPU runtimes for this model at {width}x{height}, batch "
                f"{batch} (once per machine): {table_path}")
            rows = measure_runtimes(path, batch, height, width, checked, log=say,
                                    torch_module=torch_module)
            rows += _measure_chunks(rows, path, batch, height, width, checked, say,
                                    torch_module)
            table[entry] = rows
            tmp = table_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(table, indent=1))
            tmp.replace(table_path)
    usable = [r for r in rows if r.get("parity") and "frames_per_s" in r
              and (setting == "auto" or r["runtime"] == setting)]
    if not usable:
        say(f"no CPU runtime candidate at parity for {setting}: ONNX Runtime")
        checked.choice = {"setting": setting, "chosen": {"runtime": "onnxruntime",
                                                         "threads": n}, "table": rows}
        return checked
    # Rows of the second measurement (the fastest runtime, whole batches against slices)
    # decide when there are any: the same runtime timed again, alternated with its slices.
    usable = [r for r in usable if "chunk" in r] or usable
    best = max(usable, key=lambda r: r["frames_per_s"])
    spec = {k: best[k] for k in SPEC_KEYS if k in best}
    if spec.get("chunk", batch) >= batch:
        spec.pop("chunk", None)
    network = checked if spec == {"runtime": "onnxruntime", "threads": n} else \
        build_runtime(spec, path, batch, height, width, torch_module)
    network.choice = {"setting": setting, "chosen": spec, "table": rows}
    say(f"CPU runtime: {spec['runtime']}, {spec['threads']} threads"
        + (f", {spec['chunk']} frames per network call" if "chunk" in spec else "")
        + f" ({best['frames_per_s']:.2f} frames/s measured on this machine)")
    return network


SPEC_KEYS = ("runtime", "threads", "layout", "chunk")


def _measure_chunks(rows: list[dict], path: Path, batch: int, height: int, width: int,
                    reference, say, torch_module) -> list[dict]:
    """The fastest candidate at parity measured again, alternated with itself on slices
    of the batch (:data:`CHUNKS`); its rows carry ``chunk`` (the batch itself for whole
    batches). Nothing when the batch is 1 or no candidate is at parity."""
    usable = [r for r in rows if r.get("parity") and "frames_per_s" in r]
    chunks = [c for c in CHUNKS if c < batch]
    if not usable or not chunks:
        return []
    best = max(usable, key=lambda r: r["frames_per_s"])
    base = {k: best[k] for k in SPEC_KEYS if k in best}
    return measure_runtimes(path, batch, height, width, reference, log=say,
                            torch_module=torch_module,
                            candidates=[{**base, "chunk": c} for c in (batch, *chunks)])
