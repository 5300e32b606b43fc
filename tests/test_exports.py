"""Export assets through a real Dagster instance (occupancy in the default job; NWB,
labeled video and the overview on demand), their inline pictures, and the CLI export."""

from __future__ import annotations

import numpy as np
import pytest

from dlc_tracking.io.dlc_files import read_predictions
from dlc_tracking.warehouse import Warehouse
from tests.export_helpers import PARTS, make_dirs, processed_recording
from tests.test_qc_plots import assert_informative_png, png_from_md


@pytest.fixture(scope="module")
def env(tmp_path_factory, registry_path, registry):
    import dagster as dg

    dirs = make_dirs(tmp_path_factory.mktemp("exports"), registry_path)
    with dg.instance_for_test(temp_dir=str(dirs["home"])) as instance:
        yield {"instance": instance,
               **processed_recording(instance, dirs, registry.model("tiny_openfield").scorer,
                                     n_frames=120)}


def _materialize(env, name: str, partition: str | None = None, raise_on_error: bool = True):
    import dagster as dg

    from dlc_assets.definitions import build_definitions

    defs = build_definitions(env["resources"])
    assets = list(defs.assets)
    return dg.materialize(assets, selection=[name], partition_key=partition,
                          instance=env["instance"], resources=env["resources"],
                          raise_on_error=raise_on_error)


def _metadata(env, asset: str, rid: str | None = None) -> dict:
    import dagster as dg

    event = env["instance"].get_latest_materialization_event(dg.AssetKey(asset))
    assert event is not None
    mat = event.asset_materialization
    assert rid is None or mat.partition == rid
    return mat.metadata


def test_default_job_writes_occupancy_and_inline_pictures(env):
    from dlc_assets.definitions import build_definitions

    rid = env["rid"]
    store = Warehouse(env["warehouse"])
    occ = store.query("SELECT * FROM occupancy WHERE recording_id = ?", [rid])
    proc = store.query("SELECT * FROM processed_tracking WHERE recording_id = ?", [rid])
    assert occ.bin_cm.unique().tolist() == [2.5]
    assert len(occ) == 20 * 20  # 50 cm arena, 2.5 cm bins, every bin a row
    tracked = proc.x_cm.notna() & proc.y_cm.notna()
    assert occ.n_frames.sum() == tracked.sum()
    assert occ.occupancy_s.sum() == pytest.approx(tracked.sum() / 30.0, rel=1e-9)
    meta = _metadata(env, "processed_tracking", rid)
    for key in ("trajectory", "occupancy", "speed_histogram", "head_direction_histogram"):
        assert_informative_png(png_from_md(meta[key].value))
    assert_informative_png(png_from_md(_metadata(env, "dlc_predictions", rid)
                                       ["likelihood_over_time"].value))
    assert_informative_png(png_from_md(_metadata(env, "occupancy", rid)["occupancy"].value))
    job = build_definitions(env["resources"]).resolve_job_def("process_recording")
    names = {key.to_user_string() for key in job.asset_layer.selected_asset_keys}
    assert "labeled_videos" not in names and "recording_overview" not in names
    assert {"occupancy", "nwb_files"} <= names
    assert (env["warehouse"] / "nwb" / f"{rid}.nwb").is_file()  # written by the default job


def test_nwb_files_asset(env):
    from dlc_tracking.io.nwb import read_nwb_predictions

    rid = env["rid"]
    _materialize(env, "nwb_files", rid)
    path = env["warehouse"] / "nwb" / f"{rid}.nwb"
    loaded, timestamps = read_nwb_predictions(path)
    assert loaded.body_parts == PARTS and len(timestamps) == 120
    meta = _metadata(env, "nwb_files", rid)
    assert meta["frames"].value == 120 and meta["path"].value == str(path)


def test_labeled_video_asset(env):
    from dlc_tracking.io.video import probe_video

    rid = env["rid"]
    _materialize(env, "labeled_videos", rid)
    path = env["warehouse"] / "labeled_videos" / f"{rid}.mp4"
    info = probe_video(path)
    assert info.n_frames == 120 and (info.width_px, info.height_px) == (200, 150)
    meta = _metadata(env, "labeled_videos", rid)
    assert meta["frames_per_s"].value > 0
    assert_informative_png(png_from_md(meta["thumbnails"].value), min_ink=0.5)


def test_recording_overview_asset(env):
    _materialize(env, "recording_overview")
    meta = _metadata(env, "recording_overview")
    assert meta["recordings"].value == 1
    assert_informative_png(png_from_md(meta["overview"].value))


@pytest.mark.parametrize("fmt,name", [("nwb", "r.nwb"), ("movement", "r.nc"),
                                      ("dlc-h5", "r.h5"), ("csv", "r.csv")])
def test_cli_export(env, tmp_path, fmt, name, capsys):
    import pandas as pd
    import xarray as xr

    from dlc_assets.cli.main import main

    rid, out = env["rid"], tmp_path / name
    main(["--registry", str(env["registry"]), "export", rid, "--format", fmt, "--out",
          str(out), "--warehouse", str(env["warehouse"])])
    assert f"wrote {out}" in capsys.readouterr().out
    store = Warehouse(env["warehouse"])
    pred = store.query("SELECT * FROM predictions WHERE recording_id = ? ORDER BY frame",
                       [rid])
    nose = pred[pred.body_part == "nose"]
    if fmt == "movement":
        ds = xr.open_dataset(out, engine="h5netcdf")
        np.testing.assert_array_equal(ds.position.sel(keypoints="nose", space="x").values[:, 0],
                                      nose.x_px.to_numpy(float))
        assert ds.attrs["recording_id"] == rid
    elif fmt == "dlc-h5":
        loaded = read_predictions(out)
        assert loaded.body_parts == PARTS  # the tiny model's DLC names are canonical
        np.testing.assert_array_equal(loaded.poses[:, 0, 0], nose.x_px.to_numpy(float))
    elif fmt == "csv":
        csv = pd.read_csv(out, float_precision="round_trip")  # exact decimal text
        proc = store.query("SELECT * FROM processed_tracking WHERE recording_id = ? ORDER BY "
                           "frame", [rid])
        np.testing.assert_array_equal(csv.x_cm.to_numpy(), proc.x_cm.to_numpy(float))
    else:
        from nwbinspector import Importance, inspect_nwbfile

        serious = [m for m in inspect_nwbfile(nwbfile_path=str(out))
                   if m.importance in (Importance.CRITICAL, Importance.BEST_PRACTICE_VIOLATION)]
        # no subject.yaml here: only the subject facts DANDI needs are reported missing
        assert {m.check_function_name for m in serious} <= {
            "check_subject_age", "check_subject_species_exists"}


def test_cli_export_unknown_recording(env, capsys):
    from dlc_assets.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["export", "no__such__rec", "--format", "nwb", "--out", "x.nwb", "--warehouse",
              str(env["warehouse"]), "--quiet"])
    assert exc.value.code == 2
    assert "not in the warehouse" in capsys.readouterr().err


def test_labeled_video_without_video_fails_clearly(env, tmp_path_factory, registry):
    import dagster as dg

    from tests.export_helpers import resources_for, run_job
    from tests.pipeline_helpers import rid_of, session_with_manual_outputs

    dirs = make_dirs(tmp_path_factory.mktemp("novideo"), env["registry"])
    folder = session_with_manual_outputs(dirs["data_root"], "m9", "s9",
                                         registry.model("tiny_openfield").scorer, PARTS,
                                         n_frames=40)
    rid = rid_of(folder)
    with dg.instance_for_test(temp_dir=str(dirs["home"])) as instance:
        resources = resources_for(dirs)
        run_job(instance, resources, "process_recording", rid)
        (folder / "openfield.mp4").unlink()  # ingest-only: the video lives elsewhere
        local = {"instance": instance, "resources": resources}
        result = _materialize(local, "labeled_videos", rid, raise_on_error=False)
    assert not result.success
    from tests.pipeline_helpers import failure_messages

    text = failure_messages(result)
    assert rid in text and "video is not there" in text and "copy the video back" in text
    assert not (dirs["warehouse"] / "labeled_videos" / f"{rid}.mp4").exists()


@pytest.mark.slow
def test_ui_shows_pictures_inline(tmp_path, registry_path, registry, artifacts_dir,
                                  monkeypatch):
    """The webserver's partition page of processed_tracking shows the QC pictures inline
    (fetched from the QC file server); a headless Chromium screenshot is kept."""
    import os
    import shutil
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    import dagster as dg

    from tests.export_helpers import run_job
    from tests.services import free_port

    root = Path(__file__).resolve().parent.parent
    dirs = make_dirs(tmp_path, registry_path)
    qc_dir, qc_port, port = tmp_path / "qc", free_port(), free_port()
    qc_dir.mkdir()
    monkeypatch.setenv("DLC_PLATFORM_QC_URL", f"http://127.0.0.1:{qc_port}")
    monkeypatch.setenv("DLC_PLATFORM_QC_DIR", str(qc_dir))
    with dg.instance_for_test(temp_dir=str(dirs["home"])) as instance:
        rec = processed_recording(instance, dirs, registry.model("tiny_openfield").scorer,
                                  n_frames=90)
        env_local = {"instance": instance, "resources": rec["resources"]}
        _materialize(env_local, "labeled_videos", rec["rid"])
        run_job(instance, rec["resources"], "process_recording", rec["rid"])
    assert len(list(qc_dir.glob("*.png"))) >= 6
    env = dict(os.environ, DAGSTER_HOME=str(dirs["home"]),
               DLC_PLATFORM_DATA_ROOT=str(dirs["data_root"]),
               DLC_PLATFORM_REGISTRY=str(registry_path),
               DLC_PLATFORM_WAREHOUSE=str(dirs["warehouse"]),
               DLC_PLATFORM_WORK_DIR=str(dirs["work"]))
    qc_log, web_log = tmp_path / "qc.log", tmp_path / "web.log"
    procs = []
    try:
        with open(qc_log, "w") as out:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "http.server", str(qc_port), "--bind", "127.0.0.1",
                 "--directory", str(qc_dir)], stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True))
        with open(web_log, "w") as out:
            procs.append(subprocess.Popen(
                [str(Path(sys.executable).parent / "dagster-webserver"), "-w", "workspace.yaml",
                 "-h", "127.0.0.1", "-p", str(port)], cwd=root, env=env, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, web_log.read_text()[-3000:]
                time.sleep(2)
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        assert chromium, "chromium is not installed: run scripts/services.sh"
        for asset, name in (("processed_tracking", "processed-tracking-pictures.png"),
                            ("labeled_videos", "labeled-video-thumbnails.png")):
            shot = artifacts_dir / name
            shot.unlink(missing_ok=True)
            subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                            "--disable-background-networking", "--disable-component-update",
                            "--disable-sync", "--no-first-run", "--disable-quic",
                            f"--user-data-dir={tmp_path / 'chromium'}",
                            "--window-size=1600,2600", "--virtual-time-budget=25000",
                            f"--screenshot={shot}",
                            f"http://127.0.0.1:{port}/assets/{asset}?view=partitions"
                            f"&partition={rec['rid']}"],
                           check=True, capture_output=True, timeout=180)
            assert shot.is_file() and shot.stat().st_size > 10_000
        served = qc_log.read_text()
        # the browser fetched the pictures: the page shows them inline, not behind a click
        assert served.count("GET /") >= 4 and " 200 " in served, served
    finally:
        for proc in procs:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
