"""Multi-animal DeepLabCut files: tracked h5/csv, prefix-encoded files, pickles re-tracked
with DeepLabCut's own functions, and maDLC models in the registry."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.optimize import linear_sum_assignment

from dlc_tracking.errors import DLCFileError, RegistryError
from dlc_tracking.io.dlc_files import read_predictions
from dlc_tracking.io.madlc_files import (
    find_madlc_outputs,
    read_madlc,
    read_madlc_pickles,
    tracker_of,
    write_madlc,
)
from dlc_tracking.synthetic.multi_animal import (
    UNIQUE_BODY_PARTS,
    simulate_multi_animal,
    write_madlc_outputs,
    write_madlc_pickles,
)

SCORER = "DLC_Resnet50_socialJan1shuffle1_snapshot_200"
PREFIXES = {"mus1": "B", "mus2": "W", "mus3": "G"}


@pytest.fixture(scope="session")
def truth():
    return simulate_multi_animal(n_frames=150, n_animals=3, seed=1)


@pytest.fixture(scope="session")
def tracked(tmp_path_factory, truth):
    folder = tmp_path_factory.mktemp("madlc") / "dlc_social"
    return write_madlc_outputs(folder, "social", SCORER, truth, filtered=True)


@pytest.fixture(scope="session")
def prefixed(tmp_path_factory, truth):
    folder = tmp_path_factory.mktemp("prefixed")
    return write_madlc_outputs(folder, "social", SCORER, truth, prefix_encoded=PREFIXES)


def _matched_error(found: np.ndarray, expected: np.ndarray) -> float:
    """Largest point error after matching found tracks to true individuals."""
    n = min(len(found), len(expected))
    k = expected.shape[1]
    cost = np.array([[np.nanmean(np.linalg.norm(found[:n, i, :, :2] - expected[:n, j, :, :2],
                                                 axis=-1)) for j in range(k)] for i in range(k)])
    rows, cols = linear_sum_assignment(cost)
    return max(float(np.nanmax(np.linalg.norm(found[:n, i, :, :2] - expected[:n, j, :, :2],
                                              axis=-1))) for i, j in zip(rows, cols, strict=True))


@pytest.mark.parametrize("kind", ["h5", "csv", "filtered"])
def test_tracked_files_read_as_written(tracked, truth, kind):
    m = read_madlc(tracked[kind])
    assert m.scorer == SCORER
    assert m.individuals == truth.individuals
    assert m.body_parts == truth.body_parts
    assert m.unique_body_parts == UNIQUE_BODY_PARTS
    np.testing.assert_allclose(m.poses, truth.poses(), atol=1e-9)
    np.testing.assert_allclose(m.unique_poses[..., :2], truth.unique_keypoints(), atol=1e-9)
    assert m.tracker == "ellipse"
    assert m.filtered is (kind == "filtered")


def test_tracker_names():
    assert tracker_of(f"v{SCORER}_el.h5") == ("ellipse", False)
    assert tracker_of(f"v{SCORER}_bx_filtered.h5") == ("box", True)
    assert tracker_of(f"v{SCORER}_sk.csv") == ("skeleton", False)
    assert tracker_of(f"v{SCORER}_el_tr.h5") == ("transformer", False)
    assert tracker_of(f"v{SCORER}.h5") == (None, False)


def test_folder_prefers_filtered_h5(tracked):
    assert find_madlc_outputs(tracked["h5"].parent)["tracks"] == tracked["filtered"]


def test_long_table_has_individual_column(tracked, truth):
    m = read_madlc(tracked["h5"])
    long = m.to_long("rec", "model", truth.time_s, {"mus1": "M12"})
    assert len(long) == truth.n_frames * 3 * len(truth.body_parts)
    assert list(long["individual"].cat.categories) == ["M12", "mus2", "mus3"]
    from dlc_tracking.tracking.predictions import to_long

    alone = to_long("rec", "model", m.poses[:, 1], m.body_parts, truth.time_s)
    mine = long[long["individual"] == "mus2"].drop(columns="individual").reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, alone, check_categorical=False)
    unique = m.unique_to_long("rec", "model", truth.time_s)
    assert set(unique["body_part"]) == set(UNIQUE_BODY_PARTS)


def test_single_animal_reader_still_refuses_madlc(tracked):
    with pytest.raises(DLCFileError, match="multi-animal"):
        read_predictions(tracked["h5"])


@pytest.mark.parametrize("kind", ["h5", "csv"])
def test_prefix_encoded_files(prefixed, truth, kind):
    mapping = {v: k for k, v in PREFIXES.items()}
    m = read_madlc(prefixed[kind], prefix_individuals=mapping)
    assert m.individuals == truth.individuals
    assert m.body_parts == truth.body_parts
    assert m.unique_body_parts == UNIQUE_BODY_PARTS
    np.testing.assert_allclose(m.poses, truth.poses(), atol=1e-9)
    assert any("prefixes" in n for n in m.notes)


def test_prefix_encoded_without_mapping_says_what_to_do(prefixed):
    with pytest.raises(DLCFileError, match="individual_prefixes"):
        read_madlc(prefixed["h5"])
    with pytest.raises(DLCFileError, match="individual_prefixes"):
        read_madlc(prefixed["csv"])
    with pytest.raises(DLCFileError, match=r"no body part starts with \['X_'\]"):
        read_madlc(prefixed["h5"], prefix_individuals={"B": "a", "X": "b"})


def test_round_trip_with_subject_names(tmp_path, tracked):
    m = read_madlc(tracked["h5"])
    out = write_madlc(tmp_path / f"social{SCORER}_el.h5", m,
                      individual_names={"mus1": "M12"})
    back = read_madlc(out)
    assert back.individuals == ["M12", "mus2", "mus3"]
    np.testing.assert_array_equal(back.poses, m.poses)
    assert back.unique_body_parts == m.unique_body_parts


@pytest.mark.parametrize("kind", ["full", "assemblies", "tracklets"])
def test_pickles_retracked_with_deeplabcut(tmp_path, truth, kind):
    write_madlc_pickles(tmp_path, "social", SCORER, truth, assemblies=kind != "full",
                        tracklets=kind == "tracklets")
    m = read_madlc_pickles(tmp_path, truth.individuals, body_parts=truth.body_parts,
                           unique_body_parts=UNIQUE_BODY_PARTS)
    assert m.individuals == truth.individuals
    assert m.unique_body_parts == UNIQUE_BODY_PARTS
    # detections were shuffled per frame; DLC's tracker and stitcher recover the tracks
    assert _matched_error(m.poses, truth.poses()) < 1e-6
    assert not any(p.name.endswith("_el.h5") for p in tmp_path.iterdir())  # nothing written


def test_no_tracks_and_no_pickles(tmp_path):
    with pytest.raises(DLCFileError, match="auto_track=True"):
        read_madlc_pickles(tmp_path, ["mus1", "mus2"], body_parts=["nose"])


def test_missing_file_and_broken_csv(tmp_path):
    with pytest.raises(DLCFileError, match="not found"):
        read_madlc(tmp_path / "nothing_el.h5")
    bad = tmp_path / f"v{SCORER}_el.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(DLCFileError, match="scorer / individuals / bodyparts / coords"):
        read_madlc(bad)


# ----------------------------------------------------------------------------- registry


@pytest.fixture(scope="session")
def madlc_config(tmp_path_factory):
    """A multi-animal project as DeepLabCut's create_new_project writes it."""
    import cv2
    import deeplabcut

    base = tmp_path_factory.mktemp("project")
    video = base / "social.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (32, 32))
    for _ in range(3):
        writer.write(np.zeros((32, 32, 3), np.uint8))
    writer.release()
    config = deeplabcut.create_new_project("social", "lab", [str(video)],
                                           working_directory=str(base), multianimal=True,
                                           individuals=["mus1", "mus2", "mus3"])
    cfg = yaml.safe_load(open(config))
    cfg["multianimalbodyparts"] = ["nose", "left_ear", "right_ear", "tail_base"]
    cfg["uniquebodyparts"] = list(UNIQUE_BODY_PARTS)
    cfg["identity"] = False
    cfg["Task"], cfg["date"] = "social", "Jan1"  # the scorer of the fixtures
    with open(config, "w") as f:
        yaml.safe_dump(cfg, f)
    return config


def test_multi_animal_layout_from_a_deeplabcut_project(madlc_config):
    from dlc_tracking.registry.dlc_projects import multi_animal_layout, read_project_config

    layout = multi_animal_layout(read_project_config(madlc_config), madlc_config)
    assert layout == {"individuals": ["mus1", "mus2", "mus3"],
                      "multianimalbodyparts": ["nose", "left_ear", "right_ear", "tail_base"],
                      "uniquebodyparts": UNIQUE_BODY_PARTS, "identity": False,
                      "default_track_method": "ellipse"}


def test_multi_animal_layout_refusals():
    from dlc_tracking.registry.dlc_projects import multi_animal_layout

    base = {"individuals": ["a", "b"], "multianimalbodyparts": ["nose"],
            "uniquebodyparts": []}
    with pytest.raises(RegistryError, match="empty"):
        multi_animal_layout(dict(base, individuals=[]))
    with pytest.raises(RegistryError, match="both multi-animal and unique"):
        multi_animal_layout(dict(base, uniquebodyparts=["nose"]))
    with pytest.raises(RegistryError, match="default_track_method"):
        multi_animal_layout(dict(base, default_track_method="kalman"))


def test_ingest_only_entry_from_a_madlc_file(tracked, madlc_config, truth, tmp_path):
    from dlc_tracking.registry.madlc_models import madlc_ingest_only_entry

    entry = madlc_ingest_only_entry(tracked["h5"])
    layout = entry["derived"]["multi_animal"]
    assert entry["ingest_only"] and entry["derived"]["scorer"] == SCORER
    assert entry["derived"]["body_parts"] == truth.body_parts
    assert layout["individuals"] == truth.individuals
    assert layout["uniquebodyparts"] == UNIQUE_BODY_PARTS
    with_cfg = madlc_ingest_only_entry(tracked["h5"], config_path=madlc_config)
    assert with_cfg["derived"]["multi_animal"]["identity"] is False
    cfg = yaml.safe_load(open(madlc_config))
    cfg["individuals"] = ["rat1", "rat2", "rat3"]
    other = tmp_path / "config.yaml"
    other.write_text(yaml.safe_dump(cfg))
    with pytest.raises(RegistryError, match="individuals"):
        madlc_ingest_only_entry(tracked["h5"], config_path=other)


# ----------------------------------------------------------------------------- recording


def _process(folder, truth, **kw):
    from dlc_tracking.social.recording import process_multi_animal_recording
    from dlc_tracking.tracking.methods import BUILTIN_METHODS

    layout = {"individuals": truth.individuals, "multianimalbodyparts": truth.body_parts,
              "uniquebodyparts": UNIQUE_BODY_PARTS, "default_track_method": "ellipse"}
    args = dict(recording_id="M12__s1__social", model_name="social", layout=layout,
                to_canonical={b: b for b in truth.body_parts + UNIQUE_BODY_PARTS},
                method=BUILTIN_METHODS["two_ears"], time_s=truth.time_s, camera_view="above",
                frame_size=(truth.width, truth.height), pixels_per_cm=4.0)
    args.update(kw)
    return process_multi_animal_recording(folder, **args)


def test_recording_tables_fit_the_warehouse_schemas(tracked, truth):
    from dlc_tracking.warehouse.arrow import _to_arrow
    from dlc_tracking.warehouse.multi_animal_tables import MULTI_ANIMAL_TABLES

    result = _process(tracked["h5"].parent, truth, individuals={"mus1": "M12", "mus2": "M13"})
    assert set(result.tables) == set(MULTI_ANIMAL_TABLES)
    for name, df in result.tables.items():
        spec = MULTI_ANIMAL_TABLES[name]
        assert list(df.columns) == spec.column_names, name
        _to_arrow(spec, df, name)  # raises on a value that does not fit
    assert result.subjects == {"mus1": "M12", "mus2": "M13", "mus3": None}
    tracking = result.tables["individual_tracking"]
    assert tracking.groupby("individual").size().to_dict() == {
        "mus1": truth.n_frames, "mus2": truth.n_frames, "mus3": truth.n_frames}
    assert len(result.tables["social_summary"]) == 3


def test_recording_tables_go_to_the_warehouse_and_subject_tracking(tracked, truth, tmp_path):
    """The multi-animal tables are warehouse tables; subject_tracking finds M12's frames."""
    from dlc_tracking.warehouse.store import Warehouse
    from dlc_tracking.warehouse.tables import MULTI_ANIMAL_TABLE_NAMES, TABLES

    result = _process(tracked["h5"].parent, truth, individuals={"mus1": "M12", "mus2": "M13"})
    assert set(MULTI_ANIMAL_TABLE_NAMES) <= set(TABLES)
    wh = Warehouse(tmp_path / "wh")
    for name, df in result.tables.items():
        wh.write_partition(name, "M12__s1__social", df)
    rows = wh.query("SELECT individual, count(*) AS n FROM subject_tracking "
                    "WHERE subject = 'M12' GROUP BY ALL")
    assert rows.to_dict("records") == [{"individual": "mus1", "n": truth.n_frames}]
    assert wh.query("SELECT count(*) AS n FROM social_summary")["n"].iloc[0] == 3


def test_recording_bad_inputs_say_what_to_do(tracked, truth, tmp_path):
    from dlc_tracking.errors import ProcessingError
    from dlc_tracking.tracking.methods import StateVectorMethod

    folder = tracked["h5"].parent
    with pytest.raises(DLCFileError, match="mus9"):
        _process(folder, truth, individuals={"mus9": "M12"})
    with pytest.raises(DLCFileError, match="differ from the registered model"):
        _process(folder, truth, layout={"individuals": ["rat1", "rat2", "rat3"],
                                        "multianimalbodyparts": truth.body_parts,
                                        "uniquebodyparts": UNIQUE_BODY_PARTS})
    corner = StateVectorMethod(name="corner", kind="single_point", body_parts=("corner_tl",))
    with pytest.raises(ProcessingError, match="unique body parts"):
        _process(folder, truth, method=corner)
    plain = write_madlc_outputs(tmp_path / "dlc_x", "x", SCORER, truth, unique=False)
    with pytest.raises(DLCFileError, match=r"unique body parts \['corner_tl', 'corner_br'\] "
                       "are missing"):
        _process(plain["h5"].parent, truth)


def test_movement_export_matches_movements_own_madlc_reader(tmp_path, tracked, truth):
    """movement 0.x reads neither the stitcher's key `tracks` (DLC 3.0.2's _el.h5) nor a
    file with unique body parts (`single`): compare on a _filtered file without them."""
    from movement.io import load_poses

    from dlc_tracking.io.madlc_exports import madlc_to_movement

    with pytest.raises(ValueError):
        load_poses.from_dlc_file(tracked["h5"], fps=truth.fps)
    with pytest.raises(ValueError):
        load_poses.from_dlc_file(tracked["filtered"], fps=truth.fps)
    plain = write_madlc_outputs(tmp_path, "social", SCORER, truth, unique=False,
                                filtered=True, save_as_csv=False)
    m = read_madlc(tracked["h5"])
    ds = madlc_to_movement(m, truth.time_s, truth.fps, {"mus1": "M12"})
    theirs = load_poses.from_dlc_file(plain["filtered"], fps=truth.fps)
    assert list(ds.individuals.values) == list(theirs.individuals.values)
    assert list(ds.subject.values) == ["M12", "", ""]
    np.testing.assert_allclose(ds.position.values, theirs.position.values)
    np.testing.assert_allclose(ds.confidence.values, theirs.confidence.values)


def test_synthetic_session_processes_to_subject_tables(tmp_path, truth):
    """A two-animal session as dropped in a data folder: session.yaml is valid and its
    outputs give per-subject tables and the social table."""
    from dlc_tracking.sessions.layout import load_session_metadata
    from dlc_tracking.synthetic.multi_animal import make_multi_animal_session

    two = simulate_multi_animal(n_frames=60, n_animals=2, seed=4)
    folder = make_multi_animal_session(tmp_path, "M12", "2026-03-01_social", two, SCORER,
                                       individuals={"mus1": "M12", "mus2": "M13"})
    meta = load_session_metadata(folder / "session.yaml")
    assert meta.individuals == {"mus1": "M12", "mus2": "M13"}
    result = _process(folder / "dlc_social", two, individuals=meta.individuals,
                      pixels_per_cm=meta.pixels_per_cm)
    tracking = result.tables["individual_tracking"]
    assert sorted(tracking["subject"].unique()) == ["M12", "M13"]
    social = result.tables["social"]
    assert social[["subject_a", "subject_b"]].drop_duplicates().values.tolist() == [
        ["M12", "M13"]]


def test_stitched_tracks_ending_early_are_padded_when_dlc_analysed_the_whole_video(
        tmp_path, truth):
    """DLC's stitcher ends the table at the last tracked frame; its _meta.pickle says how
    many frames were analysed."""
    import pickle

    out = write_madlc_outputs(tmp_path / "dlc_social", "social", SCORER, truth)
    df = pd.read_hdf(out["h5"], "tracks").iloc[:-20]
    df.to_hdf(out["h5"], key="tracks", format="table", mode="w")
    out["csv"].unlink()
    with pytest.raises(DLCFileError, match="frame_count_tolerance"):
        _process(out["h5"].parent, truth)
    meta = tmp_path / "dlc_social" / f"social{SCORER}_meta.pickle"
    with meta.open("wb") as f:
        pickle.dump({"data": {"nframes": truth.n_frames, "fps": truth.fps}}, f)
    result = _process(out["h5"].parent, truth)
    tracking = result.tables["individual_predictions"]
    assert tracking["frame"].max() == truth.n_frames - 1
    assert tracking.loc[tracking["frame"] >= truth.n_frames - 20, "x_px"].isna().all()
    assert any("stitcher" in n for n in result.notes)
