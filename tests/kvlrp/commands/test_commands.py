"""The ``kvlrp`` console script: help of every command, clear errors, and the quick demo end to
end (marked slow)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pandas as pd
import pytest

from kvlrp.cli import COMMANDS, main

MINE = ("explain", "strides", "report", "demo")


def test_console_script_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "kvlrp", "--help"], capture_output=True,
                         text=True, check=True).stdout
    for name in COMMANDS:
        assert name in out


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_has_help(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"kvlrp {name}" in out and "--" in out


@pytest.mark.parametrize("name, option", [("explain", "--analyzer"), ("explain", "--prior-seeds"),
                                          ("strides", "--steps"), ("demo", "--quick")])
def test_documented_options(name, option, capsys):
    with pytest.raises(SystemExit):
        main([name, "--help"])
    assert option in capsys.readouterr().out


def test_report_on_empty_folder_says_what_is_missing(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    out = capsys.readouterr().err  # errors go to stderr (they went to stdout before)
    assert "no explain or strides results" in out and "summary.json" in out


def test_bad_clips_per_video_is_rejected(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["strides", "--model", "m", "--data", "d", "--out", "o", "--clips-per-video", "0"])
    assert exit_info.value.code == 2
    assert "positive int or 'all'" in capsys.readouterr().err


def test_bad_analyzer_and_split_are_named(saved_model, synthetic_shards, tmp_path, capsys):
    common = ["--model", str(saved_model), "--data", str(synthetic_shards), "--out",
              str(tmp_path), "--no-progress"]
    assert main(["explain", *common, "--analyzer", "lrp.nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown analyzer 'lrp.nope'" in err and "deep_taylor.bounded" in err
    assert main(["strides", *common, "--split", "holdout"]) == 2
    err = capsys.readouterr().err
    assert "no videos in split 'holdout'" in err and "test: 4" in err
    assert "choose one of those with --split (e.g. --split val)" in err
    assert main(["strides", *common, "--select-on", "holdout"]) == 2
    assert "choose one of those with --select-on" in capsys.readouterr().err
    assert main(["strides", "--model", str(tmp_path / "none"), "--data", str(synthetic_shards),
                 "--out", str(tmp_path)]) == 2
    assert "model.keras" in capsys.readouterr().err


def test_strides_command_prints_table_and_outputs(saved_model, synthetic_shards, tmp_path,
                                                  capsys):
    code = main(["strides", "--model", str(saved_model), "--data", str(synthetic_shards),
                 "--out", str(tmp_path), "--steps", "1", "3", "--clips-per-video", "1",
                 "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "best step" in out and str(tmp_path / "stride_accuracy.csv") in out
    assert len(pd.read_csv(tmp_path / "stride_accuracy.csv")) == 3  # 2 steps + control


def test_explain_command_prints_throughput_and_saves_its_config(saved_model, synthetic_shards,
                                                                tmp_path, capsys):
    code = main(["explain", "--model", str(saved_model), "--data", str(synthetic_shards),
                 "--out", str(tmp_path), "--clips-per-video", "1", "--prior-seeds", "0",
                 "--heatmaps", "0", "--flip-videos", "0", "--batch-size", "2",
                 "--no-progress"])
    assert code == 0
    lines = [line for line in capsys.readouterr().out.splitlines()
             if line.startswith("explanation throughput")]
    assert len(lines) == 1 and "deep_taylor.bounded" in lines[0]
    assert re.search(r"step 1: \d+\.\d clips/s \(\d+\.\d after the first batch\)", lines[0])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["config"]["batch_size"] == 2 and summary["config"]["prior_seeds"] == 0
    assert summary["config"]["steps"] is None  # the training step, as the options said


@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-m", "kvlrp", "demo", "--quick", "--out", str(out),
                           "--no-progress"], capture_output=True, text=True, env=env,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "kvlrp demo finished" in proc.stdout and str(out / "report.md") in proc.stdout
    table = pd.read_csv(out / "strides" / "stride_accuracy.csv")
    assert set(table["control"]) == {"none", "shuffled"}
    assert table["video_accuracy"].between(0, 1).all()
    border = pd.read_csv(out / "explain" / "border_scores.csv")
    assert (border["border_score"] > 0).all() and border["relative_border_score"].notna().all()
    report = (out / "report.md").read_text()
    assert "Accuracy per step" in report and "Border score" in report
    for png in ("frame_relevance.png", "stride_accuracy.png", "frame_flipping.png"):
        assert (out / "plots" / png).exists()
    demo = json.loads((out / "demo.json").read_text())
    assert set(demo["timings_s"]) == {"synth", "prepare", "train", "explain", "strides",
                                      "report"}
    assert set(demo["cpu_s"]) == set(demo["timings_s"])  # CPU seconds per stage, beside wall
    assert all(seconds >= 0 for seconds in demo["cpu_s"].values())
    assert demo["cpu_s"]["train"] > 0 and "s CPU, load average" in proc.stdout
