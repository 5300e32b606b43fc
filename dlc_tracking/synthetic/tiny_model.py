"""Offline tiny DeepLabCut models, trained on synthetic videos and cached per machine.

:func:`build_tiny_model` makes a *real* DLC project through DeepLabCut's own API
(``create_new_project``, labels in DLC's ``CollectedData_<scorer>.h5`` format,
``create_training_dataset``, ``train_network``), trains a small network on CPU in a few
minutes without any download, checks it with ``analyze_videos`` on a fresh synthetic
video, and caches it under ``<cache>/models/<engine>-<hash>/``:

```
<cache>/models/pytorch-<hash>/
    tinyopenfield-synthetic-2026-01-01/config.yaml     the DLC project
    tiny_model.json                                     what was built, how well it does
```

The hash covers the source of this module and of :mod:`dlc_tracking.synthetic.openfield`, the
build parameters and the DeepLabCut version, so a change to any of them builds a new
model. Builds happen in a temporary folder renamed into place at the end (a crash never
leaves half a model) under a file lock (parallel test workers wait for one build).

Two engines:

- ``pytorch``: DLC 3 layout (``dlc-models-pytorch/``, ``pytorch_config.yaml``,
  ``snapshot-NNN.pt``), canonical body-part names, task ``tinyopenfield``.
- ``tensorflow``: legacy DLC 2 layout (``dlc-models/``, ``pose_cfg.yaml``,
  ``snapshot-N.index/.data/.meta``), legacy body-part names ``snout, leftear, rightear,
  tailbase``, task ``tinylegacy``.

Command line: ``python -m dlc_tracking.synthetic.tiny_model --engine pytorch [--force]``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import yaml

from dlc_tracking.errors import DLCPlatformError
from dlc_tracking.synthetic import openfield as synthetic

ENGINES: tuple[str, ...] = ("pytorch", "tensorflow")
CACHE_ENV = "DLC_PLATFORM_CACHE"
METADATA_NAME = "tiny_model.json"
FIXED_DATE = "Jan1"  # config.yaml ``date``: makes identity and scorer independent of today
FIXED_DATE_ISO = "2026-01-01"  # project folder suffix, as DLC would name it
EXPERIMENTER = "synthetic"
VIDEO_STEM = "tinytrain"

LEGACY_NAMES: dict[str, str] = {
    "nose": "snout",
    "left_ear": "leftear",
    "right_ear": "rightear",
    "tail_base": "tailbase",
}

Progress = Callable[[str], None]


class TinyModelError(DLCPlatformError):
    """Building or verifying a tiny model failed."""


@dataclass(frozen=True)
class TinyModelSpec:
    """Everything a tiny model build depends on (part of the cache hash).

    Attributes
    ----------
    engine : str
        ``"pytorch"`` or ``"tensorflow"``.
    task : str
        DLC task name.
    body_parts : list of str
        Body-part names written to config.yaml (legacy names for TF).
    net_type : str
        DLC network type.
    n_frames, width, height, fps, seed, noise : video of the training labels.
    n_labelled : int
        Number of labelled frames taken evenly from the training video.
    epochs : int
        PyTorch epochs.
    lr : float
        PyTorch initial learning rate (AdamW), divided by 5 then 50 at the milestones.
    lr_milestones : list of int
        PyTorch epochs at which the learning rate steps down.
    max_iters, save_iters : int
        TensorFlow iterations.
    tf_multi_step : tuple of (learning rate, until iteration)
        TensorFlow learning-rate schedule (pose_cfg.yaml ``multi_step``).
    tf_optimizer : str
        ``"adam"`` or ``"sgd"`` (momentum); Adam learns much faster from random init.
    verify_frames, verify_seed : fresh verification video.
    """

    engine: str
    task: str
    body_parts: tuple[str, ...]
    net_type: str
    n_frames: int = 600
    width: int = 200
    height: int = 150
    fps: float = 30.0
    seed: int = 20260101
    noise: float = 2.0
    n_labelled: int = 80
    batch_size: int = 8
    epochs: int = 0
    lr: float = 1e-3
    lr_milestones: tuple[int, ...] = ()
    max_iters: int = 0
    save_iters: int = 0
    tf_multi_step: tuple[tuple[float, int], ...] = ()
    tf_optimizer: str = "adam"
    verify_frames: int = 150
    verify_seed: int = 7


SPECS: dict[str, TinyModelSpec] = {
    "pytorch": TinyModelSpec(
        engine="pytorch",
        task="tinyopenfield",
        body_parts=tuple(synthetic.BODY_PARTS),
        net_type="cspnext_s",
        epochs=80,
        lr=1e-3,
        lr_milestones=(60, 72),
    ),
    "tensorflow": TinyModelSpec(
        engine="tensorflow",
        task="tinylegacy",
        body_parts=tuple(LEGACY_NAMES[b] for b in synthetic.BODY_PARTS),
        net_type="mobilenet_v2_0.35",
        max_iters=1500,
        save_iters=1500,
        tf_multi_step=((1e-3, 1000), (2e-4, 1350), (5e-5, 1500)),
        tf_optimizer="adam",
    ),
}


# --------------------------------------------------------------------------------------
# Cache locations
# --------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """Cache root: ``$DLC_PLATFORM_CACHE`` or ``~/.cache/dlc-platform``.

    Returns
    -------
    Path
        The root (models live under ``<root>/models``).
    """
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "dlc-platform"


def content_hash(engine: str) -> str:
    """Hash of what a tiny model build depends on.

    Parameters
    ----------
    engine : str
        ``"pytorch"`` or ``"tensorflow"``.

    Returns
    -------
    str
        12 hex digits over this module's source, :mod:`dlc_tracking.synthetic.openfield`'s source,
        the build spec and the DeepLabCut version.
    """
    spec = _spec(engine)
    h = hashlib.sha256()
    for module_file in (Path(__file__), Path(synthetic.__file__)):
        h.update(module_file.read_bytes())
    h.update(json.dumps(asdict(spec), sort_keys=True, default=str).encode())
    h.update(_deeplabcut_version().encode())
    return h.hexdigest()[:12]


def model_dir(engine: str, cache_dir: Path | None = None) -> Path:
    """Folder of the cached model for ``engine`` (may not exist yet).

    Parameters
    ----------
    engine : str
        ``"pytorch"`` or ``"tensorflow"``.
    cache_dir : Path, optional
        Cache root; default :func:`default_cache_dir`.

    Returns
    -------
    Path
        ``<cache>/models/<engine>-<hash>``.
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / "models" / f"{engine}-{content_hash(engine)}"


def project_name(engine: str) -> str:
    """Name of the DLC project folder inside the model folder."""
    return f"{_spec(engine).task}-{EXPERIMENTER}-{FIXED_DATE_ISO}"


def cached_config_path(engine: str, cache_dir: Path | None = None) -> Path | None:
    """config.yaml of a complete cached model, or None when it has not been built.

    Parameters
    ----------
    engine : str
        ``"pytorch"`` or ``"tensorflow"``.
    cache_dir : Path, optional
        Cache root.

    Returns
    -------
    Path or None
    """
    folder = model_dir(engine, cache_dir)
    config = folder / project_name(engine) / "config.yaml"
    if (folder / METADATA_NAME).is_file() and config.is_file():
        return config
    return None


def read_metadata(config_path: str | Path) -> dict:
    """The ``tiny_model.json`` of a cached model, from its config.yaml path.

    Parameters
    ----------
    config_path : str or Path
        The project's config.yaml (as returned by :func:`build_tiny_model`).

    Returns
    -------
    dict
        engine, epochs or iterations, build_seconds, mean_error_px, body_parts, hash...
    """
    return json.loads((Path(config_path).parent.parent / METADATA_NAME).read_text())


# --------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------


def build_tiny_model(
    engine: str = "pytorch",
    cache_dir: Path | None = None,
    force: bool = False,
    progress: Progress | None = print,
) -> Path:
    """Return the config.yaml of a tiny trained DLC model, building it when not cached.

    The build runs DeepLabCut in a child process (DLC's training changes the working
    directory, reloads or resets the ``logging`` module and keeps TensorFlow graph state:
    none of that should leak into the caller, e.g. a test session or a Dagster process).
    Its output goes to ``build.log`` in the model folder; lines of progress go to
    ``progress``.

    Parameters
    ----------
    engine : str
        ``"pytorch"`` (DLC 3 model) or ``"tensorflow"`` (legacy DLC 2 model).
    cache_dir : Path, optional
        Cache root; default ``$DLC_PLATFORM_CACHE`` or ``~/.cache/dlc-platform``.
    force : bool
        Rebuild even when a cached model exists.
    progress : callable, optional
        Receives progress lines (default ``print``); None for silence.

    Returns
    -------
    Path
        ``<cache>/models/<engine>-<hash>/<task>-synthetic-2026-01-01/config.yaml``.

    Raises
    ------
    TinyModelError
        If the build or its verification fails (the message names the build log).
    """
    spec = _spec(engine)
    say = progress or (lambda _msg: None)
    final = model_dir(engine, cache_dir)
    final.parent.mkdir(parents=True, exist_ok=True)
    config = final / project_name(engine) / "config.yaml"
    if not force and cached_config_path(engine, cache_dir) is not None:
        return config

    from filelock import FileLock

    lock = FileLock(str(final.parent / f"{final.name}.lock"))
    with lock:
        if not force and cached_config_path(engine, cache_dir) is not None:
            say(f"[tiny_model] {engine} model was built by another process: {config}")
            return config
        # Holding the lock, any other temporary folder of this model is a crashed build.
        for stale in final.parent.glob(f".{final.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = final.parent / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        tmp.mkdir(parents=True)
        failed_log = final.parent / f"{final.name}.failed.log"
        try:
            say(f"[tiny_model] building the {engine} model in {tmp} (a few minutes on CPU)")
            t0 = time.monotonic()
            cpu0 = _children_cpu_seconds()
            info = _run_worker(tmp, spec, say, failed_log)
            info["build_seconds"] = round(time.monotonic() - t0, 1)
            # CPU time of the build process: comparable across machines under load.
            info["build_cpu_seconds"] = round(_children_cpu_seconds() - cpu0, 1)
            info["hash"] = final.name.split("-", 1)[1]
            info["deeplabcut_version"] = _deeplabcut_version()
            info["project"] = project_name(engine)
            info["built_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            _relocate_project(tmp / project_name(engine), final / project_name(engine))
            written = _read_yaml(tmp / project_name(engine) / "config.yaml")["project_path"]
            if Path(written) != final / project_name(engine):
                raise TinyModelError(
                    f"{tmp}: config.yaml project_path is {written}, expected "
                    f"{final / project_name(engine)}; the cache path may need quoting in YAML"
                )
            (tmp / METADATA_NAME).write_text(json.dumps(info, indent=2) + "\n")
            _replace_dir(tmp, final)
        except BaseException:
            log = tmp / "build.log"
            if log.is_file():
                shutil.copyfile(log, failed_log)
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    failed_log.unlink(missing_ok=True)
    say(
        f"[tiny_model] {engine} model ready in {info['build_seconds']:.0f} s, "
        f"mean error {info['mean_error_px']:.2f} px on unseen frames: {config}"
    )
    return config


def _children_cpu_seconds() -> float:
    try:
        import resource
    except ImportError:  # not on Unix
        return 0.0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_worker(workdir: Path, spec: TinyModelSpec, say: Progress, failed_log: Path) -> dict:
    """Build in a child process; forward its ``[tiny_model]`` lines; return its result."""
    import subprocess

    (workdir / "spec.json").write_text(json.dumps(asdict(spec), indent=2))
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [package_root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # OpenMP threads that busy-wait make training several times slower as soon as another
    # process competes for the cores (measured: 3.3 s instead of 0.7 s per batch).
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    cmd = [sys.executable, "-m", "dlc_tracking.synthetic.tiny_model", "--worker", str(workdir)]
    log_path = workdir / "build.log"
    tail: list[str] = []
    with (
        log_path.open("w") as log,
        subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=str(workdir),
            errors="replace",
        ) as proc,
    ):
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                log.flush()
                tail = (tail + [line.rstrip()])[-40:]
                if line.startswith("[tiny_model]"):
                    say(line.rstrip())
            rc = proc.wait()
        except BaseException:
            proc.kill()
            raise
    result = workdir / "result.json"
    if rc != 0 or not result.is_file():
        last = "\n".join(tail)
        raise TinyModelError(
            f"Building the tiny {spec.engine} DLC model failed (exit code {rc}); the full "
            f"log is kept in {failed_log}. Fix the cause and call build_tiny_model again. "
            f"Last lines:\n{last}"
        )
    # Keep the log with the model; it is small and explains what DLC did.
    shutil.move(str(log_path), str(workdir / project_name(spec.engine) / "build.log"))
    info = json.loads(result.read_text())
    result.unlink()
    return info


def _worker_main(workdir: Path) -> int:
    """Child-process side of :func:`build_tiny_model`: build in ``workdir``."""
    data = json.loads((workdir / "spec.json").read_text())
    for key in ("body_parts", "lr_milestones"):
        data[key] = tuple(data[key])
    data["tf_multi_step"] = tuple(tuple(x) for x in data["tf_multi_step"])
    spec = TinyModelSpec(**data)

    def say(msg: str) -> None:
        print(msg, file=sys.__stdout__, flush=True)

    builder = _build_pytorch if spec.engine == "pytorch" else _build_tensorflow
    info = builder(workdir, spec, say)
    (workdir / "result.json").write_text(json.dumps(info, indent=2))
    (workdir / "spec.json").unlink()
    return 0


# --------------------------------------------------------------------------------------
# Shared steps
# --------------------------------------------------------------------------------------


def _spec(engine: str) -> TinyModelSpec:
    if engine not in SPECS:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    return SPECS[engine]


def _deeplabcut_version() -> str:
    from importlib.metadata import version

    return version("deeplabcut")


def _replace_dir(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``; an existing ``dst`` is moved aside and deleted."""
    if dst.exists():
        trash = dst.parent / f".{dst.name}.old-{uuid.uuid4().hex[:6]}"
        os.replace(dst, trash)
        shutil.rmtree(trash, ignore_errors=True)
    os.replace(src, dst)


def _make_video(
    workdir: Path, spec: TinyModelSpec, seed: int, n_frames: int, name: str
) -> tuple[Path, synthetic.GroundTruth]:
    gt = synthetic.simulate_openfield(
        n_frames=n_frames, fps=spec.fps, width=spec.width, height=spec.height, seed=seed
    )
    path = synthetic.render_video(gt, workdir / f"{name}.mp4", noise=spec.noise, seed=seed)
    return path, gt


def labelled_frame_indices(n_frames: int, n_labelled: int) -> np.ndarray:
    """Evenly spaced frame indices to label.

    Parameters
    ----------
    n_frames : int
        Frames in the video.
    n_labelled : int
        How many to label.

    Returns
    -------
    np.ndarray
        Sorted unique int indices.
    """
    return np.unique(np.linspace(0, n_frames - 1, n_labelled).round().astype(int))


def write_labels(
    project: Path,
    video: Path,
    gt: synthetic.GroundTruth,
    frames: np.ndarray,
    scorer: str,
    body_parts: list[str],
) -> Path:
    """Write frames and labels the way DLC's frame extraction and labelling GUI do.

    ``labeled-data/<stem>/img<NNN>.png`` and ``CollectedData_<scorer>.h5`` (key
    ``df_with_missing``, columns scorer/bodyparts/coords, index tuples
    ``("labeled-data", stem, "imgNNN.png")``) plus the same table as CSV.

    Parameters
    ----------
    project : Path
        DLC project folder.
    video : Path
        The video the frames come from (its stem names the folder).
    gt : GroundTruth
        Keypoints of every frame (order of ``gt.body_parts``).
    frames : np.ndarray
        Frame indices to label.
    scorer : str
        The project's scorer.
    body_parts : list of str
        Names to write for ``gt.body_parts`` (same order; legacy names for TF).

    Returns
    -------
    Path
        The h5 file.
    """
    folder = project / "labeled-data" / video.stem
    folder.mkdir(parents=True, exist_ok=True)
    n_total = gt.n_frames
    width = int(np.ceil(np.log10(n_total)))  # DLC: indexlength = ceil(log10(nframes))
    cap = cv2.VideoCapture(str(video))
    names: list[str] = []
    wanted = set(int(f) for f in frames)
    i = 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        if i in wanted:
            name = f"img{str(i).zfill(width)}.png"
            cv2.imwrite(str(folder / name), img)
            names.append(name)
        i += 1
    cap.release()
    if len(names) != len(wanted):
        raise TinyModelError(f"Could only read {len(names)} of {len(wanted)} frames from {video}")
    columns = pd.MultiIndex.from_product(
        [[scorer], body_parts, ["x", "y"]], names=["scorer", "bodyparts", "coords"]
    )
    index = pd.MultiIndex.from_tuples([("labeled-data", video.stem, n) for n in names])
    values = gt.keypoints[np.asarray(sorted(wanted))].reshape(len(names), -1)
    visible = np.repeat(gt.visible[np.asarray(sorted(wanted))], 2, axis=1)
    values = np.where(visible, values, np.nan)
    df = pd.DataFrame(values, index=index, columns=columns)
    h5 = folder / f"CollectedData_{scorer}.h5"
    df.to_hdf(h5, key="df_with_missing", mode="w")
    df.to_csv(folder / f"CollectedData_{scorer}.csv")
    return h5


def _create_project(workdir: Path, spec: TinyModelSpec, video: Path, say: Progress) -> Path:
    """Create the DLC project with a date-independent name; return its config.yaml."""
    import deeplabcut
    from deeplabcut.core.config import read_config_as_dict, write_project_config

    created = deeplabcut.create_new_project(
        spec.task, EXPERIMENTER, [str(video)], working_directory=str(workdir), copy_videos=True
    )
    if created == "nothingcreated":
        raise TinyModelError(f"deeplabcut.create_new_project created nothing in {workdir}")
    created_dir = Path(created).parent
    project = workdir / project_name(spec.engine)
    if created_dir != project:
        os.replace(created_dir, project)
    config = project / "config.yaml"
    cfg = read_config_as_dict(config)
    cfg["date"] = FIXED_DATE
    cfg["project_path"] = str(project)
    cfg["bodyparts"] = list(spec.body_parts)
    cfg["engine"] = spec.engine
    cfg["default_net_type"] = spec.net_type
    cfg["snapshotindex"] = -1
    cfg["numframes2pick"] = spec.n_labelled
    cfg["skeleton"] = [[spec.body_parts[1], spec.body_parts[2]]]
    cfg["video_sets"] = {
        str(project / "videos" / video.name): {"crop": f"0, {spec.width}, 0, {spec.height}"}
    }
    write_project_config(config, cfg)
    if str(project) not in config.read_text():
        raise TinyModelError(f"{config}: DLC did not write project_path {project}")
    say(f"[tiny_model] created DLC project {project.name}")
    return config


def _prepare_project(
    workdir: Path, spec: TinyModelSpec, say: Progress
) -> tuple[Path, synthetic.GroundTruth, np.ndarray]:
    """Training video, DLC project and labels; returns project folder, truth, frames."""
    srcdir = workdir / "src"
    srcdir.mkdir()
    video, gt = _make_video(srcdir, spec, spec.seed, spec.n_frames, VIDEO_STEM)
    config = _create_project(workdir, spec, video, say)
    project = config.parent
    scorer = _read_yaml(config)["scorer"]
    frames = labelled_frame_indices(gt.n_frames, spec.n_labelled)
    names = list(spec.body_parts)
    write_labels(project, project / "videos" / video.name, gt, frames, scorer, names)
    shutil.rmtree(srcdir)
    say(f"[tiny_model] labelled {len(frames)} frames of {gt.n_frames} ({', '.join(names)})")
    return project, gt, frames


def _relocate_project(project: Path, final_project: Path) -> None:
    """Rewrite the project's own absolute path (config.yaml ``project_path``, video_sets,
    pose configs) from the temporary build folder to the folder it is renamed to."""
    old, new = str(project), str(final_project)
    # TF's "checkpoint" state files are text protos with absolute snapshot paths.
    paths = list(project.rglob("*.yaml")) + list(project.rglob("checkpoint"))
    for path in sorted(paths):
        text = path.read_text()
        if old in text:
            path.write_text(text.replace(old, new))


def _evaluate(
    config: Path, spec: TinyModelSpec, workdir: Path, say: Progress, **analyze_kwargs
) -> dict:
    """Analyse a fresh synthetic video outside the project and compare with ground truth."""
    import deeplabcut

    vdir = workdir / "verify"
    vdir.mkdir()
    video, gt = _make_video(vdir, spec, spec.verify_seed, spec.verify_frames, "verify")
    t0 = time.monotonic()
    scorer = deeplabcut.analyze_videos(
        str(config),
        [str(video)],
        shuffle=1,
        trainingsetindex=0,
        destfolder=str(vdir),
        **analyze_kwargs,
    )
    seconds = time.monotonic() - t0
    h5 = vdir / f"{video.stem}{scorer}.h5"
    if not h5.is_file():
        raise TinyModelError(f"analyze_videos wrote no {h5.name} in {vdir}; check the DLC log")
    df = pd.read_hdf(h5)
    pred = np.stack([df[scorer][bp][["x", "y"]].to_numpy(float) for bp in spec.body_parts], axis=1)
    err = np.linalg.norm(pred - gt.keypoints, axis=2)
    per_part = {bp: round(float(np.mean(err[:, i])), 3) for i, bp in enumerate(spec.body_parts)}
    mean = float(np.mean(err))
    say(
        f"[tiny_model] verification on {gt.n_frames} unseen frames: mean error {mean:.2f} px "
        f"(median {np.median(err):.2f}, p95 {np.percentile(err, 95):.2f}); "
        f"analyze_videos took {seconds:.1f} s"
    )
    return {
        "scorer": scorer,
        "mean_error_px": round(mean, 3),
        "median_error_px": round(float(np.median(err)), 3),
        "p95_error_px": round(float(np.percentile(err, 95)), 3),
        "mean_error_px_per_body_part": per_part,
        "verify_frames": gt.n_frames,
        "verify_seed": spec.verify_seed,
        "analyze_seconds": round(seconds, 1),
    }


@contextlib.contextmanager
def _tail_progress(
    path_glob: Callable[[], list[Path]], keys: tuple[str, ...], say: Progress
) -> Iterator[None]:
    """Forward new lines containing one of ``keys`` of a growing log file to ``say``.

    A polling thread; the file (found by ``path_glob``) may not exist yet.
    """
    stop = threading.Event()
    t0 = time.monotonic()

    def run() -> None:
        pos = 0
        path: Path | None = None
        while True:
            done = stop.wait(1.0)
            if path is None:
                found = path_glob()
                path = found[0] if found else None
            if path is not None and path.is_file():
                with path.open("rb") as fh:
                    fh.seek(pos)
                    chunk = fh.read()
                # Only consume complete lines.
                cut = chunk.rfind(b"\n") + 1
                pos += cut
                for line in chunk[:cut].decode("utf-8", "replace").splitlines():
                    if any(k in line for k in keys):
                        with contextlib.suppress(Exception):
                            say(f"[tiny_model] {time.monotonic() - t0:6.1f} s  {line.strip()}")
            if done:
                return

    thread = threading.Thread(target=run, name="tiny-model-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


# --------------------------------------------------------------------------------------
# PyTorch engine
# --------------------------------------------------------------------------------------


def _build_pytorch(workdir: Path, spec: TinyModelSpec, say: Progress) -> dict:
    import deeplabcut
    import torch
    from deeplabcut.core.engine import Engine
    from deeplabcut.pose_estimation_pytorch.models import PoseModel

    project, gt, frames = _prepare_project(workdir, spec, say)
    config = project / "config.yaml"
    deeplabcut.create_training_dataset(
        str(config),
        num_shuffles=1,
        net_type=spec.net_type,
        engine=Engine.PYTORCH,
        userfeedback=False,
    )
    pose_cfg_path = _single(
        project.glob("dlc-models-pytorch/iteration-0/*/train/pytorch_config.yaml")
    )
    pose_cfg = _read_yaml(pose_cfg_path)
    # Small frames: no 448 px crop padding (it made every epoch 6x slower).
    pose_cfg["data"]["train"]["crop_sampling"] = None
    # Only the final snapshot: one evaluation (at the last epoch; the test split is tiny)
    # and one save. DLC names it snapshot-best-NNN.pt (the key metric is set at the last
    # epoch); it is renamed snapshot-NNN.pt below so snapshotindex -1 is unambiguous.
    pose_cfg["runner"]["eval_interval"] = spec.epochs
    pose_cfg["runner"]["snapshots"]["max_snapshots"] = 1
    pose_cfg["runner"]["snapshots"]["save_epochs"] = spec.epochs
    pose_cfg["runner"]["optimizer"]["params"]["lr"] = spec.lr
    pose_cfg["runner"]["scheduler"] = {
        "type": "LRListScheduler",
        "params": {
            "lr_list": [[spec.lr / 5], [spec.lr / 50]],
            "milestones": list(spec.lr_milestones),
        },
    }
    # The synthetic animal always has the same size and look: milder scale jitter, no
    # motion blur, less noise than DLC's defaults (rotation kept: every heading occurs).
    train_aug = pose_cfg["data"]["train"]
    train_aug["affine"] = {"p": 0.5, "rotation": 30, "scaling": [0.85, 1.15], "translation": 0}
    train_aug["motion_blur"] = False
    train_aug["gaussian_noise"] = 6.0
    pose_cfg["train_settings"]["epochs"] = spec.epochs
    pose_cfg["train_settings"]["batch_size"] = spec.batch_size
    pose_cfg["train_settings"]["display_iters"] = 10**6
    _write_yaml(pose_cfg_path, pose_cfg)

    # DLC 3.0.2 downloads ImageNet weights for the backbone unless training starts from a
    # snapshot: start from a randomly initialised model saved in DLC's snapshot format.
    torch.manual_seed(spec.seed)
    model = PoseModel.build(pose_cfg["model"], pretrained_backbone=False)
    init_snapshot = workdir / "init-snapshot.pt"
    torch.save({"model": model.state_dict(), "metadata": {"epoch": 0}}, init_snapshot)

    say(f"[tiny_model] training {spec.net_type} for {spec.epochs} epochs on CPU")
    t0 = time.monotonic()
    train_log = lambda: sorted(project.glob("dlc-models-pytorch/iteration-0/*/train/train.txt"))  # noqa: E731
    with _tail_progress(train_log, ("Epoch ",), say):
        deeplabcut.train_network(
            str(config),
            shuffle=1,
            trainingsetindex=0,
            device="cpu",
            batch_size=spec.batch_size,
            epochs=spec.epochs,
            save_epochs=spec.epochs,
            snapshot_path=str(init_snapshot),
            max_snapshots_to_keep=1,
        )
    train_seconds = time.monotonic() - t0
    init_snapshot.unlink()
    model_folder = pose_cfg_path.parent
    final_name = f"snapshot-{spec.epochs:03d}.pt"
    best = model_folder / f"snapshot-best-{spec.epochs:03d}.pt"
    if best.is_file():
        if (model_folder / final_name).is_file():
            best.unlink()
        else:
            os.replace(best, model_folder / final_name)
    for snap in model_folder.glob("snapshot-*.pt"):
        if snap.name != final_name:
            snap.unlink()
    snapshots = sorted(model_folder.glob("snapshot-*.pt"))
    if [s.name for s in snapshots] != [final_name]:
        raise TinyModelError(
            f"Expected {final_name} in {model_folder} after training, found "
            f"{[s.name for s in snapshots]}"
        )
    say(f"[tiny_model] trained in {train_seconds:.0f} s: {snapshots[0].name}")

    info = _evaluate(config, spec, workdir, say, device="cpu", batch_size=8)
    shutil.rmtree(workdir / "verify")
    info.update(
        engine="pytorch",
        task=spec.task,
        net_type=spec.net_type,
        epochs=spec.epochs,
        train_seconds=round(train_seconds, 1),
        body_parts=list(spec.body_parts),
        labelled_frames=int(len(frames)),
        snapshot=snapshots[0].name,
    )
    return info


def _single(paths: Iterator[Path]) -> Path:
    found = list(paths)
    if len(found) != 1:
        raise TinyModelError(f"Expected exactly one file, found {found}")
    return found[0]


def _read_yaml(path: Path) -> dict:
    return yaml.safe_load(Path(path).read_text())


def _write_yaml(path: Path, data: dict) -> None:
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False))


# --------------------------------------------------------------------------------------
# TensorFlow engine (legacy DLC 2 layout)
# --------------------------------------------------------------------------------------


def _build_tensorflow(workdir: Path, spec: TinyModelSpec, say: Progress) -> dict:
    from dlc_tracking.inference.tf_compat import ensure_numpy_sctypes

    ensure_numpy_sctypes()  # before anything imports imgaug (DLC's TF data pipeline)
    import deeplabcut
    from deeplabcut.core.engine import Engine
    from deeplabcut.utils import auxfun_models

    project, gt, frames = _prepare_project(workdir, spec, say)
    config = project / "config.yaml"

    # create_training_dataset looks for ImageNet weights of the backbone and downloads
    # them when missing (no network here): hand it the path of our own random-init
    # checkpoint instead, written once the pose config exists.
    model_folder_glob = "dlc-models/iteration-0/*"
    planned = workdir / "init" / f"{spec.net_type}_random_init.ckpt"
    original = auxfun_models.check_for_weights
    auxfun_models.check_for_weights = lambda *_a, **_k: str(planned)
    try:
        deeplabcut.create_training_dataset(
            str(config),
            num_shuffles=1,
            net_type=spec.net_type,
            engine=Engine.TF,
            userfeedback=False,
        )
    finally:
        auxfun_models.check_for_weights = original
    model_folder = _single(project.glob(model_folder_glob))
    train_cfg_path = model_folder / "train" / "pose_cfg.yaml"

    # The random-init backbone checkpoint lives inside the model folder (pose_cfg.yaml's
    # init_weights points at it; it is 2 MB), never named "snapshot*" (DLC would take it
    # for a trained snapshot).
    init_prefix = model_folder / "train" / "init" / f"{spec.net_type}_random_init.ckpt"
    init_prefix.parent.mkdir(parents=True)
    train_cfg = _read_yaml(train_cfg_path)
    train_cfg.update(
        init_weights=str(init_prefix),
        min_input_size=32,  # default 64 rejects small frames after scaling
        batch_size=spec.batch_size,
        multi_step=[list(x) for x in spec.tf_multi_step],
        display_iters=50,
        save_iters=spec.save_iters,
        optimizer=spec.tf_optimizer,
        scale_jitter_lo=0.85,
        scale_jitter_up=1.15,
    )
    _write_yaml(train_cfg_path, train_cfg)
    test_cfg_path = model_folder / "test" / "pose_cfg.yaml"
    test_cfg = _read_yaml(test_cfg_path)
    test_cfg["init_weights"] = str(init_prefix)
    _write_yaml(test_cfg_path, test_cfg)
    n_vars, n_zeroed = _write_tf_random_init(train_cfg_path, init_prefix, spec.seed)
    say(
        f"[tiny_model] random-init {spec.net_type} checkpoint: {n_vars} variables, "
        f"{n_zeroed} residual-branch BatchNorm gammas zeroed"
    )

    say(f"[tiny_model] training {spec.net_type} for {spec.max_iters} iterations on CPU")
    t0 = time.monotonic()
    log = lambda: [model_folder / "train" / "log.txt"]  # noqa: E731
    with _tail_progress(log, ("iteration:",), say):
        deeplabcut.train_network(
            str(config),
            shuffle=1,
            trainingsetindex=0,
            max_iters=spec.max_iters,
            save_iters=spec.save_iters,
            display_iters=50,
            max_snapshots_to_keep=1,
            allow_growth=True,
        )
    train_seconds = time.monotonic() - t0
    train_dir = model_folder / "train"
    snap = f"snapshot-{spec.max_iters}"
    found = sorted({p.name.split(".")[0] for p in train_dir.glob("snapshot-*.index")})
    if found != [snap]:
        raise TinyModelError(f"Expected only {snap} in {train_dir} after training, found {found}")
    say(f"[tiny_model] trained in {train_seconds:.0f} s: {snap}")
    # TensorBoard event files (MBs, graph dumps): not needed to use or retrain the model.
    shutil.rmtree(train_dir / "log", ignore_errors=True)

    info = _evaluate(config, spec, workdir, say, batch_size=8)
    shutil.rmtree(workdir / "verify")
    info.update(
        engine="tensorflow",
        task=spec.task,
        net_type=spec.net_type,
        iterations=spec.max_iters,
        train_seconds=round(train_seconds, 1),
        body_parts=list(spec.body_parts),
        labelled_frames=int(len(frames)),
        snapshot=snap,
    )
    return info


def _write_tf_random_init(pose_cfg_path: Path, prefix: Path, seed: int) -> tuple[int, int]:
    """Save a randomly initialised backbone checkpoint with DLC's own variable names.

    The last BatchNorm gamma of every residual branch is set to zero (each residual block
    starts as the identity); without that the loss of the un-pretrained net goes NaN.

    Returns
    -------
    tuple of int
        Number of variables saved and number of gammas zeroed.
    """
    import re

    import tensorflow as tf
    from deeplabcut.pose_estimation_tensorflow.config import load_config
    from deeplabcut.pose_estimation_tensorflow.nnets import PoseNetFactory

    cfg = load_config(str(pose_cfg_path))
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(seed)
        inputs = tf.compat.v1.placeholder(tf.float32, [1, None, None, 3])
        PoseNetFactory.create(cfg).extract_features(inputs)
        variables = [
            v for v in tf.compat.v1.global_variables() if v.op.name.startswith("MobilenetV2/")
        ]
        residual = {
            op.name.rsplit("/", 1)[0]
            for op in graph.get_operations()
            if re.fullmatch(r"MobilenetV2/expanded_conv(_\d+)?/add", op.name)
        }
        zeroed = 0
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.variables_initializer(variables))
            for v in variables:
                block, _, rest = v.op.name.rpartition("/project/")
                if rest == "BatchNorm/gamma" and block in residual:
                    sess.run(v.assign(tf.zeros_like(v)))
                    zeroed += 1
            tf.compat.v1.train.Saver(variables).save(
                sess, str(prefix), write_meta_graph=False, write_state=False
            )
    if zeroed == 0:
        raise TinyModelError(f"Found no residual blocks in the {cfg['net_type']} graph")
    return len(variables), zeroed


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Command line: build (or find) a tiny model and print its config.yaml path."""
    parser = argparse.ArgumentParser(
        prog="python -m dlc_tracking.synthetic.tiny_model",
        description="Build (or find in the cache) a tiny DeepLabCut model trained offline.",
    )
    parser.add_argument("--engine", choices=ENGINES, default="pytorch")
    parser.add_argument("--force", action="store_true", help="rebuild even when cached")
    parser.add_argument("--cache-dir", type=Path, default=None, help=f"default ${CACHE_ENV}")
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        return _worker_main(args.worker)
    config = build_tiny_model(
        args.engine,
        cache_dir=args.cache_dir,
        force=args.force,
        progress=lambda msg: print(msg, file=sys.stderr, flush=True),
    )
    print(config)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
