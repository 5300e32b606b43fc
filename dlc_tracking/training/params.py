"""Training and evaluation parameters: defaults, validation, hash.

A model's parameters live in its registry entry (``training:`` and ``evaluation:``
mappings, docs/models.md); ``dlc-platform models train`` options override single keys.
Every training plan stores the full, validated parameters and their hash, so a version
can always be traced to exactly how it was trained.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from dlc_tracking.training.errors import TrainingError

PRETRAINED_KEYWORDS = ("none", "imagenet", "previous")
PREVIOUS = "previous"
"""``pretrained: previous``: the registered snapshot of the model a version derives from
(resolved to that file when the training is planned)."""
ENGINES = ("pytorch",)
# DLC 3 PyTorch training augmentations (pytorch_config.yaml ``data.train``) that
# ``augmentation: none`` switches off. Normalisation is not an augmentation: it stays.
AUGMENTATION_KEYS = ("affine", "hflip", "motion_blur", "covering", "elastic_transform",
                     "gaussian_noise", "hist_eq", "grayscale", "random_bbox_transform",
                     "crop_sampling", "resize", "longest_max_size", "auto_padding", "collate",
                     "top_down_crop", "normalize_images", "scale_to_unit_range")
_AUGMENTATION_OFF = {"affine": None, "hflip": None, "motion_blur": False, "covering": None,
                     "elastic_transform": None, "gaussian_noise": False, "hist_eq": False,
                     "grayscale": None}


def _int(name: str, value: Any, minimum: int, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        none = " or null" if allow_none else ""
        raise TrainingError(f"training parameter {name}={value!r} must be an integer "
                            f">= {minimum}{none}.")
    return int(value)


def _positive(name: str, value: Any, allow_none: bool = True) -> float | None:
    if value is None and allow_none:
        return None
    ok = (not isinstance(value, bool) and isinstance(value, int | float)
          and math.isfinite(float(value)) and float(value) > 0)
    if not ok:
        raise TrainingError(f"parameter {name}={value!r} must be a finite number > 0"
                            f"{' or null' if allow_none else ''}.")
    return float(value)


def _from_mapping(cls, data: dict, kind: str, where: str):
    """``cls(**data)`` with unknown keys and invalid values reported as a TrainingError
    naming ``where`` (the registry file and key)."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    prefix = f"{where}: " if where else ""
    if unknown:
        raise TrainingError(f"{prefix}unknown {kind} parameter(s) {unknown}; known: "
                            f"{sorted(known)} (docs/models.md).")
    try:
        return cls(**data)
    except TrainingError as exc:
        raise TrainingError(f"{prefix}{exc}") from None
    except TypeError as exc:
        raise TrainingError(f"{prefix}invalid {kind} parameters: {exc}") from None


@dataclass(frozen=True)
class TrainingParams:
    """How a model version is trained (DeepLabCut 3, PyTorch engine).

    Parameters
    ----------
    engine
        ``pytorch`` (DLC 3). TensorFlow projects are trained with DeepLabCut directly and
        registered with ``models add``.
    net_type
        DLC network (``resnet_50``, ``cspnext_s``, ...); None = the project's
        ``default_net_type`` (config.yaml).
    epochs
        Epochs to train.
    batch_size
        Images per training batch.
    learning_rate
        Initial learning rate of DLC's optimizer; None = DLC's default for the net.
    save_epochs
        Epochs between saved snapshots; None = only the last epoch's.
    max_snapshots
        Snapshots kept (DLC deletes older ones).
    eval_interval
        Epochs between evaluations on the test split during training (valid loss and
        RMSE in the losses plot); None = DLC's default for the net.
    augmentation
        ``default`` (DLC's augmentations of the net), ``none`` (every augmentation off),
        or a mapping of pytorch_config.yaml ``data.train`` keys to values (e.g.
        ``{affine: {p: 0.5, rotation: 30, scaling: [0.9, 1.1], translation: 0},
        crop_sampling: null}``) applied over DLC's defaults.
    pretrained
        Where the initial weights come from: ``imagenet`` (DLC's default; downloads the
        backbone's ImageNet weights, needs the internet), ``none`` (random
        initialisation, seeded; works offline), or the path of a DLC PyTorch snapshot
        (``.pt``) whose weights start the training (works offline), or ``previous``: the
        registered snapshot of the model the new version derives from (each retraining
        builds on the latest version; resolved to that file when the training is
        planned; offline). The epoch counter starts at 0 either way.
    load_head_weights
        With a snapshot file: also load its head (the body parts must then be the same
        as the project's); False loads the backbone only.
    seed
        Seed of DLC's training and of a random initialisation.
    trainingsetindex
        Which of config.yaml's ``TrainingFraction`` values the dataset uses.
    pytorch_cfg_updates
        Further pytorch_config.yaml keys, dot-separated (DLC's own
        ``pytorch_cfg_updates`` of ``train_network``), e.g.
        ``{"runner.optimizer.type": "AdamW"}``.
    """

    engine: str = "pytorch"
    net_type: str | None = None
    epochs: int = 200
    batch_size: int = 8
    learning_rate: float | None = None
    save_epochs: int | None = None
    max_snapshots: int = 5
    eval_interval: int | None = None
    augmentation: str | dict = "default"
    pretrained: str = "imagenet"
    load_head_weights: bool = True
    seed: int = 42
    trainingsetindex: int = 0
    pytorch_cfg_updates: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise TrainingError(
                f"training parameter engine={self.engine!r}: the platform trains DLC 3 "
                f"PyTorch models ({list(ENGINES)}); train a TensorFlow project with "
                "deeplabcut.train_network and register it with `dlc-platform models add`.")
        if self.net_type is not None and (not isinstance(self.net_type, str)
                                          or not self.net_type.strip()):
            raise TrainingError(f"training parameter net_type={self.net_type!r} must be a "
                                "DLC network name (e.g. resnet_50) or null.")
        _int("epochs", self.epochs, 1)
        _int("batch_size", self.batch_size, 1)
        _positive("learning_rate", self.learning_rate)
        _int("save_epochs", self.save_epochs, 1, allow_none=True)
        _int("max_snapshots", self.max_snapshots, 1)
        _int("eval_interval", self.eval_interval, 1, allow_none=True)
        _int("seed", self.seed, 0)
        _int("trainingsetindex", self.trainingsetindex, 0)
        if not isinstance(self.load_head_weights, bool):
            raise TrainingError(f"training parameter load_head_weights="
                                f"{self.load_head_weights!r} must be true or false.")
        aug = self.augmentation
        if isinstance(aug, Mapping):
            unknown = sorted(set(aug) - set(AUGMENTATION_KEYS))
            if unknown:
                raise TrainingError(
                    f"training parameter augmentation has unknown keys {unknown}; use "
                    f"pytorch_config.yaml data.train keys: {list(AUGMENTATION_KEYS)}.")
        elif aug not in ("default", "none"):
            raise TrainingError(f"training parameter augmentation={aug!r} must be 'default', "
                                "'none' or a mapping of data.train keys.")
        if not isinstance(self.pretrained, str) or not self.pretrained.strip():
            raise TrainingError(f"training parameter pretrained={self.pretrained!r} must be "
                                "'imagenet', 'none', 'previous' or the path of a .pt "
                                "snapshot.")
        if self.pretrained not in PRETRAINED_KEYWORDS and not self.pretrained.endswith(".pt"):
            raise TrainingError(
                f"training parameter pretrained={self.pretrained!r}: give 'imagenet', 'none', "
                "'previous' or the path of a DLC PyTorch snapshot file ending in .pt.")
        if not isinstance(self.pytorch_cfg_updates, Mapping) or not all(
                isinstance(k, str) for k in self.pytorch_cfg_updates):
            raise TrainingError("training parameter pytorch_cfg_updates must map "
                                "dot-separated pytorch_config.yaml keys to values.")

    # ---------------------------------------------------------------- conversions
    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "") -> TrainingParams:
        """Parameters from a mapping (registry ``training:`` or a plan), validated.

        Parameters
        ----------
        data : mapping or None
            Keys of this class; missing keys take their defaults.
        where : str
            Prefix of error messages (e.g. the registry file and key).

        Returns
        -------
        TrainingParams

        Raises
        ------
        TrainingError
            Unknown keys or invalid values (the message names ``where``).
        """
        data = dict(data or {})
        if isinstance(data.get("augmentation"), Mapping):
            data["augmentation"] = dict(data["augmentation"])
        if data.get("pytorch_cfg_updates") is not None:
            data["pytorch_cfg_updates"] = dict(data["pytorch_cfg_updates"])
        return _from_mapping(cls, data, "training", where)

    def to_dict(self) -> dict:
        """Plain, YAML/JSON-able values of every parameter."""
        return json.loads(json.dumps(asdict(self), default=str))

    def with_overrides(self, **overrides: Any) -> TrainingParams:
        """A copy with the keys given (None values are ignored), validated."""
        changes = {k: v for k, v in overrides.items() if v is not None}
        try:
            return replace(self, **changes)
        except TypeError as exc:
            raise TrainingError(f"invalid training parameter override: {exc}") from None

    @property
    def param_hash(self) -> str:
        """16 hex digits over every parameter (the same parameters give the same hash)."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def pretrained_file(self) -> Path | None:
        """The snapshot file of ``pretrained``, or None for ``none`` / ``imagenet`` /
        ``previous``."""
        return None if self.pretrained in PRETRAINED_KEYWORDS else Path(self.pretrained)

    def train_augmentation(self) -> dict:
        """pytorch_config.yaml ``data.train`` entries to set (empty: DLC's defaults)."""
        if self.augmentation == "default":
            return {}
        if self.augmentation == "none":
            return dict(_AUGMENTATION_OFF)
        return dict(self.augmentation)


@dataclass(frozen=True)
class EvaluationParams:
    """How a model version is judged (registry ``evaluation:`` of the model).

    Parameters
    ----------
    max_test_rmse_px
        The ``model_evaluations`` asset check fails when the registered snapshot's test
        RMSE (all body parts, px) exceeds this; None = the check only reports.
    pcutoff
        Likelihood cut-off of the "above p-cutoff" errors; None = config.yaml ``pcutoff``.
    """

    max_test_rmse_px: float | None = None
    pcutoff: float | None = None

    def __post_init__(self) -> None:
        _positive("max_test_rmse_px", self.max_test_rmse_px)
        if self.pcutoff is not None and not (
                isinstance(self.pcutoff, int | float) and not isinstance(self.pcutoff, bool)
                and 0 <= float(self.pcutoff) <= 1):
            raise TrainingError(f"evaluation parameter pcutoff={self.pcutoff!r} must be "
                                "between 0 and 1 or null.")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "") -> EvaluationParams:
        """Parameters from a mapping (registry ``evaluation:``), validated.

        Raises
        ------
        TrainingError
            Unknown keys or invalid values (the message names ``where``).
        """
        return _from_mapping(cls, dict(data or {}), "evaluation", where)

    def to_dict(self) -> dict:
        """Plain values of every parameter."""
        return asdict(self)


def model_training_params(registry_raw: Mapping, model_name: str, where: str = ""
                          ) -> TrainingParams:
    """The ``training:`` parameters of a registered model (defaults when it has none).

    Parameters
    ----------
    registry_raw : mapping
        The registry as read (``Registry.raw``).
    model_name : str
        Registered model name.
    where : str
        The registry file, for messages.

    Returns
    -------
    TrainingParams
    """
    spec = ((registry_raw.get("models") or {}).get(model_name) or {})
    return TrainingParams.from_dict(spec.get("training"),
                                    f"{where}: models.{model_name}.training" if where else
                                    f"models.{model_name}.training")


def model_evaluation_params(registry_raw: Mapping, model_name: str, where: str = ""
                            ) -> EvaluationParams:
    """The ``evaluation:`` parameters of a registered model (defaults when it has none)."""
    spec = ((registry_raw.get("models") or {}).get(model_name) or {})
    return EvaluationParams.from_dict(spec.get("evaluation"),
                                      f"{where}: models.{model_name}.evaluation" if where else
                                      f"models.{model_name}.evaluation")
