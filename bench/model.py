"""The DLC model the benchmarks run: the tiny trained model when cached, else a speed model.

Inference speed depends on the network (architecture, input size, batch size, device),
not on the values of its weights. Training the tiny model (``dlc_tracking.synthetic.tiny_model``)
takes 8-9 minutes on two CPU cores, more than half of the 15-minute budget of the whole
suite on a fresh set-up. So:

- when the tiny PyTorch model is cached (after the test suite, the demo or an earlier
  build), the benchmarks use it: ``"tiny trained model, cached"``;
- otherwise they build a **speed model**: the same DLC project (``SPECS["pytorch"]``:
  task, body parts, net type ``cspnext_s``; the same helpers create the project, its
  labels and its training dataset with ``deeplabcut.create_training_dataset``), with an
  untrained snapshot ``snapshot-000.pt`` holding ``PoseModel.build(cfg["model"],
  pretrained_backbone=False)``'s randomly initialised weights, saved in DLC's snapshot
  format (``{"model": state_dict, "metadata": {...}}``, what
  ``deeplabcut.pose_estimation_pytorch.runners.snapshots`` writes). ``analyze_videos``,
  the registry and the platform's ``DLCInference`` load it as they load a trained
  snapshot. Its predictions are meaningless; only its speed is used. It is cached under
  ``<cache>/models/bench-speed-<hash>/`` (``$DLC_PLATFORM_CACHE`` or
  ``~/.cache/dlc-platform``), built in a child process (DLC changes the working directory
  and the logging set-up of the process that calls it).

``$BENCH_TINY_CONFIG`` names another single-animal PyTorch project to use instead.

Command line: ``python -m bench.model [--force]`` builds (or finds) the model and prints
its config.yaml.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

CONFIG_ENV = "BENCH_TINY_CONFIG"
SPEED_PREFIX = "bench-speed"
METADATA_NAME = "bench_speed_model.json"
SNAPSHOT_NAME = "snapshot-000.pt"  # epochs trained: none
KIND_TINY = "tiny trained model, cached"
KIND_SPEED = "speed model, untrained weights, same architecture"
KIND_GIVEN = f"model given by ${CONFIG_ENV}"
ROOT = Path(__file__).resolve().parents[1]


@dataclass
class BenchModel:
    """The model a benchmark runs and where it came from.

    Attributes
    ----------
    config : Path
        The DLC project's config.yaml.
    kind : str
        :data:`KIND_TINY`, :data:`KIND_SPEED` or :data:`KIND_GIVEN`.
    ready_s : float
        Wall seconds to get the model in this process (cache look-up, or the build).
    built_now : bool
        True when the speed model was built by this call.
    build_s : float or None
        Wall seconds of the speed model's build (this call's, or the cached one's).
    info : dict
        The model's metadata file (``tiny_model.json`` or :data:`METADATA_NAME`).
    """

    config: Path
    kind: str
    ready_s: float
    built_now: bool = False
    build_s: float | None = None
    info: dict = field(default_factory=dict)

    def details(self) -> dict:
        """JSON-ready summary for a benchmark's ``details``."""
        d = asdict(self)
        d["config"] = str(self.config)
        d["ready_s"] = round(self.ready_s, 1)
        d["info"] = {k: v for k, v in self.info.items()
                     if k in ("hash", "net_type", "snapshot", "scorer", "epochs",
                              "mean_error_px", "build_seconds", "build_cpu_seconds",
                              "deeplabcut_version", "torch_version", "built_at")}
        return d


DEFAULT_NET = "cspnext_s"  # the tiny model's network


def speed_model_dir(cache_dir: Path | None = None, net_type: str = DEFAULT_NET) -> Path:
    """``<cache>/models/bench-speed-<hash>`` (``bench-speed-<net>-<hash>`` for another
    network than the tiny model's; may not exist yet).

    The hash covers this module's source and what the tiny model's hash covers
    (``dlc_tracking.synthetic.tiny_model`` and ``synthetic`` sources, the spec, the DLC version).
    """
    from dlc_tracking.synthetic.tiny_model import content_hash, default_cache_dir

    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    h = hashlib.sha256(Path(__file__).read_bytes())
    h.update(content_hash("pytorch").encode())
    name = SPEED_PREFIX if net_type == DEFAULT_NET else f"{SPEED_PREFIX}-{net_type}"
    return root / "models" / f"{name}-{h.hexdigest()[:12]}"


def cached_speed_config(cache_dir: Path | None = None, net_type: str = DEFAULT_NET
                        ) -> Path | None:
    """config.yaml of a complete cached speed model, or None."""
    from dlc_tracking.synthetic.tiny_model import project_name

    folder = speed_model_dir(cache_dir, net_type)
    config = folder / project_name("pytorch") / "config.yaml"
    return config if (folder / METADATA_NAME).is_file() and config.is_file() else None


def bench_model(say=print, net_type: str | None = None) -> BenchModel:
    """The model to benchmark: ``$BENCH_TINY_CONFIG``, the cached tiny model, or a speed model.

    Parameters
    ----------
    say : callable
        Receives progress lines.
    net_type : str, optional
        A DLC network (``resnet_50``, ``hrnet_w32``, ``cspnext_m``, ...): always its speed
        model (untrained weights of the real architecture), cached per network.

    Returns
    -------
    BenchModel
    """
    from dlc_tracking.synthetic.tiny_model import cached_config_path, read_metadata

    start = time.perf_counter()
    if net_type is not None and net_type != DEFAULT_NET:
        cached = cached_speed_config(net_type=net_type)
        config = cached or build_speed_model(say=say, net_type=net_type)
        info = json.loads((config.parent.parent / METADATA_NAME).read_text())
        return BenchModel(config, KIND_SPEED, time.perf_counter() - start,
                          built_now=cached is None, build_s=info.get("build_seconds"),
                          info=info)
    override = os.environ.get(CONFIG_ENV)
    if override:
        return BenchModel(Path(override), KIND_GIVEN, time.perf_counter() - start)
    tiny = cached_config_path("pytorch")
    if tiny is not None:
        return BenchModel(tiny, KIND_TINY, time.perf_counter() - start,
                          info=read_metadata(tiny))
    cached = cached_speed_config()
    config = cached or build_speed_model(say=say)
    info = json.loads((config.parent.parent / METADATA_NAME).read_text())
    return BenchModel(config, KIND_SPEED, time.perf_counter() - start,
                      built_now=cached is None, build_s=info.get("build_seconds"), info=info)


def build_speed_model(cache_dir: Path | None = None, force: bool = False,
                      say=print, net_type: str = DEFAULT_NET) -> Path:
    """Build (or find) the speed model of ``net_type``; return its config.yaml.

    Built in a temporary folder renamed into place at the end, under a file lock.
    """
    from filelock import FileLock

    from dlc_tracking.synthetic.tiny_model import _relocate_project, project_name

    final = speed_model_dir(cache_dir, net_type)
    final.parent.mkdir(parents=True, exist_ok=True)
    name = project_name("pytorch")
    with FileLock(str(final.parent / f"{final.name}.lock")):
        if not force and cached_speed_config(cache_dir, net_type) is not None:
            return final / name / "config.yaml"
        for stale in final.parent.glob(f".{final.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = final.parent / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        tmp.mkdir()
        try:
            say(f"[bench] building the {net_type} speed model in {tmp}")
            t0, cpu0 = time.monotonic(), _children_cpu_s()
            info = _run_worker(tmp, net_type)
            info["build_seconds"] = round(time.monotonic() - t0, 1)
            info["build_cpu_seconds"] = round(_children_cpu_s() - cpu0, 1)
            info["hash"] = final.name.rsplit("-", 1)[1]
            info["built_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            _relocate_project(tmp / name, final / name)
            (tmp / METADATA_NAME).write_text(json.dumps(info, indent=2) + "\n")
            if final.exists():
                trash = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:6]}"
                os.replace(final, trash)
                shutil.rmtree(trash, ignore_errors=True)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    say(f"[bench] speed model ready in {info['build_seconds']:.0f} s "
        f"({info['build_cpu_seconds']:.0f} CPU s): {final / name / 'config.yaml'}")
    return final / name / "config.yaml"


def _children_cpu_s() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_worker(workdir: Path, net_type: str = DEFAULT_NET) -> dict:
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]]
                                                       if env.get("PYTHONPATH") else []))
    log = workdir / "build.log"
    with log.open("w") as fh:
        proc = subprocess.run([sys.executable, "-m", "bench.model", "--worker", str(workdir),
                               "--net-type", net_type],
                              cwd=str(workdir), stdout=fh, stderr=subprocess.STDOUT, env=env,
                              check=False)
    result = workdir / "result.json"
    if proc.returncode != 0 or not result.is_file():
        tail = log.read_text(errors="replace").strip().splitlines()[-30:]
        raise RuntimeError(f"building the benchmark speed model failed (exit "
                           f"{proc.returncode}); last lines of {log}:\n" + "\n".join(tail))
    info = json.loads(result.read_text())
    result.unlink()
    # The log stays with the model (small; it says what DLC did).
    shutil.move(str(log), str(workdir / _project_name() / "build.log"))
    return info


def _project_name() -> str:
    from dlc_tracking.synthetic.tiny_model import project_name

    return project_name("pytorch")


def _worker(workdir: Path, net_type: str = DEFAULT_NET) -> int:
    """Child process: the tiny model's project with an untrained ``net_type`` snapshot."""
    from dataclasses import replace

    import deeplabcut
    import torch
    from deeplabcut.core.engine import Engine
    from deeplabcut.pose_estimation_pytorch.models import PoseModel

    from dlc_tracking.synthetic.tiny_model import SPECS, _prepare_project, _read_yaml, _single

    def say(msg: str) -> None:
        print(msg, flush=True)

    spec = replace(SPECS["pytorch"], net_type=net_type)
    project, _gt, _frames = _prepare_project(workdir, spec, say)
    config = project / "config.yaml"
    deeplabcut.create_training_dataset(str(config), num_shuffles=1, net_type=spec.net_type,
                                       engine=Engine.PYTORCH, userfeedback=False)
    pose_cfg_path = _single(
        project.glob("dlc-models-pytorch/iteration-0/*/train/pytorch_config.yaml"))
    pose_cfg = _read_yaml(pose_cfg_path)
    torch.manual_seed(spec.seed)
    model = PoseModel.build(pose_cfg["model"], pretrained_backbone=False)
    model.eval()
    n_params = sum(p.numel() for p in model.parameters())
    snapshot = pose_cfg_path.parent / SNAPSHOT_NAME
    torch.save({"model": model.state_dict(),
                "metadata": {"epoch": 0, "note": "untrained: benchmark speed model"}},
               snapshot)
    # The scorer the registry derives, and DLC's own loading path, must accept it.
    from dlc_tracking.registry.dlc_projects import inspect_project

    derived = inspect_project(config)
    say(f"[bench] speed model: {spec.net_type}, {n_params:,} parameters, {snapshot.name}, "
        f"scorer {derived.scorer}")
    (workdir / "result.json").write_text(json.dumps({
        "kind": KIND_SPEED, "net_type": spec.net_type, "task": spec.task,
        "body_parts": list(spec.body_parts), "snapshot": SNAPSHOT_NAME,
        "scorer": derived.scorer, "parameters": n_params, "init_seed": spec.seed,
        "deeplabcut_version": deeplabcut.__version__, "torch_version": torch.__version__,
    }, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line: build (or find) the speed model and print its config.yaml."""
    parser = argparse.ArgumentParser(prog="python -m bench.model", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--force", action="store_true", help="rebuild even when cached")
    parser.add_argument("--net-type", default=DEFAULT_NET,
                        help="DLC network: cspnext_s (default), resnet_50, hrnet_w32, ...")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        return _worker(args.worker, args.net_type)
    print(build_speed_model(force=args.force, say=lambda m: print(m, file=sys.stderr),
                            net_type=args.net_type))
    return 0


if __name__ == "__main__":
    sys.exit(main())
