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

from pathlib import Path

from dlc_tracking.errors import InferenceError
from dlc_tracking.inference.dlc_runner import (
    InferenceResult,
    ProgressCallback,
    run_analyze_videos,
)
from dlc_tracking.io.video import VideoInfo

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
    return run_analyze_videos(
        project_config=project_config, engine=engine, shuffle=shuffle,
        trainingsetindex=trainingsetindex, snapshot_rel=snapshot_rel,
        model_folder=model_folder, iteration=iteration, task_date=task_date,
        expected_scorer=expected_scorer, video=video, output_dir=output_dir,
        staging_root=staging_root, device=device, batch_size=batch_size, progress=progress,
        progress_interval_s=progress_interval_s, video_info=video_info, n_tracks=n_tracks)
