"""The production instance configuration on a real PostgreSQL server (loopback)."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from tests.pipeline_helpers import rid_of, session_with_manual_outputs
from tests.services import postgres_server

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def pg():
    with postgres_server() as server:
        yield server


def test_sensor_tick_and_materialization_on_postgres(pg, tmp_path, monkeypatch, resources,
                                                     platform_dirs, registry):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.production.yaml", home / "dagster.yaml")
    for key, value in {"DAGSTER_PG_HOST": pg["host"], "DAGSTER_PG_PORT": str(pg["port"]),
                       "DAGSTER_PG_DB": pg["db"], "DAGSTER_PG_USERNAME": pg["user"],
                       "DAGSTER_PG_PASSWORD": pg["password"],
                       "DLC_PLATFORM_MAX_CONCURRENT_RUNS": "2",
                       "DLC_PLATFORM_SETTLE_SECONDS": "0"}.items():
        monkeypatch.setenv(key, value)

    from dagster_postgres import PostgresRunStorage

    from dlc_assets.definitions import build_definitions
    from sensors.sessions import new_recordings_sensor

    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        folder = session_with_manual_outputs(platform_dirs["data_root"], "m", "s",
                                             registry.model("tiny_openfield").scorer,
                                             ["nose", "left_ear", "right_ear", "tail_base"])
        rid = rid_of(folder)
        context = dg.build_sensor_context(instance=instance,
                                          resources={"data_root": resources["data_root"]})
        tick = new_recordings_sensor(context)
        assert [r.partition_key for r in tick.run_requests] == [rid]
        for request in tick.dynamic_partitions_requests:
            instance.add_dynamic_partitions(request.partitions_def_name,
                                            list(request.partition_keys))
        job = build_definitions(resources).resolve_job_def("process_recording")
        result = job.execute_in_process(partition_key=rid, instance=instance)
        assert result.success

    import psycopg2

    with psycopg2.connect(host=pg["host"], port=pg["port"], user=pg["user"],
                          dbname=pg["db"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM runs WHERE status = 'SUCCESS'")
        assert cur.fetchone()[0] == 1
        cur.execute("SELECT partition FROM dynamic_partitions")
        assert [row[0] for row in cur.fetchall()] == [rid]
