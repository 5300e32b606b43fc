"""Quality-control plots shown as images in materializations (PNG in Markdown)."""


import base64
import io

import dagster as dg
import numpy as np

from dlc_tracking.tracking.processed import ProcessedTracking


def _figure_md(fig, alt: str) -> dg.MetadataValue:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{data})")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def trajectory_plot(processed: ProcessedTracking, max_points: int = 5000) -> dg.MetadataValue:
    plt = _plt()
    step = max(1, processed.n_frames // max_points)
    fig, ax = plt.subplots(figsize=(4, 4))
    sc = ax.scatter(processed.x_cm[::step], processed.y_cm[::step],
                    c=processed.speed_cm_s[::step], s=2, cmap="viridis")
    fig.colorbar(sc, ax=ax, label="speed (cm/s)")
    ax.set(xlabel="x (cm)", ylabel="y (cm)", title="Trajectory", aspect="equal")
    return _figure_md(fig, "trajectory coloured by speed")


def likelihood_plot(poses: np.ndarray, body_parts: list[str], time_s: np.ndarray,
                    max_points: int = 5000) -> dg.MetadataValue:
    plt = _plt()
    step = max(1, poses.shape[0] // max_points)
    fig, ax = plt.subplots(figsize=(6, 2.5))
    for i, name in enumerate(body_parts):
        ax.plot(time_s[::step], poses[::step, i, 2], lw=0.7, label=name)
    ax.set(xlabel="time (s)", ylabel="likelihood", ylim=(-0.02, 1.02), title="Likelihood")
    ax.legend(fontsize=6, ncol=len(body_parts))
    return _figure_md(fig, "likelihood over time")


def head_direction_plot(processed: ProcessedTracking) -> dg.MetadataValue:
    plt = _plt()
    hd = processed.head_direction_deg[np.isfinite(processed.head_direction_deg)]
    fig = plt.figure(figsize=(3, 3))
    ax = fig.add_subplot(projection="polar")
    if hd.size:
        counts, edges = np.histogram(np.deg2rad(hd), bins=24, range=(0, 2 * np.pi))
        ax.bar(edges[:-1], counts, width=edges[1] - edges[0], align="edge")
    ax.set_title("Head direction" if hd.size else "No head direction (method)")
    return _figure_md(fig, "head direction histogram")


def prediction_plots(poses: np.ndarray, body_parts: list[str], time_s: np.ndarray
                     ) -> dict[str, dg.MetadataValue]:
    """The images shown in a dlc_predictions materialization, by metadata key."""
    return {"likelihood_over_time": likelihood_plot(poses, body_parts, time_s)}


def processed_tracking_plots(processed: ProcessedTracking) -> dict[str, dg.MetadataValue]:
    """The images shown in a processed_tracking materialization, by metadata key."""
    return {"trajectory": trajectory_plot(processed),
            "head_direction_histogram": head_direction_plot(processed)}
