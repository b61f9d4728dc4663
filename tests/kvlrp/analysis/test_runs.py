"""run_explain / run_strides / build_report on real shards (the shared synthetic fixture),
a real c3d_small and the real deep Taylor analyzer: files, schemas and invariants."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from kvlrp.analysis.explain.run import run_explain
from kvlrp.analysis.measures.accuracy import STRIDE_COLUMNS
from kvlrp.analysis.measures.border_change import CHANGE_COLUMNS
from kvlrp.analysis.measures.pooled import POOLED_CHANGE_COLUMNS, POOLED_COLUMNS
from kvlrp.analysis.measures.profiles import BORDER_COLUMNS, FRAME_COLUMNS, SUMMARY_COLUMNS
from kvlrp.analysis.measures.selection import PAIRED_COLUMNS
from kvlrp.analysis.report.markdown import build_report
from kvlrp.analysis.strides.run import run_strides
from kvlrp.data.clips.clip_sampling import eval_starts, is_short
from kvlrp.data.shards.folder import read_classes, read_index


def test_run_explain_writes_consistent_tables(small_model, synthetic_shards, tmp_path):
    model, info = small_model
    assert read_classes(synthetic_shards) == info.classes
    summary = run_explain(model, info, synthetic_shards, tmp_path, steps=[1, 3], split="test",
                          clips_per_video=2, prior_seeds=2, n_heatmaps=1, flip_videos=4,
                          n_boot=100, progress=False)
    frame = pd.read_csv(tmp_path / "frame_relevance.csv")
    assert list(frame.columns) == FRAME_COLUMNS
    assert set(frame["step"]) == {1, 3} and set(frame["analyzer"]) == {"deep_taylor.bounded"}
    sums = frame.groupby(["step", "video_id", "clip_index"])["share"].sum()
    np.testing.assert_allclose(sums, 1.0, rtol=1e-6)
    n_rows = len(frame) // 6
    assert summary["n_clips"] == 2 * 4 * 2  # 2 steps x 4 test videos x 2 clips
    assert n_rows + summary["n_excluded"] == summary["n_clips"]
    table = pd.read_csv(tmp_path / "frame_relevance_summary.csv")
    assert list(table.columns) == SUMMARY_COLUMNS
    overall = table[table["class"] == "all"]
    assert (overall["ci_low"] <= overall["mean_share"] + 1e-12).all()
    assert (overall["mean_share"] <= overall["ci_high"] + 1e-12).all()
    np.testing.assert_allclose(overall.groupby("step")["relative_share"].mean(), 1.0)
    prior = pd.read_csv(tmp_path / "frame_relevance_prior.csv")
    assert set(prior["seed"]) == {1000, 1001}
    flip = pd.read_csv(tmp_path / "frame_flipping.csv")
    assert set(flip["method"]) == {"deep_taylor.bounded", "gradient_abs", "random"}
    assert ((flip["auc"] >= 0) & (flip["auc"] <= 1)).all()
    assert len(list((tmp_path / "heatmaps").glob("*.gif"))) == 2
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["kind"] == "explain" and len(saved["border"]) == 2
    assert {b["step"] for b in saved["border"]} == {1, 3}
    changes = pd.read_csv(tmp_path / "border_changes.csv")
    assert list(changes["step"]) == [3] and list(changes["reference_step"]) == [1]
    assert (changes["border_change_ci_low"] <= changes["border_change"] + 1e-12).all()
    # the pooled (ratio-of-sums) scores: appended columns, in summary.json alongside
    borders = pd.read_csv(tmp_path / "border_scores.csv")
    assert list(borders.columns) == BORDER_COLUMNS and BORDER_COLUMNS[-6:] == POOLED_COLUMNS
    assert list(changes.columns) == CHANGE_COLUMNS
    assert CHANGE_COLUMNS[-3:] == POOLED_CHANGE_COLUMNS
    overall_b = borders[borders["class"] == "all"]
    assert overall_b["pooled_border_score"].notna().all()  # deep Taylor: totals >= 0
    assert (overall_b["pooled_border_ci_low"] <= overall_b["pooled_border_score"]).all()
    assert (overall_b["pooled_border_score"] <= overall_b["pooled_border_ci_high"]).all()
    for b in saved["border"]:
        assert set(POOLED_COLUMNS) <= set(b)
    assert "ratio-of-sums" in saved["pooled_border"]
    assert isinstance(saved["pooled_border_undefined"], list)


def test_run_strides_resume_and_report(small_model, synthetic_shards, tmp_path):
    model, info = small_model
    summary = run_strides(model, info, synthetic_shards, tmp_path / "strides", steps=[1, 2, 8],
                          split="test", clips_per_video=2, n_boot=100, progress=False)
    table = pd.read_csv(tmp_path / "strides" / "stride_accuracy.csv")
    assert list(table.columns) == STRIDE_COLUMNS + PAIRED_COLUMNS
    assert list(table["control"]) == ["none", "none", "none", "shuffled"]
    assert list(table["span_frames"]) == [6, 11, 41, 6]
    # clip and short-clip counts match the plain-Python reference of clip sampling
    lengths = read_index(synthetic_shards).query("split == 'test'")["n_frames"]
    for row in table.itertuples():
        starts = [(n, s) for n in lengths for s in eval_starts(n, 6, row.step, 2)]
        assert row.n_clips == len(starts)
        assert row.n_short_clips == sum(is_short(n, s, 6, row.step) for n, s in starts)
    assert table["n_short_clips"].iloc[2] > 0  # span 41 > the shortest fixture videos
    assert (table["n_videos"] == 4).all()
    assert summary["best"]["best_step"] in (1, 2, 8)
    # a re-run reuses every completed step: same table, no model call needed
    calls = []
    again = run_strides(model, info, synthetic_shards, tmp_path / "strides", steps=[1, 2, 8],
                        split="test", clips_per_video=2, n_boot=100, progress=False,
                        on_video=lambda n, v: calls.append(v))
    assert calls == [] and again["table"] == summary["table"]
    run_explain(model, info, synthetic_shards, tmp_path / "explain", split="test",
                clips_per_video=1, prior_seeds=1, n_heatmaps=1, flip_videos=2, n_boot=50,
                progress=False)
    report = build_report(tmp_path)
    text = report.read_text()
    assert "chosen on `val`" in text and "exact McNemar" in text
    assert "pooled relative B [95% CI]" in text and "signed analyzers" in text
    assert (tmp_path / "report.html").is_file()
    for heading in ("Where in the clip", "frame flipping", "Accuracy per step"):
        assert heading in text
    for png in ("frame_relevance.png", "stride_accuracy.png", "frame_flipping.png"):
        assert (tmp_path / "plots" / png).stat().st_size > 5000


def test_report_on_a_folder_without_results(tmp_path):
    with pytest.raises(FileNotFoundError, match="no explain or strides results"):
        build_report(tmp_path)


def test_run_strides_traces_its_clip_function_once(small_model, synthetic_shards, tmp_path):
    """Every step and video goes through one traced clip function: TensorFlow logs no
    'triggered tf.function retracing' warning, however many steps are evaluated."""
    import logging

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    tf_logger = logging.getLogger("tensorflow")
    tf_logger.addHandler(handler)
    try:
        model, info = small_model
        run_strides(model, info, synthetic_shards, tmp_path / "strides",
                    steps=[1, 2, 3, 4, 5, 6, 8], split="test", select_on="test",
                    clips_per_video=2, control=False, n_boot=20, progress=False)
    finally:
        tf_logger.removeHandler(handler)
    retraced = [r.getMessage() for r in records if "retracing" in r.getMessage()]
    assert retraced == []
