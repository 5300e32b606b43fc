"""Asset checks of the per-recording assets: where data can be wrong.

Each check is declared as a spec (shown in the UI before any run) and evaluated inside
its asset from arrays already in memory, so a check costs no second read of the data.
Blocking checks (ERROR) stop downstream assets of the same run when they fail.
"""


import dagster as dg
import numpy as np

from dlc_tracking.sessions.recording_info import RecordingInfo
from dlc_tracking.tracking.params import ProcessingParams
from dlc_tracking.tracking.processed import ProcessedTracking
from dlc_tracking.tracking.raw_state import RawStateVector

LOW_LIKELIHOOD = 0.9
MAX_LOW_LIKELIHOOD_FRACTION = 0.2
MAX_PLAUSIBLE_SPEED_CM_S = 150.0

RECORDING_CHECKS = [
    dg.AssetCheckSpec("timestamps_strictly_increasing", asset="recordings", blocking=True,
                      description="Frame times increase strictly (from the timestamps file or "
                      "fps)."),
]
PREDICTION_CHECKS = [
    dg.AssetCheckSpec("frames_covered", asset="dlc_predictions", blocking=True,
                      description="One prediction per video frame."),
    dg.AssetCheckSpec("body_parts_match_model", asset="dlc_predictions", blocking=True,
                      description="Exactly the body parts the assigned model tracks."),
    dg.AssetCheckSpec("low_likelihood_fraction", asset="dlc_predictions",
                      description=f"Fraction of frames with a body part < {LOW_LIKELIHOOD} is "
                      f"under {MAX_LOW_LIKELIHOOD_FRACTION} (warning)."),
    dg.AssetCheckSpec("coordinates_in_frame", asset="dlc_predictions",
                      description="No prediction outside the video frame (warning; such "
                      "points were made missing)."),
]
RAW_CHECKS = [
    dg.AssetCheckSpec("head_direction_present", asset="raw_state_vectors", blocking=True,
                      description="Head direction on valid frames when the method gives one."),
]
PROCESSED_CHECKS = [
    dg.AssetCheckSpec("speed_plausible", asset="processed_tracking",
                      description=f"99th percentile of speed below {MAX_PLAUSIBLE_SPEED_CM_S} "
                      "cm/s (warning)."),
]


def recording_checks(info: RecordingInfo) -> list[dg.AssetCheckResult]:
    steps = np.diff(info.time_s)
    bad = int((steps <= 0).sum())
    return [dg.AssetCheckResult(
        check_name="timestamps_strictly_increasing", passed=bad == 0,
        metadata={"non_increasing_steps": bad,
                  "source": "timestamps file" if info.recording.timestamps_path else "fps"},
        description=None if bad == 0 else (
            f"{bad} frame time(s) do not increase in "
            f"{info.recording.timestamps_path}; fix or remove the file."))]


def low_likelihood_fraction(poses: np.ndarray, cutoff: float = LOW_LIKELIHOOD) -> float:
    """Fraction of frames where at least one body part is below the cutoff (or missing)."""
    likelihood = poses[..., 2]
    return float(np.mean(~np.all(likelihood >= cutoff, axis=1))) if likelihood.size else 1.0


def prediction_checks(poses: np.ndarray, body_parts: list[str], model_parts: list[str],
                      n_video_frames: int, n_outside: int) -> list[dg.AssetCheckResult]:
    low = low_likelihood_fraction(poses)
    return [
        dg.AssetCheckResult(check_name="frames_covered", passed=poses.shape[0] == n_video_frames,
                            metadata={"prediction_frames": int(poses.shape[0]),
                                      "video_frames": n_video_frames}),
        dg.AssetCheckResult(check_name="body_parts_match_model",
                            passed=sorted(body_parts) == sorted(model_parts),
                            metadata={"body_parts": body_parts, "model": model_parts}),
        dg.AssetCheckResult(check_name="low_likelihood_fraction",
                            passed=low <= MAX_LOW_LIKELIHOOD_FRACTION,
                            severity=dg.AssetCheckSeverity.WARN,
                            metadata={"fraction": round(low, 4),
                                      "threshold": MAX_LOW_LIKELIHOOD_FRACTION}),
        dg.AssetCheckResult(check_name="coordinates_in_frame", passed=n_outside == 0,
                            severity=dg.AssetCheckSeverity.WARN,
                            metadata={"points_outside_frame": n_outside}),
    ]


def raw_checks(raw: RawStateVector, has_head_direction: bool) -> list[dg.AssetCheckResult]:
    if not has_head_direction:
        return [dg.AssetCheckResult(check_name="head_direction_present", passed=True,
                                    metadata={"applies": False})]
    missing = int(np.isnan(raw.head_angle_rad[raw.valid]).sum())
    return [dg.AssetCheckResult(check_name="head_direction_present", passed=missing == 0,
                                metadata={"valid_frames_without_head_direction": missing})]


def processed_checks(processed: ProcessedTracking, params: ProcessingParams
                     ) -> list[dg.AssetCheckResult]:
    speed = processed.speed_cm_s[np.isfinite(processed.speed_cm_s)]
    p99 = float(np.percentile(speed, 99)) if speed.size else float("nan")
    return [dg.AssetCheckResult(check_name="speed_plausible",
                                passed=bool(speed.size) and p99 <= MAX_PLAUSIBLE_SPEED_CM_S,
                                severity=dg.AssetCheckSeverity.WARN,
                                metadata={"speed_p99_cm_s": round(p99, 2),
                                          "max_speed_cm_s_param": params.max_speed_cm_s})]
