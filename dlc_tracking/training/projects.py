"""DLC project helpers of the model lifecycle: reading config.yaml, copying a project."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from dlc_tracking.registry.dlc_projects import read_project_config


def project_config(config_path: str | Path) -> dict:
    """A DLC project's config.yaml, checked for the keys a model identity needs.

    Parameters
    ----------
    config_path : str or Path
        The project's config.yaml.

    Returns
    -------
    dict

    Raises
    ------
    RegistryError
        Missing or incomplete config.yaml (the message names the file).
    """
    return read_project_config(Path(config_path))


def task_date(cfg: dict) -> str:
    """``<Task><date>``, DLC's name of a project's datasets and model folders."""
    return f"{cfg['Task']}{cfg['date']}"


def copy_project(config_path: str | Path, dest: str | Path) -> Path:
    """Copy a DLC project to ``dest`` and rewrite its own absolute paths there.

    config.yaml ``project_path`` and ``video_sets``, and the pose configs' paths, point
    into the copy afterwards, so DLC trains and evaluates the copy, never the original.

    Parameters
    ----------
    config_path : str or Path
        config.yaml of the project to copy.
    dest : str or Path
        The new project folder (must not exist).

    Returns
    -------
    Path
        The copy's config.yaml.
    """
    src = Path(config_path).resolve().parent
    dest = Path(dest).resolve()
    shutil.copytree(src, dest, symlinks=True)
    old = str(src)
    for path in sorted(dest.rglob("*.yaml")):
        text = path.read_text()
        if old in text:
            path.write_text(text.replace(old, str(dest)))
    cfg = yaml.safe_load((dest / "config.yaml").read_text())
    cfg["project_path"] = str(dest)
    (dest / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return dest / "config.yaml"


def refuse_cached_tiny_model(config_path: str | Path) -> None:
    """Refuse to train or merge in the platform's own cached tiny models.

    Their projects (``~/.cache/dlc-platform/models/``) back the demo and the tests: a new
    shuffle or a merge (which advances config.yaml ``iteration``) would change what they
    register. Work on a copy (:func:`copy_project`, or
    ``python -m dlc_tracking.training.projects copy CONFIG DEST``).

    Raises
    ------
    TrainingError
        ``config_path`` lies in the tiny-model cache.
    """
    from dlc_tracking.synthetic.tiny_model import default_cache_dir
    from dlc_tracking.training.errors import TrainingError

    cache = (default_cache_dir() / "models").resolve()
    config = Path(config_path).resolve()
    if cache == config or cache in config.parents:
        raise TrainingError(
            f"{config} is a cached tiny model of the platform (demo and tests use it as it "
            "is): copy the project first, e.g. `python -m dlc_tracking.training.projects "
            f"copy {config} demo/lab-project`, register the copy (`dlc-platform models add`) "
            "and train that.")


def main(argv: list[str] | None = None) -> int:
    """``python -m dlc_tracking.training.projects copy CONFIG DEST``: copy a DLC project."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m dlc_tracking.training.projects",
                                     description="Copy a DLC project (paths rewritten).")
    sub = parser.add_subparsers(dest="command", required=True)
    cp = sub.add_parser("copy", help="copy a DLC project to a new folder")
    cp.add_argument("config", type=Path, help="config.yaml of the project")
    cp.add_argument("dest", type=Path, help="new project folder (must not exist)")
    args = parser.parse_args(argv)
    print(copy_project(args.config, args.dest))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
