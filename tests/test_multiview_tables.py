"""A multi-camera take writes the single-camera tables (issue 23, the house rule: extend the
tables with a column): processed_tracking with z/pitch/roll/3D speed, predictions and
prediction_sources with one camera per row; single-camera rows stay as they were, the new
columns NULL (docs/3d.md, docs/warehouse.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from dlc_tracking.errors import WarehouseError
from dlc_tracking.sessions.layout import discover_recordings, load_session_metadata
from dlc_tracking.synthetic.rig import BODY_PARTS_3D, simulate_scene
from dlc_tracking.warehouse import Warehouse
from dlc_tracking.warehouse.tables import MULTI_CAMERA_COLUMNS, TABLES
from tests.test_multiview_sessions import _ingest_registry, _session

N_FRAMES = 20  # _session's synthetic take
OLD_TRACKING_COLUMNS = [c for c in TABLES["processed_tracking"].column_names
                        if c not in MULTI_CAMERA_COLUMNS]


@pytest.fixture(scope="module")
def take(tmp_path_factory):
    """A 3-camera synthetic take triangulated and written to a warehouse, beside a
    single-camera recording's processed tracking written as before (no 3D columns)."""
    from dlc_tracking.multiview.recording import process_multicamera

    tmp = tmp_path_factory.mktemp("take")
    folder = _session(tmp / "data", outputs=True)
    registry = _ingest_registry(tmp, tmp / "calib" / "calibration.toml",
                                next((folder / "dlc_top").glob("*.h5")))
    [rec] = discover_recordings(tmp / "data").recordings
    meta = load_session_metadata(folder / "session.yaml")
    result = process_multicamera(rec, meta, registry, fps=30.0)
    rid = rec.recording_id
    store = Warehouse(tmp / "warehouse")
    predictions, sources = result.prediction_rows(rid)
    store.write_partition("predictions", rid, predictions)
    store.write_partition("prediction_sources", rid, sources)
    store.write_processed_tracking(rid, result.tracking_rows(rid), arena_width_cm=None,
                                   arena_height_cm=None)
    single = _single_camera_rows("mouse1__s1__video")
    store.write_processed_tracking("mouse1__s1__video", single, arena_width_cm=50.0,
                                   arena_height_cm=50.0)
    store.ensure_catalog()
    return {"rid": rid, "store": store, "result": result, "single": single}


def _single_camera_rows(rid: str, n: int = 10) -> pd.DataFrame:
    """processed_tracking rows as the single-camera asset writes them (today's columns)."""
    t = np.arange(n) / 30.0
    return pd.DataFrame({
        "recording_id": rid, "model_name": "m", "method_name": "two_ears",
        "params_name": "default", "params_hash": "abc", "frame": np.arange(n),
        "time_s": t, "x_cm": 10.0 + t, "y_cm": 20.0 - t, "speed_cm_s": np.full(n, 1.4),
        "head_direction_deg": np.full(n, 90.0),
        "angular_head_velocity_deg_s": np.zeros(n), "movement_direction_deg": 315.0,
        "interpolated": False})


def test_processed_tracking_holds_the_3d_state_vector(take):
    """z, pitch and roll of the take within the issue's tolerances of the ground truth
    (pitch/roll within 3 deg median), x/y/head direction as the existing columns."""
    scene = simulate_scene(n_frames=N_FRAMES)  # the scene _session rendered
    rows = take["store"].read_partition("processed_tracking", take["rid"])
    assert len(rows) == N_FRAMES and rows.frame.tolist() == list(range(N_FRAMES))
    head = scene.head_mm() / 10.0
    assert np.median(np.abs(rows.x_cm - head[:, 0])) < 0.2  # 2 mm
    assert np.median(np.abs(rows.y_cm - head[:, 1])) < 0.2
    assert np.median(np.abs(rows.z_cm - head[:, 2])) < 0.2
    assert np.median(np.abs(rows.pitch_deg - scene.pitch_deg)) < 3.0
    assert np.median(np.abs(rows.roll_deg - scene.roll_deg)) < 3.0
    az_err = (rows.head_direction_deg - scene.azimuth_deg + 180.0) % 360.0 - 180.0
    assert np.median(np.abs(az_err)) < 3.0
    assert rows.speed_3d_cm_s.notna().all() and (rows.speed_3d_cm_s >= rows.speed_cm_s
                                                 - 1e-9).all()
    assert not rows.interpolated.any()
    assert rows.method_name.iloc[0] == "two_ears" and rows.model_name.iloc[0] == "rig_dlc"
    # its recording_summaries row, as for one camera
    summary = take["store"].read_partition("recording_summaries", take["rid"])
    assert summary.n_frames.iloc[0] == N_FRAMES and summary.distance_cm.iloc[0] > 0


def test_predictions_have_one_camera_per_view(take):
    preds = take["store"].read_partition("predictions", take["rid"])
    assert sorted(preds.camera.unique()) == ["side_1", "side_2", "top"]
    counts = preds.groupby("camera").size()
    assert (counts == N_FRAMES * len(BODY_PARTS_3D)).all()
    assert set(preds.body_part) == set(BODY_PARTS_3D)
    cam = take["result"].cameras["side_1"].poses
    side = preds[preds.camera == "side_1"].sort_values(["frame", "body_part"], key=lambda s: (
        s.map(BODY_PARTS_3D.index) if s.name == "body_part" else s))
    np.testing.assert_allclose(side.x_px.to_numpy(), cam[..., 0].ravel())
    assert not preds.outside_frame.any()  # the calibration's image sizes
    sources = take["store"].read_partition("prediction_sources", take["rid"])
    assert sorted(sources.camera) == ["side_1", "side_2", "top"]
    assert (sources.source == "manual").all() and (sources.rows_in_files == N_FRAMES).all()
    # one camera, through the views (docs/warehouse.md)
    one = take["store"].query("SELECT count(*) AS n FROM predictions WHERE recording_id = ? "
                              "AND camera = 'top'", params=[take["rid"]])
    assert one.n.iloc[0] == N_FRAMES * len(BODY_PARTS_3D)


def test_single_camera_rows_unchanged_new_columns_null(take):
    """The single-camera file holds today's columns only; readers and both kinds of views
    (the DB file's union by name, the in-memory snapshot) give NULL in the new ones."""
    store = take["store"]
    path = store.partition_path("processed_tracking", "mouse1__s1__video")
    assert pq.read_schema(path).names == OLD_TRACKING_COLUMNS
    back = store.read_partition("processed_tracking", "mouse1__s1__video")
    assert list(back.columns) == TABLES["processed_tracking"].column_names
    pd.testing.assert_frame_equal(back[OLD_TRACKING_COLUMNS], take["single"],
                                  check_dtype=False, check_categorical=False)
    assert back[["z_cm", "pitch_deg", "roll_deg", "speed_3d_cm_s"]].isna().all().all()
    sql = ("SELECT recording_id, count(z_cm) AS z, count(pitch_deg) AS p, count(roll_deg) AS r "
           "FROM processed_tracking GROUP BY recording_id ORDER BY recording_id")
    con = store.connect()
    try:
        from_db = con.execute(sql).df()
    finally:
        con.close()
    for got in (from_db, store.query(sql)):
        by = got.set_index("recording_id")
        assert (by.loc["mouse1__s1__video"] == 0).all()
        assert (by.loc[take["rid"]] == N_FRAMES).all()
    summary = store.query("SELECT recording_id FROM recording_summary ORDER BY 1")
    assert sorted(summary.recording_id) == sorted([take["rid"], "mouse1__s1__video"])


def test_unknown_columns_still_refused(tmp_path):
    rows = _single_camera_rows("mouse1__s1__video").assign(height_cm=1.0)
    with pytest.raises(WarehouseError, match="unexpected columns"):
        Warehouse(tmp_path).write_partition("processed_tracking", "mouse1__s1__video", rows)
    rows = _single_camera_rows("mouse1__s1__video").drop(columns="x_cm")
    with pytest.raises(WarehouseError, match="missing columns \\['x_cm'\\]"):
        Warehouse(tmp_path).write_partition("processed_tracking", "mouse1__s1__video", rows)


def test_single_camera_rows_read_and_written_again_stay_as_they_were(tmp_path):
    """read_partition gives the new columns as NULL; writing such rows again (a promotion
    keeping the replaced version) stores them without the columns, as before."""
    from dlc_tracking.model_review.version_predictions import keep_current_version
    from dlc_tracking.tracking.predictions import to_long

    store = Warehouse(tmp_path)
    rid = "mouse1__s1__video"
    poses = np.random.default_rng(0).uniform(0, 100, (5, 2, 3))
    store.write_partition("predictions", rid, to_long(rid, "m", poses, ["nose", "tail"],
                                                      np.arange(5) / 30.0))
    store.write_processed_tracking(rid, _single_camera_rows(rid), arena_width_cm=50.0,
                                   arena_height_cm=50.0)
    assert store.read_partition("predictions", rid).camera.isna().all()
    assert keep_current_version(store, rid) == "m"
    kept = store.partition_path("model_predictions", f"{rid}__m")
    assert "camera" not in pq.read_schema(kept).names
    kept = store.partition_path("model_processed_tracking", f"{rid}__m")
    assert pq.read_schema(kept).names == OLD_TRACKING_COLUMNS
