"""The dlc-platform command: predict for experimenters, query and status for analysts."""

from __future__ import annotations

import dagster as dg
import pytest

from dlc_assets.cli.main import main
from dlc_assets.status import recording_status
from dlc_tracking.io.dlc_files import read_metadata
from dlc_tracking.synthetic.openfield import make_session
from tests.pipeline_helpers import rid_of, run_recording, session_with_manual_outputs


@pytest.mark.slow
def test_predict_writes_outputs_the_platform_ingests(instance, resources, platform_dirs,
                                                     registry_path):
    folder = make_session(platform_dirs["data_root"], "m", "s", n_frames=40, seed=5,
                          start_time="2026-03-01T09:30:00+02:00")
    main(["--registry", str(registry_path), "predict", str(folder / "openfield.mp4"),
          "--model", "tiny_openfield", "--device", "cpu",
          "--work-dir", str(platform_dirs["work"])])
    out = folder / "dlc_openfield"
    h5 = sorted(out.glob("*.h5"))
    meta = sorted(out.glob("*_meta.pickle"))
    assert len(h5) == 1 and len(meta) == 1
    assert read_metadata(meta[0])["start_timestamp"].isoformat() == "2026-03-01T09:30:00+02:00"
    result = run_recording(instance, resources, rid_of(folder))
    assert result.success
    event = instance.get_latest_materialization_event(dg.AssetKey("dlc_predictions"))
    assert event.asset_materialization.metadata["source"].value == "manual"


def test_predict_refuses_bad_start_time(platform_dirs, registry_path, capsys):
    folder = make_session(platform_dirs["data_root"], "m", "s", n_frames=10)
    with pytest.raises(SystemExit) as exit_:
        main(["--registry", str(registry_path), "predict", str(folder / "openfield.mp4"),
              "--model", "tiny_openfield", "--start-time", "yesterday",
              "--work-dir", str(platform_dirs["work"])])
    assert exit_.value.code == 2 and "--start-time" in capsys.readouterr().err


def test_query_and_status(instance, resources, platform_dirs, registry, capsys):
    model = registry.model("tiny_openfield")
    parts = ["nose", "left_ear", "right_ear", "tail_base"]
    good = session_with_manual_outputs(platform_dirs["data_root"], "m", "good", model.scorer,
                                       parts)
    bad = session_with_manual_outputs(platform_dirs["data_root"], "m", "bad", model.scorer,
                                      parts, poses_transform=lambda p: p[:-5])
    assert run_recording(instance, resources, rid_of(good)).success
    assert not run_recording(instance, resources, rid_of(bad)).success
    main(["query", "--warehouse", str(platform_dirs["warehouse"]), "--csv",
          "SELECT recording_id, count(*) AS n FROM processed_tracking GROUP BY 1"])
    out = capsys.readouterr().out
    assert out.splitlines() == ["recording_id,n", f"{rid_of(good)},120"]
    rows = {r["recording_id"]: r for r in recording_status(str(platform_dirs["warehouse"]),
                                                            instance=instance)}
    assert rows[rid_of(good)]["status"] == "processed"
    assert rows[rid_of(bad)]["status"] == "failed"
    assert "115 frames of predictions" in rows[rid_of(bad)]["detail"]


def test_models_list_show_validate(registry_path, capsys):
    main(["--registry", str(registry_path), "models", "list"])
    assert "tiny_openfield" in capsys.readouterr().out
    main(["--registry", str(registry_path), "models", "show", "tiny_openfield"])
    assert "scorer: DLC_" in capsys.readouterr().out
    main(["--registry", str(registry_path), "registry", "validate"])
    assert "valid" in capsys.readouterr().out


def test_reprocess_refuses_unknown_ids_and_the_sensor_skips_what_it_ran(
        platform_dirs, registry, registry_path, monkeypatch, capsys, tmp_path):
    import os
    import time

    from resources import DataRoot
    from sensors import new_recordings_sensor

    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    for name, value in (("DAGSTER_HOME", home),
                        ("DLC_PLATFORM_DATA_ROOT", platform_dirs["data_root"]),
                        ("DLC_PLATFORM_REGISTRY", registry_path),
                        ("DLC_PLATFORM_WAREHOUSE", platform_dirs["warehouse"]),
                        ("DLC_PLATFORM_WORK_DIR", platform_dirs["work"]),
                        ("DLC_PLATFORM_SETTLE_SECONDS", "30")):
        monkeypatch.setenv(name, str(value))
    model = registry.model("tiny_openfield")
    folder = session_with_manual_outputs(platform_dirs["data_root"], "Maus Ö1", "s",
                                         model.scorer, ["nose", "left_ear", "right_ear",
                                                        "tail_base"])
    old = time.time() - 3600  # long settled
    for path in [folder, *folder.rglob("*")]:
        os.utime(path, (old, old))
    rid = rid_of(folder)
    assert rid.startswith("Maus-O1__")
    with pytest.raises(SystemExit) as exit_:
        main(["reprocess", rid[:-3]])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "is not under" in err and f"Did you mean {rid}" in err
    instance = dg.DagsterInstance.get()
    assert not instance.get_runs() and not instance.get_dynamic_partitions("recordings")
    main(["reprocess", rid])
    assert "success" in capsys.readouterr().out
    context = dg.build_sensor_context(instance=instance, resources={"data_root": DataRoot(
        path=str(platform_dirs["data_root"]), registry_path=str(registry_path))})
    result = new_recordings_sensor(context)
    assert not result.run_requests  # reprocess already took this state of the files
    main(["recordings", "list"])
    out = capsys.readouterr().out
    assert rid in out and "processed" in out and "manual" in out
