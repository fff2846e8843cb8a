"""colorcnn's sub-packages form layers: every import, at the top of a file or inside a
function, runs downwards; and importing the package changes nothing outside it."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "colorcnn"

# The order of dependence, bottom first. A part imports only parts of a lower rank; parts
# of one rank do not import each other. "colorcnn" is the package's own __init__ (the
# public API) and "__main__" the `python -m colorcnn` entry point.
LAYERS: dict[str, int] = {
    # neutral helpers that anything may use
    "errors": 0,
    "files": 0,
    "weights": 0,
    "samples": 0,
    "runtime": 1,
    # data, colour and networks
    "data": 2,
    "color": 3,
    "models": 4,
    "formulations": 4,
    # a trained model: checkpoint files and load_model
    "trained": 5,
    # scoring and learning
    "evaluation": 6,
    "training": 7,
    # using trained models
    "inference": 8,
    "superres": 9,
    "analysis": 9,
    # on top
    "demo": 10,
    "colorcnn": 10,
    "cli": 11,
    "__main__": 12,
}


def _part(path: Path) -> str:
    """The sub-package (or top-level module) a source file belongs to."""
    relative = path.relative_to(PACKAGE)
    if len(relative.parts) == 1:
        return "colorcnn" if relative.name == "__init__.py" else relative.stem
    return relative.parts[0]


def _imported_parts(node: ast.AST) -> list[str]:
    """The colorcnn parts an import statement reaches, wherever it stands."""
    if isinstance(node, ast.Import):
        modules = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        if node.module == "colorcnn":  # `from colorcnn import x`: x is a part or the API
            return [alias.name if alias.name in LAYERS else "colorcnn" for alias in node.names]
        modules = [node.module]
    else:
        return []
    return [module.split(".")[1] for module in modules if module.startswith("colorcnn.")]


def import_graph() -> dict[tuple[str, str], list[str]]:
    """(importer, imported) part pairs, each with the places (file:line) that import."""
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _part(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                raise AssertionError(f"{path}: relative import; colorcnn imports absolutely")
            for target in _imported_parts(node):
                if target != source:
                    place = f"{path.relative_to(PACKAGE)}:{node.lineno}"
                    edges.setdefault((source, target), []).append(place)
    return edges


def find_cycles(edges: dict[tuple[str, str], list[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one part (Tarjan's algorithm)."""
    graph: dict[str, set[str]] = {}
    for source, target in edges:
        graph.setdefault(source, set()).add(target)
        graph.setdefault(target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_the_graph_sees_imports_inside_functions(tmp_path: Path) -> None:
    tree = ast.parse("def f():\n    from colorcnn.training.loop import fit\n")
    assert [_imported_parts(node) for node in ast.walk(tree) if _imported_parts(node)] == [
        ["training"]
    ]


def test_cycle_finder_finds_a_cycle_and_only_cycles() -> None:
    edges = {("a", "b"): [], ("b", "c"): [], ("c", "a"): [], ("c", "d"): []}
    assert find_cycles(edges) == [["a", "b", "c"]]
    assert find_cycles({("a", "b"): [], ("b", "c"): []}) == []


def test_no_cycles_between_sub_packages() -> None:
    edges = import_graph()
    cycles = find_cycles(edges)
    details = [
        f"{' <-> '.join(group)}: "
        + "; ".join(
            f"{a} -> {b} ({', '.join(edges[a, b])})"
            for a in group
            for b in group
            if (a, b) in edges
        )
        for group in cycles
    ]
    assert not cycles, "import cycles between colorcnn's parts:\n" + "\n".join(details)


def test_every_part_has_a_layer() -> None:
    parts = {_part(path) for path in PACKAGE.rglob("*.py")}
    unplaced = sorted(parts - set(LAYERS))
    assert not unplaced, f"give these parts a layer in tests/test_layers.py: {unplaced}"


def test_imports_run_downwards() -> None:
    upward = [
        f"{source} (layer {LAYERS[source]}) imports {target} (layer {LAYERS[target]}) at "
        + ", ".join(places)
        for (source, target), places in sorted(import_graph().items())
        if target in LAYERS and LAYERS[target] >= LAYERS[source]
    ]
    assert not upward, "imports that do not run downwards:\n" + "\n".join(upward)


# Every module of the package, imported one after another in a fresh interpreter.
_EVERY_MODULE = sorted(
    "colorcnn."
    + ".".join(path.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
    for path in PACKAGE.rglob("*.py")
    if path.name != "__main__.py"
)

_SIDE_EFFECT_PROBE = """
import importlib, sys, warnings
import matplotlib
matplotlib.use("svg")  # a backend a notebook user might have chosen
# The libraries colorcnn builds on add filters of their own when first imported.
for library in ("numpy", "torch", "kornia", "PIL.Image", "safetensors.torch", "tqdm.auto",
                "typer", "rich", "matplotlib.figure", "scipy", "sklearn", "gradio"):
    try:
        importlib.import_module(library)
    except ImportError:
        pass
backend = matplotlib.get_backend()
filters = list(warnings.filters)
for name in sys.argv[1:]:
    importlib.import_module(name)
changed = []
if matplotlib.get_backend() != backend:
    changed.append(f"matplotlib backend {backend} -> {matplotlib.get_backend()}")
if list(warnings.filters) != filters:
    added = [entry for entry in warnings.filters if entry not in filters]
    changed.append(f"warnings filters added: {added}")
if "matplotlib.pyplot" in sys.modules:
    changed.append("matplotlib.pyplot was imported (it starts a backend)")
print("; ".join(changed) or "unchanged")
"""


def _import_changes(*modules: str, path: Path | None = None) -> str:
    """What importing `modules` in a fresh interpreter changed outside them."""
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(path), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", _SIDE_EFFECT_PROBE, *modules],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()[-1]


def test_the_probe_sees_a_backend_switch_and_a_filter(tmp_path: Path) -> None:
    (tmp_path / "noisy_module.py").write_text(
        "import warnings\nimport matplotlib\n"
        "warnings.filterwarnings('ignore', message='x')\nmatplotlib.use('agg')\n"
    )
    changes = _import_changes("noisy_module", path=tmp_path)
    assert "matplotlib backend svg -> agg" in changes
    assert "warnings filters added" in changes


def test_plain_import_has_no_side_effects() -> None:
    assert _import_changes("colorcnn", "colorcnn.training") == "unchanged"


@pytest.mark.slow
def test_importing_any_module_of_colorcnn_has_no_side_effects() -> None:
    modules = [name for name in _EVERY_MODULE if not name.startswith("colorcnn.demo")]
    try:
        import gradio  # noqa: F401

        modules = _EVERY_MODULE
    except ImportError:
        pass  # the demo needs its extra; everything else must import without it
    assert _import_changes(*modules) == "unchanged"
