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
    from dlc_tracking.registry.editing import add_ingest_only_model, add_model

    name_map = dict(m.split("=", 1) for m in args.map or [])
    if args.from_outputs or args.ingest_only:
        if not args.from_outputs and not args.config:
            raise DLCPlatformError("--ingest-only needs --config CONFIG.yaml (with --scorer), "
                                   "or use --from-outputs FILE.h5|FILE.csv.")
        entry = add_ingest_only_model(
            _registry_path(args), args.name,
            outputs_file=Path(args.from_outputs) if args.from_outputs else None,
            config_path=Path(args.config) if args.config else None, scorer=args.scorer,
            shuffle=args.shuffle, trainingsetindex=args.trainingsetindex or 0,
            description=args.description or "", body_part_map=name_map, pair_with=args.pair)
        print(f"registered {entry.name} (ingest-only): {entry.engine}, scorer {entry.scorer}, "
              f"body parts {entry.canonical_body_parts}; its outputs are ingested, it never "
              "runs inference")
        return
    if not args.config:
        raise DLCPlatformError("give --config PROJECT/config.yaml (a trained model), or "
                               "--from-outputs FILE / --ingest-only for a model known only by "
                               "its outputs.")
    snapshot = args.snapshotindex if args.snapshotindex == "best" else int(args.snapshotindex)
    print(f"Inspecting {args.config} (imports DeepLabCut, ~10-30 s) ...", file=sys.stderr)
    entry = add_model(_registry_path(args), args.name, Path(args.config),
                      shuffle=1 if args.shuffle is None else args.shuffle,
                      trainingsetindex=args.trainingsetindex or 0, snapshotindex=snapshot,
                      description=args.description or "", body_part_map=name_map,
                      project_as=args.project_as, pair_with=args.pair)
    print(f"registered {entry.name}: {entry.engine}, scorer {entry.scorer}, body parts "
          f"{entry.canonical_body_parts}, snapshot {entry.derived['snapshot']}")


def cmd_models_pair(args) -> None:
    from dlc_tracking.registry.editing import pair, unpair

    (unpair if args.models_command == "unpair" else pair)(_registry_path(args), args.model,
                                                           args.method)
    print(f"{'removed' if args.models_command == 'unpair' else 'accepted'} pairing "
          f"{args.model} x {args.method}")


def cmd_processing_list(args) -> None:
    from dlc_tracking.registry.registry_file import load_registry

    registry = load_registry(_registry_path(args))
    defaults = {v: k for k, v in registry.default_processing.items()}
    for name, params in registry.processing.items():
        note = f"default of {defaults[name]}" if name in defaults else ""
        print(f"{name:24s} {params.param_hash}  {note}")


def cmd_processing_show(args) -> None:
    import yaml

    from dlc_tracking.registry.registry_file import load_registry

    params = load_registry(_registry_path(args)).processing_params(args.name)
    print(yaml.safe_dump(params.to_dict(), sort_keys=False))


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

    registry = load_registry(_registry_path(args))
    m = registry.model(args.name)
    methods = [method for model, method in registry.pairings if model == m.name]
    print(yaml.safe_dump({**m.row(), "body_part_map": m.body_part_map, "paired_methods": methods},
                         sort_keys=False, allow_unicode=True))
    from dlc_assets.cli_training import print_model_lifecycle
    print_model_lifecycle(registry, m.name)  # training:, trained:, evaluation (docs/models.md)


def cmd_registry_validate(args) -> None:
    from dlc_tracking.registry.registry_file import load_registry

    registry = load_registry(_registry_path(args))
    problems = registry.validate(check_projects=not args.no_projects)
    for p in problems:
        print(f"PROBLEM: {p}")
    for m in registry.models.values():
        if m.ingest_only and not any(f"model {m.name!r}" in p for p in problems):
            print(f"{m.name}: valid as ingest-only (scorer {m.scorer}; outputs are ingested, "
                  "no inference)")
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
        print(f"{r['recording_id']:50s} {r['status']:24s} {r['detail']}")
        for warning in r["warnings"]:
            print(f"    warning: {warning}")


def cmd_arena_propose(args) -> None:
    import yaml

    from dlc_tracking.tracking.arena_detection import median_frame, proposal_png, propose_corners

    video = Path(args.video)
    out_dir = Path(args.out) if args.out else video.parent.parent  # <subject>/
    frame = median_frame(video)
    corners, share = propose_corners(frame)
    doc = {"arena": {"shape": args.shape, "width_cm": args.width_cm,
                     **({"height_cm": args.height_cm} if args.height_cm else {}),
                     "corners_px": [[round(float(x), 1), round(float(y), 1)]
                                    for x, y in corners]},
           "notes": f"PROPOSED from the median frame of {video.name} "
                    f"({100 * share:.0f} % of the image): check {PROPOSAL}.png, then rename "
                    "this file to calibration.yaml to use it"}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{PROPOSAL}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    (out_dir / f"{PROPOSAL}.png").write_bytes(proposal_png(frame, corners))
    print(f"wrote {out_dir / (PROPOSAL + '.yaml')} and {PROPOSAL}.png: look at the picture; "
          f"if the red outline is the arena floor, rename the .yaml to calibration.yaml")


PROPOSAL = "calibration.proposed"


def cmd_recordings_list(args) -> None:
    from dlc_assets.status import recording_status
    from dlc_tracking.sessions.layout import discover_recordings

    found = discover_recordings(Path(settings.data_root()))
    known = {r["recording_id"]: r for r in recording_status(settings.warehouse_root())}
    shown = 0
    for rec in found.recordings:
        row = known.get(rec.recording_id, {"status": "new", "detail": "not run yet"})
        if args.status and not row["status"].startswith(args.status):
            continue
        shown += 1
        print(f"{rec.recording_id:50s} {row['status']:24s} {rec.source:13s} {row['detail']}")
    for problem in found.problems:
        print(f"problem: {problem}", file=sys.stderr)
    print(f"{shown} recording(s) under {settings.data_root()}", file=sys.stderr)


def cmd_reprocess(args) -> None:
    import dagster as dg

    from dlc_assets.definitions import build_definitions
    from dlc_assets.partitions import recordings_partitions
    from dlc_tracking.sessions.layout import closest_recording_ids, discover_recordings
    from dlc_tracking.sessions.scanning import fingerprint, recording_files, run_key

    found = {r.recording_id: r for r in discover_recordings(Path(settings.data_root())).recordings}
    rec = found.get(args.recording)
    if rec is None:
        close = closest_recording_ids(args.recording, list(found))
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise DLCPlatformError(
            f"recording {args.recording!r} is not under {settings.data_root()}.{hint} "
            "`dlc-platform recordings list` shows the recordings on disk.")
    instance = dg.DagsterInstance.get()
    if not instance.has_dynamic_partition(recordings_partitions.name, args.recording):
        instance.add_dynamic_partitions(recordings_partitions.name, [args.recording])
    job = build_definitions().resolve_job_def("process_recording")  # resources from the env
    fp = fingerprint(recording_files(rec))
    # The sensor's run key for this state of the files: the sensor skips what this ran.
    tags = {"dagster/run_key": run_key(rec.recording_id, fp),
            "dlc_platform/recording": rec.recording_id, "dlc_platform/fingerprint": fp,
            "dlc_platform/reprocess": "cli"}
    result = job.execute_in_process(partition_key=args.recording, instance=instance,
                                    raise_on_error=False, tags=tags)
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
                                   work_dir=Path(args.work_dir or settings.work_dir()),
                                   engine=args.engine, precision=args.precision,
                                   tifs=[Path(t) for t in args.tif] if args.tif else None,
                                   tif_timezone=args.tif_timezone)
        print(f"{video}: wrote {out}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dlc-platform", description=__doc__)
    p.add_argument("--registry", help="registry YAML (default: $DLC_PLATFORM_REGISTRY)")
    sub = p.add_subparsers(dest="command", required=True)

    models = sub.add_parser("models", help="registered DLC models").add_subparsers(
        dest="models_command", required=True)
    add = models.add_parser("add", help="register a model from its DLC project, or from its "
                            "outputs only (ingest-only)")
    add.add_argument("--name", required=True, help="lab-friendly model name")
    add.add_argument("--config", help="the DLC project's config.yaml")
    add.add_argument("--ingest-only", action="store_true",
                     help="register from config.yaml without model folders (with --scorer)")
    add.add_argument("--from-outputs", metavar="FILE",
                     help="register from a DLC output .h5/.csv (scorer and body parts read "
                     "from it); implies --ingest-only")
    add.add_argument("--scorer", help="the scorer of an ingest-only model's outputs")
    add.add_argument("--shuffle", type=int, default=None, help="default 1 (ingest-only: "
                     "parsed from the scorer)")
    add.add_argument("--trainingsetindex", type=int, default=None)
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
    for verb, text in (("pair", "accept a model x method pairing"),
                       ("unpair", "remove a model x method pairing")):
        pp = models.add_parser(verb, help=text)
        pp.add_argument("model")
        pp.add_argument("method")
        pp.set_defaults(func=cmd_models_pair)
    from dlc_assets.cli_review import add_review_parsers
    add_review_parsers(models)  # models review | compare | promote
    from dlc_assets.cli_training import add_training_parsers
    add_training_parsers(models)  # models train | evaluate | merge

    proc = sub.add_parser("processing", help="processing parameter sets").add_subparsers(
        dest="processing_command", required=True)
    proc.add_parser("list", help="the sets of the registry").set_defaults(
        func=cmd_processing_list)
    ps = proc.add_parser("show", help="every key of one set (docs/processing.md)")
    ps.add_argument("name")
    ps.set_defaults(func=cmd_processing_show)

    arena = sub.add_parser("arena", help="the arena outline that calibrates px -> cm"
                           ).add_subparsers(dest="arena_command", required=True)
    ap = arena.add_parser("propose", help="propose the arena's corners from a video (median "
                          "frame) as <subject>/calibration.proposed.yaml + .png to confirm")
    ap.add_argument("video")
    ap.add_argument("--width-cm", type=float, required=True)
    ap.add_argument("--height-cm", type=float)
    ap.add_argument("--shape", default="square", choices=["square", "rectangle"])
    ap.add_argument("--out", help="folder for the proposal (default: the subject folder)")
    ap.set_defaults(func=cmd_arena_propose)

    recs = sub.add_parser("recordings", help="recordings on disk").add_subparsers(
        dest="recordings_command", required=True)
    rl = recs.add_parser("list", help="ids on disk with status and source")
    rl.add_argument("--status", help="only this status (new, processed, failed, skipped, ...)")
    rl.set_defaults(func=cmd_recordings_list)

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
    pr.add_argument("--batch-size", type=int, default=None,
                    help="frames per forward pass (default: 8 on the CPU, 32 on CUDA)")
    pr.add_argument("--engine", choices=("platform", "dlc"), default="platform",
                    help="platform: the batched engine (default); dlc: DeepLabCut's "
                         "analyze_videos (a model's registry inference_engine wins)")
    pr.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                    help="fp32 (default); bf16: faster, kept per video only if its first "
                         "frames agree with fp32 within 0.5 px (docs/inference.md)")
    pr.add_argument("--start-time", help="ISO 8601 start (default: from session.yaml)")
    pr.add_argument("--tif", nargs="+", metavar="TIF",
                    help="the session's ScanImage tifs, in acquisition order: their "
                         "acquisition start becomes the outputs' Start Timestamp "
                         "(docs/imaging.md)")
    pr.add_argument("--tif-timezone", metavar="TZ",
                    help="time zone of the microscope computer (e.g. Europe/Oslo, +01:00); "
                         "default: session.yaml's imaging timezone or start_time's")
    pr.add_argument("--work-dir")
    pr.set_defaults(func=cmd_predict)
    from dlc_assets.cli_worker import add_worker_parser
    add_worker_parser(sub)
    from dlc_assets.cli_export import add_export_parser
    add_export_parser(sub)
    return p


def main(argv: list[str] | None = None) -> None:
    import os

    # The embedded instance of scripts/start.sh, unless another is configured.
    os.environ.setdefault("DAGSTER_HOME", str(settings.PROJECT_ROOT / ".dagster_home"))
    args = build_parser().parse_args(argv)
    settings.ensure_dagster_home()
    try:
        args.func(args)
    except DLCPlatformError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()


