"""Two models, one video (issue 21 B): a lab has the outputs of its own model and of a
model run elsewhere for the same videos, side by side in each session's dlc_<video>/
folder, written with DeepLabCut's own writer. The recording is processed with the
assigned model (current), the other model's outputs are kept as alternatives
(model_predictions), frame_quality flags where the two disagree, and `models compare`
compares the stored predictions of both, the ingest-only model included, without
running inference."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from dlc_tracking.synthetic.dlc_outputs import write_pytorch_outputs
from dlc_tracking.synthetic.openfield import GROUND_TRUTH_NAME, make_session, read_ground_truth
from tests.pipeline_helpers import failure_messages, rid_of, run_recording

pytestmark = pytest.mark.slow  # three runs of process_recording (~25 s each here)

OTHER_SCORER = "DLC_Resnet50_otherlabOct1shuffle1_snapshot_100"
N = 60
OFF_FRAMES = slice(20, 35)  # the other lab's model puts the tail base 40 px off here


def _session(data, subject: str, tiny, *, other: bool):
    folder = make_session(data, subject, "2026-01-05_openfield", n_frames=N, seed=3)
    gt = read_ground_truth(folder / GROUND_TRUTH_NAME)
    order = [gt.body_parts.index(p) for p in tiny.canonical_body_parts]
    poses = gt.poses()[:, order]
    poses[..., 2] = np.where(np.isnan(poses[..., 0]), 0.0, 0.95)
    out = folder / "dlc_openfield"
    write_pytorch_outputs(out, "openfield", tiny.scorer, tiny.dlc_body_parts, poses,
                          frame_size=(200, 150))
    if other:
        shifted = poses.copy()
        tail = tiny.canonical_body_parts.index("tail_base")
        shifted[OFF_FRAMES, tail, 0] += 40.0
        write_pytorch_outputs(out, "openfield", OTHER_SCORER, tiny.dlc_body_parts, shifted,
                              frame_size=(200, 150))
    return folder


@pytest.fixture
def lab(tmp_path, registry_path, registry, instance):
    from resources import DataRoot, DLCInference, WarehouseResource

    reg = tmp_path / "registry.yaml"
    shutil.copy(registry_path, reg)
    tiny = registry.model("tiny_openfield")
    data = tmp_path / "data"
    both = _session(data, "mouse1", tiny, other=True)
    only_ours = _session(data, "mouse2", tiny, other=False)
    resources = {
        "data_root": DataRoot(path=str(data), registry_path=str(reg)),
        "warehouse": WarehouseResource(root=str(tmp_path / "warehouse")),
        "dlc_inference": DLCInference(device="cpu", batch_size=8,
                                      work_dir=str(tmp_path / "work")),
    }
    return {"registry": reg, "both": rid_of(both), "only_ours": rid_of(only_ours),
            "other_file": next((both / "dlc_openfield").glob(f"*{OTHER_SCORER}.h5")),
            "resources": resources, "store": resources["warehouse"].get()}


def test_two_models_outputs_in_one_folder_are_current_and_alternative(lab, instance,
                                                                       capsys):
    from dlc_assets.cli.main import main

    store, rid = lab["store"], lab["both"]
    # Before the other model is registered: the recording is processed, the other
    # model's outputs are named as not kept (how to keep them), nothing fails.
    result = run_recording(instance, lab["resources"], rid)
    assert result.success, failure_messages(result)
    assert set(store.read_partition("predictions", rid)["model_name"]) == {"tiny_openfield"}
    assert store.partitions("model_predictions") == []
    event = instance.get_latest_materialization_event(
        __import__("dagster").AssetKey("dlc_predictions"))
    alt = event.asset_materialization.metadata["alternative_models"].value
    assert "models add" in alt[OTHER_SCORER]

    # The lab registers the other model from its outputs (ingest-only), as users do.
    main(["--registry", str(lab["registry"]), "models", "add", "--name", "other_lab",
          "--from-outputs", str(lab["other_file"])])
    for r in (rid, lab["only_ours"]):
        result = run_recording(instance, lab["resources"], r)
        assert result.success, failure_messages(result)
    assert set(store.read_partition("predictions", rid)["model_name"]) == {"tiny_openfield"}
    assert store.partitions("model_predictions") == [f"{rid}__other_lab"]
    kept = store.read_partition("model_predictions", f"{rid}__other_lab")
    assert set(kept["source"]) == {"manual"} and len(kept) == N * 4
    # frame_quality of the current model flags exactly where the other lab's differs
    fq = store.read_partition("frame_quality", rid)
    assert set(fq["compared_model"].dropna()) == {"other_lab"}
    disagree = set(fq.loc[fq["disagreement_parts"] > 0, "frame"])
    assert disagree == set(range(N)[OFF_FRAMES])

    # compare: stored predictions of both, no inference (the other model cannot run);
    # the recording without the other model's outputs is left out, with the count said.
    capsys.readouterr()
    main(["--registry", str(lab["registry"]), "models", "compare", "tiny_openfield",
          "other_lab", "--warehouse", str(store.root), "--device", "cpu"])
    out = capsys.readouterr().out
    assert "1 recording(s), 1 with both" in out and "1 left out" in out
    assert "(0 inferred now)" in out
    agreement = store.read_partition("model_agreement", "tiny_openfield__vs__other_lab")
    rows = agreement.set_index(["recording_id", "body_part"])
    assert list(agreement["recording_id"].unique()) == [rid]
    assert rows.loc[(rid, "nose"), "median_distance_px"] == 0.0
    tail = rows.loc[(rid, "tail_base")]
    assert tail["fraction_above_threshold"] == pytest.approx(15 / N)
    assert tail["p95_distance_px"] == pytest.approx(40.0)

    # and the other way round (the ingest-only model as OLD)
    main(["--registry", str(lab["registry"]), "models", "compare", "other_lab",
          "tiny_openfield", "--recordings", rid, "--warehouse", str(store.root)])
    assert store.partitions("model_agreement") == sorted(
        ["tiny_openfield__vs__other_lab", "other_lab__vs__tiny_openfield"])
    # a named recording the ingest-only model never saw: skipped with the reason
    with pytest.raises(SystemExit):
        main(["--registry", str(lab["registry"]), "models", "compare", "tiny_openfield",
              "other_lab", "--recordings", lab["only_ours"], "--warehouse", str(store.root)])
    captured = capsys.readouterr()
    assert "ingest-only" in captured.out + captured.err


def test_a_folder_with_only_another_models_outputs_is_still_refused(lab, instance, registry):
    """The assignment decides: outputs of another model alone are not silently taken."""
    from dlc_tracking.errors import DLCFileError
    from dlc_tracking.tracking.predictions import load_manual_outputs

    folder = lab["other_file"].parent
    tiny = registry.model("tiny_openfield")
    for path in folder.glob(f"*{tiny.scorer}*"):
        path.unlink()
    with pytest.raises(DLCFileError, match="another model"):
        load_manual_outputs(folder, tiny.scorer, "r")
    loaded = load_manual_outputs(folder, OTHER_SCORER, "r")
    assert loaded.alternatives == {} and loaded.predictions.scorer == OTHER_SCORER
