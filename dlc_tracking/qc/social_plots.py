"""Pictures of a multi-animal recording, as PNG bytes: every trajectory on the arena, the
inter-animal distance over time with the identity-swap frames marked.

Arrays in, PNG out (no warehouse, no Dagster), like :mod:`dlc_tracking.qc.plots`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from dlc_tracking.qc.plots import _arena_outline, _plt, _png, _step

__all__ = ["distance_png", "trajectories_png"]


def _label(individual: str, subject: str | None) -> str:
    return f"{individual} ({subject})" if subject else f"{individual} (anonymous)"


def trajectories_png(tracks: Mapping[str, tuple[np.ndarray, np.ndarray]],
                     subjects: Mapping[str, str | None] | None = None,
                     arena_width_cm: float | None = None,
                     arena_height_cm: float | None = None, max_points: int = 20000) -> bytes:
    """All individuals' trajectories (arena frame, cm), one colour each.

    Parameters
    ----------
    tracks : mapping
        individual -> ``(x_cm, y_cm)``, arrays ``(n_frames,)``.
    subjects : mapping, optional
        individual -> subject id (None = anonymous), shown in the legend.
    """
    plt = _plt()
    subjects = dict(subjects or {})
    fig, ax = plt.subplots(figsize=(5, 5))
    _arena_outline(ax, arena_width_cm, arena_height_cm)
    for ind, (x, y) in tracks.items():
        s = _step(len(x), max_points)
        ax.plot(x[::s], y[::s], lw=0.8, alpha=0.85, label=_label(ind, subjects.get(ind)))
    ax.set_aspect("equal")
    ax.set_xlabel("x (cm)")
    ax.set_ylabel("y (cm)")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title("Trajectories")
    return _png(fig)


def distance_png(time_s: np.ndarray, distances: Mapping[str, np.ndarray],
                 swap_times_s: Sequence[float] = (), proximity_cm: float | None = None,
                 max_points: int = 20000) -> bytes:
    """Inter-animal distance over time per pair, identity-swap frames as red lines.

    Parameters
    ----------
    time_s : np.ndarray
        ``(n_frames,)``.
    distances : mapping
        pair label (``"M12-M13"``) -> ``(n_frames,)`` distance in cm.
    swap_times_s : sequence of float
        Times of flagged identity swaps.
    proximity_cm : float, optional
        Drawn as a dashed line.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3))
    s = _step(len(time_s), max_points)
    for label, d in distances.items():
        ax.plot(time_s[::s], np.asarray(d)[::s], lw=0.8, label=label)
    for k, t in enumerate(swap_times_s):
        ax.axvline(t, color="red", lw=0.8, alpha=0.7, label="identity swap" if k == 0 else None)
    if proximity_cm:
        ax.axhline(proximity_cm, color="0.4", ls="--", lw=0.8, label="proximity")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("distance (cm)")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title("Inter-animal distance")
    return _png(fig)
