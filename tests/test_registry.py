"""Model registry, body-part vocabulary, methods and pairings, with real DLC projects."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from dlc_tracking.errors import ModelNotAvailableError, RegistryError
from dlc_tracking.registry.body_parts import canonical_names
from dlc_tracking.registry.dlc_projects import inspect_project
from dlc_tracking.registry.editing import add_model
from dlc_tracking.registry.registry_file import load_registry

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("alias", ["leftear", "LEFTEAR", "Left_Ear", "Left Ear", "l_ear"])
def test_alias_refused_with_suggestion(alias):
    with pytest.raises(RegistryError) as err:
        canonical_names([alias, "right_ear"], where="models.x")
    assert "'left_ear'" in str(err.value) and "body_part_map" in str(err.value)


def test_map_makes_aliases_canonical_and_checks_targets():
    assert canonical_names(["snout", "leftear"], {"snout": "nose", "leftear": "left_ear"}) == [
        "nose", "left_ear"]
    with pytest.raises(RegistryError, match="not a canonical body part"):
        canonical_names(["snout"], {"snout": "noze"})
    with pytest.raises(RegistryError, match="does not track"):
        canonical_names(["nose"], {"snout": "nose"})


def test_inspect_pytorch_project(tiny_pytorch_config):
    model = inspect_project(tiny_pytorch_config)
    cfg = yaml.safe_load(tiny_pytorch_config.read_text())
    assert model.identity.engine == "pytorch"
    assert model.identity.task == cfg["Task"] and model.identity.date == str(cfg["date"])
    assert model.training_fraction == cfg["TrainingFraction"][0]
    assert model.scorer.startswith("DLC_") and f"{cfg['Task']}{cfg['date']}shuffle1" in model.scorer
    assert "_snapshot_" in model.scorer
    assert model.snapshot.endswith(".pt") and "best" not in model.snapshot
    assert model.body_parts == ["nose", "left_ear", "right_ear", "tail_base"]


def test_inspect_tensorflow_project(tiny_tf_config):
    model = inspect_project(tiny_tf_config)
    assert model.identity.engine == "tensorflow"
    assert model.model_folder.startswith("dlc-models/")
    assert model.scorer.startswith("DLC_") and "shuffle1_" in model.scorer
    assert model.body_parts == ["snout", "leftear", "rightear", "tailbase"]


def test_registry_holds_both_models(legacy_registry_path):
    registry = load_registry(legacy_registry_path)
    assert registry.model("tiny_openfield").engine == "pytorch"
    legacy = registry.model("tiny_legacy")
    assert legacy.engine == "tensorflow"
    assert legacy.canonical_body_parts == ["nose", "left_ear", "right_ear", "tail_base"]
    assert registry.resolve_assignment("openfield", None, None) == ("tiny_openfield",
                                                                     "two_ears_loose")
    assert registry.validate(check_projects=True) == []


def test_cli_registers_legacy_model_without_code(tmp_path, tiny_tf_config):
    from dlc_assets.cli.main import main

    path = tmp_path / "registry.yaml"
    shutil.copy(ROOT / "registry" / "registry.yaml", path)
    with pytest.raises(SystemExit) as refused:
        main(["--registry", str(path), "models", "add", "--name", "legacy",
              "--config", str(tiny_tf_config)])
    assert refused.value.code == 2
    assert "legacy" not in (yaml.safe_load(path.read_text()).get("models") or {})
    main(["--registry", str(path), "models", "add", "--name", "legacy", "--config",
          str(tiny_tf_config), "--map", "snout=nose", "--map", "leftear=left_ear",
          "--map", "rightear=right_ear", "--map", "tailbase=tail_base", "--pair", "two_ears"])
    registry = load_registry(path)
    assert registry.model("legacy").canonical_body_parts == [
        "nose", "left_ear", "right_ear", "tail_base"]
    assert ("legacy", "two_ears") in registry.pairings


@pytest.fixture
def project_copy(tmp_path, tiny_pytorch_config) -> Path:
    dst = tmp_path / "project"
    shutil.copytree(tiny_pytorch_config.parent, dst, symlinks=True)
    cfg = yaml.safe_load((dst / "config.yaml").read_text())
    cfg["project_path"] = str(dst)
    (dst / "config.yaml").write_text(yaml.safe_dump(cfg))
    return dst / "config.yaml"


def _edit_config(config: Path, **changes) -> None:
    cfg = yaml.safe_load(config.read_text())
    for key, value in changes.items():
        if value is None:
            cfg.pop(key, None)
        else:
            cfg[key] = value
    config.write_text(yaml.safe_dump(cfg))


def test_missing_config(tmp_path):
    with pytest.raises(RegistryError, match="config not found"):
        inspect_project(tmp_path / "config.yaml", with_scorer=False)


@pytest.mark.parametrize("key", ["Task", "date", "iteration", "TrainingFraction", "bodyparts"])
def test_config_lacking_a_key(project_copy, key):
    _edit_config(project_copy, **{key: None})
    with pytest.raises(RegistryError, match=key):
        inspect_project(project_copy, with_scorer=False)


def test_bad_indices(project_copy):
    with pytest.raises(RegistryError, match="trainingsetindex 3 is out of range"):
        inspect_project(project_copy, trainingsetindex=3, with_scorer=False)
    with pytest.raises(RegistryError, match="shuffle 7"):
        inspect_project(project_copy, shuffle=7, with_scorer=False)
    with pytest.raises(RegistryError, match="snapshotindex 5 is not present"):
        inspect_project(project_copy, snapshotindex=5, with_scorer=False)


def test_duplicates_refused(tmp_path, project_copy):
    path = tmp_path / "registry.yaml"
    shutil.copy(ROOT / "registry" / "registry.yaml", path)
    add_model(path, "a", project_copy)
    with pytest.raises(RegistryError, match="already registered"):
        add_model(path, "a", project_copy)
    with pytest.raises(RegistryError, match="same identity"):
        add_model(path, "b", project_copy)
    assert list(load_registry(path).models) == ["a"]  # file untouched by refusals


def test_project_moved_after_registration(tmp_path, project_copy):
    path = tmp_path / "registry.yaml"
    shutil.copy(ROOT / "registry" / "registry.yaml", path)
    add_model(path, "a", project_copy)
    shutil.move(str(project_copy.parent), str(tmp_path / "elsewhere"))
    registry = load_registry(path)  # loading does not need the project
    problems = registry.validate(check_projects=True)
    assert problems and "not on this worker" in problems[0]
    with pytest.raises(ModelNotAvailableError, match="config.yaml not found"):
        registry.model("a").check_available()


def test_snapshot_deleted_after_registration(tmp_path, project_copy):
    path = tmp_path / "registry.yaml"
    shutil.copy(ROOT / "registry" / "registry.yaml", path)
    entry = add_model(path, "a", project_copy)
    (project_copy.parent / entry.derived["snapshot"]).unlink()
    with pytest.raises(ModelNotAvailableError, match="snapshot files missing"):
        load_registry(path).model("a").check_available()


def _registry_with(tmp_path, registry_path, **changes) -> Path:
    raw = yaml.safe_load(registry_path.read_text())
    raw.update(changes)
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_pairing_needs_the_methods_body_parts(tmp_path, registry_path):
    raw = yaml.safe_load(registry_path.read_text())
    methods = {**raw.get("methods", {}), "paws": {"kind": "centroid", "body_parts": [
        "left_forepaw", "right_forepaw"], "tracking_type": "openfield"}}
    path = _registry_with(tmp_path, registry_path, methods=methods,
                          pairings=raw["pairings"] + [{"model": "tiny_openfield",
                                                       "method": "paws"}])
    with pytest.raises(RegistryError, match=r"does not track \['left_forepaw', 'right_forepaw'\]"):
        load_registry(path)


def test_unknown_tracking_type_and_malformed_yaml(tmp_path, registry_path):
    path = _registry_with(tmp_path, registry_path, methods={
        "m": {"kind": "single_point", "body_parts": ["nose"], "tracking_type": "maze"}})
    with pytest.raises(RegistryError, match="unknown tracking type 'maze'"):
        load_registry(path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [\n")
    with pytest.raises(RegistryError, match="not valid YAML"):
        load_registry(bad)


def test_assignment_only_from_accepted_pairings(registry):
    with pytest.raises(RegistryError, match="not an accepted pairing"):
        registry.resolve_assignment("openfield", "tiny_openfield", "two_ears_strict")
    with pytest.raises(RegistryError, match="unknown tracking type"):
        registry.resolve_assignment("maze", None, None)


def test_shipped_registry_template_loads():
    registry = load_registry(ROOT / "registry" / "registry.yaml")
    assert "two_ears" in registry.methods and registry.tracking_type("openfield").supported


# ------------------------------------------------------------------ concurrent edits

_EDITS_SCRIPT = """
import sys
from pathlib import Path
from dlc_tracking.registry.editing import edit_registry
registry, prefix, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
def add(name):
    def edit(doc):
        doc["methods"][name] = dict(doc["methods"]["two_ears_loose"])
    return edit
for i in range(n):
    edit_registry(registry, add(f"{prefix}_{i}"))
"""


def test_concurrent_registry_edits_lose_nothing(tmp_path) -> None:
    """Threads and processes editing the registry at once: every edit lands (one lock for
    every writer, a temporary file per writer), and no temporary file is left behind."""
    import subprocess
    import sys
    import threading

    from dlc_tracking.registry.editing import edit_registry

    registry = tmp_path / "registry.yaml"
    shutil.copy(ROOT / "registry" / "registry.yaml", registry)
    mode = registry.stat().st_mode & 0o777
    procs = [subprocess.Popen([sys.executable, "-c", _EDITS_SCRIPT, str(registry), f"p{k}",
                               "6"], cwd=ROOT) for k in range(3)]
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for i in range(6):
                def edit(doc, name=f"t{k}_{i}"):
                    doc["methods"][name] = dict(doc["methods"]["two_ears_loose"])
                edit_registry(registry, edit)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    assert errors == []
    methods = set(load_registry(registry).methods)
    expected = {f"t{k}_{i}" for k in range(6) for i in range(6)} | {
        f"p{k}_{i}" for k in range(3) for i in range(6)}
    assert expected <= methods, sorted(expected - methods)
    assert not list(tmp_path.glob("*.tmp")) and registry.stat().st_mode & 0o777 == mode


def test_registry_lock_is_reentrant_for_its_holder(tmp_path) -> None:
    """A caller holding the registry lock (planning, registering) can edit the registry
    without waiting for itself; another thread waits until the holder is done."""
    import threading

    from dlc_tracking.registry.editing import edit_registry, registry_lock

    registry = tmp_path / "registry.yaml"
    shutil.copy(ROOT / "registry" / "registry.yaml", registry)
    order: list[str] = []

    def other() -> None:
        with registry_lock(registry):
            order.append("other")

    def holder() -> None:
        with registry_lock(registry), registry_lock(registry):
            t = threading.Thread(target=other)
            t.start()
            edit_registry(registry, lambda doc: doc["methods"].pop("two_ears_strict"))
            t.join(timeout=0.5)
            order.append("holder")
        t.join(timeout=30)

    run = threading.Thread(target=holder)
    run.start()
    run.join(timeout=60)
    assert not run.is_alive(), "deadlock: the holder waited for its own lock"
    assert order == ["holder", "other"]
    assert "two_ears_strict" not in load_registry(registry).methods
