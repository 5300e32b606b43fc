"""The ``dlc-platform`` command: admin (models, registry), analysts (query, status) and
experimenters (predict on their own GPU workstation, reprocess).

Each command group lives in its own module of this package; this one assembles the parser
and runs a command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dlc_assets import settings
from dlc_assets.cli import export, recordings, registry, review, runs, training, worker
from dlc_tracking.errors import DLCPlatformError


def cmd_query(args) -> None:
    from dlc_tracking.warehouse import Warehouse

    sql = args.sql if args.sql != "-" else sys.stdin.read()
    df = Warehouse(Path(args.warehouse or settings.warehouse_root())).query(sql)

    if args.csv:
        df.to_csv(sys.stdout, index=False)
    else:
        import pandas as pd

        with pd.option_context("display.max_rows", args.max_rows, "display.width", 200):
            print(null_as_null(df).to_string(index=False, max_rows=args.max_rows))


def null_as_null(df):
    """The frame with SQL NULL shown as NULL (pandas shows NaN, None, <NA> or NaT)."""
    if df.empty:
        return df
    shown = df.astype(object)
    return shown.where(df.notna(), "NULL")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dlc-platform", description=__doc__.split("\n\n")[0])
    p.add_argument("--registry", help="registry YAML (default: $DLC_PLATFORM_REGISTRY)")
    p.add_argument("--verbose", action="store_true",
                   help="show Dagster's DEBUG log and developers' warnings")
    sub = p.add_subparsers(dest="command", required=True)

    models = registry.add_models_parser(sub)
    review.add_review_parsers(models)  # models review | compare | promote
    training.add_training_parsers(models)  # models train | evaluate | merge
    registry.add_processing_parser(sub)
    recordings.add_arena_parser(sub)
    recordings.add_recordings_parser(sub)
    registry.add_registry_parser(sub)

    q = sub.add_parser("query", help="SQL on the warehouse (read-only)")
    q.add_argument("sql", help="SQL text, or - for stdin")
    q.add_argument("--csv", action="store_true")
    q.add_argument("--max-rows", type=int, default=50)
    q.add_argument("--warehouse")
    q.set_defaults(func=cmd_query)

    recordings.add_run_parsers(sub)  # status | reprocess | predict
    worker.add_worker_parser(sub)
    export.add_export_parser(sub)
    runs.add_runs_parser(sub)  # runs slots | free-slots
    return p


NOISE_WARNINGS = ("BetaWarning", "PreviewWarning", "SupersessionWarning",
                  "DuplicateTaskNameWarning")
"""Warning categories (by name) that ordinary commands do not show: they speak to the
platform's developers (Dagster's API stages, Celery's task registry), not to users."""
NOISE_MESSAGES = (r"Ignoring cached namespace",)
"""Warning messages not shown either (hdmf, when a file's cached NWB namespaces are the
ones already loaded)."""


def quiet_warnings() -> None:
    """Hide :data:`NOISE_WARNINGS` and :data:`NOISE_MESSAGES` (not with ``--verbose``)."""
    import warnings

    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if category.__name__ in NOISE_WARNINGS:
            return
        shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    for text in NOISE_MESSAGES:
        warnings.filterwarnings("ignore", message=text)


def quiet_teardown() -> None:
    """Send the interpreter's teardown output to /dev/null, after flushing what the
    command printed.

    When DuckDB 2.0 and PyTorch are both loaded (``reprocess``, ``predict``, training),
    nanobind prints a "leaked types/functions" report of DuckDB's module at exit, after the
    command has finished: noise about a binding library, not about the user's data.
    Registered as the first exit handler (so it runs last); ``--verbose`` keeps it.
    """
    import os

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    except OSError:
        pass


def main(argv: list[str] | None = None) -> None:
    import os

    # The embedded instance of scripts/start.sh, unless another is configured.
    os.environ.setdefault("DAGSTER_HOME", str(settings.PROJECT_ROOT / ".dagster_home"))
    args = build_parser().parse_args(argv)
    if not args.verbose:
        quiet_warnings()
        if argv is None:  # the console command, not a caller in Python (tests)
            import atexit

            atexit.register(quiet_teardown)  # registered first: runs last
    settings.ensure_dagster_home()
    try:
        with runs.before_run_command(args):  # dead runs' pool slots freed; waits said
            args.func(args)
    except DLCPlatformError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
