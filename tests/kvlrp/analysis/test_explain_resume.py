"""run_explain resumes step by step from ``partial/``: an interrupted run ends with the same
tables as an uninterrupted one without recomputing finished steps; partial results written
with other settings or other model weights are not reused."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

import kvlrp.analysis.explain.run as explain_run
from kvlrp.analysis.explain.frames import explain_frames
from kvlrp.analysis.explain.run import run_explain

STEPS = [1, 3]
KWARGS = {"steps": STEPS, "split": "test", "clips_per_video": 1, "prior_seeds": 1,
          "n_heatmaps": 1, "flip_videos": 2, "n_boot": 50, "progress": False}
FINAL = ["frame_relevance.csv", "frame_relevance_summary.csv", "border_scores.csv",
         "frame_relevance_prior.csv", "excluded_clips.csv", "frame_flipping.csv",
         "frame_flipping_clips.csv"]


@pytest.fixture(scope="module")
def uninterrupted(small_model, synthetic_shards, tmp_path_factory):
    """Output folder of an uninterrupted run (its ``partial/`` included)."""
    model, info = small_model
    out = tmp_path_factory.mktemp("explain_uninterrupted")
    run_explain(model, info, synthetic_shards, out, **KWARGS)
    return out


def _counting(monkeypatch, fail_at_step: int | None = None) -> list[int]:
    """Count ``explain_frames`` calls by step; raise KeyboardInterrupt at ``fail_at_step``."""
    calls: list[int] = []

    def wrapper(*args, step, **kwargs):
        calls.append(step)
        if step == fail_at_step:
            raise KeyboardInterrupt
        return explain_frames(*args, step=step, **kwargs)

    monkeypatch.setattr(explain_run, "explain_frames", wrapper)
    return calls


def _same_results(a, b) -> None:
    for name in FINAL:
        assert (a / name).read_text() == (b / name).read_text(), name
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    assert sa["border"] == sb["border"] and sa["border_by_class"] == sb["border_by_class"]
    # (throughput: wall times of two runs; provenance: when and by which command)
    for k in ("files", "heatmaps", "throughput", "provenance"):
        sa.pop(k), sb.pop(k)
    assert sa == sb


def test_interrupted_explain_resumes_to_the_same_tables(small_model, synthetic_shards,
                                                         uninterrupted, tmp_path,
                                                         monkeypatch):
    model, info = small_model
    calls = _counting(monkeypatch, fail_at_step=3)
    with pytest.raises(KeyboardInterrupt):
        run_explain(model, info, synthetic_shards, tmp_path, **KWARGS)
    assert calls == [1, 3]
    assert (tmp_path / "partial" / "explain_step1.json").exists()
    assert not (tmp_path / "partial" / "explain_step3.json").exists()
    assert not (tmp_path / "summary.json").exists()

    calls = _counting(monkeypatch)
    summary = run_explain(model, info, synthetic_shards, tmp_path, **KWARGS)
    assert calls == [3]  # step 1 came from partial/
    _same_results(tmp_path, uninterrupted)
    assert len(summary["heatmaps"]) == 2 * len(STEPS)
    assert all(Path(p).exists() for p in summary["heatmaps"])

    calls = _counting(monkeypatch)  # a finished run re-run: nothing explained again
    run_explain(model, info, synthetic_shards, tmp_path, **KWARGS)
    assert calls == []
    _same_results(tmp_path, uninterrupted)


def test_other_settings_or_weights_are_recomputed(small_model, synthetic_shards, uninterrupted,
                                                  tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="kvlrp")
    model, info = small_model
    shutil.copytree(uninterrupted, tmp_path, dirs_exist_ok=True)
    calls = _counting(monkeypatch)
    run_explain(model, info, synthetic_shards, tmp_path, **{**KWARGS, "flip_fill": "zero"})
    assert calls == STEPS
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("kvlrp")]
    out = "\n".join(messages) + "\n"
    assert out.count("\n") == 1 and "changed: flip_fill" in out and "step(s) 1, 3" in out
    caplog.clear()
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["flip_fill"] == "zero"

    weights = model.get_weights()
    try:
        model.set_weights([w * 1.01 for w in weights])
        calls = _counting(monkeypatch)
        run_explain(model, info, synthetic_shards, tmp_path, steps=[1],
                    **{k: v for k, v in KWARGS.items() if k != "steps"}, flip_fill="zero")
        assert calls == [1]
        assert any("changed: model" in r.getMessage() for r in caplog.records
                   if r.name.startswith("kvlrp"))
    finally:
        model.set_weights(weights)
