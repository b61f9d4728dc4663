"""What the report tests share: a folder with real explain and strides runs and its report,
and the checks that a ``report.html`` is self-contained and a ``provenance`` is complete."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

#: ``src=`` / ``href=`` attribute values of an HTML page.
_ATTRIBUTES = re.compile(r"""\b(src|href)\s*=\s*["']([^"']*)["']""", re.IGNORECASE)


def make_report_folder(model: Any, info: Any, shards: Path, root: Path) -> Path:
    """Save ``model`` to ``root/model``, explain it (steps 1 and 2) and evaluate it per step
    (step chosen on ``val``) into ``root/explain`` and ``root/strides``, then build the
    report; returns ``root``."""
    from kvlrp.analysis.explain.run import run_explain
    from kvlrp.analysis.report.markdown import build_report
    from kvlrp.analysis.strides.run import run_strides
    from kvlrp.models import save_model

    save_model(model, root / "model", info)
    kw = dict(split="test", clips_per_video=1, n_boot=20, progress=False)
    run_explain(model, info, shards, root / "explain", steps=[1, 2], prior_seeds=1,
                n_heatmaps=1, flip_videos=2, model_path=root / "model", **kw)
    run_strides(model, info, shards, root / "strides", steps=[1, 2], select_on="val",
                model_path=root / "model" / "model.keras", **kw)
    build_report(root)
    return root


def assert_self_contained(page: str) -> None:
    """No address outside the page: every image a ``data:`` URI, no script or style sheet
    loaded, no ``http(s)://`` in any ``src`` or ``href`` (links to the CSVs are relative)."""
    attributes = _ATTRIBUTES.findall(page)
    assert attributes, "no src/href at all"
    for name, value in attributes:
        assert not re.match(r"\s*(https?:)?//", value, re.IGNORECASE), (name, value[:80])
        if name.lower() == "src":
            assert value.startswith("data:image/"), value[:80]
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, re.IGNORECASE)
    assert not re.search(r"<link\b", page, re.IGNORECASE)
    assert not re.search(r"url\(\s*['\"]?\s*(https?:)?//", page, re.IGNORECASE)
    assert not re.search(r"@import", page, re.IGNORECASE)


def assert_full_provenance(provenance: dict[str, Any] | None) -> None:
    """Every field of :data:`kvlrp.infra.provenance.PROVENANCE_FIELDS`, the software and
    machine ones filled in, ``created`` a UTC ISO time, ``command`` an argv list."""
    import datetime

    import keras
    import tensorflow as tf

    from kvlrp import __version__
    from kvlrp.infra.provenance import PROVENANCE_FIELDS

    assert provenance is not None
    assert set(provenance) == set(PROVENANCE_FIELDS)
    assert provenance["kvlrp_version"] == __version__
    assert provenance["tensorflow_version"] == tf.__version__
    assert provenance["keras_version"] == keras.__version__
    assert provenance["kernel_set"] in ("oneDNN on", "oneDNN off")
    assert provenance["device"] == "CPU" or provenance["device"].startswith("GPU")
    assert provenance["cpu"]
    assert isinstance(provenance["command"], list) and provenance["command"]
    created = datetime.datetime.fromisoformat(provenance["created"])
    assert created.utcoffset() == datetime.timedelta(0)
    assert abs((datetime.datetime.now(datetime.timezone.utc) - created).days) < 1
