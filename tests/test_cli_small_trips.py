"""Small command-line trips (issue 21): `models review --dry-run` of an ingest-only model
needed `--out` although it writes nothing; `query` printed NULL as NaN, None or <NA>."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from dlc_tracking.io.dlc_files import write_predictions
from dlc_tracking.model_review import frame_quality as fq
from dlc_tracking.registry.editing import add_ingest_only_model
from dlc_tracking.warehouse import Warehouse
from tests.review_helpers import recordings_row

ROOT = Path(__file__).resolve().parents[1]
SCORER = "DLC_resnet50_openfieldAug20shuffle1_30000"
PARTS = ["nose", "left_ear", "right_ear", "tail_base"]


def _archive(tmp_path: Path) -> tuple[Path, Path]:
    """A registry with an ingest-only model, and a warehouse with its flagged frames."""
    registry = tmp_path / "registry.yaml"
    shutil.copy(ROOT / "registry" / "registry.yaml", registry)
    rng = np.random.default_rng(0)
    poses = np.concatenate([rng.uniform(50, 150, (300, 4, 2)), np.full((300, 4, 1), 0.95)], 2)
    poses[::37, 0, 2] = 0.1  # unsure now and then
    outputs = write_predictions(tmp_path / f"videoDLC{SCORER[3:]}.h5", SCORER, PARTS, poses)
    add_ingest_only_model(registry, "elsewhere", outputs_file=outputs)
    store = Warehouse(tmp_path / "wh")
    video = tmp_path / "openfield.mp4"
    video.write_bytes(b"\0")
    rid = "m1__s1__openfield"
    row = recordings_row(rid, video, 300, "elsewhere")
    row.loc[0, "pixels_per_cm"] = np.nan
    store.write_partition("recordings", rid, row)
    store.write_partition("frame_quality", rid, fq.frame_quality(
        rid, "elsewhere", poses, np.arange(300) / 30, (200, 150), fq.FrameQualityParams(),
        body_parts=PARTS))
    return registry, store.root


def test_review_dry_run_of_an_ingest_only_model_needs_no_out(tmp_path, capsys, monkeypatch):
    from dlc_assets.cli.main import main

    registry, warehouse = _archive(tmp_path)
    monkeypatch.setenv("DLC_PLATFORM_WAREHOUSE", str(warehouse))
    main(["--registry", str(registry), "models", "review", "elsewhere", "--n", "4",
          "--dry-run"])
    captured = capsys.readouterr()
    assert "picked 4 frame(s)" in captured.err
    assert "m1__s1__openfield" in captured.out + captured.err


def test_query_prints_null_as_null(tmp_path, capsys):
    from dlc_assets.cli.main import main

    _, warehouse = _archive(tmp_path)
    main(["query", "SELECT recording_id, pixels_per_cm, status_reason, codec FROM recordings",
          "--warehouse", str(warehouse)])
    out = capsys.readouterr().out
    assert out.count("NULL") == 3
    assert "NaN" not in out and "None" not in out and "<NA>" not in out
    assert pd.isna(Warehouse(warehouse).query("SELECT pixels_per_cm FROM recordings").iloc[0, 0])
