"""Reduced-precision inference as an opt-in, held to a stated bound on every recording.

Full precision (``fp32``) is the default and gives DLC's keypoints (parity: 1e-3 px). The
opt-in ``bf16`` runs the network in bfloat16 (OpenVINO on a CPU with bf16 instructions,
PyTorch autocast on CUDA): faster, but a heatmap peak can move to the neighbouring cell
where two cells are nearly equal, which moves the keypoint by up to a stride. So the
engine never trusts it blindly: the first :data:`PROBE_FRAMES` frames of each recording
run in both precisions, and the rest of the recording runs in bf16 only when, on those
frames, the 99.9th percentile of the keypoint displacement over confident keypoints is
at most :data:`BOUND_P999_PX` pixels; otherwise it runs in fp32 and says why. The probe
frames' results are the fp32 ones either way. The check and the precision used are
recorded with the outputs (``_meta.pickle``) and in the ``dlc_predictions`` metadata.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from dlc_tracking.errors import InferenceError

PRECISIONS = ("fp32", "bf16")
BOUND_P999_PX = 0.5
"""Largest accepted 99.9th percentile of the keypoint displacement (px), bf16 vs fp32."""
CONFIDENT = 0.6
"""Keypoints judged: fp32 likelihood at least this (low ones sit on flat maps whose peak
flips even between two fp32 runtimes)."""
PROBE_FRAMES = 64
MIN_CONFIDENT = 20
"""Fewer confident keypoints than this on the probe frames: the bound cannot be judged."""


def check_precision(name: str | None) -> str:
    """The precision named (``fp32`` when None), or an error listing the choices."""
    value = (name or "fp32").strip().lower()
    if value not in PRECISIONS:
        raise InferenceError(
            f"unknown inference precision {name!r}: use one of {PRECISIONS} (resource config "
            "`precision`, DLC_PLATFORM_INFERENCE_PRECISION, `predict --precision`).")
    return value


@dataclass(frozen=True)
class PrecisionCheck:
    """How a reduced precision compared with fp32 on a recording's probe frames.

    Attributes
    ----------
    frames : int
        Probe frames compared.
    confident : int
        Keypoints with fp32 likelihood >= :data:`CONFIDENT` among them.
    p999_px, max_px : float
        99.9th percentile and maximum of the displacement (px) over those keypoints.
    max_likelihood_diff : float
        Largest likelihood difference over all keypoints.
    within_bound : bool
        Enough confident keypoints and ``p999_px <= BOUND_P999_PX``.
    """

    frames: int
    confident: int
    p999_px: float
    max_px: float
    max_likelihood_diff: float
    within_bound: bool

    def as_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v)
                for k, v in asdict(self).items()}

    def reason(self) -> str:
        """Why the reduced precision was (not) kept, in words."""
        if self.confident < MIN_CONFIDENT:
            return (f"only {self.confident} confident keypoints on the first {self.frames} "
                    f"frames: the {BOUND_P999_PX} px bound cannot be judged")
        verdict = "within" if self.within_bound else "over"
        return (f"99.9th percentile displacement {self.p999_px:.3f} px on {self.confident} "
                f"confident keypoints of the first {self.frames} frames: {verdict} the "
                f"{BOUND_P999_PX} px bound (max {self.max_px:.2f} px)")


def compare_poses(reference: np.ndarray, reduced: np.ndarray,
                  confident_at: float = CONFIDENT, bound_px: float = BOUND_P999_PX
                  ) -> PrecisionCheck:
    """Compare keypoints ``(frames, keypoints, 3)`` of a reduced precision with fp32's.

    Parameters
    ----------
    reference, reduced : numpy.ndarray
        x, y, likelihood per frame and keypoint, fp32 and reduced precision.
    confident_at : float, default 0.6
        Judge x/y only where the fp32 likelihood is at least this.
    bound_px : float, default 0.5
        Largest accepted 99.9th percentile displacement.

    Returns
    -------
    PrecisionCheck
    """
    if reference.shape != reduced.shape:
        raise ValueError(f"shapes differ: {reference.shape} vs {reduced.shape}")
    confident = reference[..., 2] >= confident_at
    distance = np.hypot(*(reference[..., :2] - reduced[..., :2]).transpose(2, 0, 1))[confident]
    n = int(confident.sum())
    p999 = float(np.percentile(distance, 99.9)) if n else float("nan")
    likelihood = np.abs(reference[..., 2] - reduced[..., 2])
    return PrecisionCheck(
        frames=int(reference.shape[0]), confident=n, p999_px=p999,
        max_px=float(distance.max()) if n else float("nan"),
        max_likelihood_diff=float(likelihood.max()) if likelihood.size else 0.0,
        within_bound=n >= MIN_CONFIDENT and p999 <= bound_px)
