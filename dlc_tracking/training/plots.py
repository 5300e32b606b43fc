"""Pictures of a training run and an evaluation, as PNG bytes (arrays in, no Dagster)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dlc_tracking.qc.plots import _plt, _png


def losses_png(losses: pd.DataFrame, title: str = "") -> bytes:
    """Train and valid loss per epoch (log scale), test RMSE on a second axis.

    Parameters
    ----------
    losses : pandas.DataFrame
        ``epoch``, ``train_loss``, ``valid_loss`` and optionally ``test_rmse_px`` (as
        :func:`dlc_tracking.training.train.read_learning_stats` returns).
    title : str
        Plot title (the model version).

    Returns
    -------
    bytes
        PNG.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    epoch = losses["epoch"].to_numpy(int)
    ax.plot(epoch, losses["train_loss"].to_numpy(float), "o-", ms=3, label="train loss")
    valid = losses["valid_loss"].to_numpy(float)
    if np.isfinite(valid).any():
        ok = np.isfinite(valid)
        ax.plot(epoch[ok], valid[ok], "s--", ms=3, label="valid loss")
    positive = losses[["train_loss", "valid_loss"]].to_numpy(float)
    if np.nanmin(np.where(positive > 0, positive, np.nan), initial=np.inf) < np.inf:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    handles, labels = ax.get_legend_handles_labels()
    if "test_rmse_px" in losses and np.isfinite(losses["test_rmse_px"].to_numpy(float)).any():
        ax2 = ax.twinx()
        rmse = losses["test_rmse_px"].to_numpy(float)
        ok = np.isfinite(rmse)
        ax2.plot(epoch[ok], rmse[ok], "^:", ms=3, color="tab:red", label="test RMSE (px)")
        ax2.set_ylabel("test RMSE (px)")
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, fontsize=8, loc="upper right")
    ax.set_title(title or "training losses", fontsize=10)
    return _png(fig)


def evaluation_png(rows: pd.DataFrame, title: str = "") -> bytes:
    """Train and test RMSE (px) per body part of the registered snapshot, bars.

    Parameters
    ----------
    rows : pandas.DataFrame
        Evaluation rows of one model (``model_evaluations`` columns).
    title : str
        Plot title.

    Returns
    -------
    bytes
        PNG.
    """
    plt = _plt()
    sel = rows[rows["registered_snapshot"].astype(bool)]
    parts = sel["body_part"].tolist()
    x = np.arange(len(parts))
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.bar(x - 0.2, sel["train_rmse_px"].to_numpy(float), 0.4, label="train")
    ax.bar(x + 0.2, sel["test_rmse_px"].to_numpy(float), 0.4, label="test")
    ax.set_xticks(x, parts, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("RMSE (px)")
    ax.legend(fontsize=8)
    ax.set_title(title or "evaluation", fontsize=10)
    return _png(fig)
