"""docs/architecture.md matches the tree it is run on.

- Every package named in the floor plan exists: a folder with ``__init__.py``, or still one
  module file (a package being split out of a module, such as ``analyzers.rules``, may be
  either while it moves).
- Every package of ``analyzers/`` and ``kvlrp/`` (a folder with ``__init__.py``) is named in
  the floor plan.
- ``analyzers`` never imports ``kvlrp``, and no ``kvlrp`` layer imports a layer after it in the
  dependency direction the page states (imports inside functions count).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from repo_paths import REPO_ROOT

DOC = REPO_ROOT / "docs" / "architecture.md"
TOPS = ("analyzers", "kvlrp")


def _section(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def _floor_plan() -> list[str]:
    """The package names in the first column of the floor-plan table."""
    return re.findall(r"^\| `((?:analyzers|kvlrp)(?:\.\w+)*)` \|", _section("Floor plan"),
                      flags=re.MULTILINE)


def _packages() -> list[str]:
    """Dotted names of every folder with an ``__init__.py`` under the two top packages."""
    found = []
    for top in TOPS:
        for init in sorted((REPO_ROOT / top).rglob("__init__.py")):
            found.append(".".join(init.parent.relative_to(REPO_ROOT).parts))
    return found


def _layers() -> list[str]:
    """The ``kvlrp`` layers in the order of the page's dependency line (``a → b → ...``)."""
    lines = [line for line in _section("Dependency direction").splitlines() if "→" in line]
    assert len(lines) == 1, "the dependency direction is one line of `a` → `b` → ..."
    return re.findall(r"`([\w.]+)`", lines[0])


def _imports(path: Path) -> set[str]:
    """Absolute module names a file imports, anywhere in it (functions included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_floor_plan_names_enough_packages():
    names = _floor_plan()
    assert len(names) >= 15, names
    assert len(names) == len(set(names)), f"named twice: {names}"


@pytest.mark.parametrize("name", _floor_plan())
def test_every_package_named_exists(name):
    path = REPO_ROOT.joinpath(*name.split("."))
    assert (path / "__init__.py").is_file() or path.with_suffix(".py").is_file(), (
        f"docs/architecture.md names {name}, but neither {path.relative_to(REPO_ROOT)}/"
        f"__init__.py nor {path.relative_to(REPO_ROOT)}.py exists")


def test_every_package_of_the_tree_is_named():
    named = set(_floor_plan())
    missing = [name for name in _packages() if name not in named]
    assert missing == [], f"packages missing from docs/architecture.md's floor plan: {missing}"


def test_analyzers_never_imports_kvlrp():
    offenders = [
        f"{path.relative_to(REPO_ROOT)} imports {name}"
        for path in sorted((REPO_ROOT / "analyzers").rglob("*.py"))
        for name in sorted(_imports(path)) if _within(name, "kvlrp")
    ]
    assert offenders == []


def test_kvlrp_layers_import_only_earlier_layers():
    layers = _layers()
    assert layers[0] == "kvlrp.infra" and layers[-1] == "kvlrp.cli", layers
    for layer in layers:
        assert layer in _floor_plan() or REPO_ROOT.joinpath(
            *layer.split(".")).with_suffix(".py").is_file(), layer

    def layer_of(name: str) -> int | None:
        for index, layer in enumerate(layers):
            if _within(name, layer):
                return index
        return None

    offenders = []
    for path in sorted((REPO_ROOT / "kvlrp").rglob("*.py")):
        own = layer_of(_module_name(path))
        if own is None:
            continue
        for name in sorted(_imports(path)):
            other = layer_of(name)
            if other is not None and other > own:
                offenders.append(f"{_module_name(path)} ({layers[own]}) imports {name} "
                                 f"({layers[other]})")
    assert offenders == [], "imports against the documented direction:\n" + "\n".join(offenders)
