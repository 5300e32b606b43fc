"""The ``dlc-platform`` command: admin (models, registry), analysts (query, status) and
experimenters (predict on their own GPU workstation, reprocess)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dlc_assets import settings
from dlc_tracking.errors import DLCPlatformError


def _registry_path(args) -> Path:
    return Path(args.registry or settings.registry_path())


def cmd_models_add(args) -> None:
    from dlc_tracking.registry.editing import add_model

    name_map = dict(m.split("=", 1) for m in args.map or [])
    snapshot = args.snapshotindex if args.snapshotindex == "best" else int(args.snapshotindex)
    print(f"Inspecting {args.config} (imports DeepLabCut, ~10-30 s) ...", file=sys.stderr)
    entry = add_model(_registry_path(args), args.name, Path(args.config), shuffle=args.shuffle,
                      trainingsetindex=args.trainingsetindex, snapshotindex=snapshot,
                      description=args.description or "", body_part_map=name_map,
                      project_as=args.project_as, pair_with=args.pair)
    print(f"registered {entry.name}: {entry.engine}, scorer {entry.scorer}, body parts "
          f"{entry.canonical_body_parts}, snapshot {entry.derived['snapshot']}")


def cmd_models_list(args) -> None:
    from dlc_tracking.registry.registry_file import load_registry

    registry = load_registry(_registry_path(args))
    for m in registry.models.values():
        print(f"{m.name:24s} {m.engine:10s} {m.scorer:60s} {','.join(m.canonical_body_parts)}")
    if not registry.models:
        print("(no models registered)")


def cmd_models_show(args) -> None:
    import yaml

    from dlc_tracking.registry.registry_file import load_registry

    m = load_registry(_registry_path(args)).model(args.name)
    print(yaml.safe_dump({**m.row(), "body_part_map": m.body_part_map}, sort_keys=False))


def cmd_registry_validate(args) -> None:
    from dlc_tracking.registry.registry_file import load_registry

    registry = load_registry(_registry_path(args))
    problems = registry.validate(check_projects=not args.no_projects)
    for p in problems:
        print(f"PROBLEM: {p}")
    print(f"{registry.path}: {len(registry.models)} model(s), {len(registry.methods)} method(s), "
          f"{len(registry.pairings)} pairing(s): {'INVALID' if problems else 'valid'}")
    if problems:
        raise SystemExit(1)


def cmd_body_parts(args) -> None:
    from dlc_tracking.registry.registry_file import load_registry

    for name, desc in load_registry(_registry_path(args)).body_parts.items():
        print(f"{name:16s} {desc}")


def cmd_query(args) -> None:
    from dlc_tracking.warehouse import Warehouse

    sql = args.sql if args.sql != "-" else sys.stdin.read()
    df = Warehouse(Path(args.warehouse or settings.warehouse_root())).query(sql)
    if args.csv:
        df.to_csv(sys.stdout, index=False)
    else:
        import pandas as pd

        with pd.option_context("display.max_rows", args.max_rows, "display.width", 200):
            print(df.to_string(index=False, max_rows=args.max_rows))


def cmd_status(args) -> None:
    from dlc_assets.status import recording_status

    rows = recording_status(settings.warehouse_root(), args.recording)
    if not rows:
        print("no recordings known to the instance yet")
    for r in rows:
        print(f"{r['recording_id']:50s} {r['status']:10s} {r['detail']}")


def cmd_reprocess(args) -> None:
    import dagster as dg

    from dlc_assets.definitions import defs
    from dlc_assets.partitions import recordings_partitions

    instance = dg.DagsterInstance.get()
    if not instance.has_dynamic_partition(recordings_partitions.name, args.recording):
        instance.add_dynamic_partitions(recordings_partitions.name, [args.recording])
    job = defs.resolve_job_def("process_recording")
    result = job.execute_in_process(partition_key=args.recording, instance=instance,
                                    raise_on_error=False)
    print(f"run {result.run_id}: {'success' if result.success else 'FAILED'}")
    if not result.success:
        for event in result.all_events:
            if event.is_step_failure:
                data = event.step_failure_data
                user = data.user_failure_data
                print((user.description if user and user.description
                       else data.error.message).strip())
        raise SystemExit(1)


def cmd_predict(args) -> None:
    from dlc_tracking.inference.manual_predict import predict_into_session
    from dlc_tracking.registry.registry_file import load_registry

    model = load_registry(_registry_path(args)).model(args.model)
    for video in args.videos:
        out = predict_into_session(model, Path(video), device=args.device,
                                   batch_size=args.batch_size, start_timestamp=args.start_time,
                                   work_dir=Path(args.work_dir or settings.work_dir()))
        print(f"{video}: wrote {out}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dlc-platform", description=__doc__)
    p.add_argument("--registry", help="registry YAML (default: $DLC_PLATFORM_REGISTRY)")
    sub = p.add_subparsers(dest="command", required=True)

    models = sub.add_parser("models", help="registered DLC models").add_subparsers(
        dest="models_command", required=True)
    add = models.add_parser("add", help="register a model from its DLC project")
    add.add_argument("--name", required=True, help="lab-friendly model name")
    add.add_argument("--config", required=True, help="the DLC project's config.yaml")
    add.add_argument("--shuffle", type=int, default=1)
    add.add_argument("--trainingsetindex", type=int, default=0)
    add.add_argument("--snapshotindex", default="-1", help="-1 = last; 'best' (PyTorch)")
    add.add_argument("--description", default="")
    add.add_argument("--map", action="append", metavar="DLC_NAME=CANONICAL",
                     help="map a body-part name of the model onto a canonical name")
    add.add_argument("--pair", action="append", metavar="METHOD",
                     help="accept the pairing of this model with a method")
    add.add_argument("--project-as", help="text stored as project: (e.g. with ${VARS})")
    add.set_defaults(func=cmd_models_add)
    models.add_parser("list").set_defaults(func=cmd_models_list)
    show = models.add_parser("show")
    show.add_argument("name")
    show.set_defaults(func=cmd_models_show)

    reg = sub.add_parser("registry").add_subparsers(dest="registry_command", required=True)
    val = reg.add_parser("validate", help="check the file and every model's project")
    val.add_argument("--no-projects", action="store_true", help="skip the DLC project checks")
    val.set_defaults(func=cmd_registry_validate)
    sub.add_parser("body-parts", help="the canonical vocabulary").set_defaults(func=cmd_body_parts)

    q = sub.add_parser("query", help="SQL on the warehouse (read-only)")
    q.add_argument("sql", help="SQL text, or - for stdin")
    q.add_argument("--csv", action="store_true")
    q.add_argument("--max-rows", type=int, default=50)
    q.add_argument("--warehouse")
    q.set_defaults(func=cmd_query)

    st = sub.add_parser("status", help="processed / failed / skipped per recording")
    st.add_argument("recording", nargs="?")
    st.set_defaults(func=cmd_status)

    rp = sub.add_parser("reprocess", help="run a recording's job again, now, in this process")
    rp.add_argument("recording")
    rp.set_defaults(func=cmd_reprocess)

    pr = sub.add_parser("predict", help="run a registered model on videos and write the "
                        "outputs into each session's dlc_<video stem>/ for ingestion")
    pr.add_argument("videos", nargs="+")
    pr.add_argument("--model", required=True)
    pr.add_argument("--device", default="auto")
    pr.add_argument("--batch-size", type=int, default=8)
    pr.add_argument("--start-time", help="ISO 8601 start (default: from session.yaml)")
    pr.add_argument("--work-dir")
    pr.set_defaults(func=cmd_predict)
    from dlc_assets.cli_worker import add_worker_parser
    add_worker_parser(sub)
    return p


def main(argv: list[str] | None = None) -> None:
    import os

    # The embedded instance of scripts/start.sh, unless another is configured.
    os.environ.setdefault("DAGSTER_HOME", str(settings.PROJECT_ROOT / ".dagster_home"))
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except DLCPlatformError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()


