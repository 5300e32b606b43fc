"""Run the dlc-platform benchmarks, print a table and write bench/results/latest.json.

Each benchmark runs in a fresh child process.

Usage::

    .venv/bin/python -m bench [--inference] [--processing] [--warehouse] [--sensor]
                              [--orchestration] [--exports] [--imaging] [--repeats N] [--quick]
    .venv/bin/python -m bench --celery --warehouse-scale --sensor-scale   # scale-out

No benchmark flag runs the first five (the 15-minute suite); the scale-out ones
(Celery executor vs in-process, warehouse at 1,000-100,000 recordings, sensor at
100,000) run only when named (~25 min together on 2 cores).

Each benchmark runs alone in a new Python process, so its
peak RSS (``ru_maxrss`` at the end of that process) is its own; the child's output (DLC
and Dagster logs) goes to ``bench/results/<name>.log``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import format_table, machine_facts, peak_rss_mib

BENCHMARKS = ("inference", "processing", "warehouse", "sensor", "orchestration", "exports",
              "imaging")
SCALE_BENCHMARKS = {
    # name: (module, function, keyword arguments)
    "celery": ("bench.orchestration", "run_celery", {}),
    "warehouse_scale": ("bench.warehouse", "run_scale", {}),
    "sensor_scale": ("bench.sensor", "run", {"sizes": (100_000,)}),
    "model_review": ("bench.model_review", "run", {}),
    "training": ("bench.training", "run", {}),  # platform vs train_network, s/epoch
}
BUDGET_S = 15 * 60  # issue 5: the whole suite within 15 minutes on a fresh set-up
RESULTS_DIR = Path(__file__).resolve().parent / "results"
ROOT = RESULTS_DIR.parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (``--child NAME --out FILE`` is internal)."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    for name in (*BENCHMARKS, *SCALE_BENCHMARKS):
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, action="store_true",
                            help=f"run the {name} benchmark")
    parser.add_argument("--repeats", type=int, default=None,
                        help="measurements per figure (default 5 (inference: 7 pairs); 3 for "
                             "orchestration and the slowest figures)")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and few repeats: a smoke test, not for the record")
    parser.add_argument("--child", choices=(*BENCHMARKS, *SCALE_BENCHMARKS),
                        help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run_child(name: str, repeats: int | None, quick: bool, out: Path) -> None:
    """Run one benchmark in this process and write its result (with peak RSS) to ``out``."""
    start = time.perf_counter()
    module_name, function, kwargs = SCALE_BENCHMARKS.get(name, (f"bench.{name}", "run", {}))
    module = importlib.import_module(module_name)
    result = getattr(module, function)(repeats=repeats, quick=quick, **kwargs).to_dict()
    result["wall_s"] = round(time.perf_counter() - start, 2)
    result["peak_rss_mib"] = round(peak_rss_mib(), 1)
    out.write_text(json.dumps(result, indent=2, default=str))


def _spawn(name: str, args: argparse.Namespace) -> dict:
    """Run one benchmark in a fresh interpreter; its result dict (or the error)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    log = RESULTS_DIR / f"{name}.log"
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        out = Path(tmp.name)
    cmd = [sys.executable, "-m", "bench", "--child", name, "--out", str(out)]
    if args.repeats:
        cmd += ["--repeats", str(args.repeats)]
    if args.quick:
        cmd.append("--quick")
    # as the platform runs steps (dlc_assets/__init__.py, scripts/start.sh): OpenMP threads
    # wait passively, else PyTorch slows several-fold whenever another process competes
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, check=False,
                              env=env)
    elapsed = time.perf_counter() - start
    try:
        if proc.returncode != 0:
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            return {"name": name, "metrics": [], "wall_s": round(elapsed, 1),
                    "error": f"exit {proc.returncode}: " + " | ".join(tail)}
        result = json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)
    result["process_wall_s"] = round(elapsed, 1)
    result["omp_wait_policy"] = env["OMP_WAIT_POLICY"]
    result["load_average_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return result


def _model_line() -> str:
    """Which model the inference and orchestration benchmarks will use (no build here)."""
    from bench.model import CONFIG_ENV, KIND_GIVEN, KIND_SPEED, KIND_TINY, cached_speed_config
    from dlc_tracking.synthetic.tiny_model import cached_config_path

    if os.environ.get(CONFIG_ENV):
        return f"{KIND_GIVEN}: {os.environ[CONFIG_ENV]}"
    tiny = cached_config_path("pytorch")
    if tiny is not None:
        return f"{KIND_TINY}: {tiny}"
    speed = cached_speed_config()
    if speed is not None:
        return f"{KIND_SPEED}, cached: {speed}"
    return (f"{KIND_SPEED}: no cached tiny model (training it takes 8-9 min), the "
            "speed model is built first (~1 min)")


def time_budget(total_s: float, args: argparse.Namespace, selected: list[str],
                model: str) -> dict:
    """The command's wall time against the 15-minute budget (only the full suite counts).

    ``model`` says whether the model was cached or built in this run (a fresh set-up
    builds the speed model; its build time is part of the total).
    """
    full = set(selected) == set(BENCHMARKS) and not args.quick and args.repeats is None
    ok = total_s <= BUDGET_S
    return {"budget_s": BUDGET_S, "total_wall_s": round(total_s, 1),
            "status": ("PASS" if ok else "MISS") if full else "-",
            "full_suite": full, "model": model,
            "note": "" if full else "not the full suite at default sizes: the budget "
                                     "applies to `python -m bench` with no flags"}


def _summary(results: list[dict], budget: dict) -> str:
    lines = ["", "per benchmark (each in a fresh process):"]
    for r in results:
        rss = f"peak RSS {r['peak_rss_mib']:.0f} MiB" if "peak_rss_mib" in r else "failed"
        load = r.get("load_average_1min")
        load_txt = f", load avg {load[0]} -> {load[1]}" if load else ""
        wall = r.get("process_wall_s", r.get("wall_s", 0))
        lines.append(f"  {r['name']:<14} {wall:7.1f} s  {rss}{load_txt}")
    total = budget["total_wall_s"]
    lines.append(f"total wall time {total:.1f} s ({total / 60:.1f} min), everything included")
    verdict = budget["status"] if budget["full_suite"] else f"- ({budget['note']})"
    lines.append(f"time budget (whole suite on a fresh set-up): {total / 60:.1f} min, target "
                 f"<= {budget['budget_s'] / 60:.0f} min: {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m bench``; returns the exit status."""
    start = time.perf_counter()
    args = parse_args(argv)
    if args.child:
        run_child(args.child, args.repeats, args.quick, args.out)
        return 0
    selected = ([n for n in (*BENCHMARKS, *SCALE_BENCHMARKS) if getattr(args, n)]
                or list(BENCHMARKS))
    facts = machine_facts()
    print(f"[bench] {facts['nproc']} CPUs ({facts['cpu_model']}), {facts['ram_gib']} GiB, "
          f"Python {facts['python']}, load average {facts['load_average_at_start']}"
          + (" -- QUICK MODE: reduced sizes, not comparable to the targets" if args.quick
             else ""), flush=True)
    model = _model_line()
    print(f"[bench] model for inference and orchestration: {model}", flush=True)
    results = []
    for name in selected:
        print(f"[bench] {name} ...", flush=True)
        result = _spawn(name, args)
        results.append(result)
        status = "FAILED: " + result["error"] if "error" in result else "done"
        print(f"[bench] {name} {status} in {result.get('process_wall_s', result['wall_s'])} s",
              flush=True)
        print(format_table([result]), flush=True)
    total = time.perf_counter() - start
    budget = time_budget(total, args, selected, model)
    print("\n" + format_table(results))
    print(_summary(results, budget))
    facts["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    payload = {"command": " ".join([Path(sys.executable).name, "-m", "bench", *sys.argv[1:]]),
               "quick": args.quick, "repeats": args.repeats, "machine": facts,
               "total_wall_s": round(total, 1), "time_budget": budget, "results": results}
    (RESULTS_DIR / "latest.json").write_text(json.dumps(payload, indent=2, default=str))
    print(f"[bench] wrote {RESULTS_DIR / 'latest.json'}")
    return 1 if any("error" in r for r in results) else 0
