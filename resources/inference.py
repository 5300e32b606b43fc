"""The DeepLabCut inference resource: the platform's batched engine or DLC's analyze_videos,
on a worker's GPU (or CPU)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from dlc_assets.execution.worker_info import worker_description
from dlc_tracking.errors import ModelNotAvailableError
from dlc_tracking.inference.choice import ENGINE_CHOICES, infer_video
from dlc_tracking.inference.dlc_runner import InferenceResult
from dlc_tracking.io.video import VideoInfo
from dlc_tracking.registry.registry_file import ModelEntry


class DLCInference(dg.ConfigurableResource):
    """Runs a registered DLC model on a recording's video.

    ``engine: platform`` (default) runs PyTorch (DLC 3) models in the platform's batched
    engine (docs/inference.md), same keypoints as DLC, faster; ``engine: dlc`` runs
    DeepLabCut's own analyze_videos. A model's registry entry may override it
    (``inference_engine:``); legacy TensorFlow models and models the engine does not
    cover always run DLC's path. Both engines run in this process; the environment holds
    both DLC engines (see README, "Why one environment").
    """

    device: str = Field(default="auto", description="auto (GPU when present) | cpu | cuda:N")
    batch_size: int | None = Field(
        default=None, ge=1,
        description="Frames per forward pass; unset: 8 on the CPU, 32 on CUDA (platform "
                    "engine), 8 (DLC's analyze_videos)")
    engine: str = Field(default="platform",
                        description=f"Inference engine for PyTorch models: {ENGINE_CHOICES}")
    precision: str = Field(
        default="fp32",
        description="fp32 (default, DLC's keypoints) | bf16: opt-in, kept for a recording only "
                    "if its first frames agree with fp32 within 0.5 px (99.9th percentile); "
                    "platform engine only (docs/inference.md)")
    cropping: str | None = Field(
        default=None,
        description="on | off: dynamic cropping around the animal (platform engine, fp32; "
                    "keypoints within 0.5 px of the full frame's, checked per recording); "
                    "unset: $DLC_PLATFORM_CROPPING, else off. A model's registry "
                    "inference: {cropping: ...} wins (docs/inference.md)")
    work_dir: str = Field(
        default=".dagster_home/inference",
        description="Where per-recording x model output folders and staged model copies live",
    )
    progress_interval_s: float = Field(default=5.0, description="Seconds between progress logs")

    def output_dir(self, recording_id: str, model_name: str, camera: str | None = None
                   ) -> Path:
        """``<work_dir>/outputs/<recording>/<model>/`` (one camera of a multi-camera
        recording: its ``<camera>/`` folder inside)."""
        out = Path(self.work_dir).absolute() / "outputs" / recording_id / model_name
        return out / camera if camera else out

    def check_available(self, model: ModelEntry) -> None:
        """Fail early, naming this worker (models live on some workers only), when the
        model's files are not here."""
        try:
            model.check_available()
        except ModelNotAvailableError as exc:
            raise ModelNotAvailableError(f"{worker_description()}: {exc}") from exc

    def analyze(self, model: ModelEntry, video: Path, recording_id: str,
                log=None, video_info: VideoInfo | None = None, camera: str | None = None
                ) -> InferenceResult:
        """Infer one recording's video (``camera``: one camera's video of a multi-camera
        recording, outputs in :meth:`output_dir`'s camera folder); fails early when the
        model is not on this worker."""
        self.check_available(model)

        def report(done: int, total: int, elapsed: float) -> None:
            if log is not None:
                rate = done / elapsed if elapsed > 0 else 0.0
                log.info(f"{recording_id}: DLC inference {done}/{total} frames "
                         f"({100 * done / max(total, 1):.0f}%), {rate:.1f} frames/s")

        def say(message: str) -> None:
            if log is not None:
                log.info(f"{recording_id}: {message}")

        from dlc_tracking.inference.cropping import settings_from_registry

        model_cropping, crop_settings = settings_from_registry(model.inference)
        d = model.derived
        return infer_video(
            engine_choice=self.engine, model_override=model.inference_engine,
            project_config=model.project_config, engine=model.engine, shuffle=model.shuffle,
            trainingsetindex=model.trainingsetindex, snapshot_rel=d["snapshot"],
            model_folder=d["model_folder"], iteration=int(d["iteration"]),
            task_date=f"{d['task']}{d['date']}", expected_scorer=model.scorer, video=video,
            output_dir=self.output_dir(recording_id, model.name, camera),
            staging_root=Path(self.work_dir).absolute() / "staging", device=self.device,
            batch_size=self.batch_size, progress=report, precision=self.precision,
            progress_interval_s=self.progress_interval_s, video_info=video_info, log=say,
            cropping=model_cropping or self.cropping, crop_settings=crop_settings,
            runtime=model.inference.get("runtime"),
        )

    def analyze_multi_animal(self, model: ModelEntry, video: Path, recording_id: str,
                             log=None, video_info: VideoInfo | None = None
                             ) -> InferenceResult:
        """Infer one multi-animal recording with DeepLabCut's own multi-animal path
        (``analyze_videos(auto_track=True)``, one track per individual of the model) into
        :meth:`output_dir`; the platform engine and its options do not apply."""
        from dlc_tracking.inference.madlc_runner import run_madlc_analyze_videos

        self.check_available(model)

        def report(done: int, total: int, elapsed: float) -> None:
            if log is not None:
                rate = done / elapsed if elapsed > 0 else 0.0
                log.info(f"{recording_id}: maDLC inference {done}/{total} frames "
                         f"({100 * done / max(total, 1):.0f}%), {rate:.1f} frames/s")

        d = model.derived
        return run_madlc_analyze_videos(
            project_config=model.project_config, engine=model.engine, shuffle=model.shuffle,
            trainingsetindex=model.trainingsetindex, snapshot_rel=d["snapshot"],
            model_folder=d["model_folder"], iteration=int(d["iteration"]),
            task_date=f"{d['task']}{d['date']}", expected_scorer=model.scorer, video=video,
            output_dir=self.output_dir(recording_id, model.name),
            staging_root=Path(self.work_dir).absolute() / "staging",
            n_tracks=len(model.multi_animal["individuals"]), device=self.device,
            batch_size=self.batch_size or 8, progress=report,
            progress_interval_s=self.progress_interval_s, video_info=video_info)
