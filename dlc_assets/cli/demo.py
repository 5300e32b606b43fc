"""Prepare the embedded demo: the tiny trained model(s), a registry naming them, and
synthetic sessions under the demo data root. Idempotent; run by scripts/start.sh.

The demo registers ``tiny_openfield`` from its own copy of the cached tiny project
(``<demo>/models/``), with a ``training:`` and an ``evaluation:`` section, so the whole
model loop of docs/models.md (train, evaluate, review, merge, compare, promote) runs on
the demo as it is: the platform never trains in its cached models, which the tests share.

    python -m dlc_assets.cli.demo [--sessions N] [--with-tensorflow] [--no-imaging] [--no-3d]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import yaml

from dlc_assets import settings
from dlc_tracking.registry.editing import add_model
from dlc_tracking.registry.registry_file import load_registry, read_registry_yaml
from dlc_tracking.synthetic.openfield import make_session
from dlc_tracking.synthetic.tiny_model import build_tiny_model, cached_config_path

TEMPLATE = settings.PROJECT_ROOT / "registry" / "registry.yaml"


# The demo model's training section (docs/models.md): fine-tuning from the registered
# snapshot of the version it derives from (`previous`: offline, and every retraining
# builds on the latest version), few epochs (~6 s each on a laptop CPU), no 448 px crops
# of its 200x150 frames; and the test error its evaluation check accepts.
DEMO_TRAINING = {"epochs": 5, "batch_size": 8, "learning_rate": 0.0001,
                 "augmentation": {"crop_sampling": None}, "pretrained": "previous"}
DEMO_EVALUATION = {"max_test_rmse_px": 6.0}


def demo_project(pytorch_config: Path, models_dir: Path) -> Path:
    """The demo's own copy of the cached tiny PyTorch project (made once; a newer cached
    model gets a new copy, named by its cache folder, and earlier copies stay as they are).

    Returns
    -------
    Path
        config.yaml of the copy.
    """
    from dlc_tracking.training.projects import copy_project

    pytorch_config = pytorch_config.resolve()
    dest = models_dir / pytorch_config.parent.parent.name / pytorch_config.parent.name
    done = dest.parent / ".copied"  # written last: a copy cut short is made again
    if not done.exists():
        shutil.rmtree(dest, ignore_errors=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        copy_project(pytorch_config, dest)
        done.write_text(f"{pytorch_config}\n")
    return dest / "config.yaml"


def prepare_registry(registry: Path, pytorch_config: Path, tf_config: Path | None) -> None:
    """Registry = the versioned template plus the tiny models, added through the admin API
    (``tiny_openfield`` from the demo's own copy of the project, see :func:`demo_project`)."""
    if registry.exists():
        current = load_registry(registry)
        if ("tiny_openfield" in current.models and
                current.models["tiny_openfield"].project_config == pytorch_config.resolve()
                and (tf_config is None or "tiny_legacy" in current.models)):
            return
        registry.unlink()
    registry.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(TEMPLATE, registry)
    training = dict(DEMO_TRAINING)
    add_model(registry, "tiny_openfield", pytorch_config, description="Tiny PyTorch (DLC 3) "
              "model trained offline on synthetic open-field videos", pair_with=[
                  "two_ears", "two_ears_loose", "nose_tail_base", "centroid_all"],
              extra={"training": training, "evaluation": DEMO_EVALUATION})
    if tf_config is not None:
        add_model(registry, "tiny_legacy", tf_config, description="Tiny TensorFlow (DLC 2) "
                  "model with legacy body-part names", body_part_map={
                      "snout": "nose", "leftear": "left_ear", "rightear": "right_ear",
                      "tailbase": "tail_base"}, pair_with=["two_ears"])
    raw = read_registry_yaml(registry)
    # The demo method's cutoff is fitted to the demo model (docs/production.md, "The demo"):
    # the tiny model's likelihoods sit at 0.65-0.77 on the demo videos, so its default
    # method two_ears_loose cuts at 0.5, under them; the
    # low_likelihood_fraction check judges by that cutoff, and a newcomer's first run is
    # clean unless the data are bad.
    raw["defaults"] = {"openfield": {"model": "tiny_openfield", "method": "two_ears_loose"}}
    registry.write_text("# demo registry, made by dlc_assets.cli.demo from registry/registry.yaml\n"
                        + yaml.safe_dump(raw, sort_keys=False))
    load_registry(registry)


def prepare_sessions(data_root: Path, n_sessions: int) -> list[Path]:
    made = []
    for i in range(n_sessions):
        view = "above" if i % 2 == 0 else "below"
        folder = data_root / f"mouse{i + 1:02d}" / f"2026-01-05_openfield_{view}"
        if (folder / "openfield.mp4").exists():
            continue
        made.append(make_session(data_root, folder.parent.name, folder.name, n_frames=300,
                                 seed=100 + i, camera_view=view))
        # the subject facts NWB files need (docs/exports.md): demo exports pass nwbinspector
        subject = folder.parent / "subject.yaml"
        if not subject.exists():
            subject.write_text("species: Mus musculus\nsex: F\nage: P90D\n"
                               "strain: C57BL/6J\n")
    return made


def prepare_imaging_session(data_root: Path) -> Path | None:
    """A session imaged with ScanImage while filmed (docs/imaging.md): the synthetic video,
    two ScanImage tifs of a 15 Hz acquisition started with the video, and no start_time
    in session.yaml (the acquisition start is the recording's start). Its recording gets
    ``tracking_on_imaging`` rows, one per imaging frame."""
    from datetime import datetime

    from dlc_tracking.synthetic.scanimage_tifs import write_scanimage_tifs

    folder = data_root / "mouse03" / "2026-01-05_openfield_imaging"
    if (folder / "openfield.mp4").exists():
        return None
    staging = data_root.parent / ".demo-staging"  # the sensor sees the session complete
    shutil.rmtree(staging, ignore_errors=True)
    made = make_session(staging, "mouse03", folder.name, n_frames=300, seed=103)
    n_imaging, rate_hz = 150, 15.0  # the 10 s of video at 15 Hz, in two files
    times = np.arange(n_imaging) / rate_hz
    tifs = write_scanimage_tifs(made, "mouse03_imaging", times, datetime(2026, 1, 5, 10),
                                frame_rate_hz=rate_hz, frames_per_file=75)
    meta = yaml.safe_load((made / "session.yaml").read_text())
    meta.pop("start_time", None)
    meta["imaging"] = {"scanimage": [p.name for p in tifs], "timezone": "+01:00"}
    (made / "session.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    # Only this session's folder moves in (a half-made one without its video is replaced);
    # anything else of mouse03, e.g. sessions a user added, stays as it is.
    folder.parent.mkdir(parents=True, exist_ok=True)
    subject = folder.parent / "subject.yaml"
    if not subject.exists():
        subject.write_text("species: Mus musculus\nsex: M\nage: P90D\nstrain: C57BL/6J\n")
    shutil.rmtree(folder, ignore_errors=True)
    made.rename(folder)
    shutil.rmtree(staging, ignore_errors=True)
    return folder


SOCIAL_MODEL = "social_demo"
SOCIAL_SCORER = "DLC_Resnet50_socialJan1shuffle1_snapshot_200"


def prepare_social_session(data_root: Path, registry: Path) -> Path | None:
    """A two-animal session (docs/multi-animal.md): the synthetic video of two mice, the
    maDLC outputs written with DeepLabCut's writers in dlc_social/, session.yaml mapping
    the tracks to subjects M12 and M13, and an ingest-only multi-animal model registered
    from those outputs (as `models add --from-outputs` does). The session moves into the
    data root only after the model is registered, so the sensor finds both."""
    from dlc_tracking.io.madlc_files import find_madlc_outputs
    from dlc_tracking.registry.editing import add_ingest_only_model
    from dlc_tracking.synthetic.multi_animal import (
        make_multi_animal_session,
        simulate_multi_animal,
    )

    def register(outputs: Path) -> None:  # again after prepare_registry made a new one
        if SOCIAL_MODEL not in load_registry(registry).models:
            add_ingest_only_model(registry, SOCIAL_MODEL,
                                  outputs_file=find_madlc_outputs(outputs)["tracks"],
                                  description="maDLC model known by its outputs (two mice)",
                                  pair_with=["two_ears"])

    folder = data_root / "M12" / "2026-03-01_social"
    if (folder / "social.mp4").exists():
        register(folder / "dlc_social")
        return None
    staging = data_root.parent / ".demo-staging-social"
    shutil.rmtree(staging, ignore_errors=True)
    truth = simulate_multi_animal(n_frames=150, n_animals=2, seed=4)
    made = make_multi_animal_session(staging, "M12", folder.name, truth, SOCIAL_SCORER,
                                     individuals={"mus1": "M12", "mus2": "M13"},
                                     assignment={"model": SOCIAL_MODEL,
                                                 "method": "two_ears"})
    register(made / "dlc_social")
    folder.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(folder, ignore_errors=True)
    made.rename(folder)
    shutil.rmtree(staging, ignore_errors=True)
    return folder


DEMO_RIG = "rig_3cam"
DEMO_RIG_MODEL = "rig_3cam_dlc"


def prepare_multicamera_session(data_root: Path, registry: Path) -> Path | None:
    """A 3-camera session (docs/3d.md): each camera's DLC outputs (DLC's layout, pandas'
    writer) of the synthetic rig, and in the registry an ingest-only model registered from
    those outputs and the rig ``rig_3cam`` with its Anipose calibration.toml (aniposelib's
    writer). Its recording ``mouse04__2026-01-05_openfield_3cam__rig_3cam`` gets pose_3d
    rows and processed_tracking rows with z, pitch and roll."""
    from dlc_tracking.registry.editing import add_ingest_only_model, edit_registry
    from dlc_tracking.synthetic.rig import (
        make_multicamera_session,
        make_rig,
        write_anipose_calibration,
    )

    folder = data_root / "mouse04" / "2026-01-05_openfield_3cam"
    made = None
    if not (folder / "session.yaml").exists():
        staging = data_root.parent / ".demo-staging-3d"  # the sensor sees it complete
        shutil.rmtree(staging, ignore_errors=True)
        built = make_multicamera_session(staging, "mouse04", folder.name, n_frames=300,
                                         rig=DEMO_RIG, seed=104)
        folder.parent.mkdir(parents=True, exist_ok=True)
        subject = folder.parent / "subject.yaml"
        if not subject.exists():
            subject.write_text("species: Mus musculus\nsex: F\nage: P90D\n"
                               "strain: C57BL/6J\n")
        shutil.rmtree(folder, ignore_errors=True)
        built.rename(folder)
        shutil.rmtree(staging, ignore_errors=True)
        made = folder
    current = load_registry(registry)
    if DEMO_RIG in current.camera_rigs:
        return made
    calibration = write_anipose_calibration(
        make_rig(3), registry.parent / "calibrations" / DEMO_RIG / "calibration.toml")
    if DEMO_RIG_MODEL not in current.models:
        add_ingest_only_model(registry, DEMO_RIG_MODEL,
                              outputs_file=next((folder / "dlc_top").glob("*.h5")),
                              description="Ingest-only model of the synthetic 3-camera rig")

    def add_rig(doc) -> None:
        rigs = doc.get("rigs") or {}
        rigs[DEMO_RIG] = {"description": "Synthetic 3-camera rig (docs/3d.md)",
                          "cameras": ["top", "side_1", "side_2"], "model": DEMO_RIG_MODEL,
                          "calibration": str(calibration.relative_to(registry.parent))}
        doc["rigs"] = rigs

    edit_registry(registry, add_rig)
    load_registry(registry)
    return made


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sessions", type=int, default=2)
    p.add_argument("--with-tensorflow", action="store_true",
                   help="also build (or reuse) the tiny TF model and register it")
    p.add_argument("--no-imaging", dest="imaging", action="store_false",
                   help="leave out the imaging session (mouse03, ScanImage tifs)")
    p.add_argument("--no-social", dest="social", action="store_false",
                   help="leave out the two-animal session (M12 with M13, maDLC outputs)")
    p.add_argument("--no-3d", dest="multicamera", action="store_false",
                   help="leave out the 3-camera session (mouse04, rig_3cam)")
    args = p.parse_args(argv)
    pytorch_config = build_tiny_model("pytorch")
    tf_config = (build_tiny_model("tensorflow") if args.with_tensorflow
                 else cached_config_path("tensorflow"))
    registry = Path(settings.registry_path())
    pytorch_config = demo_project(pytorch_config, registry.parent / "models")
    prepare_registry(registry, pytorch_config, tf_config)
    made = prepare_sessions(Path(settings.data_root()), args.sessions)
    if args.imaging:
        made += [f for f in [prepare_imaging_session(Path(settings.data_root()))] if f]
    if args.social:
        made += [f for f in [prepare_social_session(Path(settings.data_root()), registry)]
                 if f]
    if args.multicamera:
        made += [f for f in [prepare_multicamera_session(Path(settings.data_root()),
                                                         registry)] if f]
    print(f"[demo] registry {registry}; data root {settings.data_root()} "
          f"({len(made)} new session(s)); warehouse {settings.warehouse_root()}")


if __name__ == "__main__":
    main()
