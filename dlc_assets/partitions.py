"""One dynamic partition per recording (one video of one session)."""

import dagster as dg

recordings_partitions = dg.DynamicPartitionsDefinition(name="recordings")
