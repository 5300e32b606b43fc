"""Asset checks of the per-recording assets: where data can be wrong.

Each check is declared as a spec (shown in the UI before any run) and evaluated inside
its asset from arrays already in memory, so a check costs no second read of the data.
Blocking checks (ERROR) stop downstream assets of the same run when they fail; warnings
(WARN) let the run finish and show as "processed with warnings" in `dlc-platform status`
and in the UI. Every failing check's description gives the figure and what to do; the
thresholds are processing parameters (docs/processing.md).
"""


import dagster as dg
import numpy as np

from dlc_tracking.sessions.recording_info import RecordingInfo
from dlc_tracking.tracking.outside_arena import DEFAULT_MARGIN_CM, outside_arena
from dlc_tracking.tracking.params import ProcessingParams
from dlc_tracking.tracking.predictions import FrameFit
from dlc_tracking.tracking.processed import ProcessedTracking
from dlc_tracking.tracking.quality import (
    fps_disagreement,
    longest_gap_s,
    stray_body_parts,
    tracked_fraction,
)
from dlc_tracking.tracking.raw_state import RawStateVector

LOW_LIKELIHOOD = 0.9
MAX_LOW_LIKELIHOOD_FRACTION = 0.2
MAX_PLAUSIBLE_SPEED_CM_S = 150.0
MAX_OUTSIDE_ARENA_FRACTION = 0.01
"""Share of positions allowed beyond the arena outline (plus margin) before a warning."""
MAX_OUTLIER_FRACTION = 0.02
"""Share of a body part's frames allowed to be outliers before a warning."""
WARN = dg.AssetCheckSeverity.WARN


def _spec(name: str, asset: str, description: str, blocking: bool = False
          ) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name, asset=asset, blocking=blocking, description=description)


RECORDING_CHECKS = [
    _spec("timestamps_strictly_increasing", "recordings", "Frame times increase strictly "
          "(from the timestamps file or fps).", blocking=True),
    _spec("fps_sources_agree", "recordings", "session.yaml's fps, the video container's and "
          "DLC's metadata agree within 1 % (warning naming both values; the declared one "
          "is used, docs/sessions.md Frame rate)."),
]
PREDICTION_CHECKS = [
    _spec("frames_covered", "dlc_predictions", "One prediction per video frame (after the "
          "frame_count_tolerance fit).", blocking=True),
    _spec("frame_count_adjusted", "dlc_predictions", "The predictions had exactly the video's "
          "frame count (warning when trailing rows were dropped or padded within "
          "frame_count_tolerance)."),
    _spec("fps_consistent", "dlc_predictions", "The frame rate in DLC's metadata agrees with "
          "the video's within fps_tolerance (a wrong fps scales every speed).", blocking=True),
    _spec("body_parts_match_model", "dlc_predictions", "Exactly the body parts the assigned "
          "model tracks.", blocking=True),
    _spec("low_likelihood_fraction", "dlc_predictions", f"Fraction of frames with a body part "
          f"below the recording's method's likelihood cutoff ({LOW_LIKELIHOOD} without a "
          f"method) is under {MAX_LOW_LIKELIHOOD_FRACTION} (warning)."),
    _spec("coordinates_in_frame", "dlc_predictions", "No point outside the video frame "
          "(warning; such points are kept in predictions, flagged in outside_frame, and "
          "the state-vector step applies the outside_frame rule)."),
    _spec("body_parts_together", "dlc_predictions", "No body part farther than "
          "part_distance_factor x its median distance from the others for longer than "
          "part_distance_min_s (a part stuck on a wrong spot; warning)."),
]
RAW_CHECKS = [
    _spec("head_direction_present", "raw_state_vectors", "Head direction on valid frames "
          "when the method gives one.", blocking=True),
    _spec("tracked_fraction", "raw_state_vectors", "Share of frames with a position is at "
          "least min_tracked_fraction (warning)."),
    _spec("longest_gap", "raw_state_vectors", "No stretch without a position longer than "
          "max_gap_warn_s (warning)."),
]
PROCESSED_CHECKS = [
    _spec("speed_plausible", "processed_tracking", f"99th percentile of speed below "
          f"{MAX_PLAUSIBLE_SPEED_CM_S} cm/s (warning)."),
    _spec("interpolated_fraction", "processed_tracking", "Share of frames filled by "
          "interpolation at most max_interpolated_fraction (warning)."),
    _spec("calibration_anisotropy", "processed_tracking", "x and y scales (px/cm) agree "
          "within max_calibration_anisotropy (warning)."),
    _spec("calibration_from_arena", "processed_tracking", "The calibration comes from the "
          "arena (outline in pixels, or pixels_per_cm), not from where the animal went "
          "(warning)."),
    _spec("positions_inside_arena", "processed_tracking", f"At most "
          f"{100 * MAX_OUTSIDE_ARENA_FRACTION:g} % of positions lie more than "
          f"{DEFAULT_MARGIN_CM:g} cm outside the calibrated arena outline (a wrong outline or "
          "size; warning)."),
]
FRAME_QUALITY_CHECKS = [
    _spec("body_part_outliers", "frame_quality", f"No body part is a confident-mistake "
          f"suspect (away and back while the others stay, or far from where the other parts "
          f"place it) in more than {100 * MAX_OUTLIER_FRACTION:g} % of its frames, whatever "
          "its likelihood (warning; `models review` picks those frames)."),
]


def _result(name: str, passed: bool, metadata: dict, description: str | None = None,
            severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR
            ) -> dg.AssetCheckResult:
    plain = {k: v.item() if isinstance(v, np.generic) else v for k, v in metadata.items()}
    return dg.AssetCheckResult(check_name=name, passed=bool(passed), severity=severity,
                               metadata=plain, description=None if passed else description)


def recording_checks(info: RecordingInfo) -> list[dg.AssetCheckResult]:
    steps = np.diff(info.time_s)
    bad = int((steps <= 0).sum())
    return [_result(
        "timestamps_strictly_increasing", bad == 0,
        {"non_increasing_steps": bad,
         "source": "timestamps file" if info.recording.timestamps_path else "fps"},
        f"{bad} frame time(s) do not increase in {info.recording.timestamps_path}; fix or "
        "remove the file."),
        _result("fps_sources_agree", not info.fps_warnings,
                {"fps": info.video.fps, "fps_source": info.fps_source,
                 "warnings": dg.MetadataValue.json(list(info.fps_warnings))},
                " ".join(info.fps_warnings), WARN)]


def low_likelihood_fraction(poses: np.ndarray, cutoff: float = LOW_LIKELIHOOD) -> float:
    """Fraction of frames where at least one body part is below the cutoff (or missing)."""
    likelihood = poses[..., 2]
    return float(np.mean(~np.all(likelihood >= cutoff, axis=1))) if likelihood.size else 1.0


def prediction_checks(poses: np.ndarray, body_parts: list[str], model_parts: list[str],
                      info: RecordingInfo, fit: FrameFit, n_outside: int,
                      dlc_fps: float | None, likelihood_cutoff: float
                      ) -> list[dg.AssetCheckResult]:
    params = info.params
    # judged by the cutoff the recording's method uses (what it takes as confident), so a
    # model whose likelihoods sit below 0.9 but above its method's cutoff is not flagged
    low = low_likelihood_fraction(poses, likelihood_cutoff)
    fps_diff = fps_disagreement(dlc_fps, info.video.fps)
    overridden = info.recording.timestamps_path is not None or info.fps_source == "session.yaml"
    fps_ok = fps_diff is None or fps_diff <= params.fps_tolerance or overridden
    stray = stray_body_parts(poses, body_parts, info.time_s, factor=params.part_distance_factor,
                             min_s=params.part_distance_min_s,
                             likelihood_cutoff=likelihood_cutoff)
    n_points = int(np.isfinite(poses[..., 0]).sum())
    return [
        _result("frames_covered", poses.shape[0] == info.video.n_frames,
                {"prediction_frames": int(poses.shape[0]), "video_frames": info.video.n_frames}),
        _result("frame_count_adjusted", not fit.adjusted,
                {"rows_in_files": fit.rows_in_files, "video_frames": fit.video_frames,
                 "rows_dropped": fit.dropped, "rows_padded": fit.padded,
                 "frame_count_tolerance": params.frame_count_tolerance},
                f"the predictions had {fit.rows_in_files} rows for {fit.video_frames} video "
                f"frames: {fit.dropped} trailing row(s) dropped, {fit.padded} padded as "
                "missing (within frame_count_tolerance). Usually a container/codec frame "
                "count off by one; check the video if it recurs.", WARN),
        _result("fps_consistent", fps_ok,
                {"dlc_metadata_fps": dlc_fps, "video_fps": info.video.fps,
                 "fps_source": info.fps_source,
                 "relative_difference": None if fps_diff is None else round(fps_diff, 4)},
                f"DLC's metadata says {dlc_fps:g} fps but the video says {info.video.fps:g} "
                "fps: one of them is wrong and every speed would be off by their ratio. Give "
                "the true frame times: a per-frame timestamps file "
                f"({info.recording.video_stem}.timestamps.csv) or `fps:` in "
                f"{info.recording.session_yaml}; then reprocess." if dlc_fps else None),
        _result("body_parts_match_model", sorted(body_parts) == sorted(model_parts),
                {"body_parts": body_parts, "model": model_parts}),
        _result("low_likelihood_fraction", low <= MAX_LOW_LIKELIHOOD_FRACTION,
                {"fraction": round(low, 4), "threshold": MAX_LOW_LIKELIHOOD_FRACTION,
                 "likelihood_cutoff": likelihood_cutoff},
                f"{100 * low:.1f} % of frames have a body part below likelihood "
                f"{likelihood_cutoff:g} (the method's cutoff); check the video and whether "
                "the model suits this setup.", WARN),
        _result("coordinates_in_frame", n_outside == 0,
                {"points_outside_frame": n_outside,
                 "fraction_of_points": round(n_outside / max(n_points, 1), 4),
                 "rule": params.outside_frame},
                f"{n_outside} point(s) ({100 * n_outside / max(n_points, 1):.1f} %) lie "
                "outside the video frame; kept as written in predictions (outside_frame = "
                f"true); the state-vector step {params.outside_frame}s them "
                "(outside_frame parameter).", WARN),
        _result("body_parts_together", not stray,
                {"stray_body_parts": dg.MetadataValue.json([s.__dict__ for s in stray]),
                 "factor": params.part_distance_factor, "min_s": params.part_distance_min_s},
                "; ".join(f"{s.body_part} was more than {params.part_distance_factor:g}x its "
                          f"median distance ({s.median_distance_px:g} px) from the other parts "
                          f"for {s.longest_s:g} s from t = {s.start_s:g} s" for s in stray)
                + " (stuck on a wrong spot?); look at the labeled video there.", WARN),
    ]


def raw_checks(raw: RawStateVector, has_head_direction: bool, params: ProcessingParams
               ) -> list[dg.AssetCheckResult]:
    tracked = np.isfinite(raw.x_px) & np.isfinite(raw.y_px)
    frac = tracked_fraction(tracked)
    gap = longest_gap_s(raw.time_s, tracked)
    if has_head_direction:
        missing = int(np.isnan(raw.head_angle_rad[raw.valid]).sum())
        head = _result("head_direction_present", missing == 0,
                       {"valid_frames_without_head_direction": missing})
    else:
        head = _result("head_direction_present", True, {"applies": False})
    return [
        head,
        _result("tracked_fraction", frac >= params.min_tracked_fraction,
                {"tracked_fraction": round(frac, 4), "threshold": params.min_tracked_fraction},
                f"only {100 * frac:.1f} % of frames have a position (threshold "
                f"{100 * params.min_tracked_fraction:g} %): check likelihoods, the method's "
                "cutoff and the outside_frame rule.", WARN),
        _result("longest_gap", gap <= params.max_gap_warn_s,
                {"longest_gap_s": round(gap, 3), "threshold_s": params.max_gap_warn_s},
                f"the longest stretch without a position is {gap:.2f} s (threshold "
                f"{params.max_gap_warn_s:g} s); positions there stay missing.", WARN),
    ]


def processed_checks(processed: ProcessedTracking, params: ProcessingParams,
                     arena=None) -> list[dg.AssetCheckResult]:
    """Checks of the processed tracking; ``arena`` (the ArenaGeometry outline that
    calibrated it, if any) adds the positions-outside-the-arena figure."""
    speed = processed.speed_cm_s[np.isfinite(processed.speed_cm_s)]
    p99 = float(np.percentile(speed, 99)) if speed.size else float("nan")
    interp = float(processed.interpolated.mean()) if processed.n_frames else 0.0
    cal = processed.calibration
    aniso = cal.anisotropy
    return [
        _result("speed_plausible", bool(speed.size) and p99 <= MAX_PLAUSIBLE_SPEED_CM_S,
                {"speed_p99_cm_s": round(p99, 2), "max_speed_cm_s_param": params.max_speed_cm_s},
                f"99th percentile speed {p99:.1f} cm/s is above {MAX_PLAUSIBLE_SPEED_CM_S:g} "
                "cm/s: check the calibration (px/cm) and the frame rate.", WARN),
        _result("interpolated_fraction", interp <= params.max_interpolated_fraction,
                {"interpolated_fraction": round(interp, 4),
                 "threshold": params.max_interpolated_fraction},
                f"{100 * interp:.1f} % of positions were filled by interpolation (threshold "
                f"{100 * params.max_interpolated_fraction:g} %).", WARN),
        _result("calibration_anisotropy",
                aniso is None or aniso <= params.max_calibration_anisotropy,
                {"pixels_per_cm_x": cal.pixels_per_cm_x, "pixels_per_cm_y": cal.pixels_per_cm_y,
                 "anisotropy": None if aniso is None else round(aniso, 4),
                 "source": cal.source, "per_axis": cal.per_axis},
                f"x and y scales differ: {cal.pixels_per_cm_x or 0:.2f} vs "
                f"{cal.pixels_per_cm_y or 0:.2f} px/cm ({100 * (aniso or 0):.1f} %)"
                + (", and the mean was used for both: the animal did not cover the arena "
                   "evenly or the arena size is wrong. Give the arena outline in pixels "
                   "(docs/sessions.md, Calibration)." if cal.from_tracked_extent else
                   ": check the arena outline and size."), WARN),
        _result("calibration_from_arena", not cal.from_tracked_extent,
                {"source": cal.source, "pixels_per_cm": round(cal.pixels_per_cm, 4)},
                f"calibrated from the tracked extent ({cal.source}): px/cm and the origin "
                "depend on where the animal went (two models or sessions in the same arena "
                "get different cm). Give the arena outline in pixels (`arena: corners_px`, "
                "a `rig:`, or <subject>/calibration.yaml) or `pixels_per_cm`.", WARN),
        _outside_arena_check(processed, arena),
    ]


def _outside_arena_check(processed: ProcessedTracking, arena) -> dg.AssetCheckResult:
    if arena is None or processed.calibration.from_tracked_extent:
        return _result("positions_inside_arena", True, {"applies": False})
    found = outside_arena(processed.x_cm, processed.y_cm, arena.width_cm,
                          float(arena.height_cm), str(arena.shape))
    return _result(
        "positions_inside_arena", found.fraction <= MAX_OUTSIDE_ARENA_FRACTION,
        {"fraction_outside": found.fraction, "positions_outside": found.n_outside,
         "worst_cm": found.worst_cm, "margin_cm": found.margin_cm,
         "threshold": MAX_OUTSIDE_ARENA_FRACTION, "outline": arena.source},
        f"{100 * found.fraction:.1f} % of positions lie more than {found.margin_cm:g} cm "
        f"outside the {arena.width_cm:g} x {float(arena.height_cm):g} cm arena (worst "
        f"{found.worst_cm:g} cm): the outline ({arena.source}) or the arena size is probably "
        "wrong (an `arena propose` outline on a wall top?). Check the outline on the video's "
        "picture, fix it, then reprocess.", WARN)


def frame_quality_checks(figures: dict) -> list[dg.AssetCheckResult]:
    """The body-part outlier check from :func:`outlier_figures`' figures."""
    worst = max(figures["outlier_fraction_per_part"].values(), default=0.0)
    part = max(figures["outlier_fraction_per_part"], default="",
               key=lambda k: figures["outlier_fraction_per_part"][k])
    return [_result(
        "body_part_outliers", worst <= MAX_OUTLIER_FRACTION,
        {"outlier_fraction": figures["outlier_fraction"], "worst_body_part": part,
         "worst_fraction": worst, "threshold": MAX_OUTLIER_FRACTION,
         "per_part": dg.MetadataValue.json(figures["outlier_fraction_per_part"])},
        f"{part} is a confident-mistake suspect in {100 * worst:.1f} % of its frames (jumps "
        "away and back, or far from where the other body parts place it), whatever its "
        "likelihood: look at those frames (`dlc-platform models review`, the "
        "frame_quality rows' outlier_body_parts) and relabel them.", WARN)]
