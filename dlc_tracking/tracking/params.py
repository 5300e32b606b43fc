"""Processing parameter sets (the seed's TrackingParams): names, defaults, hash."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from dlc_tracking.errors import ProcessingError
from dlc_tracking.tracking.methods import (
    short_hash,
)

# --------------------------------------------------------------------------- params


def _check_positive(name: str, value: Any, *, allow_none: bool, allow_zero: bool) -> Any:
    if value is None and allow_none:
        return None
    ok = (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(float(value))
        and (float(value) >= 0 if allow_zero else float(value) > 0)
    )
    if not ok:
        need = ">= 0" if allow_zero else "> 0"
        none = " or None" if allow_none else ""
        raise ProcessingError(
            f"processing parameter {name}={value!r} must be a finite number {need}{none}."
        )
    return float(value)


OUTSIDE_FRAME_RULES = ("exclude", "keep")


@dataclass(frozen=True)
class ProcessingParams:
    """Parameters of :func:`process_tracking` (the seed's ``TrackingParams``).

    Parameters
    ----------
    name
        Name of the parameter set (not part of ``param_hash``).
    pixels_per_cm
        Fixed calibration; None = derive it from the arena size and the boundary.
    arena_width_cm, arena_height_cm
        Arena size (cm) along the arena frame's x and y, used when ``pixels_per_cm`` is
        None: px/cm = boundary extent / arena size (BNT scales the tracked range to the
        arena size the same way). With both, the mean of the two is used.
    max_speed_cm_s
        Jump removal: a point implying a speed above this relative to the last good
        point becomes missing. 100 cm/s: above a mouse's or rat's top running speed in an
        open field (BNT uses 150 cm/s for rats), well below the speed implied by a
        mislabelled frame (a few cm in one 20-25 ms frame). None = no jump removal.
    max_gap_s
        Linear interpolation across gaps whose bracketing good samples are at most this
        far apart (s); longer gaps stay missing. 1 s as in BNT (which interpolates gaps up
        to 1 s). 0 = no interpolation.
    sigma_position_s, sigma_speed_s, sigma_head_s
        Gaussian smoothing (standard deviation, s) of position, speed and head direction
        (circular: of the unit vectors). 0 = none. Default 0.1 s each:

        - position: BNT smooths with a 0.5 s LOWESS/median window; a tricube kernel of
          half-width 0.25 s has a standard deviation of about 0.1 s. A Gaussian of
          s.d. sigma damps a movement of frequency f by exp(-(2 pi f sigma)**2 / 2): at
          0.1 s, 1 Hz movement keeps 82 % of its amplitude while frame-to-frame DLC
          jitter (near the Nyquist frequency) is removed.
        - speed: computed from the smoothed position, then smoothed again, so the
          velocity sees about sqrt(0.1**2 + 0.1**2) = 0.14 s, close to the 0.8 s LOESS
          (tricube half-width 0.4 s, s.d. about 0.15 s) of BNT and the Moser pipeline.
        - head direction: 0.1 s keeps 82 % of a 1 Hz head scan and 45 % of a 2 Hz one;
          opexebo's 0.4 s default would keep 4 % of a 1 Hz scan, flattening the angular
          head velocity that head-direction analyses bin.

        Smaller values (spyglass averages over only 0.05 s) are fine for clean data.
    occupancy_bin_cm
        Side of the square spatial bins of the occupancy table (cm). 2.5 cm: the bin
        size of most rate-map analyses in mice (2-5 cm in the field).
    frame_count_tolerance
        Predictions whose row count differs from the video's frame count by at most this
        many frames are accepted: extra trailing rows dropped, missing trailing rows
        padded as missing, recorded and reported by a warning check (2: a container or
        codec off-by-one, common with AVI/MJPEG and variable-frame-rate MP4). Beyond it
        the outputs are refused. 0 = exact match only.
    outside_frame, outside_frame_margin_px
        What the state-vector step does with points DLC placed outside the video frame
        (more than ``outside_frame_margin_px`` beyond its edges): ``"exclude"`` (they count
        as missing, default: DLC extrapolates such points from the heatmap border, they are
        not observations) or ``"keep"``. The predictions table keeps them either way.
    fps_tolerance
        Relative difference allowed between the frame rate in DLC's metadata and the
        video's before the blocking check ``fps_consistent`` fails (0.01 = 1 %).
    max_gap_warn_s, min_tracked_fraction
        Warning thresholds of the state vector: the longest run of frames without a
        position (s) and the share of frames with a position.
    max_interpolated_fraction
        Warning threshold: share of frames whose position was filled by interpolation.
    part_distance_factor, part_distance_min_s
        Warning: a body part farther than ``factor`` x its median distance from the
        other parts' centre for longer than ``min_s`` (a part stuck on a wrong spot,
        which the jump filter does not see).
    max_calibration_anisotropy
        Warning: x and y scales (px/cm) differing by more than this share.
    """

    name: str = "default"
    pixels_per_cm: float | None = None
    arena_width_cm: float | None = None
    arena_height_cm: float | None = None
    max_speed_cm_s: float | None = 100.0
    max_gap_s: float = 1.0
    sigma_position_s: float = 0.1
    sigma_speed_s: float = 0.1
    sigma_head_s: float = 0.1
    occupancy_bin_cm: float = 2.5
    frame_count_tolerance: int = 2
    outside_frame: str = "exclude"
    outside_frame_margin_px: float = 0.5
    fps_tolerance: float = 0.01
    max_gap_warn_s: float = 2.0
    min_tracked_fraction: float = 0.8
    max_interpolated_fraction: float = 0.1
    part_distance_factor: float = 3.0
    part_distance_min_s: float = 1.0
    max_calibration_anisotropy: float = 0.1

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ProcessingError(f"processing parameter set name {self.name!r} must be text.")
        spec = {
            "pixels_per_cm": (True, False),
            "arena_width_cm": (True, False),
            "arena_height_cm": (True, False),
            "max_speed_cm_s": (True, False),
            "max_gap_s": (False, True),
            "sigma_position_s": (False, True),
            "sigma_speed_s": (False, True),
            "sigma_head_s": (False, True),
            "occupancy_bin_cm": (False, False),
            "outside_frame_margin_px": (False, True),
            "fps_tolerance": (False, True),
            "max_gap_warn_s": (False, False),
            "min_tracked_fraction": (False, True),
            "max_interpolated_fraction": (False, True),
            "part_distance_factor": (False, False),
            "part_distance_min_s": (False, False),
            "max_calibration_anisotropy": (False, True),
        }
        for key, (allow_none, allow_zero) in spec.items():
            value = _check_positive(
                key, getattr(self, key), allow_none=allow_none, allow_zero=allow_zero
            )
            object.__setattr__(self, key, value)
        tol = self.frame_count_tolerance
        if isinstance(tol, bool) or not isinstance(tol, int) or tol < 0:
            raise ProcessingError(
                f"processing parameter frame_count_tolerance={tol!r} must be a whole number "
                "of frames >= 0.")
        if self.outside_frame not in OUTSIDE_FRAME_RULES:
            raise ProcessingError(
                f"processing parameter outside_frame={self.outside_frame!r} must be one of "
                f"{list(OUTSIDE_FRAME_RULES)}.")
        for key in ("min_tracked_fraction", "max_interpolated_fraction"):
            if getattr(self, key) > 1:
                raise ProcessingError(f"processing parameter {key}={getattr(self, key)!r} "
                                      "is a fraction: give a number from 0 to 1.")

    def _hashed(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "name"}

    @property
    def param_hash(self) -> str:
        """Stable 16-hex-digit hash of every parameter except ``name``."""
        return short_hash(self._hashed())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, with ``param_hash``."""
        return {"name": self.name, **self._hashed(), "param_hash": self.param_hash}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProcessingParams:
        """Inverse of :meth:`to_dict`; a stale ``param_hash`` is refused.

        Raises
        ------
        ProcessingError
            On unknown keys, bad values or a stale hash.
        """
        if not isinstance(data, Mapping):
            raise ProcessingError(
                f"processing parameters must be a mapping, got {type(data).__name__}."
            )
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - allowed - {"param_hash"})
        if unknown:
            import difflib

            hints = [f"{k!r} -> {m[0]!r}" for k in unknown
                     if (m := difflib.get_close_matches(k, sorted(allowed), n=1))]
            raise ProcessingError(
                f"processing parameters {data.get('name', '<unnamed>')!r}: unknown keys "
                f"{unknown}" + (f" (did you mean {', '.join(hints)}?)" if hints else "")
                + f"; allowed keys are {sorted(allowed)}."
            )
        params = cls(**{k: v for k, v in data.items() if k in allowed})
        if "param_hash" in data and data["param_hash"] != params.param_hash:
            raise ProcessingError(
                f"processing parameters {params.name!r}: recorded param_hash "
                f"{data['param_hash']!r} does not match the values ({params.param_hash!r}); "
                "the set was edited: register it under a new name or drop the stale hash."
            )
        return params


