"""Multi-animal DeepLabCut (maDLC) inference: DeepLabCut's own multi-animal path.

``analyze_videos(auto_track=True, n_tracks=<individuals>)`` detects every animal's body
parts, assembles them into animals (part affinity fields), builds tracklets
(``convert_detections2tracklets``, the project's tracker) and stitches them into one
track per individual (``stitch_tracklets``), writing ``<stem><scorer>_<tracker>.h5`` and
the pickles beside it. The platform's batched engine (:mod:`dlc_tracking.inference.engine`)
does not cover this path: assembly and tracking are DeepLabCut's.

As for single-animal models (:mod:`dlc_tracking.inference.dlc_runner`): the project is
staged (never written to), the output folder belongs to one recording x model, one
inference at a time per process, one GPU per step, progress through DLC's tqdm bars.
DeepLabCut's trackers run inside :func:`dlc_tracking.io.madlc_files.kalman_fix` (filterpy
2.0 builds their Kalman filters wrongly; without it no tracklet survives).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from dlc_tracking.errors import InferenceError
from dlc_tracking.inference.dlc_runner import (
    _INFERENCE_LOCK,
    InferenceResult,
    ProgressCallback,
    _progress_hook,
    _set_device,
    claim_device,
    resolve_device,
    stage_project,
)
from dlc_tracking.io.video import VideoInfo, probe_video

__all__ = ["run_madlc_analyze_videos"]


def run_madlc_analyze_videos(
    *, project_config: Path, engine: str, shuffle: int, trainingsetindex: int,
    snapshot_rel: str, model_folder: str, iteration: int, task_date: str,
    expected_scorer: str, video: Path, output_dir: Path, staging_root: Path, n_tracks: int,
    device: str = "auto", batch_size: int = 8, progress: ProgressCallback | None = None,
    progress_interval_s: float = 5.0, video_info: VideoInfo | None = None,
) -> InferenceResult:
    """Run ``deeplabcut.analyze_videos(auto_track=True)`` for one video, one maDLC model.

    The output folder is emptied first: it belongs to this recording x model alone.

    Parameters
    ----------
    n_tracks : int
        Tracks to stitch (the model's number of individuals).
    Others
        As :func:`dlc_tracking.inference.dlc_runner.run_analyze_videos`.

    Returns
    -------
    InferenceResult
        ``h5_path`` is the tracked file ``<stem><scorer>_<tracker>.h5``; ``files`` every
        file DeepLabCut wrote (``_full.pickle``, ``_assemblies.pickle``, the tracklet
        pickle, ``_meta.pickle``).

    Raises
    ------
    InferenceError
        A TensorFlow model (not wired), a DLC failure, a changed scorer, or no tracks
        written (e.g. no animal was ever assembled).
    VideoError
        Missing, unreadable or zero-frame video.
    """
    if engine != "pytorch":
        raise InferenceError(
            f"{project_config}: multi-animal inference by the platform runs DLC 3 PyTorch "
            f"models; this one is {engine!r}. Run DeepLabCut's analyze_videos("
            "auto_track=True) yourself and put its outputs in the session's "
            "dlc_<video stem>/ folder.")
    if n_tracks < 1:
        raise InferenceError(f"{project_config}: n_tracks must be >= 1, got {n_tracks}.")
    info = video_info or probe_video(video)
    resolve_device(device)  # fail early on a device this worker does not have
    from dlc_tracking.inference.allocator import keep_freed_memory
    from dlc_tracking.io.madlc_files import find_madlc_outputs, kalman_fix

    keep_freed_memory()
    if output_dir.exists():
        shutil.rmtree(output_dir)
    output_dir.mkdir(parents=True)
    staged = stage_project(project_config, model_folder, iteration, task_date, snapshot_rel,
                           staging_root)
    import deeplabcut
    import deeplabcut.pose_estimation_pytorch.apis.videos  # noqa: F401  (hooked)
    from deeplabcut.core.engine import Engine

    kwargs: dict = dict(shuffle=shuffle, trainingsetindex=trainingsetindex,
                        destfolder=str(output_dir), batch_size=batch_size, save_as_csv=False,
                        engine=Engine.PYTORCH, snapshot_index=-1, overwrite=True,
                        auto_track=True, n_tracks=int(n_tracks))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    with (_INFERENCE_LOCK, claim_device(device, staging_root / "gpu-locks") as resolved,
          _progress_hook(progress, progress_interval_s) as state, kalman_fix()):
        _set_device(kwargs, engine, resolved)
        start = time.monotonic()
        try:
            scorer = deeplabcut.analyze_videos(str(staged), [str(video)], **kwargs)
        except Exception as exc:  # DLC raises bare Exceptions; re-raise naming what ran
            raise InferenceError(
                f"DeepLabCut multi-animal inference failed on {video} with "
                f"{project_config} (device {resolved}): {type(exc).__name__}: {exc}"
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
            f"{project_config}: DeepLabCut wrote scorer {scorer!r} but the model was "
            f"registered as {expected_scorer!r}: the project changed since registration. "
            "Run `dlc-platform registry validate` and register the model again.")
    tracks = find_madlc_outputs(output_dir).get("tracks")
    if tracks is None:
        written = sorted(p.name for p in output_dir.iterdir())
        raise InferenceError(
            f"DeepLabCut's multi-animal path wrote no tracks file for {video} into "
            f"{output_dir} (found {written}): no tracklet was long enough to stitch. Check "
            "the model on this video (e.g. `deeplabcut.create_labeled_video`).")
    meta = next(iter(sorted(output_dir.glob(f"{video.stem}{scorer}*meta*.pickle"))), None)
    first = state.get("first_frame_t")
    load_s = (first - start) if first else float("nan")
    infer_s = seconds - load_s if first else seconds
    return InferenceResult(
        h5_path=tracks, meta_path=meta, files=sorted(output_dir.iterdir()), scorer=scorer,
        engine=engine, fps=info.fps, n_frames=info.n_frames,
        frame_size=(info.width_px, info.height_px), device=resolved, batch_size=batch_size,
        seconds=seconds, model_load_s=load_s,
        frames_per_s=info.n_frames / infer_s if infer_s > 0 else float("nan"),
        dlc_version=deeplabcut.__version__, inference_engine="dlc",
        extra={"auto_track": True, "n_tracks": int(n_tracks)})
