"""Backfills of the per-recording assets, launched by promotions (CLI and UI job)."""

from __future__ import annotations

import dagster as dg

PROMOTION_TAG = "dlc_platform/promotion"


def launch_backfill(instance: dg.DagsterInstance, asset_graph, recordings: list[str],
                    tags: dict[str, str], title: str) -> str:
    """A Dagster asset backfill of the process_recording assets for exactly
    ``recordings`` (the daemon submits its runs, the UI shows it under Backfills).

    ``asset_graph`` is the code location's (``build_definitions().resolve_asset_graph()``
    from the command line, ``context.repository_def.asset_graph`` inside a run), so this
    module needs neither the definitions nor the command line."""
    from dagster._core.execution.backfill import PartitionBackfill
    from dagster._core.utils import make_new_backfill_id
    from dagster._time import get_current_timestamp

    from dlc_assets.jobs import process_recording_job
    from dlc_assets.partitions import recordings_partitions

    missing = [r for r in recordings
               if not instance.has_dynamic_partition(recordings_partitions.name, r)]
    if missing:
        instance.add_dynamic_partitions(recordings_partitions.name, missing)
    keys = sorted(process_recording_job.selection.resolve(asset_graph))
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id=make_new_backfill_id(), asset_graph=asset_graph,
        partition_names=list(recordings), asset_selection=keys,
        backfill_timestamp=get_current_timestamp(), tags=tags,
        dynamic_partitions_store=instance, all_partitions=False, title=title,
        description=None, run_config=None)
    instance.add_backfill(backfill)
    return backfill.backfill_id
