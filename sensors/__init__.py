"""Dagster sensors: new sessions on disk, and registry changes."""

from sensors.sessions import new_recordings_sensor, registry_changes_sensor

__all__ = ["new_recordings_sensor", "registry_changes_sensor"]
