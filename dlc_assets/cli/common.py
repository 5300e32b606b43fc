"""What the command groups share: the registry a command works on."""

from __future__ import annotations

from pathlib import Path

from dlc_assets import settings


def registry_path(args) -> Path:
    """``--registry`` when given, else ``$DLC_PLATFORM_REGISTRY`` (the demo's by default)."""
    return Path(args.registry or settings.registry_path())
