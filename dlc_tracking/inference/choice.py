"""Which inference engine runs a model, and running it: the platform's engine or DLC's.

- ``platform`` (:mod:`dlc_tracking.inference.engine`): the batched engine, for PyTorch
  (DLC 3) models it covers; a model it does not cover runs DLC's path instead, with the
  reason logged and recorded in the result (``extra["engine_fallback"]``).
- ``dlc`` (:mod:`dlc_tracking.inference.dlc_runner`): DeepLabCut's own
  ``analyze_videos``, the reference. Legacy TensorFlow models always run it.

A registered model may override the configured engine (registry key
``inference_engine:``); ``None`` means the configured default.

Within the platform engine on the CPU, the runtime is chosen by a measured table
(:mod:`~dlc_tracking.inference.runtime_choice`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dlc_tracking.errors import InferenceError
from dlc_tracking.inference.dlc_runner import InferenceResult, ProgressCallback, run_analyze_videos
from dlc_tracking.io.video import VideoInfo

ENGINE_CHOICES = ("platform", "dlc")
DLC_DEFAULT_BATCH = 8  # analyze_videos' batch when none is configured


def chosen_engine(configured: str, model_engine: str, model_override: str | None) -> str:
    """``"platform"`` or ``"dlc"`` for a model.

    Parameters
    ----------
    configured : str
        The resource's (or the command line's) ``engine``.
    model_engine : str
        The model's DLC engine, ``"pytorch"`` or ``"tensorflow"``.
    model_override : str or None
        The registry's ``inference_engine`` for this model.
    """
    choice = (model_override or configured or "platform").strip().lower()
    if choice not in ENGINE_CHOICES:
        raise InferenceError(
            f"unknown inference engine {choice!r}: use one of {ENGINE_CHOICES} (resource "
            "config `engine`, registry key `inference_engine`, `predict --engine`)."
        )
    return "dlc" if model_engine == "tensorflow" else choice


def infer_video(
    *, engine_choice: str, model_override: str | None, project_config: Path, engine: str,
    shuffle: int, trainingsetindex: int, snapshot_rel: str, model_folder: str,
    iteration: int, task_date: str, expected_scorer: str, video: Path, output_dir: Path,
    staging_root: Path, device: str = "auto", batch_size: int | None = None,
    progress: ProgressCallback | None = None, progress_interval_s: float = 5.0,
    video_info: VideoInfo | None = None, log: Callable[[str], None] | None = None,
    precision: str = "fp32", cropping: str | bool | None = None, crop_settings=None,
    runtime: str | None = None,
) -> InferenceResult:
    """Infer one video with the chosen engine; DLC's outputs in ``output_dir`` either way.

    ``batch_size`` None: the device's default for the platform engine, 8 for DLC's.
    ``precision`` ``bf16``: the platform engine's opt-in (DLC's path always runs fp32).
    ``cropping``/``crop_settings``: the platform engine's dynamic cropping
    (:mod:`~dlc_tracking.inference.cropping`; None = ``$DLC_PLATFORM_CROPPING``, else off);
    DLC's path always runs full frames. ``runtime``: the CPU runtime setting
    (:func:`~dlc_tracking.inference.runtime_choice.chosen_runtime`).
    """
    from dlc_tracking.inference.precision import check_precision

    precision = check_precision(precision)
    say = log or (lambda _msg: None)
    common = dict(project_config=project_config, shuffle=shuffle,
                  trainingsetindex=trainingsetindex, snapshot_rel=snapshot_rel,
                  model_folder=model_folder, iteration=iteration, task_date=task_date,
                  expected_scorer=expected_scorer, video=video, output_dir=output_dir,
                  staging_root=staging_root, device=device, progress=progress,
                  progress_interval_s=progress_interval_s, video_info=video_info)
    fallback = None
    if chosen_engine(engine_choice, engine, model_override) == "platform":
        from dlc_tracking.inference.engine import EngineNotApplicable, run_engine

        try:
            return run_engine(batch_size=batch_size, log=say, precision=precision,
                              cropping=cropping, crop_settings=crop_settings,
                              runtime=runtime, **common)
        except EngineNotApplicable as exc:
            fallback = str(exc)
            say(f"{fallback}; running DeepLabCut's analyze_videos instead")
    if precision != "fp32":
        say(f"precision {precision} applies to the platform engine only: DeepLabCut's "
            "analyze_videos runs fp32")
    result = run_analyze_videos(engine=engine, batch_size=batch_size or DLC_DEFAULT_BATCH,
                                **common)
    if fallback:
        result.extra["engine_fallback"] = fallback
    return result
