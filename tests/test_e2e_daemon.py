"""End to end, as a lab runs it: webserver + daemon (`dagster dev`) in subprocesses on a
temporary DAGSTER_HOME and data root; a synthetic session copied in is processed by the
sensor with no other action (real DLC inference with the tiny model), the results are in
DuckDB; a backfill over two partitions is launched through the webserver's GraphQL API;
a headless Chromium screenshot of the asset graph is saved as a test artifact."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from dlc_tracking.synthetic.openfield import make_session
from dlc_tracking.warehouse import Warehouse
from tests.services import free_port

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _wait(predicate, timeout_s: float, what: str, proc=None, log=None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"dagster dev exited while waiting for {what}:\n"
                                 + (log.read_text()[-4000:] if log else ""))
        value = predicate()
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}\n"
                         + (log.read_text()[-6000:] if log else ""))


def _graphql(port: int, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        out = json.loads(resp.read())
    assert "errors" not in out, out
    return out["data"]


def _up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture
def platform(tmp_path, registry_path):
    home, data, warehouse, work = (tmp_path / n for n in ("home", "data", "warehouse", "work"))
    for d in (home, data, warehouse, work):
        d.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    port = free_port()
    env = dict(os.environ, DAGSTER_HOME=str(home), DLC_PLATFORM_DATA_ROOT=str(data),
               DLC_PLATFORM_REGISTRY=str(registry_path), DLC_PLATFORM_WAREHOUSE=str(warehouse),
               DLC_PLATFORM_WORK_DIR=str(work), DLC_PLATFORM_DEVICE="cpu",
               DLC_PLATFORM_SETTLE_SECONDS="1")
    log = tmp_path / "dagster-dev.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster"), "dev", "-w", "workspace.yaml",
             "-h", "127.0.0.1", "-p", str(port)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait(lambda: _up(port), 180, "the webserver", proc, log)
        yield {"port": port, "data": data, "warehouse": Warehouse(warehouse), "proc": proc,
               "log": log, "tmp": tmp_path}
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)


def test_copied_session_is_processed_and_backfilled(platform, artifacts_dir):
    # Sessions are written elsewhere and copied in, as an experimenter does.
    staging = platform["tmp"] / "staging"
    rids = []
    for i, view in enumerate(("above", "below")):
        make_session(staging, "mouse1", f"day{i}_{view}", n_frames=45, seed=10 + i,
                     camera_view=view)
        shutil.copytree(staging / "mouse1" / f"day{i}_{view}",
                        platform["data"] / "mouse1" / f"day{i}_{view}")
        rids.append(f"mouse1__day{i}_{view}__openfield")
    store, log = platform["warehouse"], platform["log"]

    def processed():
        return set(rids) <= set(store.partitions("processed_tracking"))

    _wait(processed, 600, "the sensor-driven runs to materialize processed_tracking",
          platform["proc"], log)
    df = store.query("SELECT recording_id, count(*) AS n, avg(speed_cm_s) AS v FROM "
                     "processed_tracking GROUP BY recording_id ORDER BY recording_id")
    assert list(df.recording_id) == sorted(rids) and set(df.n) == {45}

    before = set(store.query("SELECT DISTINCT recording_id, frame FROM predictions"
                             ).itertuples(index=False))
    launched = _graphql(platform["port"], """
        mutation($params: LaunchBackfillParams!) {
          launchPartitionBackfill(backfillParams: $params) {
            __typename
            ... on LaunchBackfillSuccess { backfillId }
            ... on PythonError { message }
          }
        }""", {"params": {"partitionNames": rids, "assetSelection": [
        {"path": ["dlc_predictions"]}, {"path": ["raw_state_vectors"]},
        {"path": ["processed_tracking"]}]}})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]

    def finished():
        status = _graphql(platform["port"], """
            query($id: String!) { partitionBackfillOrError(backfillId: $id) {
              ... on PartitionBackfill { status } } }""",
                          {"id": backfill_id})["partitionBackfillOrError"]["status"]
        assert status not in ("FAILED", "CANCELED", "COMPLETED_FAILED"), status
        return status in ("COMPLETED", "COMPLETED_SUCCESS")

    _wait(finished, 600, "the backfill", platform["proc"], log)
    runs = _graphql(platform["port"], """
        query($id: String!) { runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
          ... on Runs { results { status } } } }""", {"id": backfill_id})
    statuses = [r["status"] for r in runs["runsOrError"]["results"]]
    assert statuses and set(statuses) == {"SUCCESS"}, statuses
    after = set(store.query("SELECT DISTINCT recording_id, frame FROM predictions"
                            ).itertuples(index=False))
    assert after == before

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "chromium is not installed: run scripts/services.sh"
    shot = artifacts_dir / "asset-graph.png"
    shot.unlink(missing_ok=True)
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--disable-quic",
                    f"--user-data-dir={platform['tmp'] / 'chromium'}",
                    "--window-size=1600,1000", "--virtual-time-budget=20000",
                    f"--screenshot={shot}",
                    f"http://127.0.0.1:{platform['port']}"
                    "/locations/dlc_platform/asset-groups/tracking"],
                   check=True, capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000
