"""Dynamic cropping around the animal for single-animal models: less network work per frame.

The network's cost grows with the pixels it sees. In an open field the animal covers a few
percent of the frame, so most frames can run on a crop around where the animal was,
provided the crop's keypoints equal the full frame's. They do, up to rounding, when

- the crop's origin is a multiple of the network's total stride (:data:`ALIGN_PX`), so
  every feature map of the crop is a window of the full frame's maps (no resampling);
- every accepted keypoint lies at least the network's receptive field (``margin_px``)
  inside the crop's borders (a border that is also the frame's border needs no margin:
  the full frame ends there too), so the pixels the crop lacks barely reach it.

:class:`DynamicCropper` runs a video batch by batch with two networks (full frame, and
one fixed crop size, so an ONNX/OpenVINO graph sees one shape):

1. the first frame, every ``refresh_every`` frames, and every frame while no animal is
   known run on the full frame;
2. the other frames of a batch are cropped around the last accepted keypoints (moved by
   their recent velocity) and run as one batch; keypoints are shifted back to full-frame
   coordinates;
3. a cropped frame is re-run on the full frame when a keypoint confident in the last
   accepted frame drops below ``threshold``, or a confident keypoint lies within the
   margin of a crop border (the animal moves out of the crop);
4. on full frames: no confident keypoint = the animal left the frame (full frames until
   it re-enters); a second strong peak for most keypoints = a second animal (cropping off
   for the rest of the video);
5. the parity gate: the first ``probe_frames`` croppable frames and every refresh frame run both
   ways; over their confident keypoints the 99th percentile of the displacement crop vs
   full frame must stay <= ``bound_px``, otherwise cropping stops for the rest of the
   video. The full-frame results are the ones kept on those frames.

Everything that happened is in :meth:`DynamicCropper.report` (per video): settings,
crop size, frames run on the full frame and why, events with their frame numbers, the
gate's figures.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from dlc_tracking.errors import InferenceError

ALIGN_PX = 32
"""Crop origins are multiples of this: the total stride of ResNet, HRNet and CSPNeXt
backbones, so the crop's feature maps are windows of the full frame's."""
CROPPING_CHOICES = ("on", "off")
DEFAULT_THRESHOLD = 0.6
DEFAULT_REFRESH_EVERY = 60
DEFAULT_PROBE_FRAMES = 16
DEFAULT_BOUND_PX = 0.5
MAX_CROP_SHARE = 0.6
"""A crop covering more than this share of the frame is not worth the second graph."""
MIN_GATE_POINTS = 20
RF_MASS = 0.99
"""The effective receptive field: the square around an output cell holding this share of
the input gradient's absolute mass (Luo et al. 2016)."""
MAX_EVENTS = 50


class CroppingError(InferenceError):
    """Cropping settings the engine refuses (e.g. a margin below the receptive field)."""


@dataclass(frozen=True)
class CropSettings:
    """How dynamic cropping runs (recorded with the result).

    Attributes
    ----------
    margin_px : int or None
        Pixels kept around the keypoints on every side that is not the frame's border;
        None = the network's measured receptive field (rounded up to 8 px). A margin below
        the receptive field is refused (:func:`check_margin`).
    threshold : float
        Likelihood from which a keypoint is confident.
    refresh_every : int
        A full frame at least every this many frames.
    probe_frames : int
        First frames run both ways for the parity gate.
    bound_px : float
        Largest accepted 99th percentile displacement crop vs full frame (confident
        keypoints of the gate's frames).
    """

    margin_px: int | None = None
    threshold: float = DEFAULT_THRESHOLD
    refresh_every: int = DEFAULT_REFRESH_EVERY
    probe_frames: int = DEFAULT_PROBE_FRAMES
    bound_px: float = DEFAULT_BOUND_PX

    def __post_init__(self):
        if not 0.0 < self.threshold < 1.0:
            raise CroppingError(f"cropping threshold {self.threshold} must be in (0, 1).")
        if self.refresh_every < 1:
            raise CroppingError(f"cropping refresh_every {self.refresh_every} must be >= 1.")
        if self.margin_px is not None and self.margin_px < 0:
            raise CroppingError(f"cropping margin_px {self.margin_px} must be >= 0.")


def check_cropping(value: str | bool | None) -> str:
    """``"on"`` or ``"off"`` (None -> ``"off"``), or an error listing the choices."""
    if isinstance(value, bool):
        return "on" if value else "off"
    choice = (value or "off").strip().lower()
    choice = {"true": "on", "false": "off", "1": "on", "0": "off"}.get(choice, choice)
    if choice not in CROPPING_CHOICES:
        raise CroppingError(
            f"unknown cropping setting {value!r}: use one of {CROPPING_CHOICES} "
            "(DLC_PLATFORM_CROPPING, run_engine(cropping=...)).")
    return choice


def settings_from_registry(inference: dict | None) -> tuple[str | None, CropSettings]:
    """``(cropping, settings)`` from a model's registry ``inference:`` mapping
    (``ModelEntry.inference``); ``cropping`` None when the model does not set it."""
    inference = inference or {}
    keys = ("margin_px", "threshold", "refresh_every")
    settings = CropSettings(**{k: inference[k] for k in keys if k in inference})
    cropping = inference.get("cropping")
    return (check_cropping(cropping) if cropping is not None else None), settings


def check_margin(settings: CropSettings, receptive_field_px: float) -> int:
    """The margin to use: the settings' one, or the receptive field rounded up to 8 px.

    Raises
    ------
    CroppingError
        ``settings.margin_px`` is below the receptive field.
    """
    needed = int(math.ceil(receptive_field_px / 8.0) * 8)
    if settings.margin_px is None:
        return needed
    if settings.margin_px < receptive_field_px:
        raise CroppingError(
            f"crop margin {settings.margin_px} px is smaller than the network's receptive "
            f"field ({receptive_field_px:.0f} px, measured on this model): keypoints near a "
            f"crop border would differ from the full frame's. Use a margin of at least "
            f"{needed} px, or leave margin_px unset to use the receptive field.")
    return int(settings.margin_px)


# ----------------------------------------------------------------------------------------
# The receptive field, measured on the model's own weights
# ----------------------------------------------------------------------------------------


def receptive_field_px(network, height: int, width: int, mass: float = RF_MASS) -> dict:
    """The effective and the theoretical receptive-field radius of a network (px).

    The gradient of the heatmaps at the output cell nearest the centre of a
    ``height`` x ``width`` grey, lightly noisy frame with respect to the input: the
    theoretical radius is the farthest pixel with a non-zero gradient, the effective one
    the half side of the centred square holding ``mass`` of its absolute sum.

    Parameters
    ----------
    network : torch.nn.Module
        ``FramesToMaps`` (uint8 NHWC frames in, head maps out; the first output is the
        heatmap).
    height, width : int
        Probe size (a radius can only be measured up to half of it).

    Returns
    -------
    dict
        ``effective_px``, ``theoretical_px``, ``probe`` (``[width, height]``), ``mass``,
        ``limited`` (True when the theoretical field reaches the probe's border).
    """
    import torch

    rng = np.random.default_rng(0)
    frame = np.clip(128 + rng.normal(0, 8, (1, height, width, 3)), 0, 255).astype(np.float32)
    x = torch.from_numpy(frame).requires_grad_(True)
    with torch.enable_grad():
        out = network(x)[0]  # (1, K, h, w)
        _, _, h, w = out.shape
        cy, cx = h // 2, w // 2
        out[0, :, cy, cx].sum().backward()
    grad = x.grad[0].abs().sum(-1).numpy().astype(np.float64)  # (H, W)
    stride_y, stride_x = height / h, width / w
    py, px = (cy + 0.5) * stride_y, (cx + 0.5) * stride_x
    yy, xx = np.mgrid[0:height, 0:width]
    cheb = np.maximum(np.abs(yy + 0.5 - py), np.abs(xx + 0.5 - px))
    total = grad.sum()
    if total <= 0:
        return {"effective_px": 0.0, "theoretical_px": 0.0, "probe": [width, height],
                "mass": mass, "limited": False}
    order = np.argsort(cheb, axis=None)
    cum = np.cumsum(grad.ravel()[order]) / total
    effective = float(cheb.ravel()[order][np.searchsorted(cum, mass)])
    nonzero = grad > total * 1e-12
    theoretical = float(cheb[nonzero].max())
    limited = theoretical >= min(py, px, height - py, width - px) - 1
    return {"effective_px": round(effective, 1), "theoretical_px": round(theoretical, 1),
            "probe": [width, height], "mass": mass, "limited": bool(limited)}


def cached_receptive_field(network, key: str, height: int, width: int,
                           cache_dir=None) -> dict:
    """:func:`receptive_field_px` once per exported graph ``key`` (JSON in the cache)."""
    from pathlib import Path

    from dlc_tracking.synthetic.tiny_model import default_cache_dir

    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "onnx"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.receptive_field.json"
    if path.is_file():
        return json.loads(path.read_text())
    size = min(512, height, width)
    size = max(ALIGN_PX * 4, (size // ALIGN_PX) * ALIGN_PX)
    result = receptive_field_px(network, size, size)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(path)
    return result


# ----------------------------------------------------------------------------------------
# Pieces: crop boxes, a second animal
# ----------------------------------------------------------------------------------------


def crop_size(extent_px: float, margin_px: int, width: int, height: int) -> tuple[int, int]:
    """Crop ``(width, height)`` for an animal whose keypoints span ``extent_px``.

    The interior (crop minus the margin on both sides) is twice the extent, so the animal
    can turn and move half a body length during a batch; rounded up to :data:`ALIGN_PX`
    and capped at the frame.
    """
    side = 2 * margin_px + 2.0 * max(extent_px, 8.0)
    side = int(math.ceil(side / ALIGN_PX) * ALIGN_PX)
    return min(side, width), min(side, height)


def crop_origin(centre: np.ndarray, size: tuple[int, int], width: int, height: int
                ) -> tuple[int, int]:
    """Aligned origin ``(x0, y0)`` of a ``size`` crop centred near ``centre``, inside the frame."""
    out = []
    for c, s, full in ((centre[0], size[0], width), (centre[1], size[1], height)):
        if s >= full:
            out.append(0)
            continue
        hi = ((full - s) // ALIGN_PX) * ALIGN_PX
        out.append(int(min(max(round((c - s / 2) / ALIGN_PX) * ALIGN_PX, 0), hi)))
    return out[0], out[1]


def second_animal(heatmaps: np.ndarray, poses: np.ndarray, stride: float, extent_px: float,
                  threshold: float, apply_sigmoid: bool) -> np.ndarray:
    """Frames where most keypoints have a second confident peak away from the first.

    Parameters
    ----------
    heatmaps : ndarray, shape (frames, keypoints, h, w)
        Raw heatmaps of full frames.
    poses : ndarray, shape (frames, keypoints, 3)
        Their keypoints (the first peaks).
    stride : float
        Input pixels per heatmap cell.
    extent_px : float
        The animal's size: peaks closer than this to the first one are the same animal.

    Returns
    -------
    ndarray of bool, shape (frames,)
    """
    maps = np.asarray(heatmaps, dtype=np.float32)
    if apply_sigmoid:
        maps = 1.0 / (1.0 + np.exp(-maps))
    n, k, h, w = maps.shape
    radius = max(2.0, extent_px / stride)
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.zeros(n, dtype=bool)
    for i in range(n):
        seconds = 0
        firsts = 0
        for j in range(k):
            if poses[i, j, 2] < threshold:
                continue
            firsts += 1
            cy, cx = (poses[i, j, 1] / stride - 0.5), (poses[i, j, 0] / stride - 0.5)
            far = (yy - cy) ** 2 + (xx - cx) ** 2 > radius ** 2
            if far.any() and maps[i, j][far].max() >= threshold:
                seconds += 1
        out[i] = firsts > 0 and seconds * 2 > k
    return out


# ----------------------------------------------------------------------------------------
# The cropper
# ----------------------------------------------------------------------------------------


FullRun = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""frames ``(n, H, W, 3)`` -> poses ``(n, K, 3)`` and raw heatmaps ``(n, K, h, w)``."""
CropRun = Callable[[np.ndarray], np.ndarray]
"""crops ``(n, h, w, 3)`` -> poses ``(n, K, 3)`` in crop coordinates."""


@dataclass
class _Anchor:
    poses: np.ndarray  # (K, 3) last accepted keypoints, full-frame coordinates
    frame: int
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # px per frame


@dataclass
class GateFigures:
    """Crop vs full frame on the gate's frames (confident keypoints of the full frame)."""

    frames: int = 0
    points: int = 0
    p99_px: float = float("nan")
    max_px: float = float("nan")
    within_bound: bool | None = None  # None: not judged (too few points)

    def as_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) and not math.isnan(v) else
                    (None if isinstance(v, float) else v)) for k, v in asdict(self).items()}


class DynamicCropper:
    """Runs a video batch by batch on crops around the animal (module docstring).

    Parameters
    ----------
    width, height : int
        Frame size (after DLC's own ``cropping``, if any).
    n_keypoints : int
    settings : CropSettings
    margin_px : int
        The checked margin (:func:`check_margin`).
    stride : float
        Input pixels per heatmap cell (second-animal check).
    apply_sigmoid : bool
        The heatmaps are logits (DLC's ``apply_sigmoid``).
    full : FullRun
    make_crop_run : callable
        ``make_crop_run(width, height) -> CropRun``: the network for the crop size, built
        once the crop size is known.
    log : callable, optional
        Receives the events in words.
    """

    def __init__(self, width: int, height: int, n_keypoints: int, settings: CropSettings,
                 margin_px: int, stride: float, apply_sigmoid: bool, full: FullRun,
                 make_crop_run: Callable[[int, int], CropRun],
                 log: Callable[[str], None] | None = None, receptive_field: dict | None = None):
        self.width, self.height = width, height
        self.k = n_keypoints
        self.settings = settings
        self.margin = margin_px
        self.stride = stride
        self.apply_sigmoid = apply_sigmoid
        self.full = full
        self.make_crop_run = make_crop_run
        self.say = log or (lambda _m: None)
        self.receptive_field = receptive_field or {}
        self.crop_run: CropRun | None = None
        self.size: tuple[int, int] | None = None
        self.extent = 0.0
        self.anchor: _Anchor | None = None
        self.last_full = -10**9
        self.active = True
        self.off_reason: str | None = None
        self.reasons: Counter = Counter()
        self.events: list[dict] = []
        self.frames = 0
        self.full_frames = 0
        self.gate_d: list[np.ndarray] = []
        self.gate_frames = 0
        self.gate = GateFigures()
        self.animal_seen = False
        self.absent = False
        self.probed = 0

    # -- bookkeeping ----------------------------------------------------------------------

    def _event(self, frame: int, what: str) -> None:
        if len(self.events) < MAX_EVENTS:
            self.events.append({"frame": int(frame), "event": what})
        self.say(f"cropping: frame {frame}: {what}")

    def _stop(self, frame: int, reason: str) -> None:
        if self.active:
            self.active = False
            self.off_reason = reason
            self._event(frame, f"cropping off for the rest of the video: {reason}")

    def _confident(self, pose: np.ndarray) -> np.ndarray:
        return pose[:, 2] >= self.settings.threshold

    # -- one batch --------------------------------------------------------------------------

    def run(self, frames: np.ndarray, start: int) -> np.ndarray:
        """Keypoints ``(n, K, 3)`` (full-frame coordinates) of ``frames`` ``(n, H, W, 3)``,
        the video's frames ``start .. start + n - 1``."""
        n = len(frames)
        out = np.empty((n, self.k, 3), dtype=np.float32)
        plan: list[str | None] = []  # None = crop; else why the full frame
        for i in range(n):
            f = start + i
            if not self.active:
                plan.append("cropping off")
            elif f == 0:
                plan.append("first frame")
            elif self.anchor is None or self.size is None:
                plan.append("animal not in the frame" if self.absent else
                            "no animal seen yet" if not self.animal_seen else
                            "crop size not known yet")
            elif f - self.last_full >= self.settings.refresh_every:
                plan.append("refresh")
                self.last_full = f  # one refresh per period, also within a batch
            else:
                plan.append(None)
        # the gate's frames run both ways while cropping is still judged
        gate = []
        if self.active and self.anchor is not None and self.size is not None:
            for i in range(n):
                if plan[i] == "refresh":
                    gate.append(i)
                elif plan[i] is None and self.probed < self.settings.probe_frames:
                    self.probed += 1  # the first croppable frames: the probe
                    gate.append(i)
        cropped = [i for i in range(n) if plan[i] is None]
        boxes: dict[int, tuple[int, int]] = {}
        crop_poses: dict[int, np.ndarray] = {}
        to_crop = sorted(set(cropped) | set(gate))
        if to_crop:
            crops = np.empty((len(to_crop), self.size[1], self.size[0], 3), dtype=frames.dtype)
            for j, i in enumerate(to_crop):
                x0, y0 = self._origin(start + i)
                boxes[i] = (x0, y0)
                crops[j] = frames[i, y0:y0 + self.size[1], x0:x0 + self.size[0]]
            poses = self.crop_run(crops)
            for j, i in enumerate(to_crop):
                p = poses[j].copy()
                p[:, 0] += boxes[i][0]
                p[:, 1] += boxes[i][1]
                crop_poses[i] = p
        for i in cropped:
            why = "parity probe" if i in gate else self._reject(crop_poses[i], boxes[i])
            if why:
                plan[i] = why
            else:
                out[i] = crop_poses[i]
        full_idx = [i for i in range(n) if plan[i] is not None]
        if full_idx:  # the gate's frames are among them: their full-frame results are kept
            poses, heatmaps = self.full(frames[full_idx])
            by_frame = dict(zip(full_idx, poses, strict=True))
            for i in full_idx:
                out[i] = by_frame[i]
            self._after_full(full_idx, poses, heatmaps, start)
            for i in gate:
                self._gate(by_frame[i], crop_poses[i], boxes[i], start + i)
        for i in range(n):
            if plan[i] is not None:
                self.reasons[plan[i]] += 1
                self.full_frames += 1
                if plan[i] != "cropping off":
                    self.last_full = max(self.last_full, start + i)
        self.frames += n
        self._update_anchor(out, start, plan)
        return out

    def _origin(self, frame: int) -> tuple[int, int]:
        a = self.anchor
        conf = self._confident(a.poses)
        pts = a.poses[conf, :2]
        centre = 0.5 * (pts.min(0) + pts.max(0)) + a.velocity * (frame - a.frame)
        return crop_origin(centre, self.size, self.width, self.height)

    def _reject(self, pose: np.ndarray, box: tuple[int, int]) -> str | None:
        """Why a cropped frame must run on the full frame (None: accepted)."""
        expected = self._confident(self.anchor.poses)
        conf = self._confident(pose)
        if (expected & ~conf).any():
            return "confidence dropped"
        x0, y0 = box
        w, h = self.size
        m = self.margin
        xy = pose[conf, :2]
        near = np.zeros(len(xy), dtype=bool)
        if x0 > 0:
            near |= xy[:, 0] < x0 + m
        if x0 + w < self.width:
            near |= xy[:, 0] > x0 + w - m
        if y0 > 0:
            near |= xy[:, 1] < y0 + m
        if y0 + h < self.height:
            near |= xy[:, 1] > y0 + h - m
        return "animal near the crop's border" if near.any() else None

    def _after_full(self, idx: list[int], poses: np.ndarray, heatmaps: np.ndarray,
                    start: int) -> None:
        """Events seen on full frames: animal left / re-entered, a second animal; the crop
        size once an animal is first seen."""
        for j, i in enumerate(idx):
            f = start + i
            conf = self._confident(poses[j])
            if not conf.any():
                if self.animal_seen and not self.absent:
                    self._event(f, "animal not in the frame (no confident keypoint): full "
                                   "frames until it re-enters")
                self.absent = True
                self.anchor = None
                continue
            if self.absent and self.animal_seen:
                self._event(f, "animal back in the frame" + (
                    ": cropping resumes" if self.active and self.size else ""))
            self.animal_seen = True
            self.absent = False
            if self.size is None and self.active and conf.sum() >= 2:
                pts = poses[j][conf, :2]
                self.extent = float(np.max(np.linalg.norm(pts[:, None] - pts[None], axis=-1)))
                size = crop_size(self.extent, self.margin, self.width, self.height)
                share = size[0] * size[1] / (self.width * self.height)
                if share > MAX_CROP_SHARE:
                    self._stop(f, f"a {size[0]}x{size[1]} crop (animal {self.extent:.0f} px "
                                  f"+ margin {self.margin} px) would cover {100 * share:.0f} % "
                                  "of the frame: not worth it")
                else:
                    self.size = size
                    self.crop_run = self.make_crop_run(*size)
                    self._event(f, f"crop {size[0]}x{size[1]} px (animal {self.extent:.0f} px, "
                                   f"margin {self.margin} px)")
        if self.active and self.extent > 0:
            two = second_animal(heatmaps, poses, self.stride, self.extent,
                                self.settings.threshold, self.apply_sigmoid)
            if two.any():
                self._stop(start + idx[int(np.argmax(two))],
                           "a second animal seems present (a second confident peak for most "
                           "keypoints)")

    def _gate(self, full: np.ndarray, crop: np.ndarray, box: tuple[int, int], f: int) -> None:
        if not self.active or self._reject(crop, box) is not None:
            return  # a crop the rules would not have accepted is not judged
        conf = self._confident(full)
        self.gate_d.append(np.hypot(*(full[conf, :2] - crop[conf, :2]).T))
        self.gate_frames += 1
        d = np.concatenate(self.gate_d)
        if len(d) >= MIN_GATE_POINTS:
            p99 = float(np.percentile(d, 99))
            self.gate = GateFigures(self.gate_frames, len(d), p99, float(d.max()),
                                    p99 <= self.settings.bound_px)
            if not self.gate.within_bound:
                self._stop(f, f"parity gate: 99th percentile displacement crop vs full frame "
                              f"{p99:.3f} px over {self.settings.bound_px} px on {len(d)} "
                              "confident keypoints")
        else:
            self.gate = GateFigures(self.gate_frames, len(d),
                                    float(np.percentile(d, 99)) if len(d) else float("nan"),
                                    float(d.max()) if len(d) else float("nan"), None)

    def _update_anchor(self, out: np.ndarray, start: int, plan: list) -> None:
        for i in range(len(out) - 1, -1, -1):
            conf = self._confident(out[i])
            if not conf.any():
                if plan[i] is not None:  # a full frame without the animal: nothing known
                    self.anchor = None
                    return
                continue
            f = start + i
            pose = out[i].copy()
            velocity = np.zeros(2)
            a = self.anchor
            if a is not None and f > a.frame:
                both = conf & self._confident(a.poses)
                if both.any():
                    velocity = (pose[both, :2] - a.poses[both, :2]).mean(0) / (f - a.frame)
                    velocity = np.clip(velocity, -self.extent / 4, self.extent / 4)
            self.anchor = _Anchor(pose, f, velocity)
            return

    # -- what happened ------------------------------------------------------------------------

    def report(self) -> dict:
        """Per-video report: settings, crop size, full-frame share and reasons, events, gate."""
        return {
            "cropping": "on" if self.active and self.size is not None else "off",
            "off_reason": self.off_reason or (None if self.size is not None else
                                              "no crop size: no animal seen"),
            "margin_px": self.margin, "threshold": self.settings.threshold,
            "refresh_every": self.settings.refresh_every,
            "probe_frames": self.settings.probe_frames, "bound_p99_px": self.settings.bound_px,
            "align_px": ALIGN_PX, "receptive_field": self.receptive_field,
            "crop_size": list(self.size) if self.size else None,
            "frames": self.frames, "full_frame_frames": self.full_frames,
            "full_frame_share": round(self.full_frames / self.frames, 4) if self.frames else None,
            "full_frame_reasons": dict(self.reasons), "events": list(self.events),
            "parity_gate": self.gate.as_dict(),
        }
