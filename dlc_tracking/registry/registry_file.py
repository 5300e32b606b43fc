"""The registry file: DLC models, body-part vocabulary, tracking types, state-vector
methods, model x method pairings and default assignments.

The registry is a YAML file kept in version control (see ``registry/registry.yaml``).
Administrators add models with ``dlc-platform models add`` (no code); the derived fields
of an entry (identity, scorer, body parts, snapshot, hashes) are written by that command
from the DLC project itself and re-checked by ``dlc-platform registry validate``.

Loading the registry never touches DLC projects (the Dagster code location loads it on
machines that hold no models); ``validate(check_projects=True)`` and the inference
resource check that a model's files are really there.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from dlc_tracking.errors import DLCPlatformError, ModelNotAvailableError, RegistryError
from dlc_tracking.io.yaml_files import read_yaml_mapping
from dlc_tracking.registry.body_parts import CANONICAL_BODY_PARTS, canonical_names
from dlc_tracking.registry.dlc_projects import ModelIdentity, check_model_available, inspect_project

DEFAULT_TRACKING_TYPES = {
    "openfield": {"supported": True, "description": "Animal moving freely in an arena seen "
                  "from above or below; processed to head position and direction."},
    "wheel": {"supported": False, "description": "Running wheel",
              "reason": "no state-vector method for wheel recordings yet"},
    "linear_track": {"supported": False, "description": "Linear track",
                     "reason": "no state-vector method for linear tracks yet"},
}
DERIVED_KEYS = ("task", "date", "iteration", "engine", "training_fraction", "net_type",
                "model_folder", "snapshot", "scorer", "body_parts", "config_hash")
# What an ingest-only entry always knows (from its scorer and outputs); the rest may be null.
INGEST_ONLY_DERIVED_KEYS = ("task", "date", "engine", "net_type", "scorer", "body_parts")


@dataclass(frozen=True)
class TrackingType:
    name: str
    supported: bool
    description: str = ""
    reason: str = ""


@dataclass
class ModelEntry:
    """One registered DLC model (the seed's DLCModel)."""

    name: str
    description: str
    project: str | None  # as written in the registry (may hold ${VARS} or be relative)
    project_config: Path | None  # resolved; None for an ingest-only model without config
    shuffle: int
    trainingsetindex: int
    snapshotindex: int | str
    body_part_map: dict[str, str]
    derived: dict
    canonical_body_parts: list[str]
    # How this model's inference runs: "platform" (the platform's engine) or "dlc"
    # (DeepLabCut's analyze_videos); None = the inference resource's default.
    inference_engine: str | None = None
    # Per-model platform-engine settings (registry key ``inference:``, docs/inference.md):
    # cropping (on/off), margin_px, threshold, refresh_every, runtime; {} = the defaults.
    inference: dict = field(default_factory=dict)
    # Celery queue of the workers that hold this model's files; None = the GPU queue.
    queue: str | None = None
    # Known only by its outputs (trained and run elsewhere): its outputs are ingested, it
    # never runs inference here. project_config is its config.yaml when given, else None.
    ingest_only: bool = False

    @property
    def engine(self) -> str:
        return self.derived["engine"]

    @property
    def scorer(self) -> str:
        return self.derived["scorer"]

    @property
    def dlc_body_parts(self) -> list[str]:
        return list(self.derived["body_parts"])

    @property
    def multi_animal(self) -> dict | None:
        """A multi-animal model's ``individuals``, ``multianimalbodyparts``,
        ``uniquebodyparts``, ``identity``, ``default_track_method``; None otherwise."""
        layout = self.derived.get("multi_animal")
        return dict(layout) if layout else None

    @property
    def identity(self) -> ModelIdentity:
        d = self.derived
        iteration = d.get("iteration")
        return ModelIdentity(str(d["task"]), str(d["date"]),
                             int(iteration) if iteration is not None else None, self.shuffle,
                             self.trainingsetindex, self.snapshotindex, d["engine"])

    @property
    def identity_key(self) -> str:
        """Unique per trained model. An ingest-only model is known by its scorer (plus its
        iteration when its config gave it): its outputs are matched by scorer."""
        if self.ingest_only:
            return json.dumps({"scorer": self.scorer, "iteration": self.derived.get("iteration")})
        return self.identity.key()

    @property
    def project_dir(self) -> Path | None:
        return self.project_config.parent if self.project_config else None

    def to_canonical(self) -> dict[str, str]:
        """``{dlc name: canonical name}`` for every body part of the model."""
        return dict(zip(self.dlc_body_parts, self.canonical_body_parts, strict=True))

    def check_available(self) -> None:
        """Fail early when inference cannot run here (files missing, or ingest-only)."""
        if self.ingest_only:
            raise ModelNotAvailableError(
                f"model {self.name!r} is ingest-only (registered from its outputs; its "
                "weights are not known to the platform), so it cannot run inference: put its "
                "DLC outputs for this video in the session's dlc_<video stem>/ folder, or "
                "register the trained model with its weights (`dlc-platform models add "
                "--name NEW_NAME --config PROJECT/config.yaml`) and assign that one.")
        check_model_available(self.project_config, self.derived["snapshot"], self.engine,
                              self.name, self.derived.get("model_folder"))

    def row(self) -> dict:
        d = self.derived

        def opt(value, kind):
            return None if value is None else kind(value)

        return {
            "model_name": self.name, "description": self.description,
            "project_config": opt(self.project_config, str), "task": d["task"],
            "date": opt(d["date"], str), "iteration": opt(d.get("iteration"), int),
            "shuffle": opt(self.shuffle, int), "trainingsetindex": self.trainingsetindex,
            "snapshotindex": str(self.snapshotindex), "engine": d["engine"],
            "training_fraction": opt(d.get("training_fraction"), float),
            "net_type": d["net_type"], "snapshot": d.get("snapshot"), "scorer": d["scorer"],
            "dlc_body_parts": ",".join(self.dlc_body_parts),
            "body_parts": ",".join(self.canonical_body_parts),
            "config_hash": d.get("config_hash"), "ingest_only": self.ingest_only,
        }


@dataclass
class Registry:
    path: Path
    body_parts: dict[str, str]
    tracking_types: dict[str, TrackingType]
    methods: dict  # name -> methods.StateVectorMethod
    models: dict[str, ModelEntry]
    pairings: list[tuple[str, str]]
    defaults: dict[str, tuple[str, str]]
    processing: dict  # name -> processing.ProcessingParams
    raw: dict = field(repr=False, default_factory=dict)
    rigs: dict = field(default_factory=dict)  # name -> sessions.layout.Arena
    default_processing: dict[str, str] = field(default_factory=dict)  # tracking type -> set
    # Model versions replaced by a newer one (`dlc-platform models promote`): old -> new.
    promotions: dict[str, str] = field(default_factory=dict)
    # Rigs that name cameras (`rigs: {NAME: {cameras: ...}}`): name -> multiview.rigs.Rig.
    camera_rigs: dict = field(default_factory=dict)
    # The `social:` section of each processing parameter set that has one: set name ->
    # social.measures.SocialParams (multi-animal recordings, docs/multi-animal.md).
    social: dict = field(default_factory=dict)

    # -- lookups -----------------------------------------------------------------------
    def model(self, name: str) -> ModelEntry:
        if name not in self.models:
            raise RegistryError(
                f"{self.path}: no model named {name!r}; registered: {sorted(self.models)}. "
                "Register it with `dlc-platform models add`."
            )
        return self.models[name]

    def method(self, name: str):
        if name not in self.methods:
            raise RegistryError(
                f"{self.path}: no state-vector method named {name!r}; "
                f"known: {sorted(self.methods)}."
            )
        return self.methods[name]

    def tracking_type(self, name: str) -> TrackingType:
        if name not in self.tracking_types:
            raise RegistryError(
                f"unknown tracking type {name!r}; declared in {self.path}: "
                f"{sorted(self.tracking_types)}. Declare it under `tracking_types:`."
            )
        return self.tracking_types[name]

    def processing_params(self, name: str = "default", where: str = ""):
        if name not in self.processing:
            raise RegistryError(
                f"{where + ': ' if where else ''}no processing parameter set named {name!r} "
                f"in {self.path}; defined: {sorted(self.processing)}."
                f"{_did_you_mean(name, self.processing)} Define it under `processing:` "
                "(docs/processing.md) or fix the name.")
        return self.processing[name]

    def resolve_processing(self, tracking_type: str, chosen: str | None, where: str = ""):
        """The parameter set a recording uses: its session's choice, else its tracking
        type's default (registry ``defaults: {type: {processing: NAME}}``), else ``default``."""
        name = chosen or self.default_processing.get(tracking_type, "default")
        return self.processing_params(name, where)

    def social_params(self, name: str = "default", where: str = ""):
        """The social parameters of processing parameter set ``name``: its ``social:``
        section, else every social parameter at its default (named after the set either
        way, so the social rows say which set made them)."""
        from dlc_tracking.social.measures import SocialParams

        self.processing_params(name, where)  # an unknown set fails with the defined ones
        return self.social.get(name) or SocialParams(name=name)

    def rig(self, name: str, where: str = ""):
        """The arena of a named rig (registry ``rigs:``)."""
        if name in self.camera_rigs and name not in self.rigs:
            raise RegistryError(
                f"{where + ': ' if where else ''}rig {name!r} in {self.path} names cameras but "
                "no arena outline; add `arena:` to it (docs/registry.md, Rigs) or give the "
                "session's `arena:` in session.yaml.")
        if name not in self.rigs:
            raise RegistryError(
                f"{where + ': ' if where else ''}rig {name!r} is not defined in {self.path}; "
                f"defined rigs: {sorted(self.rigs) or 'none'}.{_did_you_mean(name, self.rigs)} "
                "Add it under `rigs:` (docs/registry.md) or fix `rig:` in session.yaml.")
        return self.rigs[name]

    def camera_rig(self, name: str, where: str = ""):
        """The cameras of a named rig (registry ``rigs: {NAME: {cameras: ...}}``) as a
        :class:`dlc_tracking.multiview.rigs.Rig`."""
        if name not in self.camera_rigs:
            raise RegistryError(
                f"{where + ': ' if where else ''}rig {name!r} in {self.path} names no cameras; "
                f"rigs with cameras: {sorted(self.camera_rigs) or 'none'}."
                f"{_did_you_mean(name, self.camera_rigs)} Add `cameras:` to it under `rigs:` "
                "(docs/registry.md, Rigs; docs/3d.md).")
        return self.camera_rigs[name]

    def resolve_assignment(self, tracking_type: str, model: str | None, method: str | None,
                           where: str = "") -> tuple[str, str]:
        """The (model, method) a recording uses: its own assignment, else the default of
        its tracking type. Only accepted pairings are allowed."""
        prefix = f"{where}: " if where else ""
        self.tracking_type(tracking_type)
        if model is None or method is None:
            if tracking_type not in self.defaults:
                raise RegistryError(
                    f"{prefix}no assignment (model + method) and no default for tracking type "
                    f"{tracking_type!r} in {self.path}; add `assignment:` to session.yaml or "
                    f"`defaults: {{{tracking_type}: {{model: ..., method: ...}}}}` to the registry."
                )
            model, method = self.defaults[tracking_type]
        model = self.promoted(model)  # a promoted version replaces its predecessor
        self.model(model)
        self.method(method)
        if (model, method) not in self.pairings:
            raise RegistryError(
                f"{prefix}model {model!r} with method {method!r} is not an accepted pairing in "
                f"{self.path}; accepted: {self.pairings}. Add it under `pairings:` "
                "(it is checked that the model tracks the method's body parts)."
            )
        return model, method

    def promoted(self, model: str) -> str:
        """The version that replaces ``model`` (registry ``promotions:``, followed to its
        end), or ``model`` itself when none does."""
        seen = [model]
        while model in self.promotions:
            model = self.promotions[model]
            if model in seen:  # load_registry refuses cycles; never loop forever
                break
            seen.append(model)
        return model

    def content_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.raw, sort_keys=True, default=str).encode()
                              ).hexdigest()[:16]

    # -- checks ------------------------------------------------------------------------
    def validate(self, *, check_projects: bool = False) -> list[str]:
        """Problems that loading does not catch: projects moved or changed since they were
        registered (derived fields re-derived from the project and compared)."""
        problems = []
        if not check_projects:
            return problems
        for entry in self.models.values():
            if entry.ingest_only:
                problems.extend(_ingest_only_problems(entry))
                continue
            try:
                entry.check_available()
                fresh = inspect_project(entry.project_config, entry.shuffle,
                                        entry.trainingsetindex, entry.snapshotindex,
                                        iteration=entry.derived.get("iteration"))
            except DLCPlatformError as exc:
                problems.append(f"model {entry.name!r}: {exc}")
                continue
            changed = {k: (entry.derived.get(k), v) for k, v in fresh.derived_dict().items()
                       if _norm(entry.derived.get(k)) != _norm(v)}
            if changed:
                problems.append(
                    f"model {entry.name!r}: the project changed since registration {changed}; "
                    "register it again under a new name (`dlc-platform models add`)."
                )
        return problems


def _did_you_mean(name: str, known) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def _ingest_only_problems(entry: ModelEntry) -> list[str]:
    """An ingest-only model is valid when its config (if it has one) still agrees with it."""
    if entry.project_config is None:
        return []
    from dlc_tracking.registry.dlc_projects import read_project_config

    try:
        cfg = read_project_config(entry.project_config)
    except DLCPlatformError as exc:
        return [f"model {entry.name!r} (ingest-only): {exc}"]
    d = entry.derived
    changed = {k: (d.get(k), cfg.get(c)) for k, c in (("task", "Task"), ("date", "date"))
               if str(d.get(k)) != str(cfg.get(c))}
    if list(cfg.get("bodyparts") or []) != list(d["body_parts"]):
        changed["body_parts"] = (d["body_parts"], cfg.get("bodyparts"))
    if changed:
        return [f"model {entry.name!r} (ingest-only): {entry.project_config} no longer agrees "
                f"with the registered entry {changed}; register it again under a new name."]
    return []


def _norm(value):
    return [str(v) for v in value] if isinstance(value, list) else str(value)


def _expand(path_text: str, base: Path) -> Path:
    expanded = os.path.expandvars(os.path.expanduser(path_text))
    path = Path(expanded)
    return path if path.is_absolute() else (base / path)


def default_registry_path() -> Path:
    return Path(os.environ.get("DLC_PLATFORM_REGISTRY", "registry/registry.yaml")).absolute()


def read_registry_yaml(path: Path) -> dict:
    raw = read_yaml_mapping(
        path, RegistryError,
        missing=f"registry file not found: {path} (set DLC_PLATFORM_REGISTRY).",
        not_mapping=f"{path} must be a mapping with models:, methods:, pairings:, ...",
        empty_ok=True)
    unknown = set(raw) - {"body_parts", "tracking_types", "methods", "models", "pairings",
                          "defaults", "processing", "rigs", "promotions"}
    if unknown:
        raise RegistryError(f"{path}: unknown top-level keys {sorted(unknown)}.")
    return raw


def load_registry(path: Path | None = None) -> Registry:
    """Read and validate the registry file (without touching the DLC projects).

    Raises
    ------
    RegistryError
        Malformed YAML, unknown keys, alias body parts without a map, a map onto an
        unknown name, duplicate identities, a pairing whose model lacks the method's body
        parts, an unknown tracking type, ...; each message names the file and key.
    """
    from dlc_tracking.tracking.methods import BUILTIN_METHODS, StateVectorMethod
    from dlc_tracking.tracking.params import ProcessingParams

    path = Path(path or default_registry_path()).absolute()
    raw = read_registry_yaml(path)
    where = str(path)

    body_parts = dict(CANONICAL_BODY_PARTS)
    for name, desc in (raw.get("body_parts") or {}).items():
        body_parts[str(name)] = str(desc or "")

    tracking_types = {}
    for name, spec in {**DEFAULT_TRACKING_TYPES, **(raw.get("tracking_types") or {})}.items():
        spec = spec or {}
        tracking_types[name] = TrackingType(name, bool(spec.get("supported", False)),
                                            str(spec.get("description", "")),
                                            str(spec.get("reason", "") or (
                                                "" if spec.get("supported") else
                                                "tracking type not supported for processing")))

    # Built-in methods are always there; the registry adds its own (or redefines them).
    methods = {name: m for name, m in BUILTIN_METHODS.items() if m.tracking_type in tracking_types}
    for name, spec in (raw.get("methods") or {}).items():
        if not isinstance(spec, dict):
            raise RegistryError(f"{where}: methods.{name} must be a mapping.")
        try:
            method = StateVectorMethod.from_dict({"name": name, **spec})
        except DLCPlatformError as exc:
            raise RegistryError(f"{where}: methods.{name}: {exc}") from exc
        if method.tracking_type not in tracking_types:
            raise RegistryError(
                f"{where}: methods.{name} applies to unknown tracking type "
                f"{method.tracking_type!r}; declared: {sorted(tracking_types)}."
            )
        unknown = [p for p in method.body_parts if p not in body_parts]
        if unknown:
            raise RegistryError(f"{where}: methods.{name} needs unknown body parts {unknown}.")
        methods[name] = method

    models: dict[str, ModelEntry] = {}
    identities: dict[str, str] = {}
    for name, spec in (raw.get("models") or {}).items():
        entry = _model_entry(name, spec, path, body_parts)
        twin = _same_outputs(entry, models.values())
        if twin is not None:
            raise RegistryError(
                f"{where}: models.{name} writes the same scorer {entry.scorer!r} as "
                f"models.{twin.name} (one of them ingest-only) and no different iteration "
                "tells them apart: their outputs could not be attributed. Register it once; "
                "if they really differ, give the ingest-only model its config.yaml (--config) "
                "so its iteration is known.")
        key = entry.identity_key
        if key in identities:
            raise RegistryError(
                f"{where}: models.{name} has the same identity as models.{identities[key]} "
                f"({entry.identity}); one trained model is registered once."
            )
        identities[key] = name
        models[name] = entry

    pairings = []
    for i, pair in enumerate(raw.get("pairings") or []):
        if not isinstance(pair, dict) or set(pair) != {"model", "method"}:
            raise RegistryError(f"{where}: pairings[{i}] must be {{model: ..., method: ...}}.")
        model, method = pair["model"], pair["method"]
        check_pairing(models.get(model) or _missing("model", model, models, where),
                      methods.get(method) or _missing("method", method, methods, where), where)
        pairings.append((model, method))

    processing, social = {"default": ProcessingParams()}, {}
    for name, spec in (raw.get("processing") or {}).items():
        if spec is not None and not isinstance(spec, dict):
            raise RegistryError(f"{where}: processing.{name} must be a mapping of parameters "
                                f"(got {spec!r}). See docs/processing.md.")
        spec = dict(spec or {})
        if "social" in spec:
            social[str(name)] = _social_params(str(name), spec.pop("social"), where)
        try:
            processing[name] = ProcessingParams.from_dict({"name": name, **spec})
        except (TypeError, ValueError, DLCPlatformError) as exc:
            raise RegistryError(f"{where}: processing.{name}: {exc} See docs/processing.md."
                                ) from exc

    defaults, default_processing = {}, {}
    for ttype, pair in (raw.get("defaults") or {}).items():
        if ttype not in tracking_types:
            raise RegistryError(f"{where}: defaults.{ttype}: unknown tracking type {ttype!r}.")
        pair = pair if isinstance(pair, dict) else {}
        unknown = sorted(set(pair) - {"model", "method", "processing"})
        if unknown:
            raise RegistryError(f"{where}: defaults.{ttype}: unknown keys {unknown}; use "
                                "model, method and processing.")
        if "processing" in pair:
            if pair["processing"] not in processing:
                raise RegistryError(
                    f"{where}: defaults.{ttype}.processing names unknown parameter set "
                    f"{pair['processing']!r}; defined: {sorted(processing)}.")
            default_processing[ttype] = str(pair["processing"])
        if "model" in pair or "method" in pair:
            if (pair.get("model"), pair.get("method")) not in pairings:
                raise RegistryError(
                    f"{where}: defaults.{ttype} must name an accepted pairing "
                    f"{{model: ..., method: ...}}; accepted: {pairings}."
                )
            defaults[ttype] = (pair["model"], pair["method"])

    rigs, camera_rigs = {}, {}
    for name, spec in (raw.get("rigs") or {}).items():
        arena, cams = _rig(str(name), spec, where, models)
        if arena is not None:
            rigs[str(name)] = arena
        if cams is not None:
            camera_rigs[str(name)] = cams

    promotions = _promotions(raw.get("promotions"), models, where)
    return Registry(path, body_parts, tracking_types, methods, models, pairings, defaults,
                    processing, raw, rigs, default_processing, promotions, camera_rigs,
                    social)


def _social_params(name: str, spec, where: str):
    """``processing.NAME.social`` as SocialParams named ``NAME`` (docs/multi-animal.md,
    section 6); every error names the file and the key."""
    from dlc_tracking.social.measures import SocialParams

    key = f"processing.{name}.social"
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise RegistryError(f"{where}: {key} must be a mapping of social parameters "
                            f"(got {spec!r}); see docs/multi-animal.md, section 6.")
    if "name" in spec:
        raise RegistryError(f"{where}: {key}.name: the social parameters take the set's name "
                            f"({name!r}); remove the key.")
    try:
        return SocialParams.from_dict({"name": name, **spec})
    except (TypeError, ValueError, DLCPlatformError) as exc:
        raise RegistryError(f"{where}: {key}: {exc} See docs/multi-animal.md, section 6."
                            ) from exc


def _promotions(spec, models: dict, where: str) -> dict[str, str]:
    """``promotions: {OLD: {model: NEW, ...}}`` as ``{old: new}``; both registered, no
    cycles (written by `dlc-platform models promote`, docs/models.md)."""
    out: dict[str, str] = {}
    for old, entry in (spec or {}).items():
        new = entry.get("model") if isinstance(entry, dict) else entry
        if not isinstance(new, str):
            raise RegistryError(f"{where}: promotions.{old} must be {{model: NEW, ...}}.")
        for name in (old, new):
            if name not in models:
                raise RegistryError(f"{where}: promotions.{old} names unknown model {name!r}; "
                                    f"registered: {sorted(models)}.")
        out[str(old)] = new
    for start in out:
        seen, model = {start}, out[start]
        while model in out:
            if model in seen:
                raise RegistryError(f"{where}: promotions form a cycle through {model!r}; "
                                    "remove one of the entries.")
            seen.add(model)
            model = out[model]
    return out


_RIG_KEYS = {"arena", "description", "cameras", "model", "calibration"}


def _rig(name: str, spec, where: str, models: dict):
    """(arena or None, multiview Rig or None) of a registry rig: an arena outline, cameras
    (docs/3d.md), or both."""
    if (not isinstance(spec, dict) or set(spec) - _RIG_KEYS
            or not ({"arena", "cameras"} & set(spec))):
        raise RegistryError(f"{where}: rigs.{name} must be {{arena: {{...}}, description: ...}} "
                            "and/or {cameras: [...] | {CAMERA: {model: ...}}, model: ..., "
                            "calibration: PATH} (docs/registry.md, Rigs).")
    arena = _rig_arena(name, spec, where) if "arena" in spec else None
    cams = None
    if "cameras" in spec:
        from dlc_tracking.multiview.errors import MultiviewError
        from dlc_tracking.multiview.rigs import Rig

        try:
            cams = Rig.from_spec(name, spec, where)
        except MultiviewError as exc:
            raise RegistryError(str(exc)) from exc
        if cams.calibration and not Path(cams.calibration).expanduser().is_absolute():
            # A relative calibration path is relative to the registry file, like other paths.
            from dataclasses import replace
            cams = replace(cams, calibration=str(Path(where).parent / cams.calibration))
        for cam, model in cams.models.items():
            if model not in models:
                raise RegistryError(f"{where}: rigs.{name}.cameras.{cam} names unknown model "
                                    f"{model!r}; registered: {sorted(models)}.")
    return arena, cams


def _rig_arena(name: str, spec, where: str):
    """A rig's arena (size and outline in pixels), validated like session.yaml's."""
    from pydantic import ValidationError

    from dlc_tracking.sessions.layout import Arena, validation_problems

    try:
        arena = Arena.model_validate(spec["arena"])
    except ValidationError as exc:
        raise RegistryError(f"{where}: rigs.{name}.arena is invalid: "
                            f"{validation_problems(exc)}.") from exc
    if not arena.has_outline:
        raise RegistryError(f"{where}: rigs.{name}.arena has no outline in pixels (corners_px, "
                            "bounds_px or center_px + radius_px); that is what a rig gives.")
    return arena


def _same_outputs(entry: ModelEntry, others) -> ModelEntry | None:
    """Another model whose outputs cannot be told from an ingest-only model's."""
    for other in others:
        if other.scorer != entry.scorer or not (entry.ingest_only or other.ingest_only):
            continue
        a, b = entry.derived.get("iteration"), other.derived.get("iteration")
        if a is None or b is None or a == b:
            return other
    return None


def _missing(kind: str, name: str, known: dict, where: str):
    raise RegistryError(f"{where}: pairing names unknown {kind} {name!r}; known: {sorted(known)}.")


def check_pairing(model: ModelEntry, method, where: str = "") -> None:
    """A model x method pairing is valid only when the model tracks every part it needs."""
    missing = [p for p in method.body_parts if p not in model.canonical_body_parts]
    if missing:
        raise RegistryError(
            f"{where}: model {model.name!r} cannot be paired with method {method.name!r}: the "
            f"model does not track {missing} (it tracks {model.canonical_body_parts})."
        )


def _model_entry(name: str, spec: dict, path: Path, vocabulary) -> ModelEntry:
    where = f"{path}: models.{name}"
    if not isinstance(spec, dict):
        raise RegistryError(f"{where} must be a mapping.")
    ingest_only = bool(spec.get("ingest_only", False))
    for key in (("derived",) if ingest_only else ("project", "derived")):
        if key not in spec:
            raise RegistryError(
                f"{where} lacks {key!r}; write entries with `dlc-platform models add`."
            )
    derived = spec["derived"] or {}
    needed = INGEST_ONLY_DERIVED_KEYS if ingest_only else DERIVED_KEYS
    missing = [k for k in needed if k not in derived]
    if missing:
        raise RegistryError(f"{where}.derived lacks {missing}; re-run `dlc-platform models add`.")
    name_map = {str(k): str(v) for k, v in (spec.get("body_part_map") or {}).items()}
    canonical = canonical_names(derived["body_parts"], name_map, vocabulary, where=where)
    snapshotindex = spec.get("snapshotindex", -1)
    project = spec.get("project")
    shuffle = spec.get("shuffle", 1)
    return ModelEntry(
        name=name, description=str(spec.get("description", "")),
        project=str(project) if project else None,
        project_config=_expand(str(project), path.parent) if project else None,
        shuffle=int(shuffle) if shuffle is not None else None,
        trainingsetindex=int(spec.get("trainingsetindex", 0)),
        snapshotindex=snapshotindex, body_part_map=name_map, derived=dict(derived),
        canonical_body_parts=canonical,
        inference_engine=_choice(spec, "inference_engine", INFERENCE_ENGINES, where),
        inference=_inference_settings(spec.get("inference"), where),
        queue=_queue_name(spec.get("queue"), where), ingest_only=ingest_only,
    )


INFERENCE_ENGINES = ("platform", "dlc")
INFERENCE_KEYS = {"cropping": ("on", "off"), "runtime": ("auto", "onnxruntime", "openvino",
                                                             "torch"),
                  "margin_px": int, "threshold": float, "refresh_every": int}


def _inference_settings(value, where: str) -> dict:
    """The ``inference:`` mapping of a model, checked (docs/inference.md)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RegistryError(f"{where}.inference must be a mapping of {sorted(INFERENCE_KEYS)}.")
    unknown = sorted(set(value) - set(INFERENCE_KEYS))
    if unknown:
        raise RegistryError(f"{where}.inference: unknown keys {unknown}; use "
                            f"{sorted(INFERENCE_KEYS)} (docs/inference.md).")
    out = {}
    for key, v in value.items():
        kind = INFERENCE_KEYS[key]
        if key == "cropping" and isinstance(v, bool):  # YAML reads a bare on/off as a bool
            v = "on" if v else "off"
        if isinstance(kind, tuple):
            if v not in kind:
                raise RegistryError(f"{where}.inference.{key}: {v!r} is not one of {list(kind)}.")
        elif isinstance(v, bool) or not isinstance(v, (int, float)) or (
                kind is int and int(v) != v):
            raise RegistryError(f"{where}.inference.{key}: {v!r} is not a number "
                                f"({kind.__name__}).")
        elif (key == "threshold" and not 0 < v < 1) or (key != "threshold" and v < 0) or (
                key == "refresh_every" and v < 1):
            raise RegistryError(f"{where}.inference.{key}: {v!r} is out of range.")
        out[key] = kind(v) if not isinstance(kind, tuple) else v
    return out


def _choice(spec: dict, key: str, allowed: tuple[str, ...], where: str) -> str | None:
    value = spec.get(key)
    if value is None:
        return None
    if value not in allowed:
        raise RegistryError(f"{where}.{key}: {value!r} is not one of {list(allowed)}.")
    return str(value)


def _queue_name(value, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
        raise RegistryError(f"{where}.queue: {value!r} is not a queue name (letters, digits, "
                            "'_', '.', '-').")
    return value
