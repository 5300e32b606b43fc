"""Rigs: a named set of cameras, each with the model that tracks its view."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dlc_tracking.multiview.errors import MultiviewError

__all__ = ["Rig", "check_session_cameras"]

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class Rig:
    """A calibrated multi-camera rig.

    Attributes
    ----------
    name : str
        Rig name (registry ``rigs:`` key).
    cameras : tuple of str
        Camera names, e.g. ``("top", "side_left", "side_right")``; the order is the order of
        the calibration's cameras.
    models : dict
        Camera -> registered model (or ingest-only model) tracking that view; one model may
        serve all views.
    description : str
        Free text.
    calibration : str or None
        The rig's calibration file (Anipose ``calibration.toml`` or a DeepLabCut 3D project's
        ``camera_matrix`` folder) as given in the registry; None: sessions name theirs.
    """

    name: str
    cameras: tuple[str, ...]
    models: dict[str, str] = field(default_factory=dict, hash=False)
    description: str = ""
    calibration: str | None = None

    def __post_init__(self) -> None:
        where = f"rig {self.name!r}"
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise MultiviewError(f"{where}: the name must start with a letter and hold letters, "
                                 "digits, '_' or '-'.")
        cams = tuple(self.cameras)
        object.__setattr__(self, "cameras", cams)
        if len(cams) < 2:
            raise MultiviewError(f"{where}: a 3D rig needs 2 or more cameras, got {list(cams)}.")
        bad = [c for c in cams if not isinstance(c, str) or not _NAME_RE.match(c)]
        if bad:
            raise MultiviewError(f"{where}: camera names {bad} are invalid; use letters, "
                                 "digits, '_' or '-' (e.g. 'top', 'side_left').")
        if len(set(cams)) != len(cams):
            raise MultiviewError(f"{where}: camera names repeat: {list(cams)}.")
        models = dict(self.models)
        unknown = sorted(set(models) - set(cams))
        if unknown:
            raise MultiviewError(f"{where}: models are given for cameras {unknown} that the rig "
                                 f"does not have (cameras: {list(cams)}).")
        object.__setattr__(self, "models", models)

    def model_for(self, camera: str) -> str | None:
        """The model that tracks ``camera`` (None: the session's assignment decides)."""
        return self.models.get(camera)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"name": self.name, "cameras": list(self.cameras), "models": dict(self.models),
                "description": self.description, "calibration": self.calibration}

    @classmethod
    def from_spec(cls, name: str, spec: Mapping[str, Any], where: str = "") -> Rig:
        """From a registry entry ``{cameras: [..] | {camera: {model: ..}}, model: ..}``.

        ``cameras`` is a list of names (then ``model`` names one model for every view) or a
        mapping camera -> ``{model: name}`` (one model per view).
        """
        prefix = f"{where}: " if where else ""
        if not isinstance(spec, Mapping) or "cameras" not in spec:
            raise MultiviewError(f"{prefix}rigs.{name} needs `cameras:` (a list of names, or "
                                 "camera: {model: ...} per camera).")
        cams = spec["cameras"]
        shared = spec.get("model")
        models: dict[str, str] = {}
        if isinstance(cams, Mapping):
            names = [str(c) for c in cams]
            for cam, entry in cams.items():
                model = (entry or {}).get("model") if isinstance(entry, Mapping) else entry
                if model or shared:
                    models[str(cam)] = str(model or shared)
        elif isinstance(cams, Iterable) and not isinstance(cams, str):
            names = [str(c) for c in cams]
            if shared:
                models = {c: str(shared) for c in names}
        else:
            raise MultiviewError(f"{prefix}rigs.{name}.cameras must be a list or a mapping, got "
                                 f"{cams!r}.")
        calibration = spec.get("calibration")
        return cls(name=name, cameras=tuple(names), models=models,
                   description=str(spec.get("description") or ""),
                   calibration=str(calibration) if calibration else None)


def check_session_cameras(rig: Rig, session_cameras: Iterable[str], source: str) -> None:
    """A session may film with all of the rig's cameras or a subset, never another camera.

    Raises
    ------
    MultiviewError
        A camera the rig lacks (naming the file and the rig's cameras), or fewer than 2.
    """
    names = list(session_cameras)
    unknown = [c for c in names if c not in rig.cameras]
    if unknown:
        raise MultiviewError(
            f"{source}: cameras {unknown} are not cameras of rig {rig.name!r} (it has "
            f"{list(rig.cameras)}). Rename them in `cameras:` of session.yaml, or add them to "
            "the rig in the registry (and recalibrate).")
    if len(names) < 2:
        raise MultiviewError(f"{source}: {len(names)} camera(s) {names}; triangulation needs "
                             "2 or more. List every camera's video under `cameras:`.")
