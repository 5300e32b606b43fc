"""Dynamic partitions: one per recording (one video of one session), one per rig calibration."""

import dagster as dg

recordings_partitions = dg.DynamicPartitionsDefinition(name="recordings")

# One key per calibration folder on disk, `<rig>__<YYYY-MM-DD>` (docs/3d.md, section 2), not a
# MultiPartitionsDefinition of rigs x dates: that grid would hold every rig on every day any
# rig was calibrated, so a backfill of "all" (or of one date) would run for folders that do not
# exist. `__` as in recording ids (`|` cannot be a warehouse partition file name).
calibrations_partitions = dg.DynamicPartitionsDefinition(name="calibrations")
