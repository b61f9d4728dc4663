"""Reports you can hand on: every ``summary.json`` records its provenance (and no CSV does),
``report.html`` is self-contained beside ``report.md``, the markdown tables are narrow, and a
model at chance level is called so."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import pandas as pd
import pytest
from report_checks import assert_full_provenance, assert_self_contained, make_report_folder

from kvlrp.analysis.report.findings import chance_callout
from kvlrp.analysis.report.markdown import build_report
from kvlrp.data.shards.folder import shard_fingerprint
from kvlrp.infra import environment
from kvlrp.infra.provenance import PROVENANCE_FIELDS


@pytest.fixture(scope="module")
def report(small_model, synthetic_shards, tmp_path_factory) -> Path:
    model, info = small_model
    return make_report_folder(model, info, synthetic_shards, tmp_path_factory.mktemp("report"))


def _summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def test_every_summary_records_where_it_came_from(report, synthetic_shards):
    sha = hashlib.sha256((report / "model" / "model.keras").read_bytes()).hexdigest()
    explain, strides = (_summary(report / k)["provenance"] for k in ("explain", "strides"))
    for p in (explain, strides):
        assert_full_provenance(p)
        assert p["model_sha256"] == sha  # a model folder is hashed by its model.keras
        assert p["shards_path"] == os.path.abspath(synthetic_shards)
        assert p["shards_fingerprint"] == shard_fingerprint(synthetic_shards)
        assert p["command"] == environment.command()  # (pytest's argv: no CLI here)
    assert explain["model_path"] == os.path.abspath(report / "model")
    assert strides["model_path"] == os.path.abspath(report / "model" / "model.keras")


def test_provenance_stays_out_of_the_csvs(report):
    """Tables stay comparable between runs: no provenance column and no provenance value in
    any CSV."""
    values = [v for k, v in _summary(report / "strides")["provenance"].items()
              if k in ("created", "model_sha256", "shards_fingerprint", "shards_path")]
    for csv in report.rglob("*.csv"):
        text = csv.read_text()
        header = text.splitlines()[0].split(",") if text else []
        assert not set(header) & set(PROVENANCE_FIELDS), csv
        assert not any(v in text for v in values), csv


def test_report_html_is_self_contained_and_shows_everything(report):
    page = (report / "report.html").read_text(encoding="utf-8")
    assert_self_contained(page)
    n_heatmaps = len(list((report / "explain" / "heatmaps").glob("*.gif")))
    assert n_heatmaps == 2 and page.count("data:image/gif;base64,") == n_heatmaps
    assert page.count("data:image/png;base64,") >= 4  # the figures and the heatmap strips
    for text in ("Where in the clip the model looks", "Heatmaps", "Accuracy per step",
                 "The step chosen on one split", "exact McNemar p", "Provenance",
                 "temporal part", 'href="explain/border_scores.csv"',
                 _summary(report / "strides")["provenance"]["model_sha256"],
                 _summary(report / "explain")["provenance"]["shards_fingerprint"]):
        assert text in page, text
    shares = re.findall(r"<td>frame \d+</td><td>([\d.]+)%</td>", page)
    assert len(shares) == 2 * 6  # two heatmap clips of 6 frames, each frame's share beside it


def test_report_md_tables_are_narrow_and_link_their_csvs(report):
    text = (report / "report.md").read_text(encoding="utf-8")
    headers = [line for line, below in zip(text.splitlines(), text.splitlines()[1:])
               if line.startswith("|") and below.startswith("|---")]
    assert len(headers) >= 6
    assert max(line.count("|") - 1 for line in headers) <= 8
    for csv in ("border_scores.csv", "stride_accuracy.csv", "frame_flipping_auc.csv"):
        assert re.search(rf"\[`{csv}`\]\((explain|strides)/{csv}\)", text), csv
    assert "## Provenance" in text and "| model_sha256 |" in text
    assert "(rows: input, relevance" not in text  # (HTML only) ...
    assert "**input** (its frames), **relevance** overlaid" in text  # ... rows named here


def test_report_md_is_the_same_when_rebuilt(report):
    """report.md and report.html hold no time of their own: rebuilt, they are the same."""
    before = [(report / f).read_bytes() for f in ("report.md", "report.html")]
    build_report(report)
    assert [(report / f).read_bytes() for f in ("report.md", "report.html")] == before


def test_summaries_without_provenance_still_make_a_report(report, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(report / "strides", old / "strides")
    summary = _summary(old / "strides")
    del summary["provenance"]
    (old / "strides" / "summary.json").write_text(json.dumps(summary))
    page = (build_report(old).parent / "report.html").read_text(encoding="utf-8")
    assert "written by a kvlrp without provenance" in page


def _strides_folder(tmp_path: Path, accuracy: float, low: float, high: float,
                    n_classes: int = 4) -> Path:
    run = tmp_path / "strides"
    run.mkdir(parents=True)
    row = {"step": 1, "control": "none", "video_accuracy": accuracy, "ci_low": low,
           "ci_high": high, "n_videos": 8}
    (run / "summary.json").write_text(json.dumps({
        "kind": "strides", "split": "test", "train_step": 1, "selected_on": "val",
        "classes": [f"c{k}" for k in range(n_classes)], "table": [row]}))
    pd.DataFrame([{**row, "n_videos": 6, "ci_low": 0.0, "ci_high": 0.5}]).to_csv(
        run / "stride_accuracy_val.csv", index=False)
    return run


def test_chance_level_is_said_with_its_reason(tmp_path):
    run = _strides_folder(tmp_path, 0.25, 0.0, 0.5)
    callout = chance_callout(run, tmp_path)
    assert callout is not None and callout.title == "At chance level."
    assert "0.250 [0.000, 0.500] on `test` (8 videos)" in callout.text
    assert "on `val` (6 videos)" in callout.text
    assert "chance with 4 classes is 0.250" in callout.text
    assert "Usual reasons" in callout.text
    (tmp_path / "demo.json").write_text(json.dumps(
        {"config": {"preset": "quick", "epochs": 3, "videos_per_class": 5}}))
    callout = chance_callout(run, tmp_path)
    assert "`kvlrp demo --quick`" in callout.text and "3 epochs on 5 synthetic" in callout.text


def test_no_chance_warning_for_a_model_that_learned(tmp_path):
    run = _strides_folder(tmp_path, 0.9, 0.8, 1.0, n_classes=4)
    (run / "stride_accuracy_val.csv").unlink()
    assert chance_callout(run, tmp_path) is None
    assert chance_callout(None, tmp_path) is None
