"""Multi-animal recordings: one asset from the maDLC outputs to every per-individual table,
the identity events and the social measures (dlc_tracking.social, docs/multi-animal.md).

Wiring only. A single-animal recording is skipped with the reason (the single-animal
assets process it), like the single-animal assets skip a multi-animal one.
"""

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from dlc_assets.assets import qc_plots
from dlc_assets.assets.tracking import (
    _info,
    _recording,
    clear_failures,
    dlc_predictions,
    multi_camera_skip,
    recordings,
)
from dlc_assets.execution.worker_info import worker_metadata
from dlc_assets.partitions import recordings_partitions
from dlc_assets.schemas import column_schema
from dlc_tracking.errors import DLCFileError
from dlc_tracking.qc import social_plots
from dlc_tracking.social.recording import madlc_outputs_present, process_multi_animal_recording
from dlc_tracking.social.routing import SINGLE_ANIMAL_SKIP_REASON, is_multi_animal
from dlc_tracking.warehouse.tables import MULTI_ANIMAL_TABLE_NAMES
from resources import DataRoot, DLCInference, WarehouseResource

ASSET = "multi_animal_tracking"
WARN = dg.AssetCheckSeverity.WARN
MIN_FRACTION_ALL_PRESENT = 0.9
"""all_individuals_present warns below this share of frames with every individual."""

SOCIAL_CHECKS = [
    dg.AssetCheckSpec("identity_swaps", asset=ASSET, description="No two individuals' "
                      "positions exchanged between consecutive frames (found from the "
                      "motion; warning, frames listed)."),
    dg.AssetCheckSpec("tracks_vanish", asset=ASSET, description="No track vanishes, appears "
                      "or reappears mid-recording, none is never present (warning)."),
    dg.AssetCheckSpec("two_tracks_one_animal", asset=ASSET, description="No two tracks on "
                      "one animal (matching body parts together; warning)."),
    dg.AssetCheckSpec("all_individuals_present", asset=ASSET, description="Every individual "
                      f"is present in at least {MIN_FRACTION_ALL_PRESENT:.0%} of the frames "
                      "(warning)."),
]


def _skipped(reason: str) -> dg.MaterializeResult:
    return dg.MaterializeResult(
        metadata={"skipped": True, "reason": reason, **worker_metadata()},
        check_results=[dg.AssetCheckResult(check_name=s.name, passed=True,
                                           metadata={"skipped": reason})
                       for s in SOCIAL_CHECKS])


def identity_checks(events: pd.DataFrame, identity: dict) -> list[dg.AssetCheckResult]:
    """The four identity checks from the identity_events rows and the identity summary."""
    def kind(*names: str) -> pd.DataFrame:
        return events[events["event"].isin(names)]

    swaps, gone, dup = (kind("identity_swap"),
                        kind("vanishes", "appears", "reappears", "never_present"),
                        kind("two_tracks_one_animal"))
    present = float(identity.get("fraction_all_present", 1.0))

    def listed(df: pd.DataFrame) -> dg.MetadataValue:
        return dg.MetadataValue.json(df[["event", "individual", "other_individual", "frame"]]
                                     .head(50).astype(object).where(df.notna().head(50), None)
                                     .to_dict("records"))

    return [
        dg.AssetCheckResult(check_name="identity_swaps", passed=swaps.empty, severity=WARN,
                            description=f"{len(swaps)} identity swap(s) at frames "
                            f"{swaps['frame'].head(20).tolist()}" if len(swaps) else None,
                            metadata={"n_swaps": len(swaps), "events": listed(swaps)}),
        dg.AssetCheckResult(check_name="tracks_vanish", passed=gone.empty, severity=WARN,
                            description=f"{len(gone)} track event(s): " + ", ".join(
                                f"{r.individual} {r.event} at {r.frame}"
                                for r in gone.head(10).itertuples()) if len(gone) else None,
                            metadata={"n_events": len(gone), "events": listed(gone)}),
        dg.AssetCheckResult(check_name="two_tracks_one_animal", passed=dup.empty,
                            severity=WARN,
                            description=f"{len(dup)} run(s) of two tracks on one animal"
                            if len(dup) else None,
                            metadata={"n_runs": len(dup), "events": listed(dup)}),
        dg.AssetCheckResult(check_name="all_individuals_present",
                            passed=present >= MIN_FRACTION_ALL_PRESENT, severity=WARN,
                            description=None if present >= MIN_FRACTION_ALL_PRESENT else
                            f"every individual present in {present:.1%} of the frames",
                            metadata={"fraction_all_present": present,
                                      "fraction_present": dg.MetadataValue.json(
                                          identity.get("fraction_present", {}))}),
    ]


def _outputs_folder(manual_dir: Path, inferred_dir: Path, rid: str) -> tuple[Path, str]:
    """The maDLC outputs to read: the session's dlc_<video stem>/ when it has any
    (``manual``), else what dlc_predictions inferred into the work area (``inference``)."""
    if madlc_outputs_present(manual_dir):
        return manual_dir, "manual"
    if madlc_outputs_present(inferred_dir):
        return inferred_dir, "inference"
    raise DLCFileError(
        f"recording {rid}: no maDLC outputs in {manual_dir} and none inferred in "
        f"{inferred_dir}. Run the process_recording job (its dlc_predictions step runs "
        "DeepLabCut's multi-animal path on the gpu queue for a model with its project on "
        "the worker), or put DeepLabCut's analyze_videos(auto_track=True) outputs in "
        f"{manual_dir}.")


def _pictures(tables: dict[str, pd.DataFrame], subjects: dict, width: float | None,
              height: float | None, proximity_cm: float | None
              ) -> dict[str, dg.MetadataValue]:
    tracking = tables["individual_tracking"]
    tracks = {str(ind): (g["x_cm"].to_numpy(float), g["y_cm"].to_numpy(float))
              for ind, g in tracking.groupby("individual", sort=False, observed=True)}
    out = {"trajectories": qc_plots.png_md(social_plots.trajectories_png(
        tracks, subjects, width, height), "all trajectories on the arena")}
    social = tables.get("social")
    if social is not None and len(social):
        def label(a: str, b: str) -> str:
            return f"{subjects.get(a) or a}-{subjects.get(b) or b}"

        first = social.groupby(["individual_a", "individual_b"], sort=False, observed=True)
        time_s = next(iter(first))[1]["time_s"].to_numpy(float)
        distances = {label(a, b): g["distance_cm"].to_numpy(float)
                     for (a, b), g in first}
        events = tables["identity_events"]
        swap_frames = events.loc[events["event"] == "identity_swap", "frame"].to_numpy(int)
        swap_t = [float(time_s[f]) for f in swap_frames if 0 <= f < len(time_s)]
        out["inter_animal_distance"] = qc_plots.png_md(social_plots.distance_png(
            time_s, distances, swap_t, proximity_cm), "inter-animal distance, swaps marked")
    return out


@dg.asset(
    name=ASSET, group_name="tracking", partitions_def=recordings_partitions,
    deps=[recordings, dlc_predictions], kinds={"duckdb", "parquet", "deeplabcut"},
    check_specs=SOCIAL_CHECKS, metadata=column_schema(*MULTI_ANIMAL_TABLE_NAMES),
    description="Multi-animal recording (maDLC outputs in dlc_<video stem>/, else those "
    "dlc_predictions inferred with DeepLabCut's multi-animal path): per-individual "
    "predictions, state vectors, processed tracking and body parts keyed by individual and "
    "subject (session.yaml `individuals:`), unique body parts, identity events, and the "
    "social measures per pair. Single-animal recordings are skipped (the single-animal "
    "assets process them).",
)
def multi_animal_tracking(context: dg.AssetExecutionContext, data_root: DataRoot,
                          warehouse: WarehouseResource, dlc_inference: DLCInference
                          ) -> dg.MaterializeResult:
    recording = _recording(context, data_root)
    if (skipped := multi_camera_skip(context, data_root, SOCIAL_CHECKS, recording)) is not None:
        return skipped  # a multi-camera take: pose_3d processes it
    info = _info(context, data_root, recording)
    rid = info.recording_id
    store = warehouse.get()
    with clear_failures(rid):
        registry = data_root.registry()
        if info.model_name is None:
            return _skipped("no model assigned")
        model = registry.model(info.model_name)
        meta = info.metadata
        where = f"{info.recording.session_yaml} (recording {rid})"
        if not is_multi_animal(model.name, model.multi_animal, meta.individuals,
                               meta.individual_prefixes, where):
            for table in MULTI_ANIMAL_TABLE_NAMES:  # a recording re-assigned to one animal
                store.delete_partition(table, rid)
            return _skipped(SINGLE_ANIMAL_SKIP_REASON.format(model=model.name))
        method = registry.method(info.method_name)
        social = registry.social_params(info.params.name, where)
        arena = meta.arena
        folder, source = _outputs_folder(info.recording.manual_output_dir,
                                         dlc_inference.output_dir(rid, model.name), rid)
        result = process_multi_animal_recording(
            folder, source=source, recording_id=rid, model_name=model.name,
            layout=model.multi_animal, to_canonical=model.to_canonical(), method=method,
            time_s=info.time_s, camera_view=meta.camera_view,
            frame_size=(info.video.width_px, info.video.height_px),
            individuals=meta.individuals, individual_prefixes=meta.individual_prefixes,
            params=info.params, social=social, arena_width_cm=arena.width_cm if arena else None,
            arena_height_cm=arena.height_cm if arena else None,
            pixels_per_cm=meta.pixels_per_cm)
    for table in MULTI_ANIMAL_TABLE_NAMES:
        if table in result.tables:
            store.write_partition(table, rid, result.tables[table])
        else:  # one individual: no pairs
            store.delete_partition(table, rid)
    events = result.tables["identity_events"]
    summary = result.tables.get("social_summary")
    tracking = result.tables["individual_tracking"]
    proximity = social.proximity_cm
    own = identity_checks(events, result.identity)
    warnings = [f"{r.check_name}: {r.description}" for r in own if not r.passed]
    return dg.MaterializeResult(
        metadata={
            "status": (f"processed with warnings ({len(warnings)}): " + " | ".join(warnings)
                       if warnings else "processed"),
            "model": model.name, "method": method.name, "params": info.params.name,
            "social_params": dg.MetadataValue.json(social.to_dict()),
            "source": source,
            "individuals": len(result.subjects),
            "subjects": dg.MetadataValue.json(result.subjects),
            "identity": dg.MetadataValue.json(result.identity),
            "frames": int(tracking["frame"].nunique()),
            "distance_cm": dg.MetadataValue.json({
                str(ind): round(float(np.nansum(np.hypot(np.diff(g["x_cm"]),
                                                         np.diff(g["y_cm"])))), 1)
                for ind, g in tracking.groupby("individual", sort=False, observed=True)}),
            "social_summary": dg.MetadataValue.json(
                [] if summary is None else summary.drop(columns=["recording_id"])
                .astype(object).where(summary.drop(columns=["recording_id"]).notna(), None)
                .to_dict("records")),
            "reader_notes": dg.MetadataValue.json(result.notes),
            "files": dg.MetadataValue.json(result.files),
            **_pictures(result.tables, result.subjects, arena.width_cm if arena else None,
                        arena.height_cm if arena else None, proximity),
            **worker_metadata(),
        },
        check_results=own,
    )


social_assets = [multi_animal_tracking]
