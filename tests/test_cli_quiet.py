"""A quiet, helpful command line (issue 21 F, E2): what a user sees on the terminal."""

from __future__ import annotations

import shutil
import sys
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


def test_sensor_logs_an_empty_video_past_the_settle_time_as_empty_not_unsettled(
        instance, tmp_path, monkeypatch, capsys):
    import os
    import time

    from tests.test_sensor import add_session, keys, tick

    root = tmp_path / "data"
    add_session(root, "m1", "s1")
    video = add_session(root, "m2", "s1") / "openfield.mp4"
    video.write_bytes(b"")  # a copy that never completed, an hour ago
    old = time.time() - 3600
    os.utime(video, (old, old))
    fresh = add_session(root, "m3", "s1", age_s=0) / "openfield.mp4"
    fresh.write_bytes(b"")  # a copy just started: still settling

    result = tick(instance, root, settle="30", monkeypatch=monkeypatch)
    again = tick(instance, root, cursor=result.cursor, settle="30", monkeypatch=monkeypatch)
    logged = capsys.readouterr().err.splitlines()  # the sensor's log, as the daemon shows it
    empty = [m for m in logged if "empty video" in m]
    assert empty and all("m2__s1__openfield" in m and "0 bytes" in m for m in empty)
    unsettled = [m for m in logged if "not settled yet" in m]
    assert unsettled and all("m2__s1__openfield" not in m for m in unsettled)
    assert any("m3__s1__openfield" in m for m in unsettled)
    assert "m2__s1__openfield" not in keys(result) + keys(again)


def test_reprocess_without_the_daemon_materializes_the_registry_tables(
        platform_dirs, registry, registry_path, monkeypatch, capsys, tmp_path):
    import dagster as dg

    from dlc_assets.cli.main import main
    from dlc_tracking.warehouse import Warehouse
    from tests.pipeline_helpers import rid_of, session_with_manual_outputs

    home = tmp_path / "home"  # a fresh instance: the daemon never ran
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    for name, value in (("DAGSTER_HOME", home),
                        ("DLC_PLATFORM_DATA_ROOT", platform_dirs["data_root"]),
                        ("DLC_PLATFORM_REGISTRY", registry_path),
                        ("DLC_PLATFORM_WAREHOUSE", platform_dirs["warehouse"]),
                        ("DLC_PLATFORM_WORK_DIR", platform_dirs["work"])):
        monkeypatch.setenv(name, str(value))
    folder = session_with_manual_outputs(platform_dirs["data_root"], "m1", "s1",
                                         registry.model("tiny_openfield").scorer,
                                         ["nose", "left_ear", "right_ear", "tail_base"])
    rid = rid_of(folder)

    main(["reprocess", rid])
    printed = capsys.readouterr()
    assert "success" in printed.out, printed.out + printed.err
    assert "registry tables: materializing" in printed.err
    assert "dlc_models" in printed.out and "model_method_pairings" in printed.out
    assert "DEBUG" not in printed.err
    store = Warehouse(platform_dirs["warehouse"])
    # the recording's lineage resolves: its model and method are rows of the registry tables
    joined = store.query(
        "SELECT a.model_name, a.method_name, p.method_hash FROM recordings a "
        "JOIN models m ON m.model_name = a.model_name "
        "JOIN methods pm ON pm.method_name = a.method_name "
        "JOIN pairings p ON p.model_name = a.model_name "
        "AND p.method_name = a.method_name")
    assert len(joined) == 1 and joined.iloc[0]["model_name"] == "tiny_openfield"
    instance = dg.DagsterInstance.get()
    n_runs = len(instance.get_runs())

    main(["reprocess", rid])  # tables current now: not made again
    printed = capsys.readouterr()
    assert "registry tables" not in printed.err and "success" in printed.out
    assert len(instance.get_runs()) == n_runs + 1


def test_model_jobs_print_one_line_per_step_not_dagsters_debug_log(
        platform_dirs, registry_path, monkeypatch, capsys, tmp_path):
    """`models evaluate` runs its job through the same path as `models train` and
    `models merge` (training.py's _run_job)."""
    from dlc_assets.cli.main import main

    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    for name, value in (("DAGSTER_HOME", home), ("DLC_PLATFORM_REGISTRY", registry_path),
                        ("DLC_PLATFORM_DATA_ROOT", platform_dirs["data_root"]),
                        ("DLC_PLATFORM_WAREHOUSE", platform_dirs["warehouse"]),
                        ("DLC_PLATFORM_WORK_DIR", platform_dirs["work"]),
                        ("DLC_PLATFORM_DEVICE", "cpu")):
        monkeypatch.setenv(name, str(value))
    main(["models", "evaluate", "tiny_openfield"])
    printed = capsys.readouterr()
    steps = [line for line in printed.out.splitlines() if line.startswith("  ")
             and (" ok " in line or " FAILED " in line)]
    assert steps and "success" in printed.out, printed.out + printed.err
    assert "DEBUG" not in printed.err and "STEP_START" not in printed.err


def test_no_nanobind_leak_report_at_exit_of_a_command(tmp_path):
    """With DuckDB and PyTorch loaded (as in `reprocess`), nanobind reports DuckDB's
    module as leaked at interpreter exit; the console command keeps that off the
    terminal, after the command's own output."""
    import os
    import subprocess

    code = ("import sys; sys.argv = ['dlc-platform', 'query', 'SELECT 42 AS answer']; "
            "import dlc_assets.definitions, dlc_tracking.inference.export; "
            "from dlc_assets.cli.main import main; main()")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home"),
           "DLC_PLATFORM_WAREHOUSE": str(tmp_path / "warehouse")}
    (tmp_path / "home").mkdir()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "42" in done.stdout
    assert "nanobind: leaked" not in done.stderr, done.stderr[-2000:]
