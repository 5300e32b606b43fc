"""The raw state vector of one recording (the seed's TrackingRaw.OpenField)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dlc_tracking.errors import ProcessingError
from dlc_tracking.tracking.arena import Boundary, arena_boundary
from dlc_tracking.tracking.kinematics import check_time, speed
from dlc_tracking.tracking.methods import (
    StateVectorMethod,
    check_camera_view,
    check_frame_size,
    compute_state_vector,
)

# --------------------------------------------------------------------------- raw


@dataclass(frozen=True, eq=False)
class RawStateVector:
    """Raw state vector of one recording (the seed's ``TrackingRaw.OpenField``).

    Attributes
    ----------
    time_s
        Frame times (s).
    x_px, y_px
        Subject position, image pixels, unflipped; NaN where unknown.
    head_angle_rad
        Head direction in the arena frame, radians ``[0, 2 pi)``; NaN where unknown.
    speed_px_s
        Speed of ``(x_px, y_px)`` by central differences (px/s).
    valid
        All body parts of the method above the likelihood cutoff.
    boundary
        Arena boundary (image pixels), see :func:`arena_boundary`.
    camera_view, frame_size
        ``"above"``/``"below"`` and ``(width, height)`` in pixels.
    method_name, method_hash
        The state-vector method and its ``param_hash``.
    has_head_direction
        Whether the method measures head direction.
    """

    time_s: np.ndarray
    x_px: np.ndarray
    y_px: np.ndarray
    head_angle_rad: np.ndarray
    speed_px_s: np.ndarray
    valid: np.ndarray
    boundary: Boundary
    camera_view: str
    frame_size: tuple[float, float]
    method_name: str
    method_hash: str
    has_head_direction: bool = True

    def __post_init__(self) -> None:
        t = check_time(self.time_s)
        n = t.shape[0]
        object.__setattr__(self, "time_s", t)
        for name in ("x_px", "y_px", "head_angle_rad", "speed_px_s"):
            arr = np.asarray(getattr(self, name), dtype=np.float64)
            if arr.shape != (n,):
                raise ProcessingError(
                    f"RawStateVector.{name} has shape {arr.shape}; expected ({n},) like time_s."
                )
            object.__setattr__(self, name, arr)
        valid = np.asarray(self.valid, dtype=bool)
        if valid.shape != (n,):
            raise ProcessingError(f"RawStateVector.valid has shape {valid.shape}; expected ({n},).")
        object.__setattr__(self, "valid", valid)
        object.__setattr__(self, "camera_view", check_camera_view(self.camera_view))
        object.__setattr__(self, "frame_size", check_frame_size(self.frame_size))

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return int(self.time_s.shape[0])

    def metadata(self) -> dict[str, Any]:
        """Provenance and summary (JSON-ready)."""
        return {
            "method_name": self.method_name,
            "method_hash": self.method_hash,
            "has_head_direction": self.has_head_direction,
            "camera_view": self.camera_view,
            "frame_size": list(self.frame_size),
            "boundary_px": self.boundary.to_dict(),
            "n_frames": self.n_frames,
            "n_valid": int(self.valid.sum()),
            "fraction_valid": float(self.valid.mean()) if self.n_frames else 0.0,
        }

    def to_frame(self) -> pd.DataFrame:
        """Columns ``frame, time_s, x_px, y_px, head_angle_rad, speed_px_s, valid``.

        The metadata (boundary, method, view) is in ``DataFrame.attrs``.
        """
        df = pd.DataFrame(
            {
                "frame": np.arange(self.n_frames, dtype=np.int64),
                "time_s": self.time_s,
                "x_px": self.x_px,
                "y_px": self.y_px,
                "head_angle_rad": self.head_angle_rad,
                "speed_px_s": self.speed_px_s,
                "valid": self.valid,
            }
        )
        df.attrs.update(self.metadata())
        return df


def raw_state_vector(
    method: StateVectorMethod,
    poses: np.ndarray,
    body_parts: Sequence[str],
    time_s: np.ndarray,
    camera_view: str,
    frame_size: Sequence[float],
    *,
    source: str | None = None,
) -> RawStateVector:
    """Apply ``method`` and add speed (px/s) and the arena boundary (px).

    Parameters
    ----------
    method
        State-vector method.
    poses
        ``(n_frames, n_parts, 3)`` image-coordinate predictions.
    body_parts
        Names of axis 1 of ``poses``.
    time_s
        Frame times (s), strictly increasing, one per frame.
    camera_view
        ``"above"`` or ``"below"``.
    frame_size
        ``(width, height)`` in pixels.
    source
        File or recording named in error messages.

    Returns
    -------
    RawStateVector

    Raises
    ------
    ProcessingError
        On bad input (see :func:`~dlc_tracking.tracking.methods.compute_state_vector`), bad
        times, or when no frame has a position.
    """
    sv = compute_state_vector(method, poses, body_parts, camera_view, frame_size, source=source)
    t = check_time(time_s, sv.n_frames, source)
    boundary = arena_boundary(sv.x_px, sv.y_px, source=source)
    return RawStateVector(
        time_s=t,
        x_px=sv.x_px,
        y_px=sv.y_px,
        head_angle_rad=sv.head_angle_rad,
        speed_px_s=speed(sv.x_px, sv.y_px, t),
        valid=sv.valid,
        boundary=boundary,
        camera_view=sv.camera_view,
        frame_size=sv.frame_size,
        method_name=sv.method_name,
        method_hash=sv.method_hash,
        has_head_direction=method.has_head_direction,
    )


