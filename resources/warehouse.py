"""The warehouse resource: Parquet partitions plus a DuckDB catalog of views."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from dlc_tracking.warehouse import Warehouse


class WarehouseResource(dg.ConfigurableResource):
    """Where materialized tables go; analysts open ``<root>/warehouse.duckdb`` read-only."""

    root: str = Field(description="Warehouse folder (Parquet tables + warehouse.duckdb)")

    def get(self) -> Warehouse:
        return Warehouse(Path(self.root).absolute())
