"""A synthetic recording processed through the real Dagster jobs, shared by the export
tests (NWB, movement, labeled video, plots): built once per test module."""

from __future__ import annotations

from pathlib import Path

from tests.pipeline_helpers import failure_messages, rid_of, session_with_manual_outputs

PARTS = ["nose", "left_ear", "right_ear", "tail_base"]


def resources_for(dirs: dict[str, Path]) -> dict:
    from resources import DataRoot, DLCInference, WarehouseResource

    return {
        "data_root": DataRoot(path=str(dirs["data_root"]), registry_path=str(dirs["registry"])),
        "warehouse": WarehouseResource(root=str(dirs["warehouse"])),
        "dlc_inference": DLCInference(device="cpu", batch_size=8, work_dir=str(dirs["work"])),
    }


def make_dirs(root: Path, registry_path: Path) -> dict[str, Path]:
    dirs = {"data_root": root / "data", "warehouse": root / "warehouse", "work": root / "work",
            "registry": registry_path, "home": root / "dagster_home"}
    for key in ("data_root", "warehouse", "work", "home"):
        dirs[key].mkdir(parents=True, exist_ok=True)
    (dirs["home"] / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return dirs


def run_job(instance, resources: dict, job_name: str, rid: str | None = None):
    from dlc_assets.definitions import build_definitions

    if rid is not None and not instance.has_dynamic_partition("recordings", rid):
        instance.add_dynamic_partitions("recordings", [rid])
    job = build_definitions(resources).resolve_job_def(job_name)
    kwargs = {"partition_key": rid} if rid is not None else {}
    result = job.execute_in_process(instance=instance, raise_on_error=False, **kwargs)
    assert result.success, failure_messages(result)
    return result


def processed_recording(instance, dirs: dict[str, Path], scorer: str, *, subject: str = "m1",
                        session: str = "s1", n_frames: int = 150, seed: int = 3,
                        **session_kwargs) -> dict:
    """Registry tables, then one synthetic session through process_recording."""
    resources = resources_for(dirs)
    run_job(instance, resources, "update_registry")
    folder = session_with_manual_outputs(dirs["data_root"], subject, session, scorer, PARTS,
                                         n_frames=n_frames, seed=seed, **session_kwargs)
    rid = rid_of(folder)
    run_job(instance, resources, "process_recording", rid)
    return {"rid": rid, "folder": folder, "resources": resources, **dirs}
