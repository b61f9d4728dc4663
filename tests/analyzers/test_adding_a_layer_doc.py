"""docs/adding-a-layer.md names only code that exists: every dotted ``analyzers.`` name
in backticks imports, every method or attribute it names on an op or rule class exists."""

from __future__ import annotations

import importlib
import re

import pytest
from repo_paths import REPO_ROOT

DOC = REPO_ROOT / "docs" / "adding-a-layer.md"


def _resolve(dotted: str):
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def _names() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    found = re.findall(r"`(analyzers(?:\.\w+)+)(?:\([^`]*\))?`", text)
    return sorted(set(found))


def test_doc_names_enough_symbols():
    assert len(_names()) >= 15


@pytest.mark.parametrize("dotted", _names())
def test_every_symbol_named_in_the_doc_exists(dotted):
    assert _resolve(dotted) is not None


def test_methods_and_files_named_in_the_doc_exist():
    from analyzers.ops.base import LayerOp
    from analyzers.rules import Rule

    for name in ("linear", "forward", "preactivation", "kernel", "bias", "at", "has_weights",
                 "mixes_inputs", "preserves_nonnegative", "input_channel_axis",
                 "kernel_input_axis", "output_channel_axis", "standard_rule"):
        assert hasattr(LayerOp, name), name
    assert LayerOp(None).activation_name == "linear"
    assert hasattr(Rule, "stand_in_inputs")
    root = DOC.parents[1]
    text = DOC.read_text(encoding="utf-8")
    for path in re.findall(r"`((?:analyzers|tests)/[\w/]+\.py)`", text):
        assert (root / path).is_file(), path
    from analyzers_reference import dense_matrix  # noqa: F401

    from analyzers.ops.factory import register, supported_layers_markdown  # noqa: F401
