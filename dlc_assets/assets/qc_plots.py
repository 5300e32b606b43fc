"""QC pictures shown inline in materializations: PNGs as Markdown data URIs.

The UI renders a Markdown metadata value in the materialization's metadata table, so the
images appear on the asset's partition page without a click to another page. The plots
themselves are plain Python in ``dlc_tracking.qc.plots``.
"""


import base64
import hashlib
import os
from pathlib import Path

import dagster as dg
import numpy as np

from dlc_tracking.qc import plots
from dlc_tracking.tracking.occupancy import occupancy_grid
from dlc_tracking.tracking.processed import ProcessedTracking

QC_URL_ENV = "DLC_PLATFORM_QC_URL"
QC_DIR_ENV = "DLC_PLATFORM_QC_DIR"


def png_md(png: bytes, alt: str) -> dg.MetadataValue:
    """An image for the materialization's metadata table.

    The UI shows a Markdown value inline only when it is short (under 1,000 characters);
    longer ones sit behind "[Show Markdown]". So when ``$DLC_PLATFORM_QC_URL`` is set (a
    static file server of ``$DLC_PLATFORM_QC_DIR``, started by ``scripts/start.sh``), the
    PNG is written there under its content hash and the Markdown is a short image link,
    shown inline. Without it the PNG travels as a data URI (one click to see).
    """
    base, folder = os.environ.get(QC_URL_ENV), os.environ.get(QC_DIR_ENV)
    if base and folder:
        name = f"{hashlib.sha256(png).hexdigest()[:24]}.png"
        path = Path(folder) / name
        if not path.exists():  # content-addressed: same picture, same file
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
            tmp.write_bytes(png)
            os.replace(tmp, path)
        return dg.MetadataValue.md(f"![{alt}]({base.rstrip('/')}/{name})")
    data = base64.b64encode(png).decode()
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{data})")


def prediction_plots(poses: np.ndarray, body_parts: list[str], time_s: np.ndarray,
                     cutoff: float | None = None) -> dict[str, dg.MetadataValue]:
    """The images shown in a dlc_predictions materialization, by metadata key."""
    return {"likelihood_over_time": png_md(
        plots.likelihood_png(poses, body_parts, time_s, cutoff), "likelihood over time")}


def processed_tracking_plots(processed: ProcessedTracking, arena_width_cm: float | None = None,
                             arena_height_cm: float | None = None
                             ) -> dict[str, dg.MetadataValue]:
    """The images shown in a processed_tracking materialization, by metadata key.

    The arena outline and the occupancy grid use the arena size when given (else the
    processing parameters' arena size, else the tracked extent).
    """
    width = arena_width_cm or processed.params.arena_width_cm
    height = arena_height_cm or processed.params.arena_height_cm
    seconds, _ = occupancy_grid(processed.x_cm, processed.y_cm, processed.time_s,
                                processed.params.occupancy_bin_cm, width, height)
    return {
        "trajectory": png_md(plots.trajectory_png(processed.x_cm, processed.y_cm,
                                                  processed.speed_cm_s, width, height),
                             "trajectory coloured by speed"),
        "occupancy": png_md(plots.occupancy_png(seconds, processed.params.occupancy_bin_cm),
                            "occupancy heatmap"),
        "speed_histogram": png_md(plots.speed_histogram_png(processed.speed_cm_s),
                                  "speed histogram"),
        "head_direction_histogram": png_md(plots.head_direction_png(
            processed.head_direction_deg), "head direction polar histogram"),
    }
