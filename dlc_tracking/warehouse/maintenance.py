"""Warehouse maintenance commands (``python -m dlc_tracking.warehouse ...``)."""


from collections.abc import Sequence
from pathlib import Path

from dlc_tracking.warehouse.store import DEFAULT_ROOT, ENV_ROOT, Warehouse, default_root


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dlc_tracking.warehouse backfill-summaries [ROOT]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m dlc_tracking.warehouse",
                                     description="Warehouse maintenance.")
    sub = parser.add_subparsers(dest="command", required=True)
    backfill = sub.add_parser("backfill-summaries", help="write the recording_summaries "
                              "row of every processed_tracking partition that has none")
    backfill.add_argument("root", nargs="?", help=f"warehouse root (default ${ENV_ROOT} or "
                          f"{DEFAULT_ROOT})")
    args = parser.parse_args(argv)
    store = Warehouse(Path(args.root) if args.root else default_root())
    done = store.backfill_summaries()
    print(f"{store.root}: summarized {len(done)} partition(s)"
          + (f": {', '.join(done)}" if done else " (none missing)"))
    return 0


