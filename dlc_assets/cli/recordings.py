"""`recordings list`, `status`, `reprocess`, `predict` and `arena propose`: what experimenters
do with their sessions (docs/sessions.md, docs/inference.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dlc_assets import settings
from dlc_assets.cli.common import print_steps, registry_path
from dlc_tracking.errors import DLCPlatformError

PROPOSAL = "calibration.proposed"


def _disk_rows(known: dict[str, dict]) -> tuple[list, dict[str, dict]]:
    """The recordings on disk, and status rows for what only the disk knows: an empty video
    (an error, not "not settled yet" for ever) and a known recording whose session folder
    is gone."""
    from dlc_tracking.sessions.layout import discover_recordings
    from dlc_tracking.sessions.lifecycle import GONE_FROM_DISK, empty_videos, gone_from_disk

    found = discover_recordings(Path(settings.data_root()))
    rows = {}
    settle_s = float(settings.setting("DLC_PLATFORM_SETTLE_SECONDS", "30"))
    for rid, message in empty_videos(found.recordings, settle_s).items():
        rows[rid] = {"recording_id": rid, "status": "error", "detail": message,
                     "warnings": []}
    for rid in gone_from_disk(list(known), [r.recording_id for r in found.recordings]):
        rows[rid] = {**known[rid], "status": GONE_FROM_DISK, "detail": (
            f"its session folder is not under {settings.data_root()} any more (was: "
            f"{known[rid]['status']}); its rows stay in the warehouse until `dlc-platform "
            f"recordings remove {rid}`")}
    return found, rows


def cmd_status(args) -> None:
    from dlc_assets.status import recording_status

    known = {r["recording_id"]: r for r in recording_status(settings.warehouse_root())}
    _, disk = _disk_rows(known)
    rows = {**known, **disk}
    if args.recording:
        rows = {k: v for k, v in rows.items() if k == args.recording}
    if not rows:
        print("no recordings known to the instance yet")
    for _, r in sorted(rows.items()):
        print(f"{r['recording_id']:50s} {r['status']:24s} {r['detail']}")
        for warning in r["warnings"]:
            print(f"    warning: {warning}")


def cmd_recordings_remove(args) -> None:
    """Remove a recording's rows, NWB file, labeled video and partition, after a
    confirmation (docs/sessions.md)."""
    import dagster as dg

    from dlc_assets.partitions import recordings_partitions
    from dlc_tracking.sessions.layout import discover_recordings
    from dlc_tracking.sessions.lifecycle import remove_recording
    from dlc_tracking.warehouse import Warehouse

    rid = args.recording
    store = Warehouse(Path(args.warehouse or settings.warehouse_root()))
    on_disk = {r.recording_id for r in discover_recordings(Path(settings.data_root())).recordings}
    if rid in on_disk and not args.force:
        raise DLCPlatformError(
            f"recording {rid} is still on disk under {settings.data_root()}: the sensor would "
            "process it again. Delete or move its session folder first, or give --force to "
            "remove its rows anyway.")
    plan = remove_recording(store, rid, dry_run=True)
    instance = dg.DagsterInstance.get()
    has_partition = instance.has_dynamic_partition(recordings_partitions.name, rid)
    if not plan.n_partitions and not plan.files and not has_partition:
        raise DLCPlatformError(f"recording {rid} is not in the warehouse {store.root} nor "
                               "in the instance: nothing to remove. `dlc-platform status` "
                               "lists the known recordings.")
    print(f"recording {rid}: {plan.describe()}; Dagster partition: "
          f"{'yes' if has_partition else 'none'}")
    if not args.yes:
        answer = input("Remove all of this? This cannot be undone. [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("nothing removed")
            return
    done = remove_recording(store, rid)
    if has_partition:
        instance.delete_dynamic_partition(recordings_partitions.name, rid)
    print(f"removed {done.n_partitions} partition(s) of {len(done.partitions)} table(s), "
          f"{len(done.files)} file(s){' and the Dagster partition' if has_partition else ''}")


def cmd_arena_propose(args) -> None:
    import yaml

    from dlc_tracking.tracking.arena_detection import (
        median_frame,
        proposal_png,
        propose_corners,
        shape_warning,
    )

    video = Path(args.video)
    out_dir = Path(args.out) if args.out else video.parent.parent  # <subject>/
    frame = median_frame(video)
    corners, share = propose_corners(frame)
    warning = shape_warning(corners, args.shape, args.width_cm, args.height_cm)
    doc = {"arena": {"shape": args.shape, "width_cm": args.width_cm,
                     **({"height_cm": args.height_cm} if args.height_cm else {}),
                     "corners_px": [[round(float(x), 1), round(float(y), 1)]
                                    for x, y in corners]},
           "notes": f"PROPOSED from the median frame of {video.name} "
                    f"({100 * share:.0f} % of the image): check {PROPOSAL}.png, then rename "
                    "this file to calibration.yaml to use it"
                    + (f". WARNING: {warning}" if warning else "")}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{PROPOSAL}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    (out_dir / f"{PROPOSAL}.png").write_bytes(proposal_png(frame, corners))
    print(f"wrote {out_dir / (PROPOSAL + '.yaml')} and {PROPOSAL}.png: look at the picture; "
          f"if the red outline is the arena floor, rename the .yaml to calibration.yaml")
    if warning:
        print(f"warning: {warning}", file=sys.stderr)


def cmd_recordings_list(args) -> None:
    from dlc_assets.status import recording_status

    known = {r["recording_id"]: r for r in recording_status(settings.warehouse_root())}
    found, disk = _disk_rows(known)
    shown = 0
    sources = {rec.recording_id: rec.source for rec in found.recordings}
    rows = {rid: disk.get(rid) or known.get(rid) or {"status": "new", "detail": "not run yet"}
            for rid in sources}
    rows.update({rid: row for rid, row in disk.items() if rid not in sources})  # gone
    for rid, row in sorted(rows.items()):
        if args.status and not row["status"].startswith(args.status):
            continue
        shown += 1
        print(f"{rid:50s} {row['status']:24s} {sources.get(rid, '-'):13s} {row['detail']}")
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
    defs = build_definitions()  # resources from the env
    _refresh_registry_tables(defs, instance, verbose=getattr(args, "verbose", False))
    job = defs.resolve_job_def("process_recording")
    fp = fingerprint(recording_files(rec))
    # The sensor's run key for this state of the files: the sensor skips what this ran.
    tags = {"dagster/run_key": run_key(rec.recording_id, fp),
            "dlc_platform/recording": rec.recording_id, "dlc_platform/fingerprint": fp,
            "dlc_platform/reprocess": "cli"}
    # Dagster's event log (DEBUG) only with --verbose; otherwise one line per step after.
    level = "DEBUG" if getattr(args, "verbose", False) else "ERROR"
    print(f"{args.recording}: processing (process_recording job) ...", file=sys.stderr)
    result = job.execute_in_process(
        partition_key=args.recording, instance=instance, raise_on_error=False, tags=tags,
        run_config={"loggers": {"console": {"config": {"log_level": level}}}})
    if level != "DEBUG":
        print_steps(result)
    print(f"run {result.run_id}: {'success' if result.success else 'FAILED'}")
    if result.success:
        from dlc_assets.status import check_warnings

        for warning in check_warnings(instance, result.run_id):
            print(f"    warning: {warning}")
    if not result.success:
        for event in result.all_events:
            if event.is_step_failure:
                data = event.step_failure_data
                user = data.user_failure_data
                print((user.description if user and user.description
                       else data.error.message).strip())
        raise SystemExit(1)


def stale_registry_tables(instance, job_def, registry_hash: str) -> list[str]:
    """The registry tables of ``job_def`` (the update_registry job) never materialized, or
    materialized from another content of the registry file than ``registry_hash``."""
    import dagster as dg

    stale = []
    for key in sorted(job_def.asset_layer.executable_asset_keys, key=str):
        event = instance.get_latest_materialization_event(key)
        meta = event.asset_materialization.metadata if event and event.asset_materialization \
            else {}
        made_from = getattr(meta.get("registry_hash"), "value", None)
        if made_from != registry_hash:
            stale.append(key.to_user_string() if isinstance(key, dg.AssetKey) else str(key))
    return stale


def _refresh_registry_tables(defs, instance, *, verbose: bool) -> None:
    """Materialize the registry tables (update_registry job) when they are missing or were
    made from another registry file: without the daemon (its registry sensor does this) a
    recording's lineage would point at models and methods no table holds."""
    from dlc_tracking.registry.registry_file import load_registry

    job = defs.resolve_job_def("update_registry")
    registry = load_registry(Path(settings.registry_path()))
    stale = stale_registry_tables(instance, job, registry.content_hash())
    if not stale:
        return
    print(f"registry tables: materializing {', '.join(stale)} from {registry.path} "
          "(update_registry job) ...", file=sys.stderr)
    level = "DEBUG" if verbose else "ERROR"
    result = job.execute_in_process(
        instance=instance, raise_on_error=False, tags={"dlc_platform/reprocess": "cli"},
        run_config={"loggers": {"console": {"config": {"log_level": level}}}})
    if level != "DEBUG":
        print_steps(result)
    if not result.success:
        for event in result.all_events:
            if event.is_step_failure:
                print(event.step_failure_data.error.message.strip())
        print(f"run {result.run_id}: FAILED (registry tables)")
        raise SystemExit(1)


def cmd_predict(args) -> None:
    from dlc_tracking.inference.manual_predict import predict_into_session
    from dlc_tracking.registry.registry_file import load_registry

    model = load_registry(registry_path(args)).model(args.model)
    cropping = None if args.crop is None else ("on" if args.crop else "off")
    for video in args.videos:
        report: dict = {}
        out = predict_into_session(model, Path(video), device=args.device,
                                   batch_size=args.batch_size, start_timestamp=args.start_time,
                                   work_dir=Path(args.work_dir or settings.work_dir()),
                                   engine=args.engine, precision=args.precision,
                                   tifs=[Path(t) for t in args.tif] if args.tif else None,
                                   tif_timezone=args.tif_timezone, cropping=cropping,
                                   report=report)
        print(f"{video}: wrote {out} ({report.get('summary', '')})")


def add_arena_parser(sub) -> None:
    """`arena propose`."""
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


def add_recordings_parser(sub) -> None:
    """`recordings list | remove`."""
    recs = sub.add_parser("recordings", help="recordings on disk").add_subparsers(
        dest="recordings_command", required=True)
    rl = recs.add_parser("list", help="ids on disk with status and source")
    rl.add_argument("--status", help="only this status (new, processed, failed, skipped, ...)")
    rl.set_defaults(func=cmd_recordings_list)
    rm = recs.add_parser("remove", help="remove a recording's warehouse rows, NWB file, "
                         "labeled video and partition (asks first)")
    rm.add_argument("recording")
    rm.add_argument("--yes", action="store_true", help="do not ask")
    rm.add_argument("--force", action="store_true",
                    help="also when the session is still on disk")
    rm.add_argument("--warehouse", help="warehouse folder (default: $DLC_PLATFORM_WAREHOUSE)")
    rm.set_defaults(func=cmd_recordings_remove)


def add_run_parsers(sub) -> None:
    """`status`, `reprocess` and `predict`."""
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
    pr.add_argument("--crop", action=argparse.BooleanOptionalAction, default=None,
                    help="dynamic cropping around the animal (platform engine, fp32): "
                         "--crop on, --no-crop off; default: the model's registry inference: "
                         "cropping, else $DLC_PLATFORM_CROPPING, else off (docs/inference.md)")
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
