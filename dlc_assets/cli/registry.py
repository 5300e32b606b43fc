"""`dlc-platform models add|list|show|pair|unpair`, `processing`, `registry validate` and
`body-parts`: what administrators do to the registry (docs/registry.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dlc_assets.cli.common import registry_path
from dlc_tracking.errors import DLCPlatformError


def cmd_models_add(args) -> None:
    from dlc_tracking.registry.editing import add_ingest_only_model, add_model

    name_map = dict(m.split("=", 1) for m in args.map or [])
    if args.from_outputs or args.ingest_only:
        if not args.from_outputs and not args.config:
            raise DLCPlatformError("--ingest-only needs --config CONFIG.yaml (with --scorer), "
                                   "or use --from-outputs FILE.h5|FILE.csv|FILE.slp.")
        entry = add_ingest_only_model(
            registry_path(args), args.name,
            outputs_file=Path(args.from_outputs) if args.from_outputs else None,
            config_path=Path(args.config) if args.config else None, scorer=args.scorer,
            shuffle=args.shuffle, trainingsetindex=args.trainingsetindex or 0,
            description=args.description or "", body_part_map=name_map, pair_with=args.pair)
        print(f"registered {entry.name} (ingest-only): {entry.engine}, scorer {entry.scorer}, "
              f"body parts {entry.canonical_body_parts}; its outputs are ingested, it never "
              "runs inference")
        return
    if not args.config:
        raise DLCPlatformError("give --config PROJECT/config.yaml (a trained model), or "
                               "--from-outputs FILE / --ingest-only for a model known only by "
                               "its outputs.")
    snapshot = args.snapshotindex if args.snapshotindex == "best" else int(args.snapshotindex)
    print(f"Inspecting {args.config} (imports DeepLabCut, ~10-30 s) ...", file=sys.stderr)
    entry = add_model(registry_path(args), args.name, Path(args.config),
                      shuffle=1 if args.shuffle is None else args.shuffle,
                      trainingsetindex=args.trainingsetindex or 0, snapshotindex=snapshot,
                      description=args.description or "", body_part_map=name_map,
                      project_as=args.project_as, pair_with=args.pair)
    print(f"registered {entry.name}: {entry.engine}, scorer {entry.scorer}, body parts "
          f"{entry.canonical_body_parts}, snapshot {entry.derived['snapshot']}")


def cmd_models_pair(args) -> None:
    from dlc_tracking.registry.editing import pair, unpair

    (unpair if args.models_command == "unpair" else pair)(registry_path(args), args.model,
                                                           args.method)
    print(f"{'removed' if args.models_command == 'unpair' else 'accepted'} pairing "
          f"{args.model} x {args.method}")


def cmd_processing_list(args) -> None:
    from dlc_tracking.registry.registry_file import load_registry

    registry = load_registry(registry_path(args))
    defaults = {v: k for k, v in registry.default_processing.items()}
    for name, params in registry.processing.items():
        note = f"default of {defaults[name]}" if name in defaults else ""
        print(f"{name:24s} {params.param_hash}  {note}")


def cmd_processing_show(args) -> None:
    import yaml

    from dlc_tracking.registry.registry_file import load_registry

    registry = load_registry(registry_path(args))
    params = registry.processing_params(args.name)
    # the social: section of multi-animal recordings (docs/multi-animal.md, section 6)
    social = {k: v for k, v in registry.social_params(args.name).to_dict().items()
              if k != "name"}
    print(yaml.safe_dump({**params.to_dict(), "social": social}, sort_keys=False))


def cmd_models_list(args) -> None:
    from dlc_tracking.registry.registry_file import load_registry

    registry = load_registry(registry_path(args))
    for m in registry.models.values():
        print(f"{m.name:24s} {m.engine:10s} {m.scorer:60s} {','.join(m.canonical_body_parts)}")
    if not registry.models:
        print("(no models registered)")


def cmd_models_show(args) -> None:
    import yaml

    from dlc_tracking.registry.registry_file import load_registry

    registry = load_registry(registry_path(args))
    m = registry.model(args.name)
    methods = [method for model, method in registry.pairings if model == m.name]
    shown = {**m.row(), "body_part_map": m.body_part_map, "paired_methods": methods}
    if m.multi_animal is not None:  # individuals, unique body parts, identity, tracker
        shown["multi_animal"] = m.multi_animal
    print(yaml.safe_dump(shown, sort_keys=False, allow_unicode=True))
    from dlc_assets.cli.training import print_model_lifecycle
    print_model_lifecycle(registry, m.name)  # training:, trained:, evaluation (docs/models.md)


def cmd_registry_validate(args) -> None:
    from dlc_tracking.registry.registry_file import load_registry

    registry = load_registry(registry_path(args))
    problems = registry.validate(check_projects=not args.no_projects)
    for p in problems:
        print(f"PROBLEM: {p}")
    for m in registry.models.values():
        if m.ingest_only and not any(f"model {m.name!r}" in p for p in problems):
            print(f"{m.name}: valid as ingest-only (scorer {m.scorer}; outputs are ingested, "
                  "no inference)")
    print(f"{registry.path}: {len(registry.models)} model(s), {len(registry.methods)} method(s), "
          f"{len(registry.pairings)} pairing(s): {'INVALID' if problems else 'valid'}")
    if problems:
        raise SystemExit(1)


def cmd_body_parts(args) -> None:
    from dlc_tracking.registry.registry_file import load_registry

    for name, desc in load_registry(registry_path(args)).body_parts.items():
        print(f"{name:16s} {desc}")


def add_models_parser(sub) -> argparse._SubParsersAction:
    """`models add|list|show|pair|unpair`; returns the `models` sub-commands so the
    training and review groups add theirs."""
    models = sub.add_parser("models", help="registered DLC models").add_subparsers(
        dest="models_command", required=True)
    add = models.add_parser("add", help="register a model from its DLC project, or from its "
                            "outputs only (ingest-only)")
    add.add_argument("--name", required=True, help="lab-friendly model name")
    add.add_argument("--config", help="the DLC project's config.yaml")
    add.add_argument("--ingest-only", action="store_true",
                     help="register from config.yaml without model folders (with --scorer)")
    add.add_argument("--from-outputs", metavar="FILE",
                     help="register from a DLC output .h5/.csv, or a SLEAP .slp / analysis "
                     ".h5 (scorer and body parts read from it); implies --ingest-only")
    add.add_argument("--scorer", help="the scorer of an ingest-only model's outputs")
    add.add_argument("--shuffle", type=int, default=None, help="default 1 (ingest-only: "
                     "parsed from the scorer)")
    add.add_argument("--trainingsetindex", type=int, default=None)
    add.add_argument("--snapshotindex", default="-1", help="-1 = last; 'best' (PyTorch)")
    add.add_argument("--description", default="")
    add.add_argument("--map", action="append", metavar="DLC_NAME=CANONICAL",
                     help="map a body-part name of the model onto a canonical name")
    add.add_argument("--pair", action="append", metavar="METHOD",
                     help="accept the pairing of this model with a method")
    add.add_argument("--project-as", help="text stored as project: (e.g. with ${VARS})")
    add.set_defaults(func=cmd_models_add)
    models.add_parser("list").set_defaults(func=cmd_models_list)
    show = models.add_parser("show")
    show.add_argument("name")
    show.set_defaults(func=cmd_models_show)
    for verb, text in (("pair", "accept a model x method pairing"),
                       ("unpair", "remove a model x method pairing")):
        pp = models.add_parser(verb, help=text)
        pp.add_argument("model")
        pp.add_argument("method")
        pp.set_defaults(func=cmd_models_pair)
    return models


def add_processing_parser(sub) -> None:
    """`processing list|show`: the processing parameter sets."""
    proc = sub.add_parser("processing", help="processing parameter sets").add_subparsers(
        dest="processing_command", required=True)
    proc.add_parser("list", help="the sets of the registry").set_defaults(
        func=cmd_processing_list)
    ps = proc.add_parser("show", help="every key of one set (docs/processing.md)")
    ps.add_argument("name")
    ps.set_defaults(func=cmd_processing_show)


def add_registry_parser(sub) -> None:
    """`registry validate` and `body-parts`."""
    reg = sub.add_parser("registry").add_subparsers(dest="registry_command", required=True)
    val = reg.add_parser("validate", help="check the file and every model's project")
    val.add_argument("--no-projects", action="store_true", help="skip the DLC project checks")
    val.set_defaults(func=cmd_registry_validate)
    sub.add_parser("body-parts", help="the canonical vocabulary").set_defaults(func=cmd_body_parts)
