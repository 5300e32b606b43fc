"""``dlc-platform models review | compare | promote``: where a model fails across the
archive, how a new version compares, and rolling it out (docs/models.md)."""

from __future__ import annotations

import sys
from pathlib import Path

from dlc_assets import settings
from dlc_tracking.errors import DLCPlatformError


def _store(args):
    from dlc_tracking.warehouse import Warehouse

    return Warehouse(Path(getattr(args, "warehouse", None) or settings.warehouse_root()))


def _registry(args):
    from dlc_tracking.registry.registry_file import load_registry

    return load_registry(Path(args.registry or settings.registry_path()))


def _bar(total: int, desc: str, unit: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=True)


# ----------------------------------------------------------------------------- review


def cmd_review(args) -> None:
    from dlc_tracking.model_review.flows import review_model_frames

    def selected(selection) -> None:
        frames = selection.frames
        print(f"{args.name}: {len(selection.recordings)} recording(s) with flagged frames; "
              f"picked {len(frames)} frame(s) from {frames['recording_id'].nunique()} of "
              "them", file=sys.stderr)
        if args.dry_run:
            _print_selection(selection)
        else:
            print("writing (imports DeepLabCut to add the videos, ~10-30 s) ...",
                  file=sys.stderr)
            bar["bar"] = _bar(len(frames), f"extract {args.name}", "frame")

    bar: dict = {}
    done = {"n": 0}

    def progress(n: int) -> None:
        bar["bar"].update(n - done["n"])
        done["n"] = n

    try:
        review = review_model_frames(_store(args), _registry(args), args.name, args.n,
                                     out=args.out, max_share=args.max_share,
                                     recordings=args.recordings, dry_run=args.dry_run,
                                     on_selected=selected, progress=progress)
    finally:
        if "bar" in bar:
            bar["bar"].close()
    if args.dry_run:
        return
    result, out = review.extraction, review.out
    written = result.images
    for rid, group in written.groupby("recording_id"):
        print(f"{rid:50s} {len(group):4d} frame(s) -> {Path(group['image'].iloc[0]).parent}")
    for rid, reason in sorted(result.skipped.items()):
        print(f"skipped {rid}: {reason}")
    for note in result.notes:
        print(f"note: {note}")
    print(f"{len(written)} frame(s) written ({int(written['new'].sum())} new) into "
          f"{out.parent / 'labeled-data'}; machine labels: "
          f"{len(result.machine_files)} machinelabels-iter*.h5 file(s).")
    print("Next: refine them in DeepLabCut's GUI (napari-deeplabcut: open a labeled-data "
          "folder, or `deeplabcut.refine_labels(config)`), save, then "
          f"`dlc-platform models merge {review.model.name}` (docs/models.md).")


def _print_selection(selection) -> None:
    for row in selection.frames.itertuples(index=False):
        who = f" ({row.individuals})" if isinstance(row.individuals, str) else ""
        print(f"{row.recording_id:50s} frame {row.frame:8d}  t={row.time_s:9.2f} s  "
              f"score {row.score:.3f}  {row.reason}{who}")
    for rid, reason in sorted(selection.skipped.items()):
        print(f"skipped {rid}: {reason}")


# ----------------------------------------------------------------------------- compare


def inference_resource(device: str | None = None):
    """The platform's inference resource, configured from the environment."""
    from resources import DLCInference

    return DLCInference(device=device or settings.device(), batch_size=settings.batch_size(),
                        engine=settings.inference_engine(),
                        precision=settings.inference_precision(), work_dir=settings.work_dir())


def cmd_compare(args) -> None:
    import dagster as dg

    from dlc_tracking.model_review.comparison import compare_models, plan_comparison

    registry, store = _registry(args), _store(args)
    resource = inference_resource(args.device)
    shown: dict = {}

    class _OnBar:
        """The inference resource's progress lines ("<rid>: DLC inference 40/120 frames
        (33%), 12.5 frames/s"), shown beside the recordings bar while a model runs."""

        @staticmethod
        def info(message: str) -> None:
            if "bar" in shown:
                shown["bar"].set_postfix_str(message.split(": ", 1)[-1], refresh=True)

    def infer(model, video, rid):
        if "bar" in shown:
            shown["bar"].set_postfix_str(f"running {model.name} on {rid}", refresh=True)
        result = resource.analyze(model, video, rid, log=_OnBar)
        if "bar" in shown:
            shown["bar"].set_postfix_str(f"{model.name}: {result.frames_per_s:.1f} frames/s",
                                         refresh=True)
        return result.h5_path

    sample = None if args.all or args.recordings else args.sample
    plan = plan_comparison(store, registry, args.old, args.new, recordings=args.recordings,
                           sample=sample)
    total = len(plan.table)
    print(f"compare {args.old} -> {args.new}: {total} recording(s), {plan.both} with both "
          "models' predictions stored (no inference for those)"
          + (f"; {plan.unreachable} left out: the missing model cannot run here"
             if plan.unreachable else ""))
    with _bar(total, f"compare {args.old} -> {args.new}", "recording") as bar:
        shown["bar"] = bar
        result = compare_models(store, registry, args.old, args.new, infer,
                                recordings=args.recordings, sample=sample,
                                threshold_px=args.threshold_px,
                                progress=lambda rid: bar.update(1))
    agreement = result.agreement
    for rid, reason in sorted(result.skipped.items()):
        print(f"skipped {rid}: {reason}")
    if agreement.empty:
        raise DLCPlatformError(f"no recording could be compared by {args.old!r} and "
                               f"{args.new!r}.")
    overall = agreement[agreement["body_part"] == "all"]
    cols = ["recording_id", "median_distance_px", "p95_distance_px",
            "fraction_above_threshold", "low_likelihood_change", "distance_travelled_change"]
    print(overall[cols].round(3).to_string(index=False))
    instance = dg.DagsterInstance.get()
    from dlc_assets.assets.model_review import report_agreement

    n = report_agreement(instance, store, args.old, args.new, agreement)
    print(f"{len(overall)} recording(s) compared ({len(result.inferred)} inferred now); "
          f"model_agreement written ({n} partition(s) reported to Dagster). Query: "
          f"dlc-platform query \"SELECT * FROM model_agreement WHERE new_model = "
          f"'{args.new}'\"")


# ----------------------------------------------------------------------------- promote


def run_now(instance, recordings: list[str], tags: dict[str, str], *,
            verbose: bool = False) -> list[str]:
    """Re-run the recordings in this process (no daemon needed); returns the failed.
    Dagster's DEBUG log only with ``verbose``."""
    from dlc_assets.cli.common import job_run_config
    from dlc_assets.definitions import build_definitions
    from dlc_assets.partitions import recordings_partitions

    job = build_definitions().resolve_job_def("process_recording")
    failed = []
    with _bar(len(recordings), "re-run", "recording") as bar:
        for rid in recordings:
            if not instance.has_dynamic_partition(recordings_partitions.name, rid):
                instance.add_dynamic_partitions(recordings_partitions.name, [rid])
            result = job.execute_in_process(partition_key=rid, instance=instance,
                                            raise_on_error=False, tags=tags,
                                            run_config=job_run_config(verbose))
            if not result.success:
                failed.append(rid)
            bar.update(1)
    return failed


def print_kept(plan) -> None:
    """The recordings of OLD a promotion leaves on OLD, with the reason."""
    for rid, reason in sorted(plan.kept.items()):
        print(f"not re-run {rid}: {reason}")


def cmd_promote(args) -> None:
    import dagster as dg

    from dlc_assets.backfills import PROMOTION_TAG, launch_backfill
    from dlc_assets.definitions import build_definitions
    from dlc_tracking.model_review.flows import promote_model

    registry, store = _registry(args), _store(args)
    bar: dict = {}

    def planned(plan) -> None:
        print(f"{plan.new} replaces {plan.old}: {len(plan.recordings)} recording(s) to "
              "re-run" + (f", {len(plan.kept)} left on {plan.old}" if plan.kept else "")
              + (f"; pairs {plan.new} with {list(plan.pair_with)}" if plan.pair_with
                 else "") + f"; evaluation: {plan.evaluation}"
              + (" (FORCED past the threshold)" if plan.forced else ""), file=sys.stderr)
        print_kept(plan)
        if args.dry_run:
            print("\n".join(plan.recordings))
        elif plan.recordings:
            bar["bar"] = _bar(len(plan.recordings), f"keep {plan.old} rows", "recording")

    try:
        plan = promote_model(store, registry, args.new, args.replaces, force=args.force,
                             dry_run=args.dry_run, on_planned=planned,
                             progress=lambda rid: bar["bar"].update(1))
    finally:
        if "bar" in bar:
            bar["bar"].close()
    if args.dry_run:
        return
    print(f"registry {registry.path}: promotions.{plan.old} -> {plan.new}")
    if not plan.recordings:
        print("no recording's predictions were inferred with the old version: nothing to "
              "re-run.")
        return
    instance = dg.DagsterInstance.get()
    tags = {PROMOTION_TAG: f"{plan.old}->{plan.new}"}
    if args.run_now:
        failed = run_now(instance, list(plan.recordings), tags,
                         verbose=getattr(args, "verbose", False))
        print(f"re-ran {len(plan.recordings) - len(failed)} recording(s) with {plan.new}"
              + (f"; FAILED: {failed} (`dlc-platform status RECORDING`)" if failed else ""))
        if failed:
            raise SystemExit(1)
        return
    backfill_id = launch_backfill(instance, build_definitions().resolve_asset_graph(),
                                  list(plan.recordings), tags, f"promote {plan.new}")
    print(f"backfill {backfill_id}: {len(plan.recordings)} recording(s) with {plan.new} "
          "(the daemon runs it; UI: Overview -> Backfills). The old version's predictions, "
          "processed tracking and summaries are kept (model_predictions, "
          "model_processed_tracking, model_recording_summaries).")


# ----------------------------------------------------------------------------- parser


def add_review_parsers(models) -> None:
    """Add review, compare and promote to the ``models`` subcommands."""
    rv = models.add_parser("review", help="pick the N most informative frames of a model "
                           "across its recordings and write them into its DLC project "
                           "for refinement")
    rv.add_argument("name")
    rv.add_argument("--n", type=int, default=50, help="frames to pick (default 50)")
    rv.add_argument("--out", help="config.yaml (or folder) of the DLC project to write into "
                    "(default: the model's own project)")
    rv.add_argument("--max-share", type=float, default=0.5,
                    help="largest share of the frames one recording may give (default 0.5)")
    rv.add_argument("--recordings", nargs="+", metavar="RECORDING", help="only these")
    rv.add_argument("--dry-run", action="store_true", help="list the picks, write nothing")
    rv.add_argument("--warehouse")
    rv.set_defaults(func=cmd_review)

    cp = models.add_parser("compare", help="compare OLD's and NEW's predictions of the same "
                           "recordings (stored ones wherever both exist, running a model "
                           "only where its predictions are missing) and write "
                           "model_agreement")
    cp.add_argument("old")
    cp.add_argument("new")
    cp.add_argument("--recordings", nargs="+", metavar="RECORDING",
                    help="exactly these recordings")
    cp.add_argument("--sample", type=int, default=20,
                    help="recordings to compare (default 20; the same ones each time; "
                    "those with both models' predictions first)")
    cp.add_argument("--all", action="store_true",
                    help="every recording with predictions by OLD or NEW")
    cp.add_argument("--threshold-px", type=float, default=10.0,
                    help="distance counted as a disagreement (default 10 px)")
    cp.add_argument("--device", help="auto | cpu | cuda:N (default $DLC_PLATFORM_DEVICE)")
    cp.add_argument("--warehouse")
    cp.set_defaults(func=cmd_compare)

    pm = models.add_parser("promote", help="make NEW the model of OLD's recordings and "
                           "re-run exactly those (a Dagster backfill)")
    pm.add_argument("new")
    pm.add_argument("--replaces", metavar="OLD",
                    help="the version NEW replaces (default: the one it was compared with)")
    pm.add_argument("--run-now", action="store_true",
                    help="re-run the recordings in this process instead of a backfill")
    pm.add_argument("--dry-run", action="store_true",
                    help="list the recordings it would re-run, change nothing")
    pm.add_argument("--force", action="store_true",
                    help="promote although NEW failed its evaluation threshold "
                    "(test_error_within_threshold)")
    pm.add_argument("--warehouse")
    pm.set_defaults(func=cmd_promote)
