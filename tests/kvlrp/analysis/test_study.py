"""kvlrp study: two seeds of real training on the tiny synthetic shards, and the across-seed
arithmetic by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from kvlrp.analysis.study import SUMMARY_COLUMNS, summarize_seeds, t_interval


def test_t_interval_by_hand():
    mean, std, low, high = t_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and std == pytest.approx(1.0)
    assert (low, high) == pytest.approx((2.0 - 4.303 / math.sqrt(3), 2.0 + 4.303 / math.sqrt(3)))
    assert math.isnan(t_interval([5.0])[2]) and t_interval([5.0])[0] == 5.0
    assert t_interval([1.0, float("nan"), 3.0])[0] == 2.0


def test_summarize_seeds_counts_signs():
    seeds = pd.DataFrame({"test_gain": [0.1, -0.05, 0.0],
                          "test_accuracy_train_step": [0.8, 0.9, 0.7],
                          "test_accuracy_selected_step": [0.9, 0.85, 0.7]})
    border = pd.DataFrame({"seed": [0, 1, 2] * 2, "step": [1, 1, 1, 4, 4, 4],
                           "border_score": [1.2, 1.1, 0.9, 1.0, 1.0, 1.0],
                           "relative_border_score": [1.3, 1.2, 1.1, 0.9, 1.0, 0.95],
                           "temporal_fraction": [0.2] * 6,
                           "relative_border_change": [np.nan] * 3 + [-0.4, -0.2, -0.15]})
    table = summarize_seeds(seeds, border)
    assert list(table.columns) == SUMMARY_COLUMNS
    gain = table[table["quantity"] == "test_gain"].iloc[0]
    assert (gain["n_above"], gain["n_below"], gain["n_seeds"]) == (1, 1, 3)
    assert gain["mean"] == pytest.approx(0.05 / 3)
    rel1 = table[(table["quantity"] == "relative_border_score") & (table["step"] == 1)].iloc[0]
    assert rel1["n_above"] == 3 and rel1["mean"] == pytest.approx(1.2)
    assert rel1["ci_low"] == pytest.approx(1.2 - 4.303 * 0.1 / math.sqrt(3))  # 3 seeds: wide
    change = table[table["quantity"] == "relative_border_change"]
    assert list(change["step"]) == [4] and change.iloc[0]["n_below"] == 3


@pytest.mark.slow
def test_study_two_seeds_end_to_end(synthetic_shards, tmp_path, capsys):
    from kvlrp.cli import main

    out = tmp_path / "study"
    code = main(["study", "--data", str(synthetic_shards), "--out", str(out), "--seeds", "3", "4",
                 "--clip-len", "4", "--size", "16", "--epochs", "1", "--steps-per-epoch", "2",
                 "--batch-size", "4", "--widths", "4", "8", "--dense-units", "8",
                 "--steps", "1", "2", "--explain-clips", "1", "--stride-clips", "1",
                 "--prior-seeds", "0", "--flip-videos", "2", "--n-boot", "50", "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "study over seeds [3, 4]" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kind"] == "study" and summary["seeds"] == [3, 4]
    assert summary["selected_on"] == ["val"]
    seeds = pd.read_csv(out / "study_seeds.csv")
    assert list(seeds["seed"]) == [3, 4] and (seeds["n_test_videos"] == 4).all()
    for s in (3, 4):
        strides = json.loads((out / f"seed{s}" / "strides" / "summary.json").read_text())
        row = seeds[seeds["seed"] == s].iloc[0]
        assert row["test_gain"] == pytest.approx(strides["test_gain"])
        assert row["selected_step"] == strides["selected_step"]
    # the two seeds trained different models
    from kvlrp.models import load_model

    kernels = [load_model(out / f"seed{s}" / "model")[0].layers[1].get_weights()[0]
               for s in (3, 4)]
    assert kernels[0].shape == kernels[1].shape and not np.allclose(*kernels)
    border = pd.read_csv(out / "study_border.csv")
    assert set(border["step"]) == {1, 2} and len(border) == 4
    assert border["temporal_fraction"].between(-1, 1).all()
    assert border["relative_border_score"].isna().all()  # no prior seeds: no relative score
    table = pd.read_csv(out / "study_summary.csv")
    gain = table[table["quantity"] == "test_gain"].iloc[0]
    assert gain["n_seeds"] == 2
    assert gain["mean"] == pytest.approx(seeds["test_gain"].mean())
    report = (out / "report.md").read_text()
    assert "Across 2 training seeds" in report and (out / "plots" / "study.png").exists()
    # every result names where it came from; the html report is self-contained
    import hashlib

    from report_checks import assert_full_provenance, assert_self_contained

    argv = json.loads((out / "summary.json").read_text())["provenance"]["command"]
    assert argv[:2] == ["kvlrp", "study"] and str(out) in argv
    for s in (3, 4):
        sha = hashlib.sha256((out / f"seed{s}" / "model" / "model.keras").read_bytes())
        for kind in ("explain", "strides"):
            p = json.loads((out / f"seed{s}" / kind / "summary.json").read_text())["provenance"]
            assert_full_provenance(p)
            assert p["command"] == argv and p["model_sha256"] == sha.hexdigest()
        trained = json.loads((out / f"seed{s}" / "model" / "kvlrp.json").read_text())
        assert_full_provenance(trained["extra"]["provenance"])
        assert trained["extra"]["provenance"]["model_sha256"] is None  # trained, not read
    assert_full_provenance(json.loads((out / "summary.json").read_text())["provenance"])
    page = (out / "report.html").read_text(encoding="utf-8")
    assert_self_contained(page)
    assert "Across 2 training seeds" in page and page.count(">study<") == 1  # its column


def test_study_refuses_bad_seeds(synthetic_shards, tmp_path):
    from kvlrp.analysis.study import run_study

    with pytest.raises(ValueError, match="distinct"):
        run_study(synthetic_shards, tmp_path, seeds=[1, 1])
    with pytest.raises(ValueError, match="seed"):
        run_study(synthetic_shards, tmp_path, seeds=[1], train_kwargs={"seed": 3})


def test_demo_study_resplits_for_a_larger_test_split(tmp_path):
    import dataclasses

    from kvlrp.commands.demo import QUICK_STUDY, _synth_and_prepare
    from kvlrp.data.shards.folder import read_index

    config = dataclasses.replace(QUICK_STUDY, videos_per_class=6, min_frames=24, max_frames=30,
                                 video_size=16, test_fraction=0.5)
    shards = _synth_and_prepare(tmp_path, config, progress=False)
    counts = read_index(shards).groupby(["label", "split"]).size().unstack()
    assert (counts["test"] == 3).all() and (counts["val"] == 1).all()
    assert (counts["train"] == 2).all()


def test_demo_seeds_must_be_positive(tmp_path, capsys):
    from kvlrp.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--seeds", "0", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--seeds" in err and "expected a positive int" in err
