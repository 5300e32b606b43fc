"""Picked frames written into a DLC project exactly as DeepLabCut's
``extract_outlier_frames`` writes outlier frames, so the labeller refines them in DLC's
own GUI (napari-deeplabcut) and ``merge_datasets`` takes them:

- the video is added to the project (a link ``videos/<recording id><suffix>`` to the
  recording's video, entered in ``video_sets`` of config.yaml by DLC's own
  ``add_new_videos``); the recording id is the video's name in the project because
  sessions often share a video file name (``openfield.mp4``), and DLC names the
  labeled-data folder after the video;
- ``labeled-data/<recording id>/img<frame>.png``: the frame as DLC saves it (RGB PNG,
  frame number zero-padded to ``ceil(log10(n_frames))`` digits), not overwritten when
  already there;
- ``labeled-data/<recording id>/machinelabels-iter<iteration>.h5`` (key
  ``df_with_missing``; columns scorer / bodyparts / coords x, y, likelihood of the
  model's predictions; index ``("labeled-data", <video>, "img<frame>.png")``), merged
  with an existing file (earlier rows win, as DLC does) and ``machinelabels.csv``.

The machine labels are the recording's predictions in the warehouse (the version under
review), in the project's body-part names. In a multi-animal project
(``multianimalproject: true``) they are the recording's tracks (``individual_predictions``
and ``unique_body_parts``) with DeepLabCut's maDLC columns ``scorer / individuals /
bodyparts / coords`` (unique body parts under ``single``), as ``extract_outlier_frames``
takes them from a tracks file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dlc_tracking.errors import DLCPlatformError
from dlc_tracking.model_review.errors import ReviewError
from dlc_tracking.model_review.selection import video_problem
from dlc_tracking.registry.registry_file import ModelEntry

MACHINE_KEY = "df_with_missing"


@dataclass
class Extraction:
    """What was written into the project.

    Attributes
    ----------
    project_config : pathlib.Path
        The DLC project's config.yaml.
    images : pandas.DataFrame
        recording_id, frame, image (path), new (False: the image was there already).
    machine_files : list of pathlib.Path
        The machinelabels-iter<N>.h5 files written.
    skipped : dict
        recording_id -> why none of its frames were written.
    config_backup : pathlib.Path or None
        When DeepLabCut rewrote config.yaml (its ``add_new_videos`` enters the videos in
        ``video_sets`` and writes the whole file again, in its own layout, without the
        lab's comments): the copy of config.yaml as it was before.
    """

    project_config: Path
    images: pd.DataFrame
    machine_files: list[Path] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    config_backup: Path | None = None

    @property
    def notes(self) -> list[str]:
        """What the user must know about the project's files, one sentence each."""
        if self.config_backup is None:
            return []
        return [f"DeepLabCut rewrote {self.project_config} to add the video(s) to "
                "video_sets (deeplabcut.add_new_videos writes the whole file in its own "
                "layout: comments and key order of the lab's file are gone); the file as "
                f"it was is kept in {self.config_backup}"]


def image_name(frame: int, n_frames: int) -> str:
    """DLC's name of an extracted frame: ``img`` + the frame zero-padded to
    ``ceil(log10(n_frames))`` digits (extract_outlier_frames' ``strwidth``)."""
    width = int(np.ceil(np.log10(n_frames))) if n_frames > 0 else 0
    return "img" + str(int(frame)).zfill(width) + ".png"


def machine_labels(poses: np.ndarray, frames: np.ndarray, scorer: str, body_parts: list[str],
                   video_name: str, n_frames: int) -> pd.DataFrame:
    """The machinelabels DataFrame: rows = frames (as labeled-data image paths),
    columns ``(scorer, bodyparts, coords)`` with x, y, likelihood, as DLC writes it.

    Parameters
    ----------
    poses : np.ndarray
        ``(len(frames), n_parts, 3)`` in ``body_parts`` order (the project's names).
    """
    columns = pd.MultiIndex.from_product([[scorer], body_parts, ["x", "y", "likelihood"]],
                                         names=["scorer", "bodyparts", "coords"])
    index = pd.MultiIndex.from_tuples([("labeled-data", video_name, image_name(f, n_frames))
                                       for f in frames])
    return pd.DataFrame(poses.reshape(len(frames), -1).astype(np.float64), index=index,
                        columns=columns)


def write_machine_labels(folder: Path, iteration: int, df: pd.DataFrame) -> Path:
    """Write (or extend: earlier rows win) ``machinelabels-iter<iteration>.h5`` and
    ``machinelabels.csv`` in a labeled-data folder, as extract_outlier_frames does."""
    path = folder / f"machinelabels-iter{iteration}.h5"
    if path.is_file():
        old = pd.read_hdf(path, MACHINE_KEY)
        df = pd.concat([old, df])
        df = df[~df.index.duplicated(keep="first")]
    df.to_hdf(path, key=MACHINE_KEY, mode="w")
    df.to_csv(folder / "machinelabels.csv")
    return path


def project_video_link(project_dir: Path, recording_id: str, video: Path) -> Path:
    """``<project>/videos/<recording id><suffix>``, a link to the recording's video."""
    link = project_dir / "videos" / f"{recording_id}{Path(video).suffix}"
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        if link.resolve() != Path(video).resolve():
            raise ReviewError(
                f"{link} already points to {link.resolve()}, not to recording "
                f"{recording_id}'s video {video}: remove the link (and its labeled-data "
                "folder if it belongs to another video) and run the review again.")
        return link
    link.symlink_to(Path(video).absolute())
    return link


def add_video_to_project(config_path: Path, video_link: Path,
                         backup: Path | None = None) -> Path | None:
    """Enter the video in config.yaml's ``video_sets`` with DLC's own add_new_videos
    (crop = the full frame), unless it is there.

    DLC writes the whole config.yaml again: the first time (``backup`` None) the file
    as it was is copied to ``config.yaml.before-review-<UTC time>``. Returns the backup
    (``backup`` when given; None when nothing was rewritten)."""
    import shutil
    import time

    import yaml

    cfg = yaml.safe_load(config_path.read_text()) or {}
    sets = cfg.get("video_sets_original") or cfg.get("video_sets") or {}
    if str(video_link.absolute()) in {str(k) for k in sets}:
        return backup
    from deeplabcut.create_project.add import add_new_videos

    if backup is None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        backup = config_path.with_name(f"{config_path.name}.before-review-{stamp}")
        shutil.copy2(config_path, backup)
    add_new_videos(str(config_path), [str(video_link.absolute())], copy_videos=False)
    return backup


def read_frames(video: Path, frames: np.ndarray):
    """Yield ``(frame, RGB image)`` for sorted frame numbers (seeking like DLC's reader);
    a frame that cannot be read yields None."""
    import cv2

    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        raise DLCPlatformError(f"{video}: cannot be opened by OpenCV.")
    try:
        position = -1
        for frame in np.sort(np.asarray(frames, np.int64)):
            if frame != position + 1 or position < 0:
                capture.set(cv2.CAP_PROP_POS_FRAMES, int(frame))
            ok, bgr = capture.read()
            position = int(frame)
            yield int(frame), (cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if ok else None)
    finally:
        capture.release()


def _recording_poses(store, recording_id: str, frames: np.ndarray,
                     ) -> tuple[np.ndarray | None, list[str], str | None]:
    """Predictions of the picked frames (frames x parts x 3), the canonical parts, and
    the model that made them (None when the recording has no predictions)."""
    if store.partition_path("predictions", recording_id) is None and \
            recording_id not in store.pack_index("predictions"):
        return None, [], None
    # The recording's own partition, not the predictions view (which globs every file
    # of the archive for each recording).
    df = store.read_partition("predictions", recording_id)
    df = df[df["frame"].isin(np.asarray(frames, np.int64))].sort_values("frame",
                                                                          kind="stable")
    df = df.assign(body_part=df["body_part"].astype(str))
    if df.empty:
        return None, [], None
    made_by = str(df["model_name"].iloc[0])
    parts = list(dict.fromkeys(df["body_part"].astype(str)))
    wide = df.pivot_table(index="frame", columns="body_part",
                          values=["x_px", "y_px", "likelihood"], dropna=False)
    wide = wide.reindex(np.asarray(frames, np.int64))
    poses = np.stack([np.stack([wide[(c, p)].to_numpy(np.float64)
                                for c in ("x_px", "y_px", "likelihood")], axis=1)
                      for p in parts], axis=1)
    return poses, parts, made_by


def _multi_animal_labels(store, recording_id: str, frames: np.ndarray, cfg: dict,
                         canonical_of: dict[str, str], scorer: str
                         ) -> tuple[pd.DataFrame, str] | None:
    """The machine labels of a multi-animal recording's picked frames, as DeepLabCut's
    ``extract_outlier_frames`` takes them from a tracks file: one row per frame, columns
    ``(scorer, individuals, bodyparts, coords)`` (the model's scorer, as in its tracks
    file) over the project's individuals and multi-animal body parts (x, y, likelihood),
    then ``single`` and its unique body parts; and the model that made them. None when
    the recording has no individual_predictions.

    The warehouse's tracks are the maDLC file's (the project's individuals by name, else
    in file order, as DeepLabCut's stitcher names unnamed tracks ``ind1``...).
    """
    from dlc_tracking.tracking.predictions import from_long

    if store.partition_path("individual_predictions", recording_id) is None:
        return None
    frames = np.asarray(frames, np.int64)
    df = store.read_partition("individual_predictions", recording_id)
    df = df[df["frame"].isin(frames)]
    if df.empty:
        return None
    df = df.assign(individual=df["individual"].astype(str),
                   body_part=df["body_part"].astype(str))
    made_by = str(df["model_name"].iloc[0])
    tracks = list(dict.fromkeys(df["individual"]))
    wanted = [str(i) for i in cfg.get("individuals") or []]
    names = dict(zip(tracks, wanted if set(tracks) != set(wanted) and
                     len(tracks) == len(wanted) else tracks, strict=True))
    blocks = []

    def block(long: pd.DataFrame, individual: str, parts: list[str]) -> pd.DataFrame:
        poses, found, _ = from_long(long.sort_values("frame", kind="stable"))
        at = {p: i for i, p in enumerate(found)}
        out = np.full((len(frames), len(parts), 3), np.nan)
        for j, part in enumerate(parts):  # canonical names; unique parts keep the file's
            key = canonical_of.get(part, part) if canonical_of.get(part, part) in at else part
            if key in at:
                out[:, j] = poses[:, at[key]]
        columns = pd.MultiIndex.from_product(
            [[scorer], [individual], parts, ["x", "y", "likelihood"]],
            names=["scorer", "individuals", "bodyparts", "coords"])
        return pd.DataFrame(out.reshape(len(frames), -1), columns=columns)

    for track in tracks:
        if names[track] in wanted:
            blocks.append((wanted.index(names[track]), block(
                df[df["individual"] == track], names[track],
                list(cfg.get("multianimalbodyparts") or []))))
    unique = list(cfg.get("uniquebodyparts") or [])
    if unique and store.partition_path("unique_body_parts", recording_id) is not None:
        u = store.read_partition("unique_body_parts", recording_id)
        u = u[u["frame"].isin(frames)].assign(body_part=lambda d: d["body_part"].astype(str))
        if len(u):
            blocks.append((len(wanted), block(u, "single", unique)))
    labels = pd.concat([b for _, b in sorted(blocks, key=lambda x: x[0])], axis=1)
    return labels, made_by


def extract_selected_frames(store, model: ModelEntry, frames: pd.DataFrame,
                            project_config: Path,
                            progress: Callable[[int], None] | None = None,
                            skipped: dict[str, str] | None = None) -> Extraction:
    """Write the picked frames of each recording into the DLC project.

    Parameters
    ----------
    store : dlc_tracking.warehouse.Warehouse
        Holds the recordings' predictions (the machine labels).
    model : ModelEntry
        The version under review (its scorer names the machine labels).
    frames : pandas.DataFrame
        From :func:`dlc_tracking.model_review.selection.select_frames`.
    project_config : pathlib.Path
        config.yaml of the DLC project to write into (usually the model's own).
    progress : callable, optional
        Called with the number of frames handled after each one.
    skipped : dict, optional
        Reasons gathered so far (the selection's), extended and returned.

    Raises
    ------
    ReviewError
        The project does not know the model's body parts.
    TrainingError
        The project is one of the platform's cached tiny models (copy it first).
    """
    import cv2
    import yaml

    from dlc_tracking.training.projects import refuse_cached_tiny_model

    project_config = Path(project_config).absolute()
    refuse_cached_tiny_model(project_config)  # the demo's and tests' model: work on a copy
    if not project_config.is_file():
        raise ReviewError(f"DLC project config {project_config} not found: give the "
                          "config.yaml of the project to write the frames into (--out).")
    cfg = yaml.safe_load(project_config.read_text()) or {}
    multi = bool(cfg.get("multianimalproject"))
    project_parts = list((cfg.get("multianimalbodyparts") if multi else cfg.get("bodyparts"))
                         or [])
    unique_parts = list(cfg.get("uniquebodyparts") or []) if multi else []
    if multi != bool(model.multi_animal):
        raise ReviewError(
            f"{project_config} is a {'multi' if multi else 'single'}-animal project, model "
            f"{model.name!r} a {'multi' if model.multi_animal else 'single'}-animal model: "
            "write into the model's own project (leave out --out).")
    to_canonical = model.to_canonical()
    canonical_of = {p: to_canonical.get(p, p) for p in project_parts + unique_parts}
    unknown = [p for p, c in canonical_of.items() if c not in model.canonical_body_parts]
    if not project_parts or len(unknown) == len(canonical_of):
        raise ReviewError(
            f"{project_config}: its bodyparts {project_parts} are not the body parts of model "
            f"{model.name!r} ({model.dlc_body_parts}); write into the model's own project "
            "(leave out --out).")
    iteration = int(cfg.get("iteration", 0))
    project_dir = project_config.parent
    skipped = dict(skipped or {})
    images, machine_files, done, backup = [], [], 0, None
    for rid, group in frames.groupby("recording_id", sort=True):
        picked = np.sort(group["frame"].to_numpy(np.int64))
        video = group["video_path"].iloc[0]
        problem = video_problem(video, True)
        if problem is not None:
            skipped[rid] = problem
            continue
        if multi:
            labels = _multi_animal_labels(store, rid, picked, cfg, canonical_of,
                                          model.scorer)
            made_by = labels[1] if labels is not None else None
        else:
            poses, parts, made_by = _recording_poses(store, rid, picked)
        if made_by != model.name:
            skipped[rid] = (f"its predictions are now from {made_by!r}, not {model.name!r} "
                            "(re-processed since it was flagged)" if made_by else
                            "no predictions in the warehouse")
            continue
        if not multi:
            index = {p: i for i, p in enumerate(parts)}
            ordered = np.full((len(picked), len(project_parts), 3), np.nan)
            for j, p in enumerate(project_parts):
                if canonical_of[p] in index:
                    ordered[:, j] = poses[:, index[canonical_of[p]]]
        n_frames = int(group["n_frames"].iloc[0])
        link = project_video_link(project_dir, rid, Path(video))
        folder = project_dir / "labeled-data" / link.stem
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for frame, rgb in read_frames(Path(video), picked):
            target = folder / image_name(frame, n_frames)
            new = not target.is_file()
            if rgb is None:
                skipped.setdefault(rid, "")
                skipped[rid] = (skipped[rid] + f" frame {frame} could not be read;").strip()
            else:
                if new:  # DLC keeps an image that is already there
                    tmp = target.with_name(f".{target.name}.tmp.png")
                    cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
                    os.replace(tmp, target)
                written.append(frame)
                images.append({"recording_id": rid, "frame": frame, "image": str(target),
                               "new": new})
            done += 1
            if progress is not None:
                progress(done)
        if not written:
            continue
        keep = np.isin(picked, written)
        if multi:  # DLC's maDLC layout: scorer / individuals / bodyparts / coords
            df = labels[0].iloc[np.flatnonzero(keep)]
            df.index = machine_labels(np.zeros((int(keep.sum()), 0, 3)), picked[keep],
                                      model.scorer, [], link.stem, n_frames).index
        else:
            df = machine_labels(ordered[keep], picked[keep], model.scorer, project_parts,
                                link.stem, n_frames)
        backup = add_video_to_project(project_config, link, backup)
        machine_files.append(write_machine_labels(folder, iteration, df))
    return Extraction(project_config, pd.DataFrame(
        images, columns=["recording_id", "frame", "image", "new"]), machine_files, skipped,
        backup)
