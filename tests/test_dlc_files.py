"""Reading and writing DeepLabCut output files (h5, csv, metadata pickles, folders)."""

from __future__ import annotations

import pickle
import sys
import types
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dlc_tracking.errors import DLCFileError
from dlc_tracking.io.dlc_files import (
    DLCPredictions,
    find_output_sets,
    load_output_folder,
    mask_missing,
    output_names,
    read_metadata,
    read_predictions,
    scorer_from_filename,
    write_metadata,
    write_predictions,
)

SCORER = "DLC_Resnet50_tinyopenfieldJan1shuffle1_snapshot_200"
OTHER = "DLC_Resnet50_otherprojectFeb2shuffle1_snapshot_100"
PARTS = ["nose", "left_ear", "right_ear", "tail_base"]


def _poses(n: int = 20, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    poses = np.empty((n, len(PARTS), 3))
    poses[..., 0] = rng.uniform(1, 639, (n, len(PARTS)))
    poses[..., 1] = rng.uniform(1, 479, (n, len(PARTS)))
    poses[..., 2] = rng.uniform(0.01, 1, (n, len(PARTS)))
    return poses


def _dlc_frame(poses: np.ndarray, scorer: str = SCORER, parts=PARTS) -> pd.DataFrame:
    """A DataFrame built the way DeepLabCut's create_df_from_prediction builds it."""
    columns = pd.MultiIndex.from_product([[scorer], parts, ["x", "y", "likelihood"]],
                                         names=["scorer", "bodyparts", "coords"])
    return pd.DataFrame(poses.reshape(len(poses), -1), columns=columns,
                        index=range(len(poses)))


# ----------------------------------------------------------------------------- predictions


@pytest.mark.parametrize("csv", [False, True])
def test_round_trip_h5_and_csv(tmp_path: Path, csv: bool) -> None:
    poses = _poses()
    h5 = write_predictions(tmp_path / "videoDLC.h5", SCORER, PARTS, poses, csv=csv)
    path = h5.with_suffix(".csv") if csv else h5
    assert path.is_file()
    pred = read_predictions(path)
    assert isinstance(pred, DLCPredictions)
    assert pred.scorer == SCORER
    assert pred.body_parts == PARTS
    assert pred.poses.dtype == np.float64 and pred.poses.shape == (20, 4, 3)
    np.testing.assert_array_equal(pred.poses, poses)
    np.testing.assert_array_equal(pred.frames, np.arange(20))
    assert pred.frames.dtype.kind == "i"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_written_layout_is_dlcs(tmp_path: Path) -> None:
    poses = _poses(5)
    h5 = write_predictions(tmp_path / "v.h5", SCORER, PARTS, poses)
    with pd.HDFStore(h5, mode="r") as store:
        assert store.keys() == ["/df_with_missing"]
        assert store.get_storer("df_with_missing").is_table  # format="table", as DLC
        df = store.get("df_with_missing")
    assert list(df.columns.names) == ["scorer", "bodyparts", "coords"]
    pd.testing.assert_frame_equal(df, _dlc_frame(poses), check_index_type=False)


def test_file_written_like_dlc_is_read(tmp_path: Path) -> None:
    """A file written by pandas exactly as DLC does, including float32 values."""
    poses = _poses(12).astype(np.float32)
    df = _dlc_frame(poses, parts=["snout", "leftear"] * 1 + ["rightear", "tailbase"])
    path = tmp_path / f"session1{SCORER}.h5"
    df.to_hdf(path, key="df_with_missing", format="table", mode="w")
    df.to_csv(path.with_suffix(".csv"))
    for p in (path, path.with_suffix(".csv")):
        pred = read_predictions(p)
        assert pred.body_parts == ["snout", "leftear", "rightear", "tailbase"]
        np.testing.assert_allclose(pred.poses, poses.astype(np.float64))


def test_other_single_key_is_read(tmp_path: Path) -> None:
    path = tmp_path / "old.h5"
    _dlc_frame(_poses(3)).to_hdf(path, key="predictions", mode="w")  # fixed format, other key
    assert read_predictions(path).poses.shape == (3, 4, 3)


def test_missing_encodings_become_nan(tmp_path: Path) -> None:
    poses = _poses(6)
    poses[1, 0] = 0.0                      # DLC's (0, 0, 0)
    poses[2, 1, 0] = np.nan                # NaN in x only
    poses[3, 2, 2] = np.nan                # NaN likelihood
    poses[4, 3] = [0.0, 0.0, 0.5]          # a real point at the origin: kept
    for csv in (False, True):
        h5 = write_predictions(tmp_path / "m.h5", SCORER, PARTS, poses, csv=csv)
        pred = read_predictions(h5.with_suffix(".csv") if csv else h5)
        for frame, part in [(1, 0), (2, 1), (3, 2)]:
            assert np.isnan(pred.poses[frame, part]).all()
        np.testing.assert_array_equal(pred.poses[4, 3], [0.0, 0.0, 0.5])
        assert np.isfinite(pred.poses[0]).all()


def test_multi_animal_refused(tmp_path: Path) -> None:
    columns = pd.MultiIndex.from_product(
        [[SCORER], ["mouse1", "mouse2"], PARTS[:2], ["x", "y", "likelihood"]],
        names=["scorer", "individuals", "bodyparts", "coords"])
    df = pd.DataFrame(np.ones((4, len(columns))), columns=columns)
    h5 = tmp_path / "ma.h5"
    df.to_hdf(h5, key="df_with_missing", format="table", mode="w")
    df.to_csv(tmp_path / "ma.csv")
    for path in (h5, tmp_path / "ma.csv"):
        with pytest.raises(DLCFileError, match="multi-animal") as info:
            read_predictions(path)
        assert str(path) in str(info.value)


def test_corrupt_and_empty_predictions(tmp_path: Path) -> None:
    good = write_predictions(tmp_path / "g.h5", SCORER, PARTS, _poses(50))
    bad = tmp_path / "bad.h5"
    bad.write_bytes(good.read_bytes()[:2000])          # truncated copy
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not an hdf5 file at all")
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    zero = write_predictions(tmp_path / "zero.h5", SCORER, PARTS, np.empty((0, 4, 3)))
    broken_csv = tmp_path / "broken.csv"
    broken_csv.write_text("hello,world\n1,2\n")
    for path in (bad, junk, empty, zero, broken_csv, tmp_path / "absent.h5"):
        with pytest.raises(DLCFileError) as info:
            read_predictions(path)
        assert str(path) in str(info.value)


# ----------------------------------------------------------------------------- metadata


def _pytorch_meta(start: str | None = None) -> dict:
    data = {"start": 1.0, "stop": 2.0, "run_duration": 1.0, "Scorer": SCORER,
            "pytorch-config": {"net_type": "resnet_50"}, "fps": 30.0, "batch_size": 8,
            "frame_dimensions": (640, 480), "nframes": 20, "cropping": False,
            "cropping_parameters": [0, 640, 0, 480], "bodyparts": PARTS}
    if start is not None:
        data["Start Timestamp"] = start
    return {"data": data}


def test_meta_pickle_new_name_with_timestamp(tmp_path: Path) -> None:
    h5_name, meta_name = output_names("openfield", SCORER)
    assert h5_name == f"openfield{SCORER}.h5"
    assert meta_name == f"openfield{SCORER}_meta.pickle"
    path = write_metadata(tmp_path / meta_name, _pytorch_meta()["data"],
                          "2024-01-31T10:15:00+01:00")
    with path.open("rb") as f:
        raw = pickle.load(f)
    assert set(raw) == {"data"} and raw["data"]["Start Timestamp"] == "2024-01-31T10:15:00+01:00"
    meta = read_metadata(path)
    assert meta["Scorer"] == SCORER and meta["fps"] == 30.0
    assert meta["frame_dimensions"] == (640, 480)                # raw value kept
    assert (meta["frame_width_px"], meta["frame_height_px"]) == (640, 480)
    assert meta["engine"] == "pytorch"
    assert meta["start_timestamp"] == datetime(2024, 1, 31, 9, 15, tzinfo=UTC)
    assert meta["start_timestamp"].utcoffset() == timedelta(hours=1)


def test_meta_pickle_without_timestamp_tensorflow(tmp_path: Path) -> None:
    data = {"Scorer": SCORER, "DLC-model-config file": {"net_type": "resnet_50"},
            "fps": 25.0, "frame_dimensions": (480, 640), "nframes": 10}
    path = tmp_path / f"v{SCORER}_meta.pickle"
    with path.open("wb") as f:
        pickle.dump({"data": data}, f, pickle.HIGHEST_PROTOCOL)
    meta = read_metadata(path)
    assert meta["start_timestamp"] is None
    assert meta["engine"] == "tensorflow"
    assert meta["frame_dimensions"] == (480, 640)
    assert (meta["frame_width_px"], meta["frame_height_px"]) == (640, 480)


def test_old_includingmetadata_pickle(tmp_path: Path) -> None:
    """Pre-2.2 name; the seed adds "Start Timestamp" at the top level."""
    data = {"Scorer": SCORER.replace("DLC", "DeepCut"), "fps": 39.8,
            "frame_dimensions": (480, 640), "nframes": 10}
    path = tmp_path / f"v{SCORER}includingmetadata.pickle"
    with path.open("wb") as f:
        pickle.dump({"data": data, "Start Timestamp": "2023-05-02T08:00:00Z"}, f)
    meta = read_metadata(path)
    assert meta["start_timestamp"] == datetime(2023, 5, 2, 8, tzinfo=UTC)
    assert meta["engine"] == "tensorflow"
    assert (meta["frame_width_px"], meta["frame_height_px"]) == (640, 480)
    plain = tmp_path / f"w{SCORER}includingmetadata.pickle"
    with plain.open("wb") as f:
        pickle.dump({"data": data}, f)
    assert read_metadata(plain)["start_timestamp"] is None


def test_unknown_engine_frame_size_from_cropping(tmp_path: Path) -> None:
    path = tmp_path / "m_meta.pickle"
    with path.open("wb") as f:
        pickle.dump({"data": {"frame_dimensions": (480, 640), "cropping": False,
                              "cropping_parameters": [0, 640, 0, 480]}}, f)
    meta = read_metadata(path)
    assert meta["engine"] is None
    assert (meta["frame_width_px"], meta["frame_height_px"]) == (640, 480)


def test_start_timestamp_needs_time_zone(tmp_path: Path) -> None:
    with pytest.raises(DLCFileError, match="time zone"):
        write_metadata(tmp_path / "x_meta.pickle", {}, "2024-01-31T10:15:00")
    assert not (tmp_path / "x_meta.pickle").exists()
    path = tmp_path / "y_meta.pickle"
    with path.open("wb") as f:
        pickle.dump({"data": {"Start Timestamp": "yesterday"}}, f)
    with pytest.raises(DLCFileError, match="ISO 8601") as info:
        read_metadata(path)
    assert str(path) in str(info.value)
    aware = datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=-5)))
    write_metadata(tmp_path / "z_meta.pickle", {}, aware.isoformat())
    assert read_metadata(tmp_path / "z_meta.pickle")["start_timestamp"] == aware


def test_corrupt_pickle(tmp_path: Path) -> None:
    good = write_metadata(tmp_path / "g_meta.pickle", _pytorch_meta()["data"])
    bad = tmp_path / f"v{SCORER}_meta.pickle"
    bad.write_bytes(good.read_bytes()[:40])
    garbage = tmp_path / "garbage_meta.pickle"
    garbage.write_bytes(b"\x00\x01 definitely not a pickle")
    not_dict = tmp_path / "list_meta.pickle"
    not_dict.write_bytes(pickle.dumps([1, 2, 3]))
    for path in (bad, garbage, not_dict):
        with pytest.raises(DLCFileError) as info:
            read_metadata(path)
        message = str(info.value)
        assert str(path) in message
        assert "re-export" in message.lower() and "delete" in message.lower()


def test_pickle_with_unimportable_class_is_read(tmp_path: Path, monkeypatch) -> None:
    """DLC 2.x TF metadata embeds config objects of helper classes (e.g. easydict)."""
    module = types.ModuleType("not_installed_easydict")

    class EasyDict(dict):
        pass

    EasyDict.__module__, EasyDict.__qualname__ = module.__name__, "EasyDict"
    module.EasyDict = EasyDict
    monkeypatch.setitem(sys.modules, module.__name__, module)
    config = EasyDict(net_type="resnet_50")
    config.extra = 1
    payload = pickle.dumps({"data": {"Scorer": SCORER, "fps": 30.0,
                                     "DLC-model-config file": config}})
    monkeypatch.delitem(sys.modules, module.__name__)
    path = tmp_path / "tf_meta.pickle"
    path.write_bytes(payload)
    meta = read_metadata(path)
    assert meta["Scorer"] == SCORER and meta["engine"] == "tensorflow"
    assert meta["DLC-model-config file"]["net_type"] == "resnet_50"


# ----------------------------------------------------------------------------- folders


def _write_set(folder: Path, stem: str, scorer: str, poses: np.ndarray, *,
               legacy_meta: bool = False, csv_only: bool = False) -> None:
    h5_name, meta_name = output_names(stem, scorer)
    h5 = write_predictions(folder / h5_name, scorer, PARTS, poses, csv=csv_only)
    if csv_only:
        h5.unlink()
    if legacy_meta:
        meta_name = f"{stem}{scorer}includingmetadata.pickle"
    write_metadata(folder / meta_name, {"Scorer": scorer, "nframes": len(poses)},
                   "2024-01-31T10:15:00+01:00")


def test_find_output_sets(tmp_path: Path) -> None:
    folder = tmp_path / "dlc_openfield"
    folder.mkdir()
    _write_set(folder, "openfield_part2", SCORER, _poses(5))
    _write_set(folder, "openfield_part1", SCORER, _poses(5), legacy_meta=True)
    _write_set(folder, "openfield_part3", SCORER, _poses(5), csv_only=True)
    write_predictions(folder / f"openfield_part1{SCORER}.h5", SCORER, PARTS, _poses(5),
                      csv=True)                                  # h5 + csv: h5 wins
    _write_set(folder, "openfield_part4", OTHER, _poses(5))
    (folder / f"openfield_part1{SCORER}_full.pickle").write_bytes(b"ignored")
    (folder / f".openfield_part9{SCORER}.h5").write_bytes(b"hidden")
    (folder / f"openfield_part9{SCORER}.h5.tmp").write_bytes(b"temp")
    (folder / f"openfield_part9{SCORER}.h5.part").write_bytes(b"partial download")
    (folder / f"openfield_part1{SCORER}_filtered.h5").write_bytes(b"derived output")

    sets = find_output_sets(folder)
    assert [s.predictions_path.name for s in sets] == [
        f"openfield_part1{SCORER}.h5", f"openfield_part2{SCORER}.h5",
        f"openfield_part3{SCORER}.csv", f"openfield_part4{OTHER}.h5"]
    assert [s.video_stem for s in sets] == [f"openfield_part{i}" for i in (1, 2, 3, 4)]
    assert [s.scorer for s in sets] == [SCORER] * 3 + [OTHER]
    assert sets[0].metadata_path.name == f"openfield_part1{SCORER}includingmetadata.pickle"
    assert sets[1].metadata_path.name == f"openfield_part2{SCORER}_meta.pickle"
    assert [s.predictions_path.name for s in find_output_sets(folder, OTHER)] == [
        f"openfield_part4{OTHER}.h5"]
    assert len(find_output_sets(folder, SCORER)) == 3


def test_scorer_in_file_is_authoritative(tmp_path: Path) -> None:
    folder = tmp_path / "dlc_video"
    folder.mkdir()
    write_predictions(folder / f"video{SCORER}.h5", OTHER, PARTS, _poses(3))  # renamed file
    (s,) = find_output_sets(folder)
    assert s.scorer == OTHER and s.video_stem == "video" and s.metadata_path is None
    assert scorer_from_filename(f"openfield{SCORER}.h5") == ("openfield", SCORER)
    assert scorer_from_filename(f"my_DLC_video{SCORER}_meta.pickle", "my_DLC_video") == (
        "my_DLC_video", SCORER)


def test_load_output_folder_concatenates_in_file_order(tmp_path: Path) -> None:
    folder = tmp_path / "dlc_openfield"
    folder.mkdir()
    parts = {"b": _poses(7, seed=2), "a": _poses(5, seed=1), "c": _poses(3, seed=3)}
    for stem, poses in parts.items():
        _write_set(folder, f"openfield_{stem}", SCORER, poses)
    pred = load_output_folder(folder, SCORER)
    np.testing.assert_array_equal(
        pred.poses, np.concatenate([parts["a"], parts["b"], parts["c"]]))
    np.testing.assert_array_equal(pred.frames, np.arange(15))
    assert pred.scorer == SCORER and pred.body_parts == PARTS
    assert [p.name for p in pred.sources] == [f"openfield_{s}{SCORER}.h5" for s in "abc"]


def test_load_output_folder_refuses_another_model(tmp_path: Path) -> None:
    folder = tmp_path / "dlc_openfield"
    folder.mkdir()
    _write_set(folder, "openfield_a", SCORER, _poses(5))
    _write_set(folder, "openfield_b", OTHER, _poses(5))
    with pytest.raises(DLCFileError, match="another model") as info:
        load_output_folder(folder, SCORER)
    message = str(info.value)
    assert f"openfield_b{OTHER}.h5" in message and OTHER in message and SCORER in message


def test_load_output_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(DLCFileError, match="not found"):
        load_output_folder(tmp_path / "absent", SCORER)
    empty = tmp_path / "dlc_empty"
    empty.mkdir()
    with pytest.raises(DLCFileError, match="no DLC predictions"):
        load_output_folder(empty, SCORER)
    mixed = tmp_path / "dlc_mixed"
    mixed.mkdir()
    _write_set(mixed, "v1", SCORER, _poses(3))
    write_predictions(mixed / f"v2{SCORER}.h5", SCORER, ["nose", "tail_base"],
                      _poses(3)[:, :2])
    with pytest.raises(DLCFileError, match="body parts"):
        load_output_folder(mixed, SCORER)
    corrupt = tmp_path / "dlc_corrupt"
    corrupt.mkdir()
    (corrupt / f"v{SCORER}.h5").write_bytes(b"garbage")
    with pytest.raises(DLCFileError) as info:
        load_output_folder(corrupt, SCORER)
    assert f"v{SCORER}.h5" in str(info.value)


# ----------------------------------------------------------------------------- real-world files
# Written with DeepLabCut's own writers (dlc_tracking.synthetic.dlc_outputs), then re-saved
# the ways labs re-save them.

REAL_SCORER = "DLC_Resnet50_open field_2Jan1shuffle1_snapshot_200"
REAL_PARTS = ["nose", "left ear", "tail/base ü"]


def _real_poses(n: int = 25) -> np.ndarray:
    """Poses as DLC writes them: negative and out-of-frame points, DLC's missing codes."""
    rng = np.random.default_rng(7)
    poses = np.empty((n, len(REAL_PARTS), 3))
    poses[..., 0] = rng.uniform(-40, 700, (n, len(REAL_PARTS)))   # frame is 640 wide
    poses[..., 1] = rng.uniform(-30, 520, (n, len(REAL_PARTS)))   # and 480 high
    poses[..., 2] = rng.uniform(0, 1, (n, len(REAL_PARTS)))
    poses[3, 1] = np.nan
    poses[4, 2] = 0.0
    return poses


def _csv_numbers(path: Path, skip: int, first_col: int) -> np.ndarray:
    """The numbers a CSV holds, parsed by Python's correctly rounded float()."""
    import csv

    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))[skip:]
    return np.array([[float(c) if c else np.nan for c in row[first_col:]] for row in rows])


@pytest.fixture(scope="module")
def dlc_written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from dlc_tracking.synthetic.dlc_outputs import write_pytorch_outputs

    folder = tmp_path_factory.mktemp("dlc3")
    return write_pytorch_outputs(folder, "mouse Ö1", REAL_SCORER, REAL_PARTS, _real_poses())


def test_dlc_written_files_read_as_written(dlc_written: dict[str, Path]) -> None:
    expected = mask_missing(_real_poses())
    for kind in ("h5", "csv"):
        pred = read_predictions(dlc_written[kind])
        assert (pred.scorer, pred.body_parts, pred.notes) == (REAL_SCORER, REAL_PARTS, [])
        np.testing.assert_array_equal(pred.poses, expected)  # bit-identical
        assert (pred.poses[..., :2] < 0).any()  # negative coordinates kept, not missing
        assert np.isnan(pred.poses[3, 1]).all() and np.isnan(pred.poses[4, 2]).all()


@pytest.mark.parametrize(("how", "note"), [
    ("pandas", ".1/.2 suffixes"), ("pandas_no_index", ".1/.2 suffixes"),
    ("pandas_multiheader", None), ("excel", "byte-order mark"),
])
def test_resaved_csv_read_exactly(dlc_written: dict[str, Path], tmp_path: Path, how: str,
                                  note: str | None) -> None:
    from dlc_tracking.synthetic.dlc_outputs import resave_csv

    path = resave_csv(dlc_written["csv"], tmp_path / f"mouse{REAL_SCORER}.csv", how)
    pred = read_predictions(path)
    assert (pred.scorer, pred.body_parts) == (REAL_SCORER, REAL_PARTS)
    np.testing.assert_array_equal(pred.frames, np.arange(25))
    if note is None:
        assert pred.notes == []
    else:
        assert any(note in n for n in pred.notes), pred.notes
    if how.startswith("pandas") and how != "pandas_multiheader":
        # The values stayed text in pandas' object columns: bit-identical to DLC's.
        np.testing.assert_array_equal(pred.poses, mask_missing(_real_poses()))
    else:
        # pandas' default float parser is not round-trip exact, so its re-save may change
        # the last bit; the reader returns exactly what the file holds.
        in_file = mask_missing(_csv_numbers(path, 3, 1).reshape(25, 3, 3))
        np.testing.assert_array_equal(pred.poses, in_file)
        finite = np.isfinite(in_file)
        np.testing.assert_allclose(in_file[finite], _real_poses()[finite], rtol=1e-14, atol=0)
    assert find_output_sets(tmp_path)[0].scorer == REAL_SCORER
    loaded = load_output_folder(tmp_path, REAL_SCORER)
    assert loaded.notes == pred.notes


def test_excel_notes_crlf(dlc_written: dict[str, Path], tmp_path: Path) -> None:
    from dlc_tracking.synthetic.dlc_outputs import resave_csv

    path = resave_csv(dlc_written["csv"], tmp_path / "x.csv", "excel")
    assert path.read_bytes().startswith(b"\xef\xbb\xbfscorer,") and b"\r\n" in path.read_bytes()
    assert any("CRLF" in n for n in read_predictions(path).notes)


@pytest.mark.parametrize(("key", "fmt", "noted"), [
    ("df_with_missing", "fixed", False), ("predictions", "table", True),
    ("my_export", "fixed", True),
])
def test_resaved_h5_read_exactly(dlc_written: dict[str, Path], tmp_path: Path, key: str,
                                 fmt: str, noted: bool) -> None:
    from dlc_tracking.synthetic.dlc_outputs import resave_h5

    path = resave_h5(dlc_written["h5"], tmp_path / "v.h5", key=key, fmt=fmt)
    pred = read_predictions(path)
    np.testing.assert_array_equal(pred.poses, mask_missing(_real_poses()))
    assert bool(pred.notes) == noted
    assert find_output_sets(tmp_path)[0].scorer == REAL_SCORER


@pytest.mark.parametrize("writer", ["pytorch", "tensorflow"])
def test_names_with_spaces_slash_unicode(tmp_path: Path, writer: str) -> None:
    from dlc_tracking.synthetic import dlc_outputs

    scorer = "DLC_resnet50_Käfig/A 2Mar3shuffle1_1000" if writer == "tensorflow" else (
        "DLC_HrnetW32_Käfig/A 2Mar3shuffle1_snapshot_best-20")
    parts = ["Nase", "linkes Ohr", "Schwanz/Basis", "尾"]
    poses = np.random.default_rng(1).uniform(-5, 600, (9, 4, 3))
    write = getattr(dlc_outputs, f"write_{writer}_outputs")
    files = write(tmp_path, "v", scorer, parts, poses, prefix="vDLC")
    for kind in ("h5", "csv"):
        pred = read_predictions(files[kind])
        assert (pred.scorer, pred.body_parts) == (scorer, parts)
        np.testing.assert_array_equal(pred.poses, poses)
    for h5_format in ("fixed", "table"):
        path = dlc_outputs.resave_h5(files["h5"], tmp_path / f"{h5_format}.h5", fmt=h5_format)
        assert read_predictions(path).body_parts == parts


def test_tensorflow_and_legacy_metadata(tmp_path: Path) -> None:
    from dlc_tracking.synthetic.dlc_outputs import write_legacy_outputs, write_tensorflow_outputs

    poses = _poses(6)
    tf = write_tensorflow_outputs(tmp_path / "dlc_a", "a", "DLC_resnet50_tJan1shuffle1_5000",
                                  PARTS, poses, fps=25.0, frame_size=(640, 480))
    meta = read_metadata(tf["meta"])
    assert (meta["engine"], meta["frame_width_px"], meta["frame_height_px"]) == (
        "tensorflow", 640, 480)
    legacy_scorer = "DeepCut_resnet50_tJan1shuffle1_5000"
    old = write_legacy_outputs(tmp_path / "dlc_b", "b", legacy_scorer, PARTS, poses,
                               frame_size=(320, 200))
    assert old["meta"].name == f"b{legacy_scorer}includingmetadata.pickle"
    (found,) = find_output_sets(tmp_path / "dlc_b")
    assert (found.scorer, found.metadata_path, found.video_stem) == (legacy_scorer,
                                                                     old["meta"], "b")
    meta = read_metadata(old["meta"])
    assert (meta["engine"], meta["frame_width_px"], meta["frame_height_px"]) == (
        "tensorflow", 320, 200)
    loaded = load_output_folder(tmp_path / "dlc_b", "DLC_resnet50_tJan1shuffle1_5000")
    np.testing.assert_array_equal(loaded.poses, poses)


def test_multi_animal_dlc_outputs_refused(tmp_path: Path) -> None:
    from dlc_tracking.synthetic.dlc_outputs import resave_csv, write_pytorch_outputs

    poses = np.random.default_rng(2).uniform(0, 100, (5, 2, 3, 3))
    files = write_pytorch_outputs(tmp_path, "ma", REAL_SCORER, REAL_PARTS, poses,
                                  individuals=["mouse1", "mouse2"])
    resaved = resave_csv(files["csv"], tmp_path / "resaved.csv", "pandas")
    for path in (files["h5"], files["csv"], resaved):
        with pytest.raises(DLCFileError, match="multi-animal") as exc:
            read_predictions(path)
        assert str(path) in str(exc.value) and "single-animal" in str(exc.value)
    with pytest.raises(DLCFileError, match="multi-animal"):
        find_output_sets(tmp_path)


@pytest.mark.parametrize("drop_row", [0, 1, 2])
def test_broken_csv_header_refused(dlc_written: dict[str, Path], tmp_path: Path,
                                   drop_row: int) -> None:
    from dlc_tracking.synthetic.dlc_outputs import break_csv_header

    path = break_csv_header(dlc_written["csv"], tmp_path / f"v{REAL_SCORER}.csv",
                            drop_row=drop_row)
    for call in (read_predictions, lambda p: find_output_sets(p.parent)):
        with pytest.raises(DLCFileError, match="broken DLC CSV header") as exc:
            call(path)
        text = str(exc.value)
        assert str(path) in text and "expected" in text and "Fix:" in text


def test_csv_with_short_header_row_refused(dlc_written: dict[str, Path],
                                           tmp_path: Path) -> None:
    lines = dlc_written["csv"].read_text(encoding="utf-8").splitlines(keepends=True)
    lines[1] = lines[1].rsplit(",", 1)[0] + "\n"  # bodyparts row one cell short
    path = tmp_path / "short.csv"
    path.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(DLCFileError, match="9 / 8 / 9 cells"):
        read_predictions(path)


def test_csv_cut_short_refused(dlc_written: dict[str, Path], tmp_path: Path) -> None:
    text = dlc_written["csv"].read_text(encoding="utf-8")
    path = tmp_path / "cut.csv"
    path.write_text(text[: text.rstrip("\n").rfind(",")], encoding="utf-8")
    with pytest.raises(DLCFileError, match="cut short"):
        read_predictions(path)
