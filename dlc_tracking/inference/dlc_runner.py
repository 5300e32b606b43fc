"""Running DeepLabCut's own ``analyze_videos`` with a registered model, safely.

- The model's project is never written to: DLC's analyze_videos writes
  ``training-datasets/.../metadata.yaml`` into the project, so inference runs on a
  *staged* copy (small files copied, snapshots symlinked, read-only use).
- One output folder per recording x model (DLC skips a video whose outputs already exist
  in a shared folder, DLC issue 2117).
- Progress (frames done, frames/s) is reported through a callback by hooking the tqdm
  progress bar DLC already drives, so there is no extra pass over the video.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from dlc_tracking.errors import InferenceError
from dlc_tracking.io.video import VideoInfo, probe_video
from dlc_tracking.registry.dlc_projects import ENGINES

ProgressCallback = Callable[[int, int, float], None]  # frames done, total, seconds elapsed
_SYMLINK_OVER_BYTES = 1 << 20
_INFERENCE_LOCK = threading.Lock()


@dataclass
class InferenceResult:
    """What one inference produced, and how it ran."""

    h5_path: Path
    meta_path: Path | None
    files: list[Path]
    scorer: str
    engine: str
    fps: float
    n_frames: int
    frame_size: tuple[int, int]  # (width, height)
    device: str
    batch_size: int
    seconds: float
    model_load_s: float
    frames_per_s: float
    dlc_version: str
    inference_engine: str = "dlc"  # "platform" (dlc_tracking.inference.engine) or "dlc"
    extra: dict = field(default_factory=dict)

    def metadata(self) -> dict:
        d = asdict(self)
        d["h5_path"] = str(self.h5_path)
        d["meta_path"] = str(self.meta_path) if self.meta_path else None
        d["files"] = [str(f) for f in self.files]
        d["frame_size"] = list(self.frame_size)
        return d


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible else ``cpu``; ``cuda:N`` checked to exist."""
    device = (device or "auto").strip().lower()
    if device == "cpu":
        return "cpu"
    import torch

    n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device == "auto":
        return "cuda:0" if n_gpus else "cpu"
    if device == "cuda" or device.startswith("cuda:"):
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        if n_gpus == 0:
            raise InferenceError(
                f"device {device!r} was requested but this worker has no CUDA GPU. Use "
                "device 'auto' or 'cpu', or run the step on a GPU worker (the 'gpu' pool)."
            )
        if index >= n_gpus:
            raise InferenceError(
                f"device {device!r} was requested but this worker has {n_gpus} GPU(s) "
                f"(cuda:0..cuda:{n_gpus - 1})."
            )
        return f"cuda:{index}"
    raise InferenceError(f"unknown device {device!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'.")


@contextlib.contextmanager
def claim_device(device: str, lock_dir: Path, poll_s: float = 1.0) -> Iterator[str]:
    """The device a step runs on, with one GPU per step when several are there.

    Dagster's ``gpu`` pool bounds how many inference steps run at once (= number of
    GPUs) but does not say which GPU; with ``auto`` each step takes the first GPU whose
    file lock it can hold, so concurrent steps on one worker use different GPUs. An
    explicit ``cuda:N`` or ``cpu`` is used as given.
    """
    resolved = resolve_device(device)
    if (device or "auto").strip().lower() != "auto" or resolved == "cpu":
        yield resolved
        return
    import fcntl

    import torch

    lock_dir.mkdir(parents=True, exist_ok=True)
    while True:
        for index in range(torch.cuda.device_count()):
            handle = open(lock_dir / f"cuda{index}.lock", "w")  # noqa: SIM115 (held below)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            try:
                yield f"cuda:{index}"
            finally:
                handle.close()
            return
        time.sleep(poll_s)


def stage_project(project_config: Path, model_folder: str, iteration: int, task_date: str,
                  snapshot_rel: str, staging_root: Path) -> Path:
    """A private, disposable copy of the parts of a DLC project inference reads.

    Small files are copied (DLC may rewrite them), snapshots and other large files are
    symlinked (only read). Only the *registered* snapshot is staged and the staged config
    says ``snapshotindex: -1``, so a snapshot trained later (or a new "best" one) can
    never run silently under the registered model's name. Returns the staged config.yaml.
    Re-staged on every call under a fresh temp dir, so concurrent steps never share one.
    """
    project = project_config.parent
    staging_root.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix="model-", dir=staging_root))
    cfg = yaml.safe_load(project_config.read_text())
    cfg["project_path"] = str(staged)
    cfg["snapshotindex"] = -1
    # The model's own iteration: merge_datasets advances config.yaml's, and DLC looks for
    # the model folder of the config's iteration.
    cfg["iteration"] = int(iteration)
    cfg["video_sets"] = {}
    (staged / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    trainset = (Path("training-datasets") / f"iteration-{iteration}"
                / f"UnaugmentedDataSet_{task_date}")
    keep = Path(snapshot_rel).name  # "snapshot-200.pt" (PyTorch) or "snapshot-1000" (TF)
    for rel in (Path(model_folder), trainset):
        src = project / rel
        if src.is_dir():
            _mirror(src, staged / rel, keep)
    return staged / "config.yaml"


def _is_other_snapshot(name: str, keep: str) -> bool:
    if name.startswith("snapshot-detector"):  # top-down models keep their detector
        return False
    return name.startswith("snapshot") and name != keep and not name.startswith(keep + ".")


def _mirror(src: Path, dst: Path, keep_snapshot: str) -> None:
    for root, _dirs, files in os.walk(src):
        target = dst / Path(root).relative_to(src)
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            if _is_other_snapshot(name, keep_snapshot):
                continue
            s = Path(root) / name
            if s.stat().st_size > _SYMLINK_OVER_BYTES:
                (target / name).symlink_to(s.resolve())
            else:
                shutil.copy2(s, target / name)


@contextlib.contextmanager
def _progress_hook(callback: ProgressCallback | None, interval_s: float) -> Iterator[dict]:
    """Route DLC's tqdm bars to ``callback`` (throttled); record when frames start flowing."""
    state: dict = {"first_frame_t": None}
    if callback is None:
        yield state
        return
    import tqdm as tqdm_pkg

    class ReportingTqdm(tqdm_pkg.tqdm):
        _last = 0.0

        def display(self, *args, **kwargs):
            now = time.monotonic()
            if state["first_frame_t"] is None:
                state["first_frame_t"] = now
            if self.total and (now - self._last >= interval_s or self.n >= self.total):
                self._last = now
                callback(int(self.n), int(self.total), float(self.format_dict["elapsed"]))
            return super().display(*args, **kwargs)

    patched = []
    for module_name in ("deeplabcut.pose_estimation_pytorch.apis.videos",
                        "deeplabcut.pose_estimation_tensorflow.predict_videos"):
        module = sys.modules.get(module_name)
        if module is not None and hasattr(module, "tqdm"):
            patched.append((module, module.tqdm))
            module.tqdm = ReportingTqdm
    try:
        yield state
    finally:
        for module, original in patched:
            module.tqdm = original


def run_analyze_videos(
    *, project_config: Path, engine: str, shuffle: int, trainingsetindex: int,
    snapshot_rel: str, model_folder: str, iteration: int, task_date: str,
    expected_scorer: str, video: Path, output_dir: Path, staging_root: Path,
    device: str = "auto", batch_size: int = 8, progress: ProgressCallback | None = None,
    progress_interval_s: float = 5.0, video_info: VideoInfo | None = None,
    n_tracks: int | None = None,
) -> InferenceResult:
    """Run ``deeplabcut.analyze_videos`` for one video with one model.

    The output folder is emptied first: it belongs to this recording x model alone.

    ``n_tracks`` (multi-animal PyTorch models, :mod:`dlc_tracking.inference.madlc_runner`):
    DeepLabCut's own multi-animal path, ``auto_track=True`` with that many tracks, inside
    :func:`~dlc_tracking.io.madlc_files.kalman_fix`; ``h5_path`` is then the tracks file.

    Raises
    ------
    VideoError
        Missing, unreadable, zero-frame or truncated video.
    InferenceError
        Unknown engine, CUDA requested without a GPU, DLC failure, or no output written.
    """
    if engine not in ENGINES:
        raise InferenceError(
            f"unknown engine {engine!r} for {project_config}: expected one of {ENGINES}."
        )
    info = video_info or probe_video(video)
    resolve_device(device)  # fail early on a device this worker does not have
    from dlc_tracking.inference.allocator import keep_freed_memory

    keep_freed_memory()  # 1.6x for DLC's own forward pass on CPU, same numbers
    if output_dir.exists():
        shutil.rmtree(output_dir)
    output_dir.mkdir(parents=True)
    staged = stage_project(project_config, model_folder, iteration, task_date, snapshot_rel,
                           staging_root)
    import deeplabcut

    if engine == "tensorflow":
        from dlc_tracking.inference.tf_compat import ensure_numpy_sctypes

        ensure_numpy_sctypes()
        import deeplabcut.pose_estimation_tensorflow.predict_videos  # noqa: F401  (hooked)
    else:
        import deeplabcut.pose_estimation_pytorch.apis.videos  # noqa: F401  (hooked)

    from deeplabcut.core.engine import Engine

    kwargs: dict = dict(shuffle=shuffle, trainingsetindex=trainingsetindex,
                        destfolder=str(output_dir), batch_size=batch_size, save_as_csv=False,
                        engine=Engine.PYTORCH if engine == "pytorch" else Engine.TF)
    if engine == "pytorch":
        kwargs.update(snapshot_index=-1, overwrite=True)
    tracking: contextlib.AbstractContextManager = contextlib.nullcontext()
    if n_tracks is not None:
        from dlc_tracking.io.madlc_files import kalman_fix

        kwargs.update(auto_track=True, n_tracks=int(n_tracks))
        tracking = kalman_fix()  # filterpy 2.0: DLC's trackers lose every tracklet without
    what = "multi-animal inference" if n_tracks is not None else "inference"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")  # DLC's TF gputouse sets it process-wide
    with (_INFERENCE_LOCK, claim_device(device, staging_root / "gpu-locks") as resolved,
          _progress_hook(progress, progress_interval_s) as state, tracking):
        _set_device(kwargs, engine, resolved)
        start = time.monotonic()
        try:
            scorer = deeplabcut.analyze_videos(str(staged), [str(video)], **kwargs)
        except Exception as exc:  # DLC raises bare Exceptions; re-raise naming what ran
            raise InferenceError(
                f"DeepLabCut {what} failed on {video} with {project_config} "
                f"({engine}, device {resolved}): {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            shutil.rmtree(staged.parent, ignore_errors=True)
            if visible is None:
                os.environ.pop("CUDA_VISIBLE_DEVICES", None)
            else:
                os.environ["CUDA_VISIBLE_DEVICES"] = visible
    seconds = time.monotonic() - start
    scorer = scorer if isinstance(scorer, str) and scorer else expected_scorer
    if scorer != expected_scorer:
        raise InferenceError(
            f"{project_config}: DeepLabCut wrote scorer {scorer!r} but the model was registered "
            f"as {expected_scorer!r}: the project changed since registration. Run "
            "`dlc-platform registry validate` and register the model again."
        )
    h5 = (_tracks_file(video, output_dir) if n_tracks is not None
          else output_dir / f"{video.stem}{scorer}.h5")
    if not h5.is_file():
        raise InferenceError(
            f"DeepLabCut wrote no predictions for {video} into {output_dir} (expected {h5.name})."
        )
    meta = next(iter(sorted(output_dir.glob(f"{video.stem}{scorer}*meta*.pickle"))), None)
    first = state.get("first_frame_t")
    load_s = (first - start) if first else float("nan")
    infer_s = seconds - load_s if first else seconds
    return InferenceResult(
        h5_path=h5, meta_path=meta, files=sorted(output_dir.iterdir()), scorer=scorer,
        engine=engine, fps=info.fps, n_frames=info.n_frames,
        frame_size=(info.width_px, info.height_px), device=resolved, batch_size=batch_size,
        seconds=seconds, model_load_s=load_s,
        frames_per_s=info.n_frames / infer_s if infer_s > 0 else float("nan"),
        dlc_version=deeplabcut.__version__,
        extra={"auto_track": True, "n_tracks": int(n_tracks)} if n_tracks is not None else {},
    )


def _tracks_file(video: Path, output_dir: Path) -> Path:
    """The tracks ``.h5`` DeepLabCut's multi-animal path wrote, or an error saying why not."""
    from dlc_tracking.io.madlc_files import find_madlc_outputs

    tracks = find_madlc_outputs(output_dir).get("tracks")
    if tracks is None:
        written = sorted(p.name for p in output_dir.iterdir())
        raise InferenceError(
            f"DeepLabCut's multi-animal path wrote no tracks file for {video} into "
            f"{output_dir} (found {written}): no tracklet was long enough to stitch. Check "
            "the model on this video (e.g. `deeplabcut.create_labeled_video`).")
    return Path(tracks)


def _set_device(kwargs: dict, engine: str, resolved: str) -> None:
    if engine == "pytorch":
        kwargs["device"] = resolved
        return
    on_gpu = resolved.startswith("cuda")
    kwargs.update(gputouse=int(resolved.split(":")[1]) if on_gpu else None,
                  TFGPUinference=on_gpu)
    if not on_gpu:
        _hide_gpus_from_tensorflow()


def _hide_gpus_from_tensorflow() -> None:
    import tensorflow as tf

    try:
        tf.config.set_visible_devices([], "GPU")
    except RuntimeError as exc:  # TF already initialised its GPUs in this process
        if tf.config.list_logical_devices("GPU"):
            raise InferenceError(
                "device 'cpu' was requested for a TensorFlow model but TensorFlow already "
                "uses the GPU in this process; run the step in a fresh process."
            ) from exc
