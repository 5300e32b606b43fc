"""Where things are, from environment variables with embedded-default fallbacks.

| variable                    | default              | what                                  |
|-----------------------------|----------------------|---------------------------------------|
| DLC_PLATFORM_DATA_ROOT      | demo/data            | sessions: <root>/<subject>/<session>/ |
| DLC_PLATFORM_REGISTRY       | demo/registry.yaml   | the registry file                     |
| DLC_PLATFORM_WAREHOUSE      | demo/warehouse       | Parquet tables + warehouse.duckdb     |
| DLC_PLATFORM_WORK_DIR       | demo/work            | inference outputs and staged models   |
| DLC_PLATFORM_DEVICE         | auto                 | auto, cpu, cuda, cuda:N               |
| DLC_PLATFORM_BATCH_SIZE     | unset (8 CPU/32 CUDA)| frames per forward pass               |
| DLC_PLATFORM_INFERENCE_ENGINE | platform           | platform (batched engine) or dlc      |
| DLC_PLATFORM_INFERENCE_PRECISION | fp32            | fp32, or bf16 (opt-in, bounded)       |
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


def batch_size() -> int | None:
    """Frames per forward pass; None = the engine's default for the device."""
    value = setting("DLC_PLATFORM_BATCH_SIZE", "")
    return int(value) if value else None


def inference_engine() -> str:
    return setting("DLC_PLATFORM_INFERENCE_ENGINE", "platform")


def inference_precision() -> str:
    return setting("DLC_PLATFORM_INFERENCE_PRECISION", "fp32")


def ensure_dagster_home() -> Path:
    """``$DAGSTER_HOME`` with a ``dagster.yaml``: a fresh folder gets the project's default.

    Dagster would otherwise run with built-in defaults that differ from the platform's
    (no run queue, no pools, no run monitoring), silently.
    """
    import shutil
    import sys

    home = Path(os.environ.get("DAGSTER_HOME") or PROJECT_ROOT / ".dagster_home")
    config = home / "dagster.yaml"
    if not config.exists():
        home.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT_ROOT / "dagster.yaml", config)
        print(f"[dlc-platform] {home} had no dagster.yaml: copied the project's default "
              f"({PROJECT_ROOT / 'dagster.yaml'}); edit it there for production settings.",
              file=sys.stderr)
    return home
