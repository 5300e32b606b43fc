"""What the command groups share: the registry a command works on."""

from __future__ import annotations

from pathlib import Path

from dlc_assets import settings


def registry_path(args) -> Path:
    """``--registry`` when given, else ``$DLC_PLATFORM_REGISTRY`` (the demo's by default)."""
    return Path(args.registry or settings.registry_path())


def job_run_config(verbose: bool) -> dict:
    """Dagster's console log at DEBUG only with ``--verbose``; otherwise errors only (the
    command prints one line per step after the run, :func:`print_steps`)."""
    level = "DEBUG" if verbose else "ERROR"
    return {"loggers": {"console": {"config": {"log_level": level}}}}


def print_steps(result) -> None:
    """One line per step of a finished run: ok / FAILED, seconds, frames and frames/s
    where the step reported them."""
    metadata = {}
    for event in result.all_events:
        key = event.step_key
        if key is None:
            continue
        if event.event_type_value == "ASSET_MATERIALIZATION":
            meta = event.event_specific_data.materialization.metadata
            metadata[key] = {k: getattr(v, "value", v) for k, v in meta.items()
                             if k in ("frames", "inference_frames_per_s", "epochs", "status")}
        elif event.is_step_success or event.is_step_failure:
            ms = getattr(event.event_specific_data, "duration_ms", None)
            seconds = (ms or 0.0) / 1000
            figures = metadata.get(key, {})
            extra = f", {figures['frames']} frames" if "frames" in figures else ""
            if "inference_frames_per_s" in figures:
                extra += f", {figures['inference_frames_per_s']} frames/s"
            if "epochs" in figures:
                extra += f", {figures['epochs']} epochs"
            print(f"  {key:32s} {'ok' if event.is_step_success else 'FAILED':6s} "
                  f"{seconds:6.1f} s{extra}")
