"""Shared fixtures: the tiny real DLC models (built once per machine, cached by content
hash), a registry registering them through the admin API, and per-test platform folders."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see dlc_assets/__init__.py
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"

LEGACY_MAP = {"snout": "nose", "leftear": "left_ear", "rightear": "right_ear",
              "tailbase": "tail_base"}


@pytest.fixture(scope="session")
def tiny_pytorch_config() -> Path:
    from dlc_tracking.synthetic.tiny_model import build_tiny_model

    return build_tiny_model("pytorch")


@pytest.fixture(scope="session")
def tiny_tf_config() -> Path:
    from dlc_tracking.synthetic.tiny_model import build_tiny_model

    return build_tiny_model("tensorflow")


@pytest.fixture(scope="session")
def registry_path(tmp_path_factory, tiny_pytorch_config) -> Path:
    """A registry with the tiny PyTorch model, written by the admin API (as `models add`)."""
    from dlc_tracking.registry.editing import add_model
    from dlc_tracking.registry.registry_file import load_registry, read_registry_yaml

    path = tmp_path_factory.mktemp("registry") / "registry.yaml"
    shutil.copy(ROOT / "registry" / "registry.yaml", path)
    add_model(path, "tiny_openfield", tiny_pytorch_config, description="tiny PyTorch model",
              pair_with=["two_ears", "two_ears_loose", "nose_tail_base", "nose", "centroid_all"])
    raw = read_registry_yaml(path)
    # The tiny model's likelihoods stay moderate (~0.6-0.9 measured):
    # the default method's cutoff is 0.5.
    raw["defaults"] = {"openfield": {"model": "tiny_openfield", "method": "two_ears_loose"}}
    raw["tracking_types"] = {"wheel": {"supported": False, "description": "Running wheel",
                                       "reason": "no wheel state-vector method yet"}}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    load_registry(path)
    return path


@pytest.fixture(scope="session")
def legacy_registry_path(tmp_path_factory, registry_path, tiny_tf_config) -> Path:
    """The registry above plus the tiny TensorFlow model with legacy body-part names."""
    from dlc_tracking.registry.editing import add_model

    path = tmp_path_factory.mktemp("registry_legacy") / "registry.yaml"
    shutil.copy(registry_path, path)
    add_model(path, "tiny_legacy", tiny_tf_config, description="tiny TF model, legacy names",
              body_part_map=LEGACY_MAP, pair_with=["two_ears"])
    return path


@pytest.fixture(scope="session")
def registry(registry_path):
    from dlc_tracking.registry.registry_file import load_registry

    return load_registry(registry_path)


@pytest.fixture
def platform_dirs(tmp_path, registry_path) -> dict[str, Path]:
    """Fresh data root, warehouse and work folders for one test."""
    dirs = {"data_root": tmp_path / "data", "warehouse": tmp_path / "warehouse",
            "work": tmp_path / "work", "registry": registry_path}
    for key in ("data_root", "warehouse", "work"):
        dirs[key].mkdir()
    return dirs


@pytest.fixture
def resources(platform_dirs):
    from resources import DataRoot, DLCInference, WarehouseResource

    return {
        "data_root": DataRoot(path=str(platform_dirs["data_root"]),
                              registry_path=str(platform_dirs["registry"])),
        "warehouse": WarehouseResource(root=str(platform_dirs["warehouse"])),
        "dlc_inference": DLCInference(device="cpu", batch_size=8,
                                      work_dir=str(platform_dirs["work"]),
                                      progress_interval_s=0.5),
    }


@pytest.fixture
def instance(tmp_path):
    """A real Dagster instance (SQLite storage) in a temporary DAGSTER_HOME."""
    import dagster as dg

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.instance_for_test(temp_dir=str(home)) as inst:
        yield inst


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def pytest_configure(config):
    os.environ.setdefault("DLC_PLATFORM_SETTLE_SECONDS", "0")
