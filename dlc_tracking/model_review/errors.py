"""Errors of the model review (no Dagster)."""

from __future__ import annotations

from dlc_tracking.errors import DLCPlatformError


class ReviewError(DLCPlatformError):
    """A review, comparison or promotion cannot run (nothing flagged, unknown model, ...)."""
