"""Where things are, from environment variables with embedded-default fallbacks.

| variable                    | default              | what                                  |
|-----------------------------|----------------------|---------------------------------------|
| DLC_PLATFORM_DATA_ROOT      | demo/data            | sessions: <root>/<subject>/<session>/ |
| DLC_PLATFORM_REGISTRY       | demo/registry.yaml   | the registry file                     |
| DLC_PLATFORM_WAREHOUSE      | demo/warehouse       | Parquet tables + warehouse.duckdb     |
| DLC_PLATFORM_WORK_DIR       | demo/work            | inference outputs and staged models   |
| DLC_PLATFORM_DEVICE         | auto                 | auto, cpu, cuda, cuda:N               |
| DLC_PLATFORM_BATCH_SIZE     | 8                    | frames per forward pass               |
"""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def setting(name: str, default: str) -> str:
    value = os.environ.get(name, default)
    path_like = name.endswith(("_ROOT", "_REGISTRY", "_WAREHOUSE", "_DIR"))
    if path_like and not os.path.isabs(value):
        return str((PROJECT_ROOT / value).resolve())
    return value


def data_root() -> str:
    return setting("DLC_PLATFORM_DATA_ROOT", "demo/data")


def registry_path() -> str:
    return setting("DLC_PLATFORM_REGISTRY", "demo/registry.yaml")


def warehouse_root() -> str:
    return setting("DLC_PLATFORM_WAREHOUSE", "demo/warehouse")


def work_dir() -> str:
    return setting("DLC_PLATFORM_WORK_DIR", "demo/work")


def device() -> str:
    return setting("DLC_PLATFORM_DEVICE", "auto")


def batch_size() -> int:
    return int(setting("DLC_PLATFORM_BATCH_SIZE", "8"))
