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
