"""A recording's whole life (issue 21, E1/E2): a session folder deleted from disk shows as
"gone from disk" in `status` and `recordings list`, and `recordings remove ID` removes
its rows from every table, its NWB file, labeled video and partition after a
confirmation; a 0-byte video past the settle time is an "empty video" error, not "not
settled yet" for ever."""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest

from dlc_tracking.synthetic.openfield import make_session
from dlc_tracking.warehouse import Warehouse
from tests.review_helpers import predictions_long, recordings_row

GONE = "m2__2026-01-06_openfield__openfield"


@pytest.fixture
def platform(tmp_path, monkeypatch):
    import dagster as dg

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    data, warehouse = tmp_path / "data", tmp_path / "warehouse"
    for key, value in (("DAGSTER_HOME", home), ("DLC_PLATFORM_DATA_ROOT", data),
                       ("DLC_PLATFORM_WAREHOUSE", warehouse),
                       ("DLC_PLATFORM_SETTLE_SECONDS", "30")):
        monkeypatch.setenv(key, str(value))
    # an empty video, copied an hour ago and never completed
    empty = make_session(data, "m1", "2026-01-05_openfield", n_frames=10)
    (empty / "openfield.mp4").write_bytes(b"")
    old = time.time() - 3600
    os.utime(empty / "openfield.mp4", (old, old))
    # a processed recording whose session folder was then deleted
    gone = make_session(data, "m2", "2026-01-06_openfield", n_frames=10)
    store = Warehouse(warehouse)
    store.write_partition("recordings", GONE, recordings_row(GONE, gone / "openfield.mp4", 10,
                                                             "m"))
    poses = np.full((10, 4, 3), 0.9)
    store.write_partition("predictions", GONE, predictions_long(GONE, "m", poses))
    store.write_partition("model_predictions", f"{GONE}__m_old", predictions_long(
        GONE, "m_old", poses).assign(source="promote"))
    for sub, suffix in (("nwb", ".nwb"), ("labeled_videos", ".mp4")):
        (warehouse / sub).mkdir(parents=True)
        (warehouse / sub / f"{GONE}{suffix}").write_bytes(b"x")
    shutil.rmtree(gone)
    instance = dg.DagsterInstance.get()
    instance.add_dynamic_partitions("recordings", [GONE])
    yield {"store": store, "warehouse": warehouse, "instance": instance}
    instance.dispose()


def test_status_says_empty_video_and_gone_from_disk(platform, capsys):
    from dlc_assets.cli.main import main

    main(["status"])
    out = capsys.readouterr().out
    empty = next(line for line in out.splitlines() if line.startswith("m1__"))
    assert "error" in empty and "empty video" in empty and "0 bytes" in empty
    gone = next(line for line in out.splitlines() if line.startswith(GONE))
    assert "gone from disk" in gone and f"recordings remove {GONE}" in gone
    main(["recordings", "list"])
    listed = capsys.readouterr().out
    assert "empty video" in listed and "gone from disk" in listed


def test_remove_asks_then_removes_everything(platform, capsys, monkeypatch):
    from dlc_assets.cli.main import main

    store, warehouse = platform["store"], platform["warehouse"]
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    main(["recordings", "remove", GONE])
    out = capsys.readouterr().out
    assert "predictions" in out and "model_predictions" in out and "nothing removed" in out
    assert store.partition_path("predictions", GONE) is not None
    monkeypatch.setattr("builtins.input", lambda prompt: "y")
    main(["recordings", "remove", GONE])
    assert "removed 3 partition(s) of 3 table(s), 2 file(s) and the Dagster partition" in \
        capsys.readouterr().out
    for table in ("recordings", "predictions"):
        assert store.partition_path(table, GONE) is None
    assert store.partitions("model_predictions") == []
    assert not (warehouse / "nwb" / f"{GONE}.nwb").exists()
    assert not (warehouse / "labeled_videos" / f"{GONE}.mp4").exists()
    assert not platform["instance"].has_dynamic_partition("recordings", GONE)


def test_remove_refuses_a_recording_still_on_disk(platform):
    from dlc_assets.cli.main import main
    from dlc_tracking.errors import DLCPlatformError

    with pytest.raises((DLCPlatformError, SystemExit)):
        main(["recordings", "remove", "m1__2026-01-05_openfield__openfield", "--yes"])
