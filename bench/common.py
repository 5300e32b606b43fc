"""Shared pieces of the benchmarks: metrics with targets, repeated and alternated timing,
peak memory, machine facts and the printed table."""

from __future__ import annotations

import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

#: Packages whose versions go into the results and BENCHMARKS.md.
PACKAGES = ("deeplabcut", "torch", "dagster", "duckdb", "pyarrow", "pandas", "numpy", "scipy",
            "opencv-python-headless", "opencv-python", "PyYAML")

Trial = Callable[[], Mapping[str, float]]
"""One measurement: runs the work once and returns named figures (seconds, ...)."""


@dataclass
class Metric:
    """One reported figure, with its target when it has one.

    Attributes
    ----------
    name : str
        What was measured, in words.
    value : float
        The figure (a median over repeats, unless ``note`` says otherwise).
    unit : str
        Unit of ``value``.
    op : str or None
        ``">="`` or ``"<="`` when the figure has a target, else None.
    target : float or None
        The target value.
    note : str
        Short remark printed beside the figure.
    samples : list of float
        Every repeat's value, for the JSON.
    cpu_s : float or None
        Median CPU seconds (all threads of the process) of the measured work, for wall
        times: less sensitive than wall time to other processes competing for the cores.
    """

    name: str
    value: float
    unit: str
    op: str | None = None
    target: float | None = None
    note: str = ""
    samples: list[float] = field(default_factory=list)
    cpu_s: float | None = None

    @property
    def status(self) -> str:
        """``PASS``/``MISS`` against the target, ``-`` when there is none."""
        if self.op is None or self.target is None:
            return "-"
        if self.value != self.value:  # NaN
            return "MISS"
        ok = self.value >= self.target if self.op == ">=" else self.value <= self.target
        return "PASS" if ok else "MISS"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict including the status."""
        return {**asdict(self), "status": self.status}


@dataclass
class BenchResult:
    """What one benchmark reports.

    Attributes
    ----------
    name : str
        Benchmark name (``inference``, ``processing``...).
    metrics : list of Metric
        The figures.
    details : dict
        Sizes, settings and anything else worth keeping in the JSON.
    """

    name: str
    metrics: list[Metric] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, *args: Any, **kwargs: Any) -> Metric:
        """Append ``Metric(*args, **kwargs)`` and return it."""
        metric = Metric(*args, **kwargs)
        self.metrics.append(metric)
        return metric

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"name": self.name, "metrics": [m.to_dict() for m in self.metrics],
                "details": self.details}


def median(values: Sequence[float]) -> float:
    """Median of the finite values (NaN when there is none)."""
    finite = [v for v in values if v == v]
    return statistics.median(finite) if finite else float("nan")


def _call(trial: Trial) -> dict[str, float]:
    """One trial's figures, plus ``cpu_s`` (CPU seconds of this process) unless given."""
    cpu = time.process_time()
    figures = dict(trial())
    figures.setdefault("cpu_s", time.process_time() - cpu)
    return figures


def repeat(trial: Trial, repeats: int) -> dict[str, list[float]]:
    """Run ``trial`` ``repeats`` times and collect each figure it returns.

    Parameters
    ----------
    trial : callable
        Returns ``{figure name: value}`` for one run.
    repeats : int
        Number of runs.

    Returns
    -------
    dict
        ``{figure name: [value per run]}``, with ``cpu_s`` (see :func:`_call`).
    """
    out: dict[str, list[float]] = {}
    for _ in range(repeats):
        for key, value in _call(trial).items():
            out.setdefault(key, []).append(float(value))
    return out


def alternate(trials: Mapping[str, Trial], repeats: int) -> dict[str, dict[str, list[float]]]:
    """Run peers in turns (A B, B A, A B, ...) so drift and warm caches hit both alike.

    Parameters
    ----------
    trials : mapping
        ``{peer name: trial}``.
    repeats : int
        Runs of each peer.

    Returns
    -------
    dict
        ``{peer name: {figure name: [value per run]}}``, with ``cpu_s``.
    """
    names = list(trials)
    out: dict[str, dict[str, list[float]]] = {name: {} for name in names}
    for i in range(repeats):
        for name in names if i % 2 == 0 else reversed(names):
            for key, value in _call(trials[name]).items():
                out[name].setdefault(key, []).append(float(value))
    return out


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall seconds of ``fn()`` and its return value."""
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def timed_cpu(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall seconds, CPU seconds (all threads of this process) and the value of ``fn()``."""
    cpu = time.process_time()
    wall, value = timed(fn)
    return wall, time.process_time() - cpu, value


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return float("nan")


def _versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def machine_facts() -> dict[str, Any]:
    """nproc, CPU model, RAM, GPU (if torch sees one), Python, package versions, load.

    Returns
    -------
    dict
        JSON-ready facts recorded beside the figures.
    """
    facts: dict[str, Any] = {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "ram_gib": _ram_gib(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": _versions(),
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    return facts


def fmt(value: float | None) -> str:
    """A figure with a sensible number of digits (``1.23 M`` for millions)."""
    if value is None:
        return ""
    if value != value:
        return "nan"
    magnitude = abs(value)
    if magnitude >= 1e6:
        return f"{value / 1e6:.2f} M"
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.3f}"
    return f"{value:.4f}"


def format_table(results: Sequence[Mapping[str, Any]]) -> str:
    """Plain-text table of every metric: benchmark, figure, value, target, status.

    Parameters
    ----------
    results : sequence of dict
        ``BenchResult.to_dict()`` outputs (as read back from the children).

    Returns
    -------
    str
        The table.
    """
    header = ("benchmark", "figure", "value", "unit", "target", "status", "cpu s", "note")
    rows = [header]
    for res in results:
        for m in res.get("metrics", []):
            target = f"{m['op']} {fmt(m['target'])}" if m.get("op") else ""
            cpu = fmt(m["cpu_s"]) if m.get("cpu_s") is not None else ""
            rows.append((res["name"], m["name"], fmt(m["value"]), m["unit"], target,
                         m["status"], cpu, m.get("note", "")))
        if res.get("error"):
            rows.append((res["name"], "ERROR", "", "", "", "FAIL", "", res["error"][:80]))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate(rows):
        cells = [str(c).rjust(widths[i]) if i in (2, 6) else str(c).ljust(widths[i])
                 for i, c in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
