"""Registering multi-animal DLC models known only by their outputs (ingest-only).

The entry has the fields of the single-animal ingest-only entry
(:func:`dlc_tracking.registry.editing.ingest_only_entry`: task, date, engine, net and
snapshot parsed from the scorer) plus the ``derived.multi_animal``
layout read from the maDLC file's ``individuals`` column level (and checked against the
project's config.yaml when given); ``derived.body_parts`` are the multi-animal body
parts, which go through the same canonical vocabulary as any model's.
"""

from __future__ import annotations

from pathlib import Path

from dlc_tracking.errors import DLCPlatformError, RegistryError

__all__ = ["madlc_ingest_only_entry"]


def is_madlc_output(path: Path) -> bool:
    """Whether a DLC output file has an ``individuals`` column level (a maDLC file).

    Prefix-encoded multi-animal files (``B_nose``) look single-animal here; register them
    with their mapping (:func:`madlc_ingest_only_entry`, ``prefix_individuals``).
    """
    import pandas as pd

    path = Path(path)
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8", errors="replace") as f:
            heads = [f.readline().split(",", 1)[0].strip().lower() for _ in range(2)]
        return heads[1] == "individuals"
    if path.suffix.lower() in (".h5", ".hdf5"):
        with pd.HDFStore(path, mode="r") as store:
            keys = store.keys()
            if not keys:
                return False
            key = "/tracks" if "/tracks" in keys else keys[0]
            try:
                columns = store.select(key, stop=1).columns
            except (TypeError, ValueError, NotImplementedError):  # fixed format
                columns = store.get(key).columns
        return "individuals" in (columns.names or ())
    return False


def madlc_ingest_only_entry(outputs_file: Path, *, config_path: Path | None = None,
                            scorer: str | None = None, trainingsetindex: int = 0,
                            prefix_individuals: dict[str, str] | None = None) -> dict:
    """The registry entry of a multi-animal model known by a maDLC output file.

    Parameters
    ----------
    outputs_file : Path
        A tracked ``.h5`` / ``.csv`` (``_el``, ``_bx``, ``_sk``, ``_tr``, ``_filtered``).
    config_path : Path, optional
        The project's config.yaml: its individuals and body parts must equal the file's.
    scorer : str, optional
        Must equal the file's scorer when given.
    trainingsetindex : int
        As for single-animal models.
    prefix_individuals : dict, optional
        For prefix-encoded files (``B_nose``), see
        :func:`dlc_tracking.io.madlc_files.read_madlc`.

    Raises
    ------
    RegistryError
        An unreadable or single-animal file; a scorer, individuals or body parts that
        disagree with ``scorer`` / the config.
    """
    from dlc_tracking.io.madlc_files import read_madlc
    from dlc_tracking.registry.dlc_projects import (
        config_hash,
        multi_animal_layout,
        read_project_config,
    )
    from dlc_tracking.registry.scorers import parse_scorer, snapshot_label

    outputs_file = Path(outputs_file)
    try:
        found = read_madlc(outputs_file, prefix_individuals=prefix_individuals)
    except DLCPlatformError as exc:
        raise RegistryError(f"cannot register a multi-animal model from {outputs_file}: "
                            f"{exc}") from exc
    if scorer is not None and scorer != found.scorer:
        raise RegistryError(
            f"{outputs_file} was written by scorer {found.scorer!r}, not {scorer!r}: these "
            "are not this model's outputs. Drop --scorer (it is read from the file).")
    layout = {"individuals": list(found.individuals),
              "multianimalbodyparts": list(found.body_parts),
              "uniquebodyparts": list(found.unique_body_parts),
              "identity": None, "default_track_method": found.tracker or "ellipse"}
    if config_path is not None:
        cfg = read_project_config(Path(config_path))
        if not cfg.get("multianimalproject"):
            raise RegistryError(f"{config_path} is a single-animal project but "
                                f"{outputs_file} is a multi-animal output; give the "
                                "multi-animal project's config.yaml.")
        from_cfg = multi_animal_layout(cfg, config_path)
        for key in ("multianimalbodyparts", "uniquebodyparts"):
            if from_cfg[key] != layout[key]:
                raise RegistryError(
                    f"{outputs_file}: {key} {layout[key]} differ from {from_cfg[key]} in "
                    f"{config_path}: the outputs were not made by this project's model.")
        generic = [f"ind{k + 1}" for k in range(len(from_cfg["individuals"]))]
        if layout["individuals"] not in (from_cfg["individuals"], generic):
            raise RegistryError(
                f"{outputs_file}: individuals {layout['individuals']} differ from "
                f"{from_cfg['individuals']} in {config_path}.")
        layout = dict(from_cfg, individuals=layout["individuals"])
    cfg = read_project_config(Path(config_path)) if config_path is not None else None
    info = parse_scorer(found.scorer, task=str(cfg["Task"]) if cfg else None,
                        date=str(cfg["date"]) if cfg else None)
    snapshot = snapshot_label(info)
    return {
        "ingest_only": True,
        "project": str(Path(config_path).absolute()) if config_path is not None else None,
        "shuffle": info.shuffle, "trainingsetindex": trainingsetindex,
        "snapshotindex": snapshot,
        "derived": {
            "task": info.task, "date": info.date,
            "iteration": int(cfg["iteration"]) if cfg else None,
            "engine": info.engine, "net_type": info.net_type,
            "training_fraction": (float(cfg["TrainingFraction"][trainingsetindex]) if cfg
                                  else None),
            "model_folder": None, "snapshot": snapshot, "scorer": found.scorer,
            "body_parts": list(found.body_parts),
            "config_hash": config_hash(cfg) if cfg else None,
            "multi_animal": layout,
        },
    }
