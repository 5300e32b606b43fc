"""`recordings list`, `status`, `reprocess`, `predict` and `arena propose`: what experimenters
do with their sessions (docs/sessions.md, docs/inference.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dlc_assets import settings
from dlc_assets.cli.common import registry_path
from dlc_tracking.errors import DLCPlatformError

PROPOSAL = "calibration.proposed"


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
    """`recordings list`."""
    recs = sub.add_parser("recordings", help="recordings on disk").add_subparsers(
        dest="recordings_command", required=True)
    rl = recs.add_parser("list", help="ids on disk with status and source")
    rl.add_argument("--status", help="only this status (new, processed, failed, skipped, ...)")
    rl.set_defaults(func=cmd_recordings_list)


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
