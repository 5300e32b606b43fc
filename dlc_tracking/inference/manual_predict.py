"""``predict`` for experimenters: run a registered model on their own GPU workstation and
leave the outputs where the platform ingests them, with no manual step.

The seed pipeline made users add a "Start Timestamp" to DLC's pickle by hand; here the
outputs go to ``<session>/dlc_<video stem>/`` with DLC's own names, the metadata pickle
carries the start timestamp (from session.yaml unless given), and the files appear by
rename so the session sensor never sees a half-written set.
"""

from __future__ import annotations

import os
import pickle
import shutil
import sys
from pathlib import Path

from dlc_tracking.errors import DLCFileError
from dlc_tracking.inference.choice import infer_video
from dlc_tracking.io.video import probe_video
from dlc_tracking.registry.registry_file import ModelEntry
from dlc_tracking.sessions.layout import MANUAL_OUTPUT_PREFIX, SESSION_FILE, load_session_metadata


def _progress_bar():
    from tqdm import tqdm

    bar = {"bar": None}

    def update(done: int, total: int, _elapsed: float) -> None:
        if bar["bar"] is None:
            bar["bar"] = tqdm(total=total, unit="frame", desc="DLC", file=sys.stderr)
        bar["bar"].update(done - bar["bar"].n)

    return update, bar


def predict_into_session(model: ModelEntry, video: Path, *, device: str = "auto",
                         batch_size: int | None = None, start_timestamp: str | None = None,
                         work_dir: Path, engine: str = "platform",
                         precision: str = "fp32", tifs: list[Path] | None = None,
                         tif_timezone: str | None = None, cropping: str | None = None,
                         report: dict | None = None) -> Path:
    """Run a model on one video and write DLC's outputs into the session's ``dlc_<stem>/``.

    ``engine``: ``platform`` (the batched engine; models it does not cover and legacy
    TensorFlow models run DLC's analyze_videos) or ``dlc``; the model's registry entry
    (``inference_engine:``) wins. ``batch_size`` None: the engine's default for the device.
    ``tifs``: the session's ScanImage tifs; their acquisition start becomes the pickle's
    "Start Timestamp" when none is declared (a declared one that differs is a warning).
    ``cropping`` ``on``/``off`` (None: the model's registry ``inference: {cropping:}``, else
    ``$DLC_PLATFORM_CROPPING``, else off). ``report``, when given, receives ``summary``: one
    line saying which engine, runtime, precision and cropping ran, and the frames/s.
    """
    from dlc_tracking.inference.cropping import settings_from_registry

    model_cropping, crop_settings = settings_from_registry(model.inference)
    video = Path(video).absolute()
    info = probe_video(video)
    start_timestamp = resolve_start_timestamp(video, start_timestamp, tifs, tif_timezone)
    model.check_available()
    # Other models' outputs may stay in dlc_<stem>/: the recording's assignment says which
    # model is current, the others are kept as alternatives (docs/models.md).
    scratch = (Path(work_dir).absolute() / "predict"
               / f"{video.parent.name}-{video.stem}-{model.name}")
    update, bar = _progress_bar()
    d = model.derived
    result = infer_video(
        engine_choice=engine, model_override=model.inference_engine,
        project_config=model.project_config, engine=model.engine, shuffle=model.shuffle,
        trainingsetindex=model.trainingsetindex, snapshot_rel=d["snapshot"],
        model_folder=d["model_folder"], iteration=int(d["iteration"]),
        task_date=f"{d['task']}{d['date']}", expected_scorer=model.scorer, video=video,
        output_dir=scratch, staging_root=Path(work_dir).absolute() / "staging", device=device,
        batch_size=batch_size, progress=update, progress_interval_s=0.5, video_info=info,
        log=lambda message: print(message, file=sys.stderr), precision=precision,
        cropping=cropping if cropping is not None else model_cropping,
        crop_settings=crop_settings, runtime=model.inference.get("runtime"))
    if report is not None:
        report["summary"] = result.extra.get("summary") or (
            f"DeepLabCut analyze_videos ({result.engine}), {result.frames_per_s:.1f} frames/s"
            + (f"; {result.extra['engine_fallback']}" if "engine_fallback" in result.extra
               else ""))
    if bar["bar"] is not None:
        bar["bar"].close()
    if result.meta_path is not None:
        with open(result.meta_path, "rb") as f:
            meta = pickle.load(f)
        meta.setdefault("data", {})["Start Timestamp"] = start_timestamp
        meta["Start Timestamp"] = start_timestamp
        with open(result.meta_path, "wb") as f:
            pickle.dump(meta, f, pickle.HIGHEST_PROTOCOL)
    target = video.parent / f"{MANUAL_OUTPUT_PREFIX}{video.stem}"
    target.mkdir(exist_ok=True)
    keep = [p for p in (result.h5_path, result.meta_path) if p is not None]
    # Metadata first, predictions last: the h5 is what makes the set ingestible.
    for path in sorted(keep, key=lambda p: p.suffix == ".h5"):
        tmp = target / f".{path.name}.tmp"
        shutil.copy2(path, tmp)
        os.replace(tmp, target / path.name)
    shutil.rmtree(scratch, ignore_errors=True)
    return target


def resolve_start_timestamp(video: Path, start_timestamp: str | None,
                            tifs: list[Path] | None = None,
                            tif_timezone: str | None = None) -> str:
    """The "Start Timestamp" (ISO 8601) for a video's outputs: ``--start-time``, else the
    session.yaml's start_time, else the imaging tifs' acquisition start (``--tif``, or the
    session.yaml's ``imaging: scanimage:``). A declared start that disagrees with the tifs'
    by more than the session's ``imaging: max_clock_offset_s`` (1 s without one) is
    printed as a warning with both values. ``--start-time`` is used as given, without
    reading session.yaml (only tifs given with ``--tif`` are compared).

    Raises
    ------
    DLCFileError, ImagingError, SessionError
        No start anywhere; tifs that are not ScanImage or of two acquisitions.
    """
    from dlc_tracking.imaging.start_time import MISMATCH_TOLERANCE_S, start_from_tifs

    tolerance = MISMATCH_TOLERANCE_S
    if start_timestamp is not None:
        # given on the command line: used as it is, without reading session.yaml (a broken
        # one must not block it); only tifs given with --tif are compared
        from dlc_tracking.io.dlc_files import parse_start_timestamp

        declared = parse_start_timestamp(start_timestamp, source="--start-time")
        if tifs:
            _, warnings = start_from_tifs([Path(t) for t in tifs], tif_timezone, declared)
            for warning in warnings:
                print(f"warning: {warning}", file=sys.stderr)
        return declared.isoformat()
    session_yaml = Path(video).parent / SESSION_FILE
    meta = load_session_metadata(session_yaml) if session_yaml.is_file() else None
    declared = meta.start_time if meta is not None else None
    if meta is not None and meta.imaging is not None:
        tolerance = meta.imaging.max_clock_offset_s
        if not tifs and meta.imaging.scanimage:
            tifs = [session_yaml.parent / name for name in meta.imaging.scanimage]
        if tif_timezone is None:
            tif_timezone = meta.imaging.timezone
    if tifs:
        start, warnings = start_from_tifs([Path(t) for t in tifs], tif_timezone, declared,
                                          tolerance)
        for warning in warnings:
            print(f"warning: {warning}", file=sys.stderr)
        return start.isoformat()
    if declared is None:
        raise DLCFileError(
            f"{session_yaml} not found: give --start-time (ISO 8601 with time zone), the "
            "imaging tifs (--tif a.tif b.tif), or put the video in a session folder with its "
            "session.yaml.")
    return declared.isoformat()
