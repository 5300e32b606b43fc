"""Model review on real recordings: the tiny PyTorch model through process_recording on a
real Dagster instance (frame_quality asset), `models review` into a copy of its DLC
project (DLC's outlier-frame layout), `compare` with a second version on CPU through the
platform's inference resource, `promote` refused until evaluated, then a backfill of
exactly the old version's recordings, and both versions' rows queryable afterwards."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml

from dlc_tracking.synthetic.openfield import make_session
from tests.pipeline_helpers import failure_messages, rid_of, run_recording
from tests.review_helpers import perturbed_copy, write_evaluation

OLD, NEW = "tiny_openfield", "tiny_b"


@pytest.fixture
def env(tmp_path, tiny_pytorch_config, instance):
    """Four processed recordings (one with heavy pixel noise: the model is unsure
    there), the tiny model registered from a copy of its project, and a second version
    (perturbed weights) registered but not yet used."""
    from dlc_tracking.registry.editing import add_model
    from dlc_tracking.training.projects import copy_project
    from resources import DataRoot, DLCInference, WarehouseResource

    registry = tmp_path / "registry.yaml"
    shutil.copy(Path(__file__).resolve().parent.parent / "registry" / "registry.yaml",
                registry)
    project_a = copy_project(tiny_pytorch_config, tmp_path / "project_a")
    add_model(registry, OLD, project_a, pair_with=["two_ears_loose", "two_ears"])
    raw = yaml.safe_load(registry.read_text())
    raw["defaults"] = {"openfield": {"model": OLD, "method": "two_ears_loose"}}
    registry.write_text(yaml.safe_dump(raw, sort_keys=False))
    project_b = perturbed_copy(tiny_pytorch_config, tmp_path / "project_b")
    add_model(registry, NEW, project_b, shuffle=2, pair_with=["two_ears_loose"])
    data = tmp_path / "data"
    resources = {
        "data_root": DataRoot(path=str(data), registry_path=str(registry)),
        "warehouse": WarehouseResource(root=str(tmp_path / "warehouse")),
        "dlc_inference": DLCInference(device="cpu", batch_size=8,
                                      work_dir=str(tmp_path / "work")),
    }
    rids = []
    for i, noise in enumerate([0.0, 0.0, 30.0, 0.0]):
        folder = make_session(data, f"mouse{i}", "2026-01-05_openfield", n_frames=90,
                              seed=10 + i, noise=noise)
        rid = rid_of(folder)
        result = run_recording(instance, resources, rid)
        assert result.success, failure_messages(result)
        rids.append(rid)
    return {"registry": registry, "resources": resources, "rids": rids,
            "noisy": rids[2], "store": resources["warehouse"].get(),
            "inference": resources["dlc_inference"], "project_a": project_a,
            "tiny_config": tiny_pytorch_config, "project_b": project_b}


def test_review_compare_promote(env, instance, tmp_path, monkeypatch, capsys):
    from dagster import AssetKey

    from dlc_assets.cli.main import main
    from dlc_tracking.model_review.comparison import compare_models
    from dlc_tracking.model_review.promotion import plan_promotion
    from dlc_tracking.registry.registry_file import load_registry

    store, rids, noisy = env["store"], env["rids"], env["noisy"]
    # frame_quality ran in process_recording for every recording, and is visible in Dagster
    fq = store.query("SELECT recording_id, count(*) AS n FROM frame_quality GROUP BY 1")
    flagged = dict(zip(fq["recording_id"], fq["n"], strict=True))
    assert flagged[noisy] == max(flagged.values()) and flagged[noisy] >= 30
    event = instance.get_latest_materialization_event(AssetKey("frame_quality"))
    assert event is not None and "flagged_frames" in event.asset_materialization.metadata

    # review: never into the platform's cached tiny model (demo and tests use it)
    from dlc_tracking.errors import DLCPlatformError
    from dlc_tracking.model_review.extraction import extract_selected_frames
    from dlc_tracking.model_review.selection import select_frames

    with pytest.raises(DLCPlatformError, match="cached tiny model"):
        extract_selected_frames(store, load_registry(env["registry"]).model(OLD),
                                select_frames(store, OLD, 2).frames, env["tiny_config"])
    # review: most picked frames in the noisy recording, written the DLC way
    main(["--registry", str(env["registry"]), "models", "review", OLD, "--n", "8",
          "--max-share", "0.75",
          "--warehouse", str(store.root)])
    project = env["project_a"].parent
    labeled = project / "labeled-data" / noisy
    images = sorted(labeled.glob("img*.png"))
    assert len(images) >= 5 and all(len(p.stem) == len("img") + 2 for p in images)  # 90 fr.
    machine = pd.read_hdf(labeled / "machinelabels-iter0.h5", "df_with_missing")
    assert list(machine.columns.names) == ["scorer", "bodyparts", "coords"]
    assert set(machine.columns.get_level_values("coords")) == {"x", "y", "likelihood"}
    assert machine.columns.get_level_values("scorer")[0] == load_registry(
        env["registry"]).model(OLD).scorer
    assert sorted(i[2] for i in machine.index) == [p.name for p in images]
    assert all(i[:2] == ("labeled-data", noisy) for i in machine.index)
    cfg = yaml.safe_load((project / "config.yaml").read_text())
    link = project / "videos" / f"{noisy}.mp4"
    assert str(link) in cfg["video_sets"] and link.resolve().is_file()
    frame = int(images[0].stem[3:])                     # the PNG is the video's frame
    cap = cv2.VideoCapture(str(link))
    cap.set(cv2.CAP_PROP_POS_FRAMES, frame)
    ok, bgr = cap.read()
    cap.release()
    assert ok and np.array_equal(cv2.imread(str(images[0])), bgr)
    picked = sum(1 for d in (project / "labeled-data").iterdir() if d.name in rids
                 for _ in d.glob("img*.png"))
    assert len(images) > picked / 2                      # most frames from the noisy one

    # the same from the UI: the review_model_job, into another project (its `out`)
    from dlc_assets.definitions import build_definitions

    other = env["project_b"]
    job = build_definitions(env["resources"]).resolve_job_def("review_model_job")
    run = job.execute_in_process(instance=instance, run_config={"ops": {"review_model": {
        "config": {"model": OLD, "n": 3, "out": str(other)}}}})
    assert run.success
    assert len(list((other.parent / "labeled-data").glob("*__*/img*.png"))) == 3

    # compare on two recordings (CLI), with the platform's inference resource on CPU
    monkeypatch.setenv("DLC_PLATFORM_WORK_DIR", str(tmp_path / "work_cli"))
    cli = ["--registry", str(env["registry"])]
    main([*cli, "models", "compare", OLD, NEW, "--recordings", rids[0], noisy,
          "--device", "cpu", "--warehouse", str(store.root)])
    shown = capsys.readouterr().err          # the bar says how fast the model ran
    assert f"{NEW}: " in shown and "frames/s" in shown, shown
    agreement = store.read_partition("model_agreement", f"{OLD}__vs__{NEW}")
    overall = agreement.set_index(["recording_id", "body_part"])
    assert sorted(agreement["recording_id"].unique()) == sorted([rids[0], noisy])
    assert overall.loc[(noisy, "all"), "median_distance_px"] > 0
    assert set(agreement["body_part"]) == {"nose", "left_ear", "right_ear", "tail_base",
                                           "all"}
    event = instance.get_latest_materialization_event(AssetKey("model_agreement"))
    assert event.asset_materialization.partition in {rids[0], noisy}
    assert "png" in str(event.asset_materialization.metadata["comparison"].value)
    refreshed = store.read_partition("frame_quality", noisy)
    assert set(refreshed["compared_model"].dropna()) == {NEW}
    assert store.query("SELECT count(*) AS n FROM model_predictions WHERE model_name = ?",
                       [NEW])["n"].iloc[0] == 2 * 90 * 4
    # the plain function reuses NEW's kept predictions (no second inference)
    registry = load_registry(env["registry"])
    again = compare_models(store, registry, OLD, NEW, lambda *a: pytest.fail("inferred"),
                           recordings=[noisy])
    assert again.inferred == [] and len(again.agreement) == 5

    # promote: refused until evaluated (nothing changed), then exactly OLD's recordings
    before = env["registry"].read_bytes()
    with pytest.raises(SystemExit):
        main([*cli, "models", "promote", NEW, "--warehouse", str(store.root)])
    assert "never evaluated" in capsys.readouterr().err
    assert env["registry"].read_bytes() == before
    assert store.partitions("model_predictions") == sorted(
        f"{r}__{NEW}" for r in (rids[0], noisy))
    write_evaluation(store, NEW)
    plan = plan_promotion(store, registry, NEW)          # OLD from the comparison
    assert plan.old == OLD and sorted(plan.recordings) == sorted(rids)
    main([*cli, "models", "promote", NEW, "--warehouse", str(store.root)])
    assert load_registry(env["registry"]).promotions == {OLD: NEW}
    backfills = instance.get_backfills()
    assert len(backfills) == 1
    target = backfills[0].asset_backfill_data.target_subset
    assert AssetKey("dlc_predictions") in target.asset_keys
    for key in target.asset_keys:
        assert set(target.get_partitions_subset(key).get_partition_keys()) == set(rids)
    assert backfills[0].tags["dlc_platform/promotion"] == f"{OLD}->{NEW}"

    # the re-run (as the backfill's runs do) uses NEW; OLD's rows stay queryable. A clean
    # recording: the perturbed NEW may track no frame of the noisy one (the tiny model is
    # trained anew on every machine, and some builds lose that video under NEW's noise).
    rerun = rids[0]
    result = run_recording(instance, env["resources"], rerun)
    assert result.success, failure_messages(result)
    assert set(store.read_partition("predictions", rerun)["model_name"]) == {NEW}
    row = store.query("SELECT model_name, promoted_from FROM recordings WHERE "
                      "recording_id = ?", [rerun]).iloc[0]
    assert (row["model_name"], row["promoted_from"]) == (NEW, OLD)
    summary = store.query("SELECT model_name FROM recording_summary WHERE recording_id = ?",
                          [rerun])
    assert summary["model_name"].tolist() == [NEW]
    both = store.query("SELECT DISTINCT model_name FROM (SELECT model_name FROM predictions "
                       "WHERE recording_id = ? UNION ALL SELECT model_name FROM "
                       "model_predictions WHERE recording_id = ?)", [rerun, rerun])
    assert set(both["model_name"]) == {OLD, NEW}
    from dlc_tracking.model_review.version_predictions import summary_versions

    versions = summary_versions(store, rerun).set_index("model_name")["current"]
    assert versions.to_dict() == {NEW: True, OLD: False}   # OLD's summary kept too
    assert set(store.read_partition("frame_quality", rerun)["model_name"]) <= {NEW}
