"""Dagster sensors: new sessions on disk, rig calibrations on disk, and registry changes."""

from sensors.calibrations import new_calibrations_sensor
from sensors.sessions import new_recordings_sensor, registry_changes_sensor

__all__ = ["new_calibrations_sensor", "new_recordings_sensor", "registry_changes_sensor"]
