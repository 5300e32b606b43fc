"""A quiet, helpful command line (issue 21 F, E2): what a user sees on the terminal."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from dlc_tracking.io.dlc_files import write_predictions
from dlc_tracking.registry.editing import add_ingest_only_model

ROOT = Path(__file__).resolve().parents[1]
SCORER = "DLC_resnet50_openfieldAug20shuffle1_30000"
PARTS = ["nose", "left_ear", "right_ear", "tail_base"]


def test_a_refused_registry_edit_names_registry_yaml_not_a_temporary_file(tmp_path, capsys):
    from dlc_assets.cli.main import main

    registry = tmp_path / "registry.yaml"
    shutil.copy(ROOT / "registry" / "registry.yaml", registry)
    poses = np.concatenate([np.full((20, 4, 2), 100.0), np.full((20, 4, 1), 0.95)], 2)
    outputs = write_predictions(tmp_path / f"videoDLC{SCORER[3:]}.h5", SCORER, PARTS, poses)
    add_ingest_only_model(registry, "elsewhere", outputs_file=outputs)
    before = registry.read_text()

    with pytest.raises(SystemExit) as stop:
        main(["--registry", str(registry), "models", "pair", "elsewhere", "no_such_method"])
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert str(registry) in err and "no_such_method" in err
    assert ".tmp" not in err and ".registry.yaml." not in err
    assert registry.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".registry")) in (
        [], [".registry.yaml.lock"])
