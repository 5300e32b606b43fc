"""The Definitions object of the dlc-platform code location."""

import dagster as dg

from dlc_assets import settings
from dlc_assets.assets.calibrations import calibration_assets, calibration_jobs
from dlc_assets.assets.exports import export_assets
from dlc_assets.assets.imaging import imaging_assets
from dlc_assets.assets.model_review import review_assets, review_jobs
from dlc_assets.assets.multiview import multiview_assets
from dlc_assets.assets.registry import registry_assets, registry_checks
from dlc_assets.assets.social import social_assets
from dlc_assets.assets.tracking import tracking_assets
from dlc_assets.assets.training import training_assets, training_jobs
from dlc_assets.execution.celery_executor import chosen_executor
from dlc_assets.jobs import (
    process_recording_job,
    update_registry_job,
    warehouse_compaction_job,
    warehouse_compaction_schedule,
)
from resources import DataRoot, DLCInference, WarehouseResource
from sensors import new_calibrations_sensor, new_recordings_sensor, registry_changes_sensor


def default_resources() -> dict:
    """Resources configured from the environment (see settings.py)."""
    return {
        "data_root": DataRoot(path=settings.data_root(), registry_path=settings.registry_path()),
        "warehouse": WarehouseResource(root=settings.warehouse_root()),
        "dlc_inference": DLCInference(device=settings.device(), batch_size=settings.batch_size(),
                                      engine=settings.inference_engine(),
                                      precision=settings.inference_precision(),
                                      work_dir=settings.work_dir()),
    }


def build_definitions(resources: dict | None = None) -> dg.Definitions:
    """The code location's definitions; tests pass their own resources."""
    return dg.Definitions(
        assets=[*registry_assets, *tracking_assets, *export_assets, *imaging_assets,
                *review_assets, *training_assets, *social_assets, *multiview_assets,
                *calibration_assets],
        asset_checks=registry_checks,
        jobs=[process_recording_job, update_registry_job, warehouse_compaction_job,
              *training_jobs, *review_jobs, *calibration_jobs],
        schedules=[warehouse_compaction_schedule],
        sensors=[new_recordings_sensor, registry_changes_sensor, new_calibrations_sensor],
        resources=resources or default_resources(),
        # By default one process per run, steps in it: every job here is a short chain (or
        # a few small registry tables), and a process per step would import the code
        # location again for each of the four steps of a recording (~6 s each, more than
        # the work of a short recording). Pools (the gpu pool) still bound the inference
        # steps. DLC_PLATFORM_EXECUTOR=celery sends the steps to Celery workers instead
        # (gpu / cpu queues; see execution/celery_executor.py and docs/production.md).
        executor=chosen_executor(),
    )


defs = build_definitions()
