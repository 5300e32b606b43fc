"""to_movement: a movement 0.15 poses dataset of a processed recording, checked with
movement's own kinematics against the warehouse.

Tolerances (stated in docs/exports.md):
- speed of the head (ear midpoint) from movement's compute_speed on the raw pixels vs
  raw_state_vectors.speed_px_s: both are central differences on the same frame times,
  so they agree to 1e-9 px/s on interior frames whose neighbours are tracked;
- forward-vector head direction (compute_forward_vector_angle, image frame y down) vs
  raw_state_vectors.head_angle_rad (arena frame y up): equal after the flip, within 1e-9
  rad;
- movement's speed converted to cm/s (scale of raw px to processed cm) vs
  processed_tracking.speed_cm_s (smoothed, sigma
  0.1 s): median relative difference below 10 % while moving.
"""

from __future__ import annotations

import numpy as np
import pytest

from dlc_tracking.errors import WarehouseError
from dlc_tracking.io.movement_io import to_movement
from dlc_tracking.warehouse import Warehouse
from tests.export_helpers import PARTS, make_dirs, processed_recording


@pytest.fixture(scope="module", params=["above", "below"])
def processed(request, tmp_path_factory, registry_path, registry):
    import dagster as dg

    dirs = make_dirs(tmp_path_factory.mktemp(f"movement_{request.param}"), registry_path)
    with dg.instance_for_test(temp_dir=str(dirs["home"])) as instance:
        yield processed_recording(instance, dirs, registry.model("tiny_openfield").scorer,
                                  n_frames=200, camera_view=request.param)


def _angle_diff(a, b):
    return np.abs(np.mod(np.asarray(a) - np.asarray(b) + np.pi, 2 * np.pi) - np.pi)


def test_dataset_shape_and_attributes(processed):
    ds = to_movement(processed["rid"], processed["warehouse"])
    store = Warehouse(processed["warehouse"])
    pred = store.query("SELECT * FROM predictions WHERE recording_id = ? ORDER BY frame",
                       [processed["rid"]])
    assert ds.position.dims == ("time", "space", "keypoints", "individuals")
    assert list(ds.keypoints.values) == PARTS and list(ds.space.values) == ["x", "y"]
    assert ds.attrs["fps"] == 30.0 and ds.attrs["source_software"] == "DeepLabCut"
    assert ds.attrs["time_unit"] == "seconds"
    camera = store.query("SELECT camera_view FROM recordings").camera_view[0]
    assert ds.attrs["camera_view"] == {"above": "top_down", "below": "bottom_up"}[camera]
    np.testing.assert_array_equal(ds.time.values, pred.time_s.to_numpy()[::len(PARTS)])
    nose = pred[pred.body_part == "nose"]
    np.testing.assert_array_equal(ds.position.sel(keypoints="nose", space="x").values[:, 0],
                                  nose.x_px.to_numpy(float))
    np.testing.assert_array_equal(ds.confidence.sel(keypoints="nose").values[:, 0],
                                  nose.likelihood.to_numpy(float))


def test_movement_kinematics_match_the_warehouse(processed):
    from movement.kinematics import compute_forward_vector_angle, compute_speed

    rid = processed["rid"]
    ds = to_movement(rid, processed["warehouse"])
    store = Warehouse(processed["warehouse"])
    raw = store.read_partition("raw_state_vectors", rid).sort_values("frame")
    proc = store.read_partition("processed_tracking", rid).sort_values("frame")
    head = ds.position.sel(keypoints=["left_ear", "right_ear"]).mean("keypoints")
    speed_px_s = compute_speed(head).values[:, 0]
    inner = np.zeros(len(raw), bool)
    inner[1:-1] = True
    finite = np.isfinite(speed_px_s) & np.isfinite(raw.speed_px_s.to_numpy(float)) & inner
    assert finite.sum() > 150
    np.testing.assert_allclose(speed_px_s[finite], raw.speed_px_s.to_numpy(float)[finite],
                               rtol=0, atol=1e-9)

    # movement's forward vector angle: image frame (y down), counter-clockwise on screen
    # is clockwise in numbers; the arena frame flips y, so the angle changes sign.
    angle = compute_forward_vector_angle(
        ds.position, left_keypoint="left_ear", right_keypoint="right_ear",
        camera_view=ds.attrs["camera_view"], in_degrees=False).values[:, 0]
    hd = raw.head_angle_rad.to_numpy(float)
    both = np.isfinite(angle) & np.isfinite(hd)
    assert both.sum() > 150
    camera = store.query("SELECT camera_view FROM recordings").camera_view[0]
    # above: arena = image with y flipped; below: also x mirrored back (see docs/exports.md)
    expected = -angle if camera == "above" else np.pi + angle
    assert _angle_diff(expected[both], hd[both]).max() < 1e-9

    # against the smoothed, calibrated processed speed: same motion, cm/s
    # The calibration (px per cm) as the warehouse applied it: raw px vs processed cm.
    ok = np.isfinite(raw.x_px.to_numpy(float)) & np.isfinite(proc.x_cm.to_numpy(float))
    px_per_cm = np.mean([np.std(raw[a].to_numpy(float)[ok]) / np.std(proc[b].to_numpy(float)[ok])
                         for a, b in (("x_px", "x_cm"), ("y_px", "y_cm"))])
    speed_cm_s = speed_px_s / px_per_cm
    ref = proc.speed_cm_s.to_numpy(float)
    moving = np.isfinite(speed_cm_s) & np.isfinite(ref) & (ref > 2.0)
    assert moving.sum() > 50
    assert np.median(np.abs(speed_cm_s[moving] - ref[moving]) / ref[moving]) < 0.10


def test_unknown_recording_refused(processed):
    with pytest.raises(WarehouseError, match="not in the warehouse"):
        to_movement("nobody__none__none", processed["warehouse"])
