"""QC plots of one recording, and one across recordings, as PNG bytes.

Each function takes arrays (no warehouse, no Dagster) and returns a PNG; large recordings
are subsampled for drawing only (``max_points``), never for the numbers shown (histograms
and occupancy use every frame).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

__all__ = [
    "head_direction_png",
    "likelihood_png",
    "occupancy_png",
    "overview_png",
    "speed_histogram_png",
    "trajectory_png",
    "reprojection_error_png",
    "trajectory_3d_png",
]

DPI = 72


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # no display on workers; must precede pyplot
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _step(n: int, max_points: int) -> int:
    return max(1, n // max_points)


def _arena_outline(ax, width_cm: float | None, height_cm: float | None) -> None:
    if width_cm and height_cm:
        ax.plot([0, width_cm, width_cm, 0, 0], [0, 0, height_cm, height_cm, 0], color="0.3",
                lw=1.2, label="arena")


def trajectory_png(x_cm: np.ndarray, y_cm: np.ndarray, speed_cm_s: np.ndarray,
                   arena_width_cm: float | None = None, arena_height_cm: float | None = None,
                   max_points: int = 20000) -> bytes:
    """Trajectory in the arena frame coloured by speed, over the arena outline.

    Parameters
    ----------
    x_cm, y_cm, speed_cm_s : np.ndarray
        Processed position (arena frame, y up) and speed.
    arena_width_cm, arena_height_cm : float, optional
        Arena size for the outline (origin at the lower-left corner).
    max_points : int
        Points drawn at most (evenly subsampled).

    Returns
    -------
    bytes
        PNG.
    """
    plt = _plt()
    s = _step(len(x_cm), max_points)
    fig, ax = plt.subplots(figsize=(4.4, 4))
    _arena_outline(ax, arena_width_cm, arena_height_cm)
    ax.plot(x_cm[::s], y_cm[::s], color="0.8", lw=0.4, zorder=1)
    sc = ax.scatter(x_cm[::s], y_cm[::s], c=speed_cm_s[::s], s=3, cmap="viridis", zorder=2)
    fig.colorbar(sc, ax=ax, label="speed (cm/s)")
    ax.set(xlabel="x (cm)", ylabel="y (cm)", title="Trajectory (arena frame, y up)",
           aspect="equal")
    return _png(fig)


def occupancy_png(seconds: np.ndarray, bin_cm: float) -> bytes:
    """Occupancy heatmap: seconds per bin (``occupancy_grid``'s ``[x_bin, y_bin]``).

    Parameters
    ----------
    seconds : np.ndarray
        ``(n_x_bins, n_y_bins)`` seconds per bin.
    bin_cm : float
        Bin side (cm).

    Returns
    -------
    bytes
        PNG.
    """
    plt = _plt()
    nx, ny = seconds.shape
    fig, ax = plt.subplots(figsize=(4.4, 4))
    shown = np.where(seconds > 0, seconds, np.nan)  # unvisited bins stay blank, not dark
    im = ax.imshow(shown.T, origin="lower", extent=(0, nx * bin_cm, 0, ny * bin_cm),
                   cmap="magma", interpolation="nearest")
    fig.colorbar(im, ax=ax, label="time (s)")
    ax.set(xlabel="x (cm)", ylabel="y (cm)", title=f"Occupancy ({bin_cm:g} cm bins)")
    return _png(fig)


def speed_histogram_png(speed_cm_s: np.ndarray, bins: int = 50) -> bytes:
    """Histogram of speed (time per speed bin), every frame with a speed.

    Returns
    -------
    bytes
        PNG.
    """
    plt = _plt()
    v = np.asarray(speed_cm_s, dtype=np.float64)
    v = v[np.isfinite(v)]
    fig, ax = plt.subplots(figsize=(4.4, 2.8))
    if v.size:
        ax.hist(v, bins=bins, color="tab:blue")
        ax.axvline(float(np.median(v)), color="tab:red", lw=1, label=f"median {np.median(v):.1f}")
        ax.legend(fontsize=8)
    ax.set(xlabel="speed (cm/s)", ylabel="frames", title="Speed")
    return _png(fig)


def head_direction_png(head_direction_deg: np.ndarray, bins: int = 24) -> bytes:
    """Polar histogram of head direction (counter-clockwise from +x, arena frame).

    Returns
    -------
    bytes
        PNG; the title says so when the method has no head direction.
    """
    plt = _plt()
    hd = np.asarray(head_direction_deg, dtype=np.float64)
    hd = hd[np.isfinite(hd)]
    fig = plt.figure(figsize=(3.2, 3.2))
    ax = fig.add_subplot(projection="polar")
    if hd.size:
        counts, edges = np.histogram(np.deg2rad(hd), bins=bins, range=(0, 2 * np.pi))
        ax.bar(edges[:-1], counts, width=edges[1] - edges[0], align="edge",
               color="tab:orange", edgecolor="k", lw=0.3)
    ax.set_title("Head direction" if hd.size else "No head direction (method)")
    return _png(fig)


def likelihood_png(poses: np.ndarray, body_parts: Sequence[str], time_s: np.ndarray,
                   cutoff: float | None = None, max_points: int = 5000) -> bytes:
    """Likelihood over time, one panel per body part (binned mean, and the minimum).

    Parameters
    ----------
    poses : np.ndarray
        ``(n_frames, n_parts, 3)``; column 2 is the likelihood.
    body_parts : sequence of str
        Names of axis 1.
    time_s : np.ndarray
        Frame times.
    cutoff : float, optional
        The method's likelihood cutoff, drawn as a line.
    max_points : int
        Time bins at most (each bin shows its mean and minimum, so dips stay visible).

    Returns
    -------
    bytes
        PNG.
    """
    plt = _plt()
    n, k = poses.shape[0], poses.shape[1]
    fig, axes = plt.subplots(k, 1, figsize=(6, 0.9 + 0.8 * k), sharex=True, squeeze=False)
    s = _step(n, max_points)
    m = (n // s) * s
    t = time_s[:m].reshape(-1, s)[:, 0] if m else time_s[:0]
    for i, (ax, name) in enumerate(zip(axes[:, 0], body_parts, strict=True)):
        lk = np.where(np.isnan(poses[:m, i, 2]), 0.0, poses[:m, i, 2]).reshape(-1, s)
        ax.fill_between(t, lk.min(axis=1), lk.mean(axis=1), color="tab:blue", alpha=0.3, lw=0)
        ax.plot(t, lk.mean(axis=1), lw=0.7, color="tab:blue")
        if cutoff is not None:
            ax.axhline(cutoff, color="tab:red", lw=0.7, ls="--")
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel(name, rotation=0, ha="right", fontsize=8)
    axes[0, 0].set_title("Likelihood (missing = 0; band = bin minimum)")
    axes[-1, 0].set_xlabel("time (s)")
    return _png(fig)


def overview_png(recording_ids: Sequence[str], distance_cm: Sequence[float],
                 tracked_fraction: Sequence[float], flagged: Sequence[bool]) -> bytes:
    """Distance and tracked fraction per recording; flagged recordings in red.

    Parameters
    ----------
    recording_ids : sequence of str
        Labels.
    distance_cm, tracked_fraction : sequence of float
        Per recording.
    flagged : sequence of bool
        Recordings with a failed check or low tracked fraction.

    Returns
    -------
    bytes
        PNG.
    """
    plt = _plt()
    n = len(recording_ids)
    colours = ["tab:red" if f else "tab:blue" for f in flagged]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 1.2 + 0.3 * max(n, 1)), sharey=True)
    y = np.arange(n)
    a1.barh(y, np.nan_to_num(np.asarray(distance_cm, float)), color=colours)
    a2.barh(y, np.nan_to_num(np.asarray(tracked_fraction, float)), color=colours)
    a1.set_yticks(y, [str(r) for r in recording_ids], fontsize=7)
    a1.invert_yaxis()
    a1.set(xlabel="distance (cm)", title="Distance")
    a2.set(xlabel="tracked fraction", xlim=(0, 1), title="Tracked fraction (red: flagged)")
    return _png(fig)


def reprojection_error_png(camera_error_px: np.ndarray, cameras: list[str],
                           body_parts: list[str]) -> bytes:
    """Median reprojection error per camera and body part (a multi-camera recording).

    Parameters
    ----------
    camera_error_px : np.ndarray
        ``(n_cameras, n_frames, n_parts)``; NaN where the camera was not used.
    """
    import warnings

    plt = _plt()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a camera never used: all-NaN
        med = np.nanmedian(camera_error_px, axis=1)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(body_parts), 0.8 + 0.5 * len(cameras)))
    im = ax.imshow(med, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(body_parts)), body_parts, rotation=30, ha="right")
    ax.set_yticks(range(len(cameras)), cameras)
    low, high = im.get_clim()
    for (i, j), v in np.ndenumerate(med):
        # dark text on viridis' bright (high) end, white on its dark end
        bright = np.isfinite(v) and high > low and (v - low) / (high - low) > 0.6
        ax.text(j, i, "-" if np.isnan(v) else f"{v:.2f}", ha="center", va="center",
                color="k" if bright else "w", fontsize=8)
    fig.colorbar(im, ax=ax, label="median reprojection error (px)")
    return _png(fig)


def trajectory_3d_png(x_cm: np.ndarray, y_cm: np.ndarray, z_cm: np.ndarray,
                      max_points: int = 20000) -> bytes:
    """The 3D position seen from above (x, y) and from the side (x, z).

    The side view spans at least ``MIN_Z_SPAN_CM`` in z, so a head at a nearly constant
    height is drawn flat rather than as rounding noise blown up to the axis (cm).
    """
    plt = _plt()
    step = _step(len(x_cm), max_points)
    fig, (top, side) = plt.subplots(1, 2, figsize=(8, 3.6))
    top.plot(x_cm[::step], y_cm[::step], lw=0.6)
    top.set(xlabel="x (cm)", ylabel="y (cm)", title="top view", aspect="equal")
    side.plot(x_cm[::step], z_cm[::step], lw=0.6)
    side.set(xlabel="x (cm)", ylabel="z (cm)", title="side view")
    z = np.asarray(z_cm, dtype=np.float64)
    if np.isfinite(z).any():
        low, high = float(np.nanmin(z)), float(np.nanmax(z))
        pad = max(0.0, MIN_Z_SPAN_CM - (high - low)) / 2.0
        side.set_ylim(low - pad - 0.05 * (high - low), high + pad + 0.05 * (high - low))
    side.ticklabel_format(axis="y", useOffset=False)
    return _png(fig)


MIN_Z_SPAN_CM = 2.0
"""Smallest z range of :func:`trajectory_3d_png`'s side view (cm)."""
