"""Markdown of a results file, for BENCHMARKS.md: ``python -m bench.report [results.json]``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.common import fmt
from bench.runner import RESULTS_DIR


def machine_markdown(machine: dict[str, Any]) -> str:
    """Bullet list of the machine facts of a run."""
    packages = ", ".join(f"{k} {v}" for k, v in machine.get("packages", {}).items())
    return "\n".join([
        f"- CPUs (`nproc`): {machine['nproc']}; CPU model (/proc/cpuinfo): "
        f"{machine['cpu_model']}; RAM: {machine['ram_gib']} GiB",
        f"- Python {machine['python']} on {machine['platform']}",
        f"- Packages: {packages}",
        f"- Load average (1, 5, 15 min) at start {machine.get('load_average_at_start')}, "
        f"at end {machine.get('load_average_at_end')}; run started {machine.get('started_at')}",
    ])


def results_markdown(results: list[dict[str, Any]]) -> str:
    """One Markdown table of every figure with its target and status."""
    lines = ["| benchmark | figure | value | unit | target | status | CPU s | note |",
             "|---|---|---:|---|---|---|---:|---|"]
    for res in results:
        for m in res.get("metrics", []):
            target = f"{m['op']} {fmt(m['target'])}" if m.get("op") else ""
            cpu = fmt(m["cpu_s"]) if m.get("cpu_s") is not None else ""
            name = m["name"].strip().replace("|", "/")
            lines.append(f"| {res['name']} | {name} | {fmt(m['value'])} | {m['unit']} | "
                         f"{target} | {m['status']} | {cpu} | {m.get('note', '')} |")
        if res.get("error"):
            lines.append(f"| {res['name']} | ERROR | | | | FAIL | | {res['error'][:120]} |")
    return "\n".join(lines)


def processes_markdown(results: list[dict[str, Any]], total_s: float) -> str:
    """Table of wall time, peak RSS and load per benchmark process."""
    lines = ["| benchmark | wall s | peak RSS MiB | load avg (1 min) before -> after |",
             "|---|---:|---:|---|"]
    for r in results:
        load = r.get("load_average_1min") or ["", ""]
        lines.append(f"| {r['name']} | {r.get('wall_s', '')} | {r.get('peak_rss_mib', '')} | "
                     f"{load[0]} -> {load[1]} |")
    lines.append(f"| **total** | **{total_s}** | | |")
    return "\n".join(lines)


def budget_markdown(budget: dict[str, Any]) -> str:
    """The command's wall time against the 15-minute budget, one line."""
    total = budget["total_wall_s"]
    status = f"**{budget['status']}**" if budget["full_suite"] else f"- ({budget['note']})"
    return (f"Time budget (whole suite on a fresh set-up): {total} s = {total / 60:.1f} min, "
            f"target <= {budget['budget_s'] / 60:.0f} min: {status}. Model: "
            f"{budget.get('model', '?')}.")


def main(argv: list[str] | None = None) -> int:
    """Print the Markdown of ``latest.json`` (or the file given)."""
    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0]) if argv else RESULTS_DIR / "latest.json"
    payload = json.loads(path.read_text())
    print(f"Command: `{payload['command']}`\n")
    print(machine_markdown(payload["machine"]) + "\n")
    print(results_markdown(payload["results"]) + "\n")
    print(processes_markdown(payload["results"], payload["total_wall_s"]))
    if payload.get("time_budget"):
        print("\n" + budget_markdown(payload["time_budget"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
