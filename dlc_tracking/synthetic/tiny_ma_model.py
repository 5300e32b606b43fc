"""An offline tiny multi-animal DeepLabCut model (maDLC), built like the single-animal one.

:func:`build_tiny_ma_model` makes a *real* multi-animal DLC project through DeepLabCut's
own API (``create_new_project(multianimal=True)``, labels in DLC's multi-animal
``CollectedData_<scorer>.h5`` layout with an ``individuals`` column level and the unique
body parts under ``single``, ``create_training_dataset`` (DLC's
``create_multianimaltraining_dataset``), ``train_network``), trains a bottom-up
``cspnext_s`` model (heatmaps, location refinement and part affinity fields, a head for
the unique body parts) on CPU in a few minutes without any download, checks it with
``analyze_videos(auto_track=True)`` on a fresh two-animal video, and caches it under
``<cache>/models/pytorch-ma-<hash>/``:

```
<cache>/models/pytorch-ma-<hash>/
    tinysocial-synthetic-2026-01-01/config.yaml     the DLC project (2 individuals)
    tiny_model.json                                  what was built, how well it does
```

The animals are the synthetic ones of :mod:`dlc_tracking.synthetic.multi_animal` (two mice
circling in opposite directions, passing each other side by side), the body parts those of
:data:`dlc_tracking.synthetic.openfield.BODY_PARTS`, the unique body parts the arena
corners :data:`~dlc_tracking.synthetic.multi_animal.UNIQUE_BODY_PARTS`.

The cache, the lock and the build in a child process reuse the helpers of
:mod:`dlc_tracking.synthetic.tiny_model` (that module is left unchanged: its source is part
of the single-animal models' cache hash). The hash here covers this module's source,
``tiny_model``'s, ``multi_animal``'s and ``openfield``'s, the spec and the DeepLabCut version.

DeepLabCut's trackers need ``kinematic_kf`` fixed under filterpy 2.0 (see
:func:`dlc_tracking.io.madlc_files.kalman_fix`); the verification runs inside that fix.

Command line: ``python -m dlc_tracking.synthetic.tiny_ma_model [--force]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from itertools import permutations
from pathlib import Path

import numpy as np
import pandas as pd

from dlc_tracking.synthetic import multi_animal as synthetic_ma
from dlc_tracking.synthetic import openfield as synthetic
from dlc_tracking.synthetic import tiny_model as tm

ENGINE = "pytorch-ma"
"""Cache key of the multi-animal model (``<cache>/models/pytorch-ma-<hash>``)."""
VIDEO_STEM = "tinysocialtrain"

__all__ = [
    "ENGINE",
    "SPEC",
    "TinyMultiAnimalSpec",
    "build_tiny_ma_model",
    "cached_config_path",
    "content_hash",
    "matched_error",
    "model_dir",
    "write_multi_animal_labels",
]


@dataclass(frozen=True)
class TinyMultiAnimalSpec:
    """Everything the multi-animal tiny model's build depends on (part of the cache hash).

    Attributes
    ----------
    task : str
        DLC task name.
    individuals : tuple of str
        config.yaml ``individuals``.
    body_parts : tuple of str
        ``multianimalbodyparts``.
    unique_body_parts : tuple of str
        ``uniquebodyparts`` (the arena's corners, DLC's individual ``single``).
    net_type : str
        DLC network type (a backbone: DLC adds the PAF head of a bottom-up model).
    n_frames, laps, width, height, fps, seed, noise : training video.
    n_labelled : int
        Labelled frames, taken evenly from the training video.
    batch_size, epochs, lr, lr_milestones : training (AdamW; lr / 5 then / 50).
    verify_frames, verify_seed : fresh verification video.
    """

    task: str = "tinysocial"
    individuals: tuple[str, ...] = ("mus1", "mus2")
    body_parts: tuple[str, ...] = tuple(synthetic.BODY_PARTS)
    unique_body_parts: tuple[str, ...] = tuple(synthetic_ma.UNIQUE_BODY_PARTS)
    net_type: str = "cspnext_s"
    n_frames: int = 400
    laps: float = 2.0
    width: int = 200
    height: int = 150
    fps: float = 30.0
    seed: int = 20260102
    noise: float = 2.0
    n_labelled: int = 64
    batch_size: int = 8
    epochs: int = 40
    lr: float = 2e-3
    lr_milestones: tuple[int, ...] = (30, 36)
    verify_frames: int = 120
    verify_seed: int = 7


SPEC = TinyMultiAnimalSpec()


# --------------------------------------------------------------------------------------
# Cache locations
# --------------------------------------------------------------------------------------


def content_hash(spec: TinyMultiAnimalSpec = SPEC) -> str:
    """12 hex digits over the sources the build runs, the spec and DLC's version."""
    h = hashlib.sha256()
    for source in (Path(__file__), Path(tm.__file__), Path(synthetic_ma.__file__),
                   Path(synthetic.__file__)):
        h.update(source.read_bytes())
    h.update(json.dumps(asdict(spec), sort_keys=True, default=str).encode())
    h.update(tm._deeplabcut_version().encode())
    return h.hexdigest()[:12]


def model_dir(cache_dir: Path | None = None, spec: TinyMultiAnimalSpec = SPEC) -> Path:
    """``<cache>/models/pytorch-ma-<hash>`` (may not exist yet)."""
    root = Path(cache_dir) if cache_dir is not None else tm.default_cache_dir()
    return root / "models" / f"{ENGINE}-{content_hash(spec)}"


def project_name(spec: TinyMultiAnimalSpec = SPEC) -> str:
    """Name of the DLC project folder inside the model folder."""
    return f"{spec.task}-{tm.EXPERIMENTER}-{tm.FIXED_DATE_ISO}"


def cached_config_path(cache_dir: Path | None = None,
                       spec: TinyMultiAnimalSpec = SPEC) -> Path | None:
    """config.yaml of the complete cached model, or None when it has not been built."""
    folder = model_dir(cache_dir, spec)
    config = folder / project_name(spec) / "config.yaml"
    if (folder / tm.METADATA_NAME).is_file() and config.is_file():
        return config
    return None


# --------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------


def build_tiny_ma_model(cache_dir: Path | None = None, force: bool = False,
                        progress: tm.Progress | None = print,
                        spec: TinyMultiAnimalSpec = SPEC) -> Path:
    """Return the config.yaml of the tiny multi-animal model, building it when not cached.

    As :func:`dlc_tracking.synthetic.tiny_model.build_tiny_model`: the build runs in a
    child process (DLC changes the working directory and the logging set-up), in a
    temporary folder renamed into place at the end, under a file lock (parallel test
    workers wait for one build); ``tiny_model.json`` records what was built and the
    verification error.

    Parameters
    ----------
    cache_dir : Path, optional
        Cache root; default ``$DLC_PLATFORM_CACHE`` or ``~/.cache/dlc-platform``.
    force : bool
        Rebuild even when cached.
    progress : callable, optional
        Receives progress lines; None for silence.
    spec : TinyMultiAnimalSpec
        What to build.

    Returns
    -------
    Path
        ``<cache>/models/pytorch-ma-<hash>/tinysocial-synthetic-2026-01-01/config.yaml``.

    Raises
    ------
    TinyModelError
        The build or its verification failed (the message names the kept build log).
    """
    from filelock import FileLock

    say = progress or (lambda _msg: None)
    final = model_dir(cache_dir, spec)
    name = project_name(spec)
    config = final / name / "config.yaml"
    if not force and cached_config_path(cache_dir, spec) is not None:
        return config
    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(final.parent / f"{final.name}.lock")):
        if not force and cached_config_path(cache_dir, spec) is not None:
            say(f"[tiny_model] {ENGINE} model was built by another process: {config}")
            return config
        for stale in final.parent.glob(f".{final.name}.tmp-*"):  # crashed builds
            shutil.rmtree(stale, ignore_errors=True)
        tmp = final.parent / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        tmp.mkdir(parents=True)
        failed_log = final.parent / f"{final.name}.failed.log"
        try:
            say(f"[tiny_model] building the {ENGINE} model in {tmp} (a few minutes on CPU)")
            t0 = time.monotonic()
            cpu0 = tm._children_cpu_seconds()
            info = _run_worker(tmp, spec, say, failed_log)
            info.update(build_seconds=round(time.monotonic() - t0, 1),
                        build_cpu_seconds=round(tm._children_cpu_seconds() - cpu0, 1),
                        hash=final.name.rsplit("-", 1)[1],
                        deeplabcut_version=tm._deeplabcut_version(), project=name,
                        built_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
            tm._relocate_project(tmp / name, final / name)
            (tmp / tm.METADATA_NAME).write_text(json.dumps(info, indent=2) + "\n")
            tm._replace_dir(tmp, final)
        except BaseException:
            if (tmp / "build.log").is_file():
                shutil.copyfile(tmp / "build.log", failed_log)
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    failed_log.unlink(missing_ok=True)
    say(f"[tiny_model] {ENGINE} model ready in {info['build_seconds']:.0f} s, median error "
        f"{info['median_error_px']:.2f} px on unseen frames: {config}")
    return config


def _run_worker(workdir: Path, spec: TinyMultiAnimalSpec, say: tm.Progress,
                failed_log: Path) -> dict:
    """Build in a child process (``--worker``); forward its ``[tiny_model]`` lines."""
    import subprocess

    (workdir / "spec.json").write_text(json.dumps(asdict(spec), indent=2))
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([package_root] + ([env["PYTHONPATH"]]
                                                          if env.get("PYTHONPATH") else []))
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see tiny_model._run_worker
    cmd = [sys.executable, "-m", "dlc_tracking.synthetic.tiny_ma_model", "--worker",
           str(workdir)]
    tail: list[str] = []
    with ((workdir / "build.log").open("w") as log,
          subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env=env, cwd=str(workdir), errors="replace") as proc):
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                log.flush()
                tail = (tail + [line.rstrip()])[-40:]
                if line.startswith("[tiny_model]"):
                    say(line.rstrip())
            rc = proc.wait()
        except BaseException:
            proc.kill()
            raise
    result = workdir / "result.json"
    if rc != 0 or not result.is_file():
        raise tm.TinyModelError(
            f"Building the tiny multi-animal DLC model failed (exit code {rc}); the full "
            f"log is kept in {failed_log}. Fix the cause and call build_tiny_ma_model "
            "again. Last lines:\n" + "\n".join(tail))
    shutil.move(str(workdir / "build.log"), str(workdir / project_name(spec) / "build.log"))
    info = json.loads(result.read_text())
    result.unlink()
    return info


def _worker_main(workdir: Path) -> int:
    data = json.loads((workdir / "spec.json").read_text())
    spec = TinyMultiAnimalSpec(**{k: tuple(v) if isinstance(v, list) else v
                                  for k, v in data.items()})

    def say(msg: str) -> None:
        print(msg, file=sys.__stdout__, flush=True)

    info = _build(workdir, spec, say)
    (workdir / "result.json").write_text(json.dumps(info, indent=2))
    (workdir / "spec.json").unlink()
    return 0


# --------------------------------------------------------------------------------------
# The build (child process)
# --------------------------------------------------------------------------------------


def write_multi_animal_labels(project: Path, video: Path, truth: synthetic_ma.MultiAnimalTruth,
                              frames: np.ndarray, scorer: str) -> Path:
    """Frames and labels of a multi-animal project, as DLC's labelling GUI writes them.

    ``labeled-data/<stem>/img<NNN>.png`` and ``CollectedData_<scorer>.h5`` (key
    ``df_with_missing``; columns scorer / individuals / bodyparts / coords with the unique
    body parts under the individual ``single``; index tuples ``("labeled-data", stem,
    "imgNNN.png")``) plus the same table as CSV.

    Parameters
    ----------
    truth : MultiAnimalTruth
        Keypoints ``(n_frames, n_individuals, n_parts, 2)`` of every frame.
    frames : np.ndarray
        Frame indices to label.

    Returns
    -------
    Path
        The h5 file.
    """
    import cv2

    folder = project / "labeled-data" / video.stem
    folder.mkdir(parents=True, exist_ok=True)
    width = int(np.ceil(np.log10(truth.n_frames)))  # DLC: indexlength
    wanted = sorted(int(f) for f in frames)
    cap = cv2.VideoCapture(str(video))
    names: list[str] = []
    i = 0
    while len(names) < len(wanted):
        ok, img = cap.read()
        if not ok:
            break
        if i in wanted:
            names.append(f"img{str(i).zfill(width)}.png")
            cv2.imwrite(str(folder / names[-1]), img)
        i += 1
    cap.release()
    if len(names) != len(wanted):
        raise tm.TinyModelError(f"Could only read {len(names)} of {len(wanted)} frames "
                                f"from {video}")
    idx = np.asarray(wanted)
    columns = [(scorer, ind, bp, c) for ind in truth.individuals for bp in truth.body_parts
               for c in ("x", "y")]
    values = [truth.keypoints[idx].reshape(len(idx), -1)]
    columns += [(scorer, "single", bp, c) for bp in synthetic_ma.UNIQUE_BODY_PARTS
                for c in ("x", "y")]
    values.append(truth.unique_keypoints()[idx].reshape(len(idx), -1))
    df = pd.DataFrame(np.concatenate(values, axis=1),
                      index=pd.MultiIndex.from_tuples([("labeled-data", video.stem, n)
                                                       for n in names]),
                      columns=pd.MultiIndex.from_tuples(
                          columns, names=["scorer", "individuals", "bodyparts", "coords"]))
    h5 = folder / f"CollectedData_{scorer}.h5"
    df.to_hdf(h5, key="df_with_missing", mode="w")
    df.to_csv(folder / f"CollectedData_{scorer}.csv")
    return h5


def _create_project(workdir: Path, spec: TinyMultiAnimalSpec, video: Path,
                    say: tm.Progress) -> Path:
    """The multi-animal DLC project with a date-independent name; its config.yaml."""
    import deeplabcut
    from deeplabcut.core.config import read_config_as_dict, write_project_config

    created = deeplabcut.create_new_project(
        spec.task, tm.EXPERIMENTER, [str(video)], working_directory=str(workdir),
        copy_videos=True, multianimal=True, individuals=list(spec.individuals))
    if created == "nothingcreated":
        raise tm.TinyModelError(f"deeplabcut.create_new_project created nothing in {workdir}")
    project = workdir / project_name(spec)
    if Path(created).parent != project:
        os.replace(Path(created).parent, project)
    config = project / "config.yaml"
    cfg = read_config_as_dict(config)
    parts = list(spec.body_parts)
    cfg.update(
        date=tm.FIXED_DATE, project_path=str(project), multianimalproject=True,
        individuals=list(spec.individuals), multianimalbodyparts=parts,
        uniquebodyparts=list(spec.unique_body_parts), bodyparts="MULTI!", identity=False,
        default_track_method="ellipse", engine="pytorch", default_net_type=spec.net_type,
        snapshotindex=-1, numframes2pick=spec.n_labelled,
        # the skeleton tracker's limbs: nose to each ear, ears to the tail base
        skeleton=[[parts[0], parts[1]], [parts[0], parts[2]], [parts[1], parts[3]],
                  [parts[2], parts[3]]],
        video_sets={str(project / "videos" / video.name):
                    {"crop": f"0, {spec.width}, 0, {spec.height}"}})
    write_project_config(config, cfg)
    say(f"[tiny_model] created multi-animal DLC project {project.name}")
    return config


def _build(workdir: Path, spec: TinyMultiAnimalSpec, say: tm.Progress) -> dict:
    import deeplabcut
    import torch
    from deeplabcut.core.engine import Engine
    from deeplabcut.pose_estimation_pytorch.models import PoseModel

    src = workdir / "src"
    src.mkdir()
    truth = synthetic_ma.simulate_multi_animal(
        n_frames=spec.n_frames, fps=spec.fps, width=spec.width, height=spec.height,
        n_animals=len(spec.individuals), seed=spec.seed, laps=spec.laps)
    video = synthetic_ma.render_multi_video(truth, src / f"{VIDEO_STEM}.mp4",
                                            noise=spec.noise, seed=spec.seed)
    config = _create_project(workdir, spec, video, say)
    project = config.parent
    scorer = tm._read_yaml(config)["scorer"]
    frames = tm.labelled_frame_indices(truth.n_frames, spec.n_labelled)
    write_multi_animal_labels(project, project / "videos" / video.name, truth, frames, scorer)
    shutil.rmtree(src)
    say(f"[tiny_model] labelled {len(frames)} frames x {len(spec.individuals)} animals")

    deeplabcut.create_training_dataset(str(config), num_shuffles=1, net_type=spec.net_type,
                                       engine=Engine.PYTORCH, userfeedback=False)
    pose_cfg_path = tm._single(
        project.glob("dlc-models-pytorch/iteration-0/*/train/pytorch_config.yaml"))
    pose_cfg = tm._read_yaml(pose_cfg_path)
    train_aug = pose_cfg["data"]["train"]
    # As the single-animal tiny model: no 400-448 px crop padding of small frames (every
    # epoch several times slower), one evaluation and one snapshot at the end, milder
    # augmentation (the synthetic animals always look the same).
    train_aug["crop_sampling"] = None
    train_aug["affine"] = {"p": 0.5, "rotation": 30, "scaling": [0.85, 1.15],
                           "translation": 0}
    train_aug["motion_blur"] = False
    train_aug["gaussian_noise"] = 6.0
    runner = pose_cfg["runner"]
    runner["eval_interval"] = spec.epochs
    runner["snapshots"]["max_snapshots"] = 1
    runner["snapshots"]["save_epochs"] = spec.epochs
    runner["optimizer"]["params"]["lr"] = spec.lr
    runner["scheduler"] = {"type": "LRListScheduler", "params": {
        "lr_list": [[spec.lr / 5], [spec.lr / 50]], "milestones": list(spec.lr_milestones)}}
    pose_cfg["train_settings"].update(epochs=spec.epochs, batch_size=spec.batch_size,
                                      display_iters=10**6)
    tm._write_yaml(pose_cfg_path, pose_cfg)

    # No ImageNet download: start from a randomly initialised model in DLC's snapshot format.
    torch.manual_seed(spec.seed)
    model = PoseModel.build(pose_cfg["model"], pretrained_backbone=False)
    init_snapshot = workdir / "init-snapshot.pt"
    torch.save({"model": model.state_dict(), "metadata": {"epoch": 0}}, init_snapshot)
    say(f"[tiny_model] training {spec.net_type} (bottom-up, PAF) for {spec.epochs} epochs "
        "on CPU")
    t0 = time.monotonic()
    train_log = lambda: sorted(project.glob("dlc-models-pytorch/iteration-0/*/train/train.txt"))  # noqa: E731
    with tm._tail_progress(train_log, ("Epoch ",), say):
        deeplabcut.train_network(str(config), shuffle=1, trainingsetindex=0, device="cpu",
                                 batch_size=spec.batch_size, epochs=spec.epochs,
                                 save_epochs=spec.epochs, snapshot_path=str(init_snapshot),
                                 max_snapshots_to_keep=1)
    train_seconds = time.monotonic() - t0
    init_snapshot.unlink()
    snapshot = _keep_final_snapshot(pose_cfg_path.parent, spec.epochs)
    say(f"[tiny_model] trained in {train_seconds:.0f} s: {snapshot}")

    info = _verify(config, spec, workdir, say)
    shutil.rmtree(workdir / "verify")
    info.update(engine=ENGINE, task=spec.task, net_type=spec.net_type, epochs=spec.epochs,
                train_seconds=round(train_seconds, 1), individuals=list(spec.individuals),
                body_parts=list(spec.body_parts),
                unique_body_parts=list(spec.unique_body_parts),
                labelled_frames=int(len(frames)), snapshot=snapshot)
    return info


def _keep_final_snapshot(model_folder: Path, epochs: int) -> str:
    """Only ``snapshot-NNN.pt`` of the last epoch (DLC may name it snapshot-best-NNN.pt)."""
    final = f"snapshot-{epochs:03d}.pt"
    best = model_folder / f"snapshot-best-{epochs:03d}.pt"
    if best.is_file():
        if (model_folder / final).is_file():
            best.unlink()
        else:
            os.replace(best, model_folder / final)
    for snap in model_folder.glob("snapshot-*.pt"):
        if snap.name != final:
            snap.unlink()
    if not (model_folder / final).is_file():
        raise tm.TinyModelError(f"Expected {final} in {model_folder} after training")
    return final


def matched_error(poses: np.ndarray, truth_keypoints: np.ndarray) -> dict:
    """Keypoint error of tracked individuals against the ground truth, after matching
    identities.

    Two matchings: one permutation of the tracks for the whole recording (identity kept
    by the tracker) and the best permutation per frame (detection and assembly alone).

    Parameters
    ----------
    poses : np.ndarray
        ``(n_frames, n_tracks, n_parts, 2 or 3)``, NaN where missing.
    truth_keypoints : np.ndarray
        ``(n_frames, n_individuals, n_parts, 2)``; ``n_tracks == n_individuals``.

    Returns
    -------
    dict
        ``median_error_px``, ``mean_error_px``, ``p95_error_px`` (whole-recording
        matching), ``per_frame_median_error_px``, ``fraction_detected`` (keypoints with
        coordinates), ``track_order`` (truth index of each track).
    """
    xy = np.asarray(poses, float)[..., :2]
    gt = np.asarray(truth_keypoints, float)
    if xy.shape != gt.shape:
        raise ValueError(f"poses {xy.shape[:3]} and truth {gt.shape[:3]} differ in shape")
    n_ind = gt.shape[1]
    perms = list(permutations(range(n_ind)))
    # err[p]: (n_frames, n_ind, n_parts) errors with track k matched to truth perm[k]
    err = np.stack([np.linalg.norm(xy - gt[:, list(p)], axis=-1) for p in perms])
    whole = [np.nanmedian(e) for e in err]
    best = int(np.nanargmin(whole))
    chosen = err[best]
    per_frame = np.nanmin(np.stack([np.nanmean(e, axis=(1, 2)) for e in err]), axis=0)
    return {"median_error_px": round(float(np.nanmedian(chosen)), 3),
            "mean_error_px": round(float(np.nanmean(chosen)), 3),
            "p95_error_px": round(float(np.nanpercentile(chosen, 95)), 3),
            "per_frame_median_error_px": round(float(np.nanmedian(per_frame)), 3),
            "fraction_detected": round(float(np.isfinite(chosen).mean()), 4),
            "track_order": list(perms[best])}


def _verify(config: Path, spec: TinyMultiAnimalSpec, workdir: Path, say: tm.Progress
            ) -> dict:
    """``analyze_videos(auto_track=True)`` on a fresh two-animal video; the error of the
    tracks after identity matching."""
    import deeplabcut

    from dlc_tracking.io.madlc_files import find_madlc_outputs, kalman_fix, read_madlc

    vdir = workdir / "verify"
    vdir.mkdir()
    truth = synthetic_ma.simulate_multi_animal(
        n_frames=spec.verify_frames, fps=spec.fps, width=spec.width, height=spec.height,
        n_animals=len(spec.individuals), seed=spec.verify_seed)
    video = synthetic_ma.render_multi_video(truth, vdir / "verify.mp4", noise=spec.noise,
                                            seed=spec.verify_seed)
    t0 = time.monotonic()
    with kalman_fix():
        scorer = deeplabcut.analyze_videos(str(config), [str(video)], shuffle=1,
                                           trainingsetindex=0, destfolder=str(vdir),
                                           device="cpu", batch_size=8, auto_track=True,
                                           n_tracks=len(spec.individuals), save_as_csv=False)
    seconds = time.monotonic() - t0
    tracks = find_madlc_outputs(vdir).get("tracks")
    if tracks is None:
        raise tm.TinyModelError(f"analyze_videos(auto_track=True) wrote no tracks file in "
                                f"{vdir}: {sorted(p.name for p in vdir.iterdir())}")
    pred = read_madlc(tracks)
    poses = np.full((truth.n_frames,) + pred.poses.shape[1:], np.nan)
    keep = pred.frames < truth.n_frames
    poses[pred.frames[keep]] = pred.poses[keep]
    out = matched_error(poses, truth.keypoints)
    say(f"[tiny_model] verification on {truth.n_frames} unseen frames: median error "
        f"{out['median_error_px']:.2f} px (per-frame matching "
        f"{out['per_frame_median_error_px']:.2f}, p95 {out['p95_error_px']:.2f}), "
        f"{out['fraction_detected']:.0%} of keypoints tracked; analyze_videos took "
        f"{seconds:.1f} s")
    return {"scorer": scorer, **out, "verify_frames": truth.n_frames,
            "verify_seed": spec.verify_seed, "analyze_seconds": round(seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    """Command line: build (or find) the tiny multi-animal model; print its config.yaml."""
    parser = argparse.ArgumentParser(
        prog="python -m dlc_tracking.synthetic.tiny_ma_model",
        description="Build (or find in the cache) a tiny multi-animal DeepLabCut model.")
    parser.add_argument("--force", action="store_true", help="rebuild even when cached")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help=f"default ${tm.CACHE_ENV}")
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        return _worker_main(args.worker)
    print(build_tiny_ma_model(cache_dir=args.cache_dir, force=args.force,
                              progress=lambda m: print(m, file=sys.stderr, flush=True)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
