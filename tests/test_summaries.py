"""Summary figures of one processed recording (pure numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from dlc_tracking.tracking.summaries import COVERAGE_BIN_CM, summarize_tracking


def test_summarize_tracking_edge_cases() -> None:
    empty = np.array([])
    s = summarize_tracking(empty, empty, empty, empty, empty, empty.astype(bool), 10, 10)
    assert s["n_frames"] == 0 and s["distance_cm"] == 0 and s["duration_s"] is None
    nan = np.full(3, np.nan)
    s = summarize_tracking(np.arange(3), nan, nan, nan, nan, np.zeros(3, bool))
    assert (s["distance_cm"], s["tracked_fraction"], s["mean_speed_cm_s"], s["coverage"],
            s["coverage_bin_cm"]) == (0.0, 0.0, None, None, COVERAGE_BIN_CM)
    x = np.array([3.0, 1.0, 2.0])                                    # frames 2, 0, 1
    s = summarize_tracking(np.array([2, 0, 1]), x, x, x, x, np.ones(3, bool), 4.0, 4.0,
                           bin_cm=2.0)
    assert s["distance_cm"] == pytest.approx(2 * np.sqrt(2))        # in frame order
    assert (s["visited_bins"], s["arena_bins"], s["coverage"]) == (2, 4, 0.5)
    with pytest.raises(ValueError, match="shape"):
        summarize_tracking(np.arange(3), x[:2], x, x, x, np.ones(3, bool))
