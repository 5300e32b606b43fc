"""Where sessions live and which registry file applies."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from dlc_tracking.registry.registry_file import Registry, load_registry
from dlc_tracking.sessions.layout import Recording, find_recording


class DataRoot(dg.ConfigurableResource):
    """The data root (``<root>/<subject>/<session>/``) and the registry file."""

    path: str = Field(description="Data root folder holding <subject>/<session>/ sessions")
    registry_path: str = Field(description="The registry YAML (models, methods, pairings)")

    def root(self) -> Path:
        return Path(self.path).absolute()

    def registry(self) -> Registry:
        return load_registry(Path(self.registry_path))

    def recording(self, recording_id: str) -> Recording:
        return find_recording(self.root(), recording_id)
