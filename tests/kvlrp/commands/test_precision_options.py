"""``kvlrp demo --precision`` and ``kvlrp study --precision`` reach the training call (float32
by default, so the documented demo numbers and resumed float32 studies are unchanged)."""

from __future__ import annotations

import kvlrp.analysis.study as study_module
import kvlrp.commands.demo as demo
from kvlrp.cli import main


def test_demo_passes_the_precision_to_its_config(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(demo, "run_demo", lambda out, config, progress: seen.update(c=config))
    assert main(["demo", "--quick", "--out", str(tmp_path / "a"), "--no-progress"]) == 0
    assert seen["c"].precision == "float32"
    assert main(["demo", "--quick", "--out", str(tmp_path / "b"), "--precision", "bfloat16",
                 "--no-progress"]) == 0
    assert seen["c"].precision == "bfloat16" and seen["c"].preset == "quick"


def test_study_passes_the_precision_to_training_only_when_not_float32(tmp_path, monkeypatch):
    calls = []

    def fake_run_study(shards, out, train_kwargs, **kwargs):
        calls.append(train_kwargs)
        raise ValueError("stop here")

    monkeypatch.setattr(study_module, "run_study", fake_run_study)
    argv = ["study", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--model",
            "c3d_small", "--no-progress"]
    assert main(argv) != 0 and main([*argv, "--precision", "bfloat16"]) != 0
    assert "precision" not in calls[0] and calls[1]["precision"] == "bfloat16"
