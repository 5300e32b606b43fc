"""The 3D state vector: head position, azimuth, pitch and roll from triangulated parts.

Conventions (docs/conventions.md, "3D"): world frame x/y on the floor (x right, y up
seen from above, as the 2D arena frame), z up, millimetres. The head frame has forward f
(ear midpoint -> nose, made perpendicular to the ear line), left l (right ear -> left
ear) and up u = f x l. Angles, intrinsic z-y-x (yaw, pitch, roll):

- azimuth: counter-clockwise from +x in the floor plane, ``atan2(f_y, f_x)``, [0, 2 pi):
  the 2D head direction of the same method (``two_ears`` without a nose:
  ``atan2(l_y, l_x) - 90 deg``, exactly the 2D formula on x/y);
- pitch: ``asin(f_z)``, positive nose up;
- roll: ``atan2(l_z, u_z)``, positive when the left ear goes up (right-hand rule about
  the forward axis).

Pitch needs a front point (the nose, or an implant/LED ahead of the ears); roll needs the
ears and a front point. Where a needed part is missing the angle is NaN, never guessed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dlc_tracking.multiview.errors import MultiviewError
from dlc_tracking.tracking.methods import StateVectorMethod, wrap_angle_rad

__all__ = ["HeadPose", "StateVector3D", "head_pose", "state_vector_3d"]


@dataclass(frozen=True, eq=False)
class HeadPose:
    """``(n,)`` arrays, radians: azimuth in [0, 2 pi), pitch, roll; NaN where unknown."""

    azimuth_rad: np.ndarray
    pitch_rad: np.ndarray
    roll_rad: np.ndarray


def head_pose(left: np.ndarray, right: np.ndarray, front: np.ndarray | None = None,
              ) -> HeadPose:
    """Head azimuth, pitch and roll from 3D ears (and a front point).

    Parameters
    ----------
    left, right : np.ndarray
        ``(n, 3)`` the animal's left and right ear (world mm).
    front : np.ndarray, optional
        ``(n, 3)`` a point ahead of the ears (nose, implant). Without it: azimuth from the
        ears only (the 2D two-ears formula), pitch and roll NaN.

    Returns
    -------
    HeadPose
    """
    left = np.asarray(left, dtype=np.float64)
    right = np.asarray(right, dtype=np.float64)
    lat = left - right
    n = lat.shape[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        l_unit = lat / np.linalg.norm(lat, axis=1, keepdims=True)
        if front is None:
            az = wrap_angle_rad(np.arctan2(lat[:, 1], lat[:, 0]) - 0.5 * np.pi)
            az[~np.isfinite(lat).all(axis=1) | (np.abs(lat[:, :2]).sum(axis=1) == 0)] = np.nan
            return HeadPose(az, np.full(n, np.nan), np.full(n, np.nan))
        mid = 0.5 * (left + right)
        fwd = np.asarray(front, dtype=np.float64) - mid
        fwd = fwd - l_unit * np.sum(fwd * l_unit, axis=1, keepdims=True)
        f_unit = fwd / np.linalg.norm(fwd, axis=1, keepdims=True)
        up = np.cross(f_unit, l_unit)
        az = wrap_angle_rad(np.arctan2(f_unit[:, 1], f_unit[:, 0]))
        pitch = np.arcsin(np.clip(f_unit[:, 2], -1.0, 1.0))
        roll = np.arctan2(l_unit[:, 2], up[:, 2])
    bad = ~(np.isfinite(f_unit).all(axis=1) & np.isfinite(l_unit).all(axis=1))
    for a in (az, pitch, roll):
        a[bad] = np.nan
    return HeadPose(az, pitch, roll)


@dataclass(frozen=True, eq=False)
class StateVector3D:
    """Per-frame 3D state vector of one recording (world frame, mm and radians).

    Attributes
    ----------
    x_mm, y_mm, z_mm : np.ndarray
        ``(n_frames,)`` position (the method's point: ear midpoint, ...).
    azimuth_rad : np.ndarray
        Head direction in the floor plane, [0, 2 pi), counter-clockwise from +x.
    pitch_rad, roll_rad : np.ndarray
        NaN where the method has no front point.
    valid : np.ndarray
        bool, every part the method needs was triangulated.
    method_name, method_hash : str
    front_part : str or None
        The point ahead of the ears used for pitch and roll.
    """

    x_mm: np.ndarray
    y_mm: np.ndarray
    z_mm: np.ndarray
    azimuth_rad: np.ndarray
    pitch_rad: np.ndarray
    roll_rad: np.ndarray
    valid: np.ndarray
    method_name: str
    method_hash: str
    front_part: str | None = None

    def to_frame(self) -> pd.DataFrame:
        """Columns ``frame, x_mm, y_mm, z_mm, azimuth_rad, pitch_rad, roll_rad, valid``."""
        return pd.DataFrame({
            "frame": np.arange(self.x_mm.shape[0], dtype=np.int64),
            "x_mm": self.x_mm, "y_mm": self.y_mm, "z_mm": self.z_mm,
            "azimuth_rad": self.azimuth_rad, "pitch_rad": self.pitch_rad,
            "roll_rad": self.roll_rad, "valid": self.valid,
        })


def state_vector_3d(method: StateVectorMethod, points: np.ndarray,
                    body_parts: Sequence[str], *, front_part: str | None = None,
                    source: str = "recording") -> StateVector3D:
    """Apply a state-vector method to triangulated parts.

    Parameters
    ----------
    method : StateVectorMethod
        The same methods as 2D. ``two_ears``: position = ear midpoint, azimuth from the
        ears (with ``front_part`` also pitch and roll, azimuth then from the head frame).
        ``front_back``: position at the method's fraction, azimuth and pitch along
        back -> front. ``single_point`` / ``centroid``: position only (centroid: mean of
        the parts present, ``min_parts`` of them).
    points : np.ndarray
        ``(n_frames, n_parts, 3)`` world mm, NaN = missing.
    body_parts : sequence of str
        Names of axis 1.
    front_part : str, optional
        For ``two_ears``: a part ahead of the ears (nose, implant) giving pitch and roll.

    Raises
    ------
    MultiviewError
        A part the method (or ``front_part``) needs is not triangulated.
    """
    pts = np.asarray(points, dtype=np.float64)
    names = list(body_parts)
    needed = list(method.body_parts) + ([front_part] if front_part else [])
    missing = [p for p in needed if p not in names]
    if missing:
        raise MultiviewError(f"{source}: method {method.name!r} needs body parts {missing} "
                             f"that are not triangulated (have {names}).")
    if front_part and method.kind != "two_ears":
        raise MultiviewError(f"{source}: front_part is for two_ears methods (ears + a front "
                             f"point); method {method.name!r} is {method.kind!r}.")
    sub = pts[:, [names.index(p) for p in method.body_parts]]
    present = np.isfinite(sub).all(axis=2)
    n = pts.shape[0]
    nan = np.full(n, np.nan)
    az, pitch, roll = nan.copy(), nan.copy(), nan.copy()
    if method.kind == "two_ears":
        pos = 0.5 * (sub[:, 0] + sub[:, 1])
        front = pts[:, names.index(front_part)] if front_part else None
        hp = head_pose(sub[:, 0], sub[:, 1], front)
        az, pitch, roll = hp.azimuth_rad, hp.pitch_rad, hp.roll_rad
        valid = present.all(axis=1) & (np.isfinite(front).all(axis=1) if front_part
                                       else True)
    elif method.kind == "front_back":
        frac = method.effective_params["position"]
        pos = sub[:, 1] + frac * (sub[:, 0] - sub[:, 1])
        d = sub[:, 0] - sub[:, 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            az = wrap_angle_rad(np.arctan2(d[:, 1], d[:, 0]))
            pitch = np.arcsin(np.clip(d[:, 2] / np.linalg.norm(d, axis=1), -1, 1))
        valid = present.all(axis=1)
        bad = ~valid
        az[bad], pitch[bad] = np.nan, np.nan
    elif method.kind == "single_point":
        pos = sub[:, 0]
        valid = present[:, 0]
    else:
        count = present.sum(axis=1)
        with np.errstate(invalid="ignore"):
            pos = np.nanmean(np.where(present[..., None], sub, np.nan), axis=1)
        pos[count < method.effective_params["min_parts"]] = np.nan
        valid = present.all(axis=1)
    pos = np.where(np.isfinite(pos).all(axis=1, keepdims=True), pos, np.nan)
    return StateVector3D(x_mm=pos[:, 0].copy(), y_mm=pos[:, 1].copy(), z_mm=pos[:, 2].copy(),
                         azimuth_rad=az, pitch_rad=pitch, roll_rad=roll,
                         valid=np.asarray(valid, dtype=bool), method_name=method.name,
                         method_hash=method.param_hash, front_part=front_part)
