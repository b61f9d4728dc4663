"""The floor plan holds: no import cycles among the project's modules (imports written
inside functions count), no package folder with more than a dozen modules directly in it, and
the public imports users and the docs rely on work (that ``analyzers`` never imports ``kvlrp``
and the layer order of ``kvlrp`` are checked with the floor plan, tests/test_architecture_doc.py).

``python tests/test_layout.py`` prints the cycles.

The import graph is read from the source with :mod:`ast` (nothing is imported to build it):
every ``import a.b`` and ``from a.b import c`` anywhere in a module, resolved to the project
module it names (``from pkg import module`` names that module; ``from pkg import name`` names
``pkg/__init__.py``).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

PACKAGES = ("analyzers", "kvlrp")
#: Most modules (``*.py`` besides ``__init__.py``) directly in one package folder.
MAX_MODULES_PER_PACKAGE = 12


def _modules() -> dict[str, Path]:
    """Dotted name -> file of every module of the project's packages."""
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _imported(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Project modules that ``module`` imports anywhere in its source."""
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{alias.name}" for alias in node.names]
            names = [n if n in known else base for n in names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
    return targets


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {name: _imported(name, path, known) for name, path in known.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _package_of(module: str, known: dict[str, Path]) -> str:
    return module if known[module].name == "__init__.py" else module.rpartition(".")[0]


def _without_package_faces(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph without edges from a package to its own sub-modules (a package's
    ``__init__`` re-exporting its modules is not a cycle with them)."""
    return {m: {t for t in ts if not t.startswith(m + ".")} for m, ts in graph.items()}


def test_the_import_graph_reader_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycles_among_the_project_modules():
    cycles = _cycles(_without_package_faces(_graph()))
    assert not cycles, "import cycles (imports inside functions count): " + "; ".join(
        " <-> ".join(c) for c in cycles)


def test_no_package_folder_holds_more_than_a_dozen_modules():
    crowded = {}
    for package in PACKAGES:
        for folder in [REPO_ROOT / package, *(REPO_ROOT / package).rglob("*")]:
            if folder.is_dir() and (folder / "__init__.py").exists():
                modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
                if len(modules) > MAX_MODULES_PER_PACKAGE:
                    crowded[str(folder.relative_to(REPO_ROOT))] = len(modules)
    assert not crowded, crowded


#: The public imports that README, docs/ and examples/ use.
PUBLIC_IMPORTS = {
    "analyzers": ["create_analyzer", "list_analyzers", "analyzer_options", "Analyzer",
                  "UnsupportedLayerError", "build_graph", "Composite", "layer_map_composite",
                  "AlphaBetaRule", "EpsilonRule", "ZPlusRule", "ZRule", "BoundedRule",
                  "WSquareRule", "FlatRule", "GradientRule", "Rule", "BatchNormFolder",
                  "Canonizer", "supported_layer_names"],
    "kvlrp.analysis": ["run_explain", "run_strides", "build_report", "explain_frames",
                       "reinitialised_clone", "analyzer_factory", "summarize_profiles",
                       "border_score", "clip_shares", "frame_relevance", "stride_table",
                       "video_predictions", "best_step", "ExplainConfig", "StridesConfig"],
    "kvlrp.analysis.explain": ["explain_frames", "reinitialised_clone"],
    "kvlrp.analysis.study": ["run_study"],
    "kvlrp.data.shards": ["prepare_shards", "read_index", "read_classes"],
    "kvlrp.data.synth": ["write_synthetic_dataset", "render_video", "SynthParams", "CLASSES"],
    "kvlrp.models": ["build_model", "load_model", "c3d_small", "ModelInfo"],
    "kvlrp.training": ["train"],
    "kvlrp.video": ["read_video", "write_video"],
    "kvlrp.cli": ["main"],
}


@pytest.mark.parametrize("module", sorted(PUBLIC_IMPORTS))
def test_public_imports_work(module):
    imported = importlib.import_module(module)
    missing = [name for name in PUBLIC_IMPORTS[module] if not hasattr(imported, name)]
    assert not missing, f"{module} lacks {missing}"


if __name__ == "__main__":
    for cycle in _cycles(_without_package_faces(_graph())):
        print(" <-> ".join(cycle))
