"""Sensor: rig calibration folders appearing (or changing) under <data root>/calibrations/."""

import json
import os
import time

import dagster as dg

from dlc_assets.assets.calibrations import calibrate_rig_job
from dlc_assets.partitions import calibrations_partitions
from dlc_tracking.multiview.calibration_store import (
    CALIBRATIONS_DIR,
    find_calibration_folders,
    folder_fingerprint,
)
from resources import DataRoot


@dg.sensor(
    job=calibrate_rig_job, minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Finds new or changed calibration folders <data root>/calibrations/<rig>/"
    "<YYYY-MM-DD>/ once their files are settled, adds their camera_calibrations partitions "
    "and requests one run each.",
)
def new_calibrations_sensor(context: dg.SensorEvaluationContext, data_root: DataRoot
                            ) -> dg.SensorResult | dg.SkipReason:
    # the session sensor's settle time: a folder still being copied is left for later
    settle_s = float(os.environ.get("DLC_PLATFORM_SETTLE_SECONDS", 30))
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    folders, problems = find_calibration_folders(data_root.root() / CALIBRATIONS_DIR)
    for problem in problems:
        context.log.warning(problem)
    now = time.time()
    ready, waiting = [], []
    for folder in folders:
        fingerprint, newest = folder_fingerprint(folder.path)
        if now - newest < settle_s:
            waiting.append(folder.key)
        elif seen.get(folder.key) != fingerprint:
            ready.append((folder.key, fingerprint))
    if waiting:
        context.log.info(f"calibration folders not settled yet: {waiting}")
    if not ready:
        return dg.SkipReason("no new settled calibration folders")
    name = calibrations_partitions.name
    new_keys = [key for key, _ in ready
                if not context.instance.has_dynamic_partition(name, key)]
    seen.update(dict(ready))
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"calibration:{key}:{fp}", partition_key=key,
                                    tags={"dlc_platform/calibration": key,
                                          "dlc_platform/fingerprint": fp})
                      for key, fp in ready],
        dynamic_partitions_requests=[calibrations_partitions.build_add_request(new_keys)]
        if new_keys else [],
        cursor=json.dumps(seen, sort_keys=True),
    )
