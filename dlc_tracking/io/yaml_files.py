"""Reading the YAML files users write (session.yaml, the registry, DLC configs)."""

from __future__ import annotations

from pathlib import Path

import yaml

from dlc_tracking.errors import DLCPlatformError

# libyaml's parser when present: ~10x faster than the pure-Python one, same results
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml_mapping(path: Path, error: type[DLCPlatformError], missing: str,
                      not_mapping: str, empty_ok: bool = False) -> dict:
    """The top-level mapping of a YAML file, or ``error`` with a message naming the file.

    Parameters
    ----------
    path : Path
        The file.
    error : type
        Exception raised (e.g. ``SessionError``, ``RegistryError``).
    missing : str
        Message when the file does not exist (say what the file is for and the fix).
    not_mapping : str
        Message when the file holds something else than a mapping.
    empty_ok : bool
        An empty file gives ``{}`` instead of the ``not_mapping`` error.
    """
    if not path.is_file():
        raise error(missing)
    try:
        raw = yaml.load(path.read_text(), Loader=SAFE_LOADER)
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path} cannot be read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise error(f"{path} is not valid YAML: {exc}") from exc
    if raw is None and empty_ok:
        return {}
    if not isinstance(raw, dict):
        raise error(not_mapping)
    return raw
