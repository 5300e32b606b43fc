"""The measured runtime table also tries the fastest runtime on slices of each batch
(ChunkedNetwork): same maps, a row per slice size, chosen only when faster; maps are
compared with a tolerance that scales with their size."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")


class _Net(torch.nn.Module):
    """A small convolutional network taking NHWC uint8 frames, as the engine's graphs do."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.head = torch.nn.Conv2d(4, 2, 1)

    def forward(self, frames):
        x = frames.permute(0, 3, 1, 2).float() / 255.0
        return (self.head(torch.relu(self.conv(x))),)


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    path = tmp_path_factory.mktemp("graph") / "net.onnx"
    example = torch.zeros(2, 24, 32, 3, dtype=torch.uint8)
    torch.onnx.export(_Net().eval(), (example,), str(path), input_names=["frames"],
                      dynamic_axes={"frames": {0: "batch"}}, dynamo=False)
    return path


def test_chunked_network_gives_the_same_maps(graph):
    from dlc_tracking.inference.runtimes import ChunkedNetwork, OnnxNetwork

    frames = np.random.default_rng(1).integers(0, 256, (5, 24, 32, 3), dtype=np.uint8)
    whole = OnnxNetwork(graph)
    chunked = ChunkedNetwork(whole, 2)
    assert chunked.runtime == "onnxruntime"          # the wrapped network's attributes
    for a, b in zip(whole(frames), chunked(frames), strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_table_measures_slices_of_the_fastest_runtime_and_keeps_parity(graph, tmp_path):
    from dlc_tracking.inference.runtime_choice import CHUNKS, chosen_runtime
    from dlc_tracking.inference.runtimes import OnnxNetwork

    batch = 4
    said = []
    network = chosen_runtime(graph, "test-graph", batch, 24, 32, OnnxNetwork(graph),
                             log=said.append, setting="auto", cache_dir=tmp_path)
    rows = network.choice["table"]
    sliced = [r for r in rows if "chunk" in r]
    assert sorted(r["chunk"] for r in sliced) == sorted({batch, *CHUNKS})
    assert len({(r["runtime"], r["threads"], r.get("layout")) for r in sliced}) == 1
    assert all(r["parity"] for r in sliced)
    chosen = network.choice["chosen"]
    best = max(sliced, key=lambda r: r["frames_per_s"])
    assert chosen.get("chunk", batch) == best["chunk"]
    assert any("frames per call" in line for line in said)
    frames = np.random.default_rng(2).integers(0, 256, (batch, 24, 32, 3), dtype=np.uint8)
    np.testing.assert_allclose(network(frames)[0], OnnxNetwork(graph)(frames)[0], atol=1e-5)
    # measured once: a second call reads the table
    again = chosen_runtime(graph, "test-graph", batch, 24, 32, OnnxNetwork(graph),
                           setting="auto", cache_dir=tmp_path)
    assert again.choice["table"] == rows


def test_map_tolerance_scales_with_the_maps():
    """1e-3 for trained heads' maps (order 1-10); float32 rounding of untrained deep nets'
    maps (HRNet-W32's reach 5e6: 12.8 apart, 2.3e-6 relative) is not a runtime's error."""
    from dlc_tracking.inference.export import map_tolerance

    assert map_tolerance([np.array([0.5, -0.9])]) == pytest.approx(1e-3 + 0.9e-5)
    assert map_tolerance([np.array([5.47e6]), np.array([1.0])]) == pytest.approx(
        1e-3 + 54.7)
    assert 12.75 <= map_tolerance([np.array([5.47e6])])
    assert 0.01 > map_tolerance([np.array([10.0])])
