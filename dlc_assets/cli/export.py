"""``dlc-platform export RECORDING --format FORMAT --out PATH``: nwb, movement, dlc-h5, csv,
labeled-video; nwb, dlc-3d-h5, anipose-csv, movement-3d for a multi-camera recording;
nwb, movement, dlc-h5, labeled-video of a multi-animal recording (every individual)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dlc_assets import settings


def _params(rec, registry_path: Path) -> dict | None:
    """The processing parameters the recording was processed with, from the registry."""
    from dlc_tracking.errors import DLCPlatformError
    from dlc_tracking.registry.registry_file import load_registry

    if rec.processed is None or not len(rec.processed) or not registry_path.is_file():
        return None
    name, recorded = rec.processed["params_name"].iloc[0], rec.processed["params_hash"].iloc[0]
    try:
        params = load_registry(registry_path).processing_params(str(name))
    except DLCPlatformError:
        return None
    return params.to_dict() if params.param_hash == recorded else None


def _export_3d(args) -> None:
    """A multi-camera recording's pose_3d rows in a 3D layout (docs/3d.md)."""
    import numpy as np

    from dlc_tracking.io.pose3d_exports import export_pose_3d
    from dlc_tracking.warehouse import Warehouse

    store = Warehouse(Path(args.warehouse or settings.warehouse_root()))
    table = store.read_partition("pose_3d", args.recording)
    times = table.drop_duplicates("frame").sort_values("frame")["time_s"].to_numpy()
    fps = (1.0 / float(np.median(np.diff(times)))) if len(times) > 1 else None
    path = export_pose_3d(table, args.format, Path(args.out), fps=fps)
    print(f"{args.recording}: wrote {path} ({args.format}, {table['frame'].nunique()} "
          f"frames, {path.stat().st_size / 1e6:.2f} MB)")


def cmd_export(args) -> None:
    """Read the recording from the warehouse and write it in the chosen format."""
    from tqdm import tqdm

    from dlc_tracking.io.pose3d_exports import POSE_3D_FORMATS

    if args.format in POSE_3D_FORMATS:
        _export_3d(args)
        return

    from dlc_tracking.io.recording_exports import export_recording
    from dlc_tracking.io.stored_recording import load_stored_recording

    warehouse = Path(args.warehouse or settings.warehouse_root())
    registry = Path(args.registry or settings.registry_path())
    out = Path(args.out)
    from dlc_tracking.io.stored_multi_animal import is_multi_animal_recording
    from dlc_tracking.io.stored_multi_camera import is_multi_camera_recording

    if is_multi_camera_recording(args.recording, warehouse):
        _export_multi_camera(args, warehouse, registry, out)
        return

    if is_multi_animal_recording(args.recording, warehouse):
        if args.format == LABELED_VIDEO:
            _multi_animal_labeled_video(args, warehouse, registry, out)
        else:
            _export_multi_animal(args, warehouse, out)
        return
    if args.format == LABELED_VIDEO:
        _labeled_video(args, warehouse, registry, out)
        return
    with tqdm(total=3, desc=f"export {args.recording}", unit="step", file=sys.stderr,
              disable=args.quiet) as bar:
        bar.set_postfix_str("reading the warehouse")
        rec = load_stored_recording(args.recording, warehouse)
        bar.update()
        params = _params(rec, registry)
        bar.update()
        bar.set_postfix_str(f"writing {args.format}")
        labeled = warehouse / "labeled_videos" / f"{rec.recording_id}.mp4"
        path = export_recording(rec, args.format, out, params=params, labeled_video=labeled)
        bar.update()
        bar.set_postfix_str("done")
    print(f"{args.recording}: wrote {path} ({args.format}, {rec.n_frames} frames, "
          f"{path.stat().st_size / 1e6:.2f} MB)")
    if args.format == "nwb":
        missing = [k for k in ("species", "sex", "age") if k not in rec.subject]
        if missing:
            print(f"note: no {', '.join(missing)} for subject {rec.info['subject']}: DANDI "
                  "needs them; add them to the subject's subject.yaml (docs/exports.md).",
                  file=sys.stderr)
        if params is None:
            print("note: processing parameters not found in the registry (or changed since "
                  "processing): only their name and hash are in the file.", file=sys.stderr)


MULTI_CAMERA_FORMATS = ("nwb",)
"""Formats of a multi-camera recording besides the 3D layouts (POSE_3D_FORMATS)."""


def _export_multi_camera(args, warehouse: Path, registry_path: Path, out: Path) -> None:
    """A multi-camera recording as NWB: 3D pose, cameras with their calibration, each
    camera's 2D pose and the processed 3D tracking (docs/3d.md)."""
    from dlc_tracking.errors import WarehouseError
    from dlc_tracking.io.pose3d_exports import POSE_3D_FORMATS
    from dlc_tracking.io.pose3d_nwb import export_multi_camera_nwb
    from dlc_tracking.io.stored_multi_camera import load_stored_multi_camera

    if args.format not in MULTI_CAMERA_FORMATS:
        raise WarehouseError(
            f"recording {args.recording} is a multi-camera recording: export it with --format "
            f"{' / '.join((*MULTI_CAMERA_FORMATS, *POSE_3D_FORMATS))} (docs/3d.md); "
            f"{args.format} is a single-camera layout.")
    rec = load_stored_multi_camera(args.recording, warehouse)
    params = _params(rec, registry_path)
    path = export_multi_camera_nwb(rec, out, params=params)
    print(f"{args.recording}: wrote {path} (nwb, {rec.n_frames} frames, cameras "
          f"{', '.join(rec.cameras)}, {path.stat().st_size / 1e6:.2f} MB)")
    missing = [k for k in ("species", "sex", "age") if k not in rec.subject]
    if missing:
        print(f"note: no {', '.join(missing)} for subject {rec.subject_id}: DANDI needs "
              "them; add them to the subject's subject.yaml (docs/exports.md).",
              file=sys.stderr)


def _export_multi_animal(args, warehouse: Path, out: Path) -> None:
    """A multi-animal recording: every individual, under the maDLC file's names."""
    from dlc_tracking.io.madlc_exports import export_multi_animal
    from dlc_tracking.io.madlc_nwb import missing_subject_facts
    from dlc_tracking.io.stored_multi_animal import load_stored_multi_animal

    rec = load_stored_multi_animal(args.recording, warehouse)
    path = export_multi_animal(rec, args.format, out)
    print(f"{args.recording}: wrote {path} ({args.format}, {rec.n_frames} frames, "
          f"{len(rec.subjects)} individuals: {', '.join(rec.subjects)}, "
          f"{path.stat().st_size / 1e6:.2f} MB)")
    if args.format == "nwb":
        for subject, missing in missing_subject_facts(rec).items():
            print(f"note: no {', '.join(missing)} for subject {subject}: DANDI needs them; "
                  "add them to the subject's subject.yaml (docs/exports.md).",
                  file=sys.stderr)


LABELED_VIDEO = "labeled-video"
"""The format that draws the pose on the video (the labeled_videos asset's picture)."""


def _labeled_video(args, warehouse: Path, registry_path: Path, out: Path) -> None:
    """Draw the recording's labeled video into ``out``, one progress bar over frames."""
    from tqdm import tqdm

    from dlc_tracking.io.stored_recording import load_stored_recording
    from dlc_tracking.qc.labeled_video import render_recording
    from dlc_tracking.registry.registry_file import load_registry
    from dlc_tracking.warehouse import Warehouse

    rec = load_stored_recording(args.recording, warehouse)
    registry = load_registry(registry_path) if registry_path.is_file() else None
    with tqdm(total=rec.n_frames, desc=f"labeled video {args.recording}", unit="frame",
              file=sys.stderr, disable=args.quiet) as bar:
        def progress(done: int, total: int, fps: float) -> None:
            bar.update(done - bar.n)

        result, cutoff = render_recording(rec, out, Warehouse(warehouse), registry,
                                          progress=progress, progress_interval_s=0.5)
    print(f"{args.recording}: wrote {result.path} (labeled video, {result.n_frames} frames, "
          f"{result.frames_per_s:.0f} frames/s, body parts below likelihood {cutoff:g} not "
          "drawn)")


def _multi_animal_labeled_video(args, warehouse: Path, registry_path: Path, out: Path) -> None:
    """A multi-animal recording's labeled video: one colour per individual, its subject id
    beside it (dlc_tracking.qc.social_video)."""
    from tqdm import tqdm

    from dlc_tracking.io.stored_multi_animal import load_stored_multi_animal
    from dlc_tracking.qc.social_video import render_multi_animal_recording
    from dlc_tracking.registry.registry_file import load_registry
    from dlc_tracking.warehouse import Warehouse

    rec = load_stored_multi_animal(args.recording, warehouse)
    registry = load_registry(registry_path) if registry_path.is_file() else None
    with tqdm(total=rec.n_frames, desc=f"labeled video {args.recording}", unit="frame",
              file=sys.stderr, disable=args.quiet) as bar:
        def progress(done: int, total: int, fps: float) -> None:
            bar.update(done - bar.n)

        result, cutoff = render_multi_animal_recording(
            rec, out, Warehouse(warehouse), registry, progress=progress,
            progress_interval_s=0.5)
    tracks = ", ".join(f"{ind} {subject or '(anonymous)'}"
                       for ind, subject in rec.subjects.items())
    print(f"{args.recording}: wrote {result.path} (labeled video, {result.n_frames} frames, "
          f"{result.frames_per_s:.0f} frames/s, {len(rec.subjects)} individuals: {tracks}; "
          f"body parts below likelihood {cutoff:g} not drawn)")


def add_export_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``export`` command to the ``dlc-platform`` parser."""
    from dlc_tracking.io.pose3d_exports import POSE_3D_FORMATS
    from dlc_tracking.io.recording_exports import FORMATS

    ex = subparsers.add_parser(
        "export", help="write one recording as NWB, a movement dataset (netCDF), a DLC h5, "
        "a CSV of its processed tracking, or a labeled video (docs/exports.md)")
    ex.add_argument("recording", help="recording id (see `dlc-platform status`)")
    ex.add_argument("--format", required=True,
                    choices=(*FORMATS, LABELED_VIDEO, *POSE_3D_FORMATS),
                    help="a multi-camera recording: nwb (3D pose, calibrated cameras, "
                    "processed 3D tracking), dlc-3d-h5, anipose-csv, movement-3d of its "
                    "pose_3d (docs/3d.md)")
    ex.add_argument("--out", required=True, help="output file")
    ex.add_argument("--warehouse", help="warehouse folder (default: $DLC_PLATFORM_WAREHOUSE)")
    ex.add_argument("--quiet", action="store_true", help="no progress bar")
    ex.set_defaults(func=cmd_export)
    return ex
