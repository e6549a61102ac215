"""The package's layers, read from the import statements of every module (function-level imports
included): who may import whom, no cycles, and what importing a package loads."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "motif"

# Bottom to top. A module may import its own package and the packages of lower layers only.
LAYERS = [
    ("motif.errors", "motif.files", "motif.logs", "motif.stats", "motif.lazy", "motif.threads"),
    ("motif.registry",),
    ("motif.video", "motif.model", "motif.concepts", "motif.backbone"),
    ("motif.data",),
    ("motif.config",),
    ("motif.world",),
    ("motif.cache",),
    ("motif.sequences", "motif.checkpoint", "motif.plots"),
    ("motif.training", "motif.explain", "motif.evaluation", "motif.discovery"),
    ("motif.inference", "motif.cli"),
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the motif modules it imports (``from motif.a import b`` counts motif.a.b when b is a module)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name.startswith("motif"))
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("motif") and not node.level:
                targets.add(node.module)
                targets.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def _unit(module: str) -> str:
    """The layer unit a module belongs to: its top-level package or module under motif."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def _layer_of(unit: str) -> int:
    for index, units in enumerate(LAYERS):
        if unit in units:
            return index
    raise AssertionError(f"{unit} is in no layer of tests/test_layers.py; add it where it belongs")


def test_every_module_is_in_a_layer_and_imports_only_downwards():
    upward = []
    for module, targets in import_graph().items():
        if module == "motif":
            continue
        unit = _unit(module)
        for target in targets:
            other = _unit(target)
            if other != unit and other != "motif" and _layer_of(other) >= _layer_of(unit):
                upward.append(f"{module} -> {target}")
    assert not upward, "imports that do not go down a layer:\n" + "\n".join(sorted(upward))


# Knows nothing of motif: a name -> entry container and the lazy-package helper.
GENERIC = ("motif.registry", "motif.lazy", "motif.errors")


def test_model_imports_nothing_of_the_rest_of_motif():
    graph = import_graph()
    outside = {f"{m} -> {t}" for m, ts in graph.items() if m.startswith("motif.model") for t in ts
               if not t.startswith("motif.model") and t not in GENERIC}
    assert not outside


def test_training_explain_and_evaluation_never_import_each_other():
    graph = import_graph()
    siblings = ("motif.training", "motif.explain", "motif.evaluation")
    crossing = {f"{m} -> {t}" for m, ts in graph.items() for t in ts
                if _unit(m) in siblings and _unit(t) in siblings and _unit(m) != _unit(t)}
    assert not crossing


def test_no_import_cycles():
    graph = import_graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target] if target in path else [node, target])
            elif target not in state:
                visit(target, path + [target])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def _loaded_after_import(module: str) -> list[str]:
    code = f"import json, sys; import {module}; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=PACKAGE.parent)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


LIGHTNING = ("pytorch_lightning", "lightning", "lightning_fabric")
TRAINING_STACK = (*LIGHTNING, "wandb", "open_clip")


@pytest.mark.parametrize("module, not_loaded, allowed_motif", [
    ("motif", ("torch", "numpy", *TRAINING_STACK), ("motif",)),
    ("motif.model", TRAINING_STACK, ("motif", "motif.model", *GENERIC)),
    ("motif.backbone", TRAINING_STACK, ("motif", "motif.backbone", *GENERIC)),
    ("motif.evaluation", TRAINING_STACK, None),
    ("motif.explain", TRAINING_STACK, None),
    ("motif.config", ("torch", "av", "decord", "numpy"), None),
    ("motif.training.summary", ("torch", "numpy", *TRAINING_STACK), None),   # tools/summarize.py
])
def test_importing_a_package_loads_no_training_stack(module, not_loaded, allowed_motif):
    loaded = _loaded_after_import(module)
    assert not [m for m in loaded if m.split(".")[0] in not_loaded]
    if allowed_motif is not None:
        assert not [m for m in loaded if m.startswith("motif") and _unit(m) not in allowed_motif]


def test_the_front_door_resolves_its_names_on_first_use():
    """``import motif`` defines the front door's names without importing them; the first access imports
    motif.inference (and with it the explain pipeline), and unknown names still fail."""
    code = ("import json, sys, motif; before = sorted(sys.modules); load = motif.load; "
            "print(json.dumps([before, sorted(sys.modules), load.__module__, sorted(dir(motif))]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=PACKAGE.parent)
    assert result.returncode == 0, result.stderr
    before, after, module, names = json.loads(result.stdout.strip().splitlines()[-1])
    assert "motif.inference" not in before and "motif.inference" in after and module == "motif.inference"
    assert {"load", "VideoClassifier", "Prediction", "FrameArray", "__version__"} <= set(names)
    import motif
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        motif.nothing_here
