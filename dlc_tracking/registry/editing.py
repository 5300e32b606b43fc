"""Edits of the registry file by the admin CLI: models added (from their DLC project, or
from their outputs only), pairings added and removed.

Edits are round trips through ruamel.yaml, so the comments, key order and layout of the
versioned file survive; the file is replaced (atomically) only when the edited registry
validates as a whole, so a refused edit leaves it exactly as it was.

Every writer of the registry (``models add``, pair / unpair, promotions, a trained
version's registration) goes through :func:`edit_registry`, which holds
:func:`registry_lock` for the whole read-modify-write: two edits at once, from threads
or from processes on machines sharing the file, never lose one another's change.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from dlc_tracking.errors import DLCPlatformError, RegistryError
from dlc_tracking.registry.dlc_projects import config_hash, inspect_project, read_project_config
from dlc_tracking.registry.registry_file import ModelEntry, load_registry
from dlc_tracking.registry.scorers import snapshot_label

NEW_FILE_HEADER = ("# dlc-platform registry. Models are added with `dlc-platform models add`;\n"
                   "# their `derived:` fields come from the DLC project and are never edited.\n")


def _yaml() -> YAML:
    y = YAML()  # round-trip mode: comments and order are kept
    y.preserve_quotes = True
    y.indent(mapping=2, sequence=4, offset=2)
    y.width = 4096  # never fold long paths onto a second line
    return y


def _plain(value):
    """ruamel containers hold plain values only (no numpy, no Path)."""
    if isinstance(value, dict):
        out = CommentedMap()
        for k, v in value.items():
            out[str(k)] = _plain(v)
        return out
    if isinstance(value, list | tuple):
        return CommentedSeq([_plain(v) for v in value])
    if isinstance(value, Path):
        return str(value)
    return value


# One (re-entrant lock, depth) per registry file in this process: threads queue on the
# RLock; the file lock (between processes) is taken by the outermost holder only, so a
# caller holding the lock can call edit_registry (a second flock from the same process
# on another descriptor would wait for itself forever).
_LOCKS: dict[str, list] = {}
_LOCKS_GUARD = threading.Lock()


@contextlib.contextmanager
def registry_lock(registry_path: str | Path) -> Iterator[None]:
    """Hold the registry's lock: serialises read-modify-write edits of the file between
    threads and processes (``.<registry name>.lock`` next to it). Re-entrant: a thread
    that holds it may take it again (e.g. plan, then register, then edit).

    Parameters
    ----------
    registry_path : str or Path
        The registry file.
    """
    from filelock import FileLock

    path = Path(registry_path).absolute()
    key = str(path)
    with _LOCKS_GUARD:
        state = _LOCKS.setdefault(key, [threading.RLock(), 0, None])
    rlock = state[0]
    with rlock:
        if state[1] == 0:
            flock = FileLock(str(path.with_name(f".{path.name}.lock")))
            flock.acquire()
            state[2] = flock
        state[1] += 1
        try:
            yield
        finally:
            state[1] -= 1
            if state[1] == 0:
                state[2].release()
                state[2] = None


def _write_atomically(path: Path, text: str) -> Path:
    """``text`` in a new temporary file next to ``path`` (a unique name per writer),
    with the permissions ``path`` has (or the umask's); returns the temporary file."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        if path.exists():
            mode = path.stat().st_mode & 0o777
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)  # mkstemp makes 0600: keep the registry readable by all
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def edit_registry(path: Path, edit: Callable[[CommentedMap], None]) -> None:
    """Apply ``edit`` to the registry document and write it back if the result validates.

    The whole read-modify-write holds :func:`registry_lock`, and the new text is written
    to a temporary file of its own, then moved over the registry (``os.replace``).

    Raises
    ------
    RegistryError
        The file cannot be read, or the edited registry does not validate (the file is
        then unchanged).
    """
    path = Path(path)
    with registry_lock(path):
        _edit_locked(path, edit)


def _edit_locked(path: Path, edit: Callable[[CommentedMap], None]) -> None:
    y = _yaml()
    if path.exists():
        try:
            doc = y.load(path.read_text(encoding="utf-8")) or CommentedMap()
        except Exception as exc:  # ruamel raises many types for malformed files
            raise RegistryError(f"{path}: cannot be read as YAML ({exc}); fix the file "
                                "first (it is in version control).") from exc
    else:
        doc = CommentedMap()
    if not isinstance(doc, CommentedMap):
        raise RegistryError(f"{path} must be a mapping with models:, methods:, pairings:, ...")
    edit(doc)
    buf = io.StringIO()
    if not path.exists():
        buf.write(NEW_FILE_HEADER)
    y.dump(doc, buf)
    tmp = _write_atomically(path, buf.getvalue())
    try:
        load_registry(tmp)
        os.replace(tmp, path)
    except RegistryError as exc:
        tmp.unlink(missing_ok=True)
        # The edit is validated in its temporary file, but the user knows (and fixes)
        # their registry.yaml: name that file in the message, never the temporary one.
        raise RegistryError(_as_registry(str(exc), tmp, path)) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _as_registry(message: str, tmp: Path, path: Path) -> str:
    """``message`` with every spelling of the temporary file ``tmp`` replaced by ``path``."""
    for spelling in (str(tmp.absolute()), str(tmp.resolve()), str(tmp), tmp.name):
        message = message.replace(spelling, str(path) if os.sep in spelling else path.name)
    return message


def _section(doc: CommentedMap, key: str, kind=CommentedMap):
    if doc.get(key) is None:
        doc[key] = kind()
    return doc[key]


def _refuse_taken_name(doc: CommentedMap, name: str, path: Path) -> None:
    if name in (doc.get("models") or {}):
        raise RegistryError(
            f"{path}: a model named {name!r} is already registered; choose another "
            "name (names are never reused for a different model).")


def _add_entry(path: Path, name: str, entry: dict, pair_with: list[str] | None) -> ModelEntry:
    def edit(doc: CommentedMap) -> None:
        _refuse_taken_name(doc, name, path)
        _section(doc, "models")[name] = _plain(entry)
        pairings = _section(doc, "pairings", CommentedSeq)
        for method in pair_with or []:
            pairings.append(_plain({"model": name, "method": method}))

    edit_registry(path, edit)
    return load_registry(path).models[name]


def add_model(registry_path: Path, name: str, config_path: Path, *, shuffle: int = 1,
              trainingsetindex: int = 0, snapshotindex: int | str = -1, description: str = "",
              body_part_map: dict[str, str] | None = None, project_as: str | None = None,
              pair_with: list[str] | None = None, extra: dict | None = None) -> ModelEntry:
    """Register a trained model: derive its entry from the DLC project and write it.

    ``project_as`` is the text stored as ``project:`` (e.g. with ``${VAR}``); by default
    the absolute path of config.yaml. ``extra`` holds further keys of the entry written in
    the same atomic edit (e.g. ``training:``, ``evaluation:``, ``trained:`` of a version
    the platform trained, see docs/models.md).
    """
    registry_path = Path(registry_path)
    model = inspect_project(Path(config_path), shuffle, trainingsetindex, snapshotindex)
    entry = {"description": description,
             "project": project_as or str(model.project_config),
             "shuffle": shuffle, "trainingsetindex": trainingsetindex,
             "snapshotindex": snapshotindex}
    if body_part_map:
        entry["body_part_map"] = dict(body_part_map)
    entry.update({k: v for k, v in (extra or {}).items() if k not in ("derived", "project")})
    entry["derived"] = model.derived_dict()
    return _add_entry(registry_path, name, entry, pair_with)


def ingest_only_entry(*, outputs_file: Path | None = None, config_path: Path | None = None,
                      scorer: str | None = None, shuffle: int | None = None,
                      trainingsetindex: int = 0) -> dict:
    """The registry entry of a model known only by its outputs (and maybe its config).

    Scorer and body parts come from the outputs file when given; task, date, shuffle,
    net and training iterations / snapshot are parsed from the scorer; iteration,
    training fraction and the config hash come from config.yaml when given. An NWB file
    written by DLC2NWB (scorer without ``_<iterations>``) registers a model without a
    snapshot (``snapshotindex`` absent; its description says so).

    Raises
    ------
    RegistryError
        Neither a scorer nor an outputs file; a file whose scorer or body parts disagree
        with ``--scorer`` or the config; a multi-animal file or project.
    """
    from dlc_tracking.io.dlc_files import read_predictions
    from dlc_tracking.io.sleap_files import is_sleap_file
    from dlc_tracking.registry.scorers import parse_scorer

    if outputs_file is not None and is_sleap_file(outputs_file):
        return sleap_ingest_only_entry(Path(outputs_file), config_path=config_path,
                                       scorer=scorer)
    body_parts = None
    if outputs_file is not None:
        try:
            if Path(outputs_file).suffix.lower() == ".nwb":
                from dlc_tracking.io.nwb_pose import read_nwb_predictions

                found, _ = read_nwb_predictions(outputs_file)
            else:
                found = read_predictions(outputs_file)
        except DLCPlatformError as exc:
            raise RegistryError(f"cannot register a model from {outputs_file}: {exc}") from exc
        if scorer is not None and scorer != found.scorer:
            raise RegistryError(
                f"{outputs_file} was written by scorer {found.scorer!r}, not {scorer!r} given "
                "with --scorer: these are not this model's outputs. Drop --scorer (it is read "
                "from the file) or give the file this model wrote.")
        scorer, body_parts = found.scorer, list(found.body_parts)
    if not scorer:
        raise RegistryError("an ingest-only model needs its scorer: give --scorer SCORER (the "
                            "top header row of its .h5/.csv outputs) or --from-outputs FILE.")
    cfg = read_project_config(Path(config_path)) if config_path is not None else None
    # NWB files written by DLC2NWB carry the scorer without its snapshot part.
    info = parse_scorer(scorer, task=str(cfg["Task"]) if cfg else None,
                        date=str(cfg["date"]) if cfg else None, snapshot_optional=True)
    where = f"scorer {scorer!r}"
    if cfg is not None:
        if cfg.get("multianimalproject"):
            raise RegistryError(f"{config_path} is a multi-animal project; only single-animal "
                                "models are supported for now.")
        cfg_parts = list(cfg["bodyparts"])
        if body_parts is not None and body_parts != cfg_parts:
            raise RegistryError(
                f"{outputs_file}: body parts {body_parts} differ from {cfg_parts} in "
                f"{config_path}: the outputs were not made by this project's model. Give the "
                "config.yaml of the project that made them, or register without --config.")
        body_parts = body_parts or cfg_parts
        fractions = cfg["TrainingFraction"]
        if not 0 <= trainingsetindex < len(fractions):
            raise RegistryError(f"trainingsetindex {trainingsetindex} is out of range for "
                                f"{config_path}: TrainingFraction is {fractions}.")
    if body_parts is None:
        raise RegistryError(f"{where}: the body parts are unknown; give --from-outputs FILE or "
                            "--config CONFIG.yaml.")
    if shuffle is not None and info.shuffle is not None and shuffle != info.shuffle:
        raise RegistryError(f"{where} says shuffle {info.shuffle}, not --shuffle {shuffle}: "
                            "drop --shuffle or give the right scorer.")
    snapshot = snapshot_label(info)
    return {
        "ingest_only": True,
        "project": str(Path(config_path).absolute()) if config_path is not None else None,
        "shuffle": info.shuffle if info.shuffle is not None else shuffle,
        "trainingsetindex": trainingsetindex,
        "snapshotindex": snapshot,
        "derived": {
            "task": info.task, "date": info.date,
            "iteration": int(cfg["iteration"]) if cfg else None,
            "engine": info.engine, "net_type": info.net_type,
            "training_fraction": float(cfg["TrainingFraction"][trainingsetindex]) if cfg else None,
            "model_folder": None, "snapshot": snapshot, "scorer": scorer,
            "body_parts": body_parts, "config_hash": config_hash(cfg) if cfg else None,
        },
    }


def sleap_ingest_only_entry(outputs_file: Path, *, config_path: Path | None = None,
                            scorer: str | None = None) -> dict:
    """The registry entry of a SLEAP model known by its predictions (``.slp`` or analysis
    ``.h5``, read with sleap-io): engine ``sleap``, the file's scorer (``SLEAP``, or
    ``SLEAP_<model>`` when the file records its model) and its skeleton's node names as
    the body parts (map them with ``body_part_map``). No DLC identity: task, date, net,
    shuffle and snapshot are empty.

    Raises
    ------
    RegistryError
        An unreadable file, ``--config`` given (a DLC project cannot describe a SLEAP
        model), or a ``--scorer`` that is not the file's.
    """
    from dlc_tracking.io.sleap_files import read_sleap_predictions

    if config_path is not None:
        raise RegistryError(f"{outputs_file} holds SLEAP predictions; --config names a "
                            "DeepLabCut project, which cannot describe a SLEAP model: drop it.")
    try:
        found = read_sleap_predictions(outputs_file)
    except DLCPlatformError as exc:
        raise RegistryError(f"cannot register a model from {outputs_file}: {exc}") from exc
    if scorer is not None and scorer != found.scorer:
        raise RegistryError(f"{outputs_file} was written by {found.scorer!r}, not {scorer!r} "
                            "given with --scorer: drop --scorer (it is read from the file).")
    return {
        "ingest_only": True, "project": None, "shuffle": None, "trainingsetindex": 0,
        "snapshotindex": None,
        "derived": {
            "task": None, "date": None, "iteration": None, "engine": "sleap",
            "net_type": None, "training_fraction": None, "model_folder": None,
            "snapshot": None, "scorer": found.scorer, "body_parts": list(found.body_parts),
            "config_hash": None,
        },
    }


def add_ingest_only_model(registry_path: Path, name: str, *, outputs_file: Path | None = None,
                          config_path: Path | None = None, scorer: str | None = None,
                          shuffle: int | None = None, trainingsetindex: int = 0,
                          description: str = "", body_part_map: dict[str, str] | None = None,
                          pair_with: list[str] | None = None) -> ModelEntry:
    """Register a model known only by its outputs (see :func:`ingest_only_entry`)."""
    from dlc_tracking.io.sleap_files import is_sleap_file
    from dlc_tracking.registry.madlc_models import is_madlc_output, madlc_ingest_only_entry

    # SLEAP files (ingest_only_entry reads them) are no DLC tables: test for them first
    if (outputs_file is not None and not is_sleap_file(outputs_file)
            and is_madlc_output(Path(outputs_file))):
        # a maDLC file: its individuals and unique body parts become derived.multi_animal
        entry = madlc_ingest_only_entry(Path(outputs_file), config_path=config_path,
                                        scorer=scorer, trainingsetindex=trainingsetindex)
    else:
        entry = ingest_only_entry(outputs_file=outputs_file, config_path=config_path,
                                  scorer=scorer, shuffle=shuffle,
                                  trainingsetindex=trainingsetindex)
    entry = {"description": description, **entry}
    if body_part_map:
        entry["body_part_map"] = dict(body_part_map)
    entry = {k: v for k, v in entry.items() if v is not None or k == "shuffle"}
    return _add_entry(Path(registry_path), name, entry, pair_with)


def pair(registry_path: Path, model: str, method: str) -> None:
    """Accept a model x method pairing (checked: the model tracks the method's parts)."""
    def edit(doc: CommentedMap) -> None:
        pairings = _section(doc, "pairings", CommentedSeq)
        if any(p.get("model") == model and p.get("method") == method for p in pairings):
            raise RegistryError(f"{registry_path}: {model!r} x {method!r} is already paired.")
        pairings.append(_plain({"model": model, "method": method}))

    edit_registry(Path(registry_path), edit)


def unpair(registry_path: Path, model: str, method: str) -> None:
    """Remove a pairing; refused while a tracking-type default still uses it."""
    def edit(doc: CommentedMap) -> None:
        pairings = doc.get("pairings") or []
        keep = [p for p in pairings if not (p.get("model") == model and p.get("method") == method)]
        if len(keep) == len(pairings):
            raise RegistryError(f"{registry_path}: no pairing {model!r} x {method!r} to remove; "
                                "`dlc-platform models show NAME` lists a model's pairings.")
        for ttype, d in (doc.get("defaults") or {}).items():
            if isinstance(d, dict) and d.get("model") == model and d.get("method") == method:
                raise RegistryError(
                    f"{registry_path}: {model!r} x {method!r} is the default of tracking type "
                    f"{ttype!r}; change `defaults.{ttype}` first.")
        pairings.clear()
        pairings.extend(keep)

    edit_registry(Path(registry_path), edit)
