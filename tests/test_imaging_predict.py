"""`dlc-platform predict` on an imaging session: DeepLabCut's "Start Timestamp" in the
_meta.pickle comes from the ScanImage acquisition start (no editing by hand), and the
outputs go through process_recording to tracking_on_imaging rows."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest
import yaml

from dlc_assets.cli.main import main
from dlc_tracking.io.dlc_files import read_metadata
from dlc_tracking.synthetic.openfield import make_session
from dlc_tracking.synthetic.scanimage_tifs import write_scanimage_tifs
from dlc_tracking.warehouse import Warehouse
from tests.pipeline_helpers import failure_messages, rid_of, run_recording


@pytest.mark.slow
def test_predict_start_timestamp_from_the_tifs(instance, resources, platform_dirs,
                                               registry_path):
    folder = make_session(platform_dirs["data_root"], "m", "img", n_frames=40, seed=5)
    epoch = datetime(2026, 3, 1, 9, 30, 12, 125000)
    tifs = write_scanimage_tifs(folder, "m_img", np.arange(36) / 30.0, epoch,
                                frame_rate_hz=30.0, frames_per_file=20)
    meta = yaml.safe_load((folder / "session.yaml").read_text())
    del meta["start_time"]  # the acquisition gives it
    meta["imaging"] = {"scanimage": [p.name for p in tifs], "timezone": "Europe/Oslo"}
    (folder / "session.yaml").write_text(yaml.safe_dump(meta))
    main(["--registry", str(registry_path), "predict", str(folder / "openfield.mp4"),
          "--model", "tiny_openfield", "--device", "cpu",
          "--work-dir", str(platform_dirs["work"])])
    pickles = sorted((folder / "dlc_openfield").glob("*_meta.pickle"))
    assert len(pickles) == 1
    assert read_metadata(pickles[0])["start_timestamp"].isoformat() == \
        "2026-03-01T09:30:12.125000+01:00"
    rid = rid_of(folder)
    result = run_recording(instance, resources, rid)
    assert result.success, failure_messages(result)
    store = Warehouse(platform_dirs["warehouse"])
    start = store.read_partition("recordings", rid).start_time.iloc[0]
    assert pd.Timestamp(start) == pd.Timestamp("2026-03-01T08:30:12.125Z")
    rows = store.query("SELECT * FROM tracking_on_imaging(?)", [rid])
    assert len(rows) == 36
    np.testing.assert_allclose(rows.time_s, np.arange(36) / 30.0, atol=1e-9)
