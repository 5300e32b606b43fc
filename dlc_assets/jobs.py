"""Jobs: process one recording (its partitioned assets), refresh the registry tables, and
compact the warehouse."""

import dagster as dg

from resources import WarehouseResource

process_recording_job = dg.define_asset_job(
    "process_recording",
    # The NWB file too (0.8 s for 1 h at 50 Hz, bench/exports.py); the labeled video and
    # the overview stay on demand (minutes per hour of video; unpartitioned).
    # Multi-camera recordings: pose_3d (the single-camera assets skip them, and pose_3d
    # skips single-camera ones, each with its reason). Multi-animal recordings:
    # multi_animal_tracking (in the tracking group), then nwb_files writes their
    # multi-animal NWB file (nwb_files depends on it; it skips single-animal ones).
    selection=dg.AssetSelection.groups("tracking", "multiview")
    | dg.AssetSelection.assets("nwb_files"),
    description="recordings -> dlc_predictions -> raw_state_vectors -> processed_tracking "
    "(+ occupancy, nwb_files) for one recording (partition); pose_3d for a multi-camera "
    "recording.",
)

update_registry_job = dg.define_asset_job(
    "update_registry",
    selection=dg.AssetSelection.groups("registry") - dg.AssetSelection.assets("registry_file"),
    description="Materialize the registry tables (models, body parts, methods, pairings).",
)


@dg.op(description="Merge finished recordings' small warehouse files into packs "
       "(dlc_tracking.warehouse.compaction); safe while runs write and analysts read.")
def compact_warehouse(context: dg.OpExecutionContext, warehouse: WarehouseResource) -> None:
    from dlc_tracking.warehouse.compaction import compact, file_counts

    report = compact(warehouse.get())
    context.log.info(report.summary())
    context.log.info(f"files per table now: {file_counts(warehouse.get())}")


@dg.job(description="Compaction of the warehouse (archive scale): see docs/production.md.")
def warehouse_compaction_job() -> None:
    compact_warehouse()


warehouse_compaction_schedule = dg.ScheduleDefinition(
    name="warehouse_compaction_hourly", job=warehouse_compaction_job, cron_schedule="17 * * * *",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Hourly compaction of finished recordings (turn on for archives of "
    "thousands of recordings).")
