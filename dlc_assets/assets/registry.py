"""Registry assets (unpartitioned): models, body parts, tracking types, methods, pairings.

They hang off an observable ``registry_file`` whose data version is the file's hash, so an
edit of the registry shows the registry tables as stale in the UI.
"""


import hashlib
from pathlib import Path

import dagster as dg
import pandas as pd

from dlc_tracking.registry.registry_file import Registry, check_pairing
from resources import DataRoot, WarehouseResource

GROUP = "registry"


@dg.observable_source_asset(
    group_name=GROUP,
    description="The registry YAML (models, methods, pairings); version = its content hash.",
)
def registry_file(data_root: DataRoot) -> dg.DataVersion:
    path = Path(data_root.registry_path)
    return dg.DataVersion(hashlib.sha256(path.read_bytes()).hexdigest()[:16])


def _table_result(warehouse: WarehouseResource, name: str, df: pd.DataFrame,
                  registry: Registry, **extra) -> dg.MaterializeResult:
    store = warehouse.get()
    store.write_table(name, df)
    store.ensure_catalog()  # views for new tables; a no-op when the catalog is current
    return dg.MaterializeResult(metadata={
        "rows": len(df), "registry": dg.MetadataValue.path(str(registry.path)),
        "registry_hash": registry.content_hash(),
        "preview": dg.MetadataValue.md(df.head(20).to_markdown(index=False)
                                       if len(df) else "(empty)"),
        **extra,
    })


_KINDS = {"duckdb", "parquet"}


@dg.asset(group_name=GROUP, deps=[registry_file], kinds=_KINDS | {"deeplabcut"},
          description="Registered DLC models (the seed's DLCModel): identity, scorer, "
          "snapshot, body parts (canonical and as DLC names them).")
def dlc_models(data_root: DataRoot, warehouse: WarehouseResource) -> dg.MaterializeResult:
    registry = data_root.registry()
    df = pd.DataFrame([m.row() for m in registry.models.values()])
    return _table_result(warehouse, "models", df, registry)


@dg.asset(group_name=GROUP, deps=[registry_file], kinds=_KINDS,
          description="Canonical body-part vocabulary (the seed's TrackedBodyPart).")
def body_parts(data_root: DataRoot, warehouse: WarehouseResource) -> dg.MaterializeResult:
    registry = data_root.registry()
    df = pd.DataFrame({"body_part": list(registry.body_parts),
                       "description": list(registry.body_parts.values())})
    return _table_result(warehouse, "body_parts", df, registry)


@dg.asset(group_name=GROUP, deps=[registry_file], kinds=_KINDS,
          description="Tracking types (the seed's DLCTrackingType), with why unsupported ones "
          "get predictions but no state vector.")
def tracking_types(data_root: DataRoot, warehouse: WarehouseResource) -> dg.MaterializeResult:
    registry = data_root.registry()
    df = pd.DataFrame([{"tracking_type": t.name, "supported": t.supported,
                        "description": t.description, "reason": t.reason}
                       for t in registry.tracking_types.values()])
    return _table_result(warehouse, "tracking_types", df, registry)


@dg.asset(group_name=GROUP, deps=[registry_file], kinds=_KINDS,
          description="State-vector methods (the seed's DLCTrackingProcessingMethod) with "
          "their body parts, parameters and parameter hash.")
def processing_methods(data_root: DataRoot, warehouse: WarehouseResource) -> dg.MaterializeResult:
    registry = data_root.registry()
    import json

    df = pd.DataFrame([{
        "method_name": m.name, "kind": m.kind, "body_parts": ",".join(m.body_parts),
        "tracking_type": m.tracking_type, "likelihood_cutoff": m.likelihood_cutoff,
        "params": json.dumps(m.params, sort_keys=True), "param_hash": m.param_hash,
        "has_head_direction": m.has_head_direction, "description": m.description,
    } for m in registry.methods.values()])
    return _table_result(warehouse, "methods", df, registry)


@dg.asset(group_name=GROUP, deps=[registry_file], kinds=_KINDS,
          description="Accepted model x method pairings (the seed's DLCProcessingMethod) and "
          "the default assignment per tracking type.")
def model_method_pairings(data_root: DataRoot, warehouse: WarehouseResource
                          ) -> dg.MaterializeResult:
    registry = data_root.registry()
    defaults = {v: k for k, v in registry.defaults.items()}
    rows = []
    for model, method in registry.pairings:
        check_pairing(registry.model(model), registry.method(method), str(registry.path))
        rows.append({"model_name": model, "method_name": method,
                     "method_hash": registry.method(method).param_hash,
                     "default_for": defaults.get((model, method), "")})
    df = pd.DataFrame(rows, columns=["model_name", "method_name", "method_hash", "default_for"])
    return _table_result(warehouse, "pairings", df, registry)


@dg.asset_check(asset=dlc_models, blocking=False,
                description="Every registered model's project and snapshot are on this worker "
                "and unchanged since registration.")
def models_available(data_root: DataRoot) -> dg.AssetCheckResult:
    problems = data_root.registry().validate(check_projects=True)
    return dg.AssetCheckResult(passed=not problems, severity=dg.AssetCheckSeverity.WARN,
                               metadata={"problems": dg.MetadataValue.json(problems)})


registry_assets = [registry_file, dlc_models, body_parts, tracking_types, processing_methods,
                   model_method_pairings]
registry_checks = [models_available]
