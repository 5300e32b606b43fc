"""Column schemas of the warehouse tables, shown on the assets in the Dagster UI."""

import dagster as dg

from dlc_tracking.warehouse import TABLES


def column_schema(*tables: str) -> dict:
    """``dagster/column_schema`` metadata for the tables an asset writes (first is main)."""
    columns = []
    for table in tables:
        spec = TABLES[table]
        prefix = f"{table}." if table != tables[0] else ""
        for col in spec.columns:
            unit = f" [{col.unit}]" if col.unit else ""
            columns.append(dg.TableColumn(
                name=prefix + col.name, type=str(col.type),
                description=col.description + unit,
                constraints=dg.TableColumnConstraints(nullable=col.nullable)))
    return {"dagster/column_schema": dg.TableSchema(columns=columns),
            "warehouse_tables": ", ".join(tables)}
