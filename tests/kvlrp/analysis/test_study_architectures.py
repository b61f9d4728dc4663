"""kvlrp study --models: the tables across architectures by hand on made-up per-seed frames,
and a tiny two-architecture study through the command line (resumed, its report written, one
seed's numbers recomputed from the per-clip outputs independently of the package)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kvlrp.analysis.study_architectures import (
    ArchitectureData,
    architecture_kwargs,
    architecture_pairs,
    architecture_rows,
    natural_analyzer,
    per_model_options,
)
from kvlrp.commands.study import model_option

REPO = Path(__file__).resolve().parents[3]
T2 = 12.706  # 95 % Student-t quantile, 1 degree of freedom (2 seeds)
T3 = 4.303  # 2 degrees of freedom (3 seeds)


def test_natural_analyzers():
    assert natural_analyzer("c3d_small") == "deep_taylor.bounded"
    assert natural_analyzer("x3d") == "deep_taylor.bounded"
    assert natural_analyzer("vivit_small") == "attnlrp"
    assert natural_analyzer("timesformer") == "attnlrp"
    assert natural_analyzer("cnn_gru_small") == "lrp.epsilon"


def test_model_options_go_only_to_builders_taking_them(caplog):
    kwargs = {"widths": (4, 8), "dense_units": 8}
    assert architecture_kwargs("c3d_small", kwargs) == kwargs
    with caplog.at_level("INFO", logger="kvlrp.analysis.study_architectures"):
        assert architecture_kwargs("cnn_gru_small", kwargs) == {"widths": (4, 8)}
        assert architecture_kwargs("vivit_small", kwargs) == {}
    assert "cnn_gru_small takes no dense_units" in caplog.text
    assert "vivit_small takes no dense_units, widths" in caplog.text


def _data(model: str, acc, gains, selected, rel, correct, control=(0.3, 0.5, 0.4)):
    """Three seeds (0, 1, 2); border rows of both kinds at steps 1 and 4 (``rel``: the
    natural kind's relative scores at step 1; the other values derive from it)."""
    seeds = pd.DataFrame({"seed": [0, 1, 2], "train_step": 1, "n_test_videos": 4,
                          "test_accuracy_train_step": acc, "test_gain": gains,
                          "test_gain_ci_low": [g - 0.1 for g in gains],
                          "test_gain_ci_high": [g + 0.1 for g in gains],
                          "selected_step": selected})
    rows = []
    for kind, shift in (("natural", 0.0), ("common", 0.5)):
        for s in range(3):
            for step, factor in ((1, 1.0), (4, 0.5)):
                rows.append({"seed": s, "analyzer_kind": kind, "analyzer": f"an_{kind}",
                             "step": step, "border_score": 2.0,
                             "relative_border_score": rel[s] * factor + shift,
                             "relative_border_change": np.nan if step == 1 else -rel[s] / 2})
    videos = pd.DataFrame([{"seed": s, "video_id": f"v{i}", "label_index": 0, "correct": c}
                           for s in range(3) for i, c in enumerate(correct[s])])
    controls = pd.DataFrame({"seed": [0, 1, 2], "control": "shuffled", "video_accuracy": control})
    return ArchitectureData(model, {"natural": "an_natural", "common": "an_common"}, seeds,
                            pd.DataFrame(rows), videos, controls, pd.DataFrame())


def test_architecture_rows_by_hand():
    data = _data("a", acc=[0.5, 0.75, 1.0], gains=[0.25, -0.25, 0.0], selected=[2, 2, 4],
                 rel=[1.0, 2.0, 3.0], correct=[[1, 1, 0, 0]] * 3)
    rows = {r["analyzer_kind"]: r for r in architecture_rows(data)}
    assert set(rows) == {"natural", "common"}
    r = rows["natural"]
    assert r["analyzer"] == "an_natural" and r["n_seeds"] == 3 and r["seeds"] == "0 1 2"
    # accuracy 0.5 0.75 1.0: mean 0.75, SD 0.25, half-width t(2) * 0.25 / sqrt(3)
    half = T3 * 0.25 / math.sqrt(3)
    assert r["test_accuracy_train_step"] == pytest.approx(0.75)
    assert (r["test_accuracy_train_step_ci_low"], r["test_accuracy_train_step_ci_high"]) == \
        pytest.approx((0.75 - half, 0.75 + half))
    assert r["control_accuracy"] == pytest.approx(0.4) and r["control"] == "shuffled"
    assert r["control_accuracy_ci_high"] == pytest.approx(0.4 + T3 * 0.1 / math.sqrt(3))
    assert r["selected_steps"] == "2 2 4" and r["selected_step_mode"] == 2
    assert r["test_gain"] == pytest.approx(0.0)
    assert (r["n_seeds_gaining"], r["n_seeds_losing"]) == (1, 1)
    assert r["relative_border_score_step1"] == pytest.approx(2.0)
    assert r["relative_border_score_step1_ci_low"] == pytest.approx(2.0 - T3 / math.sqrt(3))
    assert r["relative_border_score_step4"] == pytest.approx(1.0)
    assert r["relative_border_change_step4"] == pytest.approx(-1.0)
    assert math.isnan(r["relative_border_change_step1"])
    assert math.isnan(r["pooled_relative_border_score_step1"])  # explain wrote none
    assert rows["common"]["relative_border_score_step1"] == pytest.approx(2.5)
    assert rows["common"]["test_accuracy_train_step"] == r["test_accuracy_train_step"]


def test_architecture_pairs_by_hand():
    a = _data("a", acc=[0.5, 0.5, 0.75], gains=[0.25, 0.0, 0.0], selected=[2, 1, 1],
              rel=[1.0, 2.0, 3.0], correct=[[1, 1, 0, 0], [1, 0, 1, 0], [1, 1, 1, 0]])
    b = _data("b", acc=[0.25, 0.5, 0.5], gains=[0.0, 0.0, -0.25], selected=[1, 1, 2],
              rel=[2.0, 2.0, 2.0], correct=[[0, 0, 0, 1], [1, 0, 1, 0], [0, 1, 1, 0]])
    pairs = architecture_pairs([a, b])
    acc = pairs[pairs["quantity"] == "test_accuracy_train_step"].iloc[0]
    assert (acc["model_a"], acc["model_b"]) == ("a", "b")
    # per seed over the same 4 videos: 0.5 - 0.25, 0.5 - 0.5, 0.75 - 0.5
    assert acc["per_seed"] == "0.25 0 0.25"
    assert acc["mean"] == pytest.approx(1 / 6)
    sd = float(np.std([0.25, 0.0, 0.25], ddof=1))
    assert acc["ci_low"] == pytest.approx(1 / 6 - T3 * sd / math.sqrt(3))
    assert (acc["n_a_higher"], acc["n_b_higher"]) == (2, 0)
    # seed 0: a right only on v0, v1; b right only on v3 -> McNemar(2, 1) = 1.0
    assert acc["per_seed_n_a_only"] == "2 0 1" and acc["per_seed_n_b_only"] == "1 0 0"
    assert acc["per_seed_mcnemar_p"].split()[0] == "1"
    gain = pairs[pairs["quantity"] == "test_gain"].iloc[0]
    assert gain["per_seed"] == "0.25 0 0.25" and gain["mean"] == pytest.approx(1 / 6)
    rel = pairs[(pairs["quantity"] == "relative_border_score")
                & (pairs["analyzer_kind"] == "common") & (pairs["step"] == 1)].iloc[0]
    assert rel["per_seed"] == "-1 0 1" and rel["mean"] == pytest.approx(0.0)
    assert rel["ci_high"] == pytest.approx(T3 * 1.0 / math.sqrt(3))
    assert set(pairs["step"].dropna()) == {1, 4}
    assert not (pairs["quantity"] == "pooled_relative_border_score").any()  # all NaN: no rows


def test_study_refuses_model_and_models(tmp_path, capsys):
    from kvlrp.cli import main

    code = main(["study", "--data", str(tmp_path), "--out", str(tmp_path / "o"),
                 "--model", "c3d_small", "--models", "c3d_small", "cnn_gru_small"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--model" in err[0] and "--models" in err[0]


def test_model_option_reads_literals_and_names():
    assert model_option("c3d_small.widths=8,16,32") == ("c3d_small", "widths", (8, 16, 32))
    assert model_option("c3d_small.dense_units=64") == ("c3d_small", "dense_units", 64)
    assert model_option("cnn_gru_small.frame_features=grid") == ("cnn_gru_small",
                                                                 "frame_features", "grid")
    for bad in ("c3d_small=8", "widths=8", "c3d_small.widths", "c3d_small.widths="):
        with pytest.raises(Exception, match="expected MODEL.NAME=VALUE"):
            model_option(bad)


def test_per_model_options_refuse_unknown_models_and_options():
    models = ["c3d_small", "cnn_gru_small"]
    assert per_model_options(models, {"cnn_gru_small": {"grid_channels": 2}}) == {
        "c3d_small": {}, "cnn_gru_small": {"grid_channels": 2}}
    with pytest.raises(ValueError, match="vivit_small, which the study does not train"):
        per_model_options(models, {"vivit_small": {"dim": 8}})
    with pytest.raises(ValueError, match="c3d_small takes no option tubelet; its options: "):
        per_model_options(models, {"c3d_small": {"tubelet": (2, 8, 8)}})


def test_study_refuses_model_option_for_one_architecture(tmp_path, capsys):
    from kvlrp.cli import main

    code = main(["study", "--data", str(tmp_path), "--out", str(tmp_path / "o"),
                 "--model", "c3d_small", "--model-option", "c3d_small.widths=4,8,8"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--model-option is for --models" in err[0]


# --- the tiny study, independent recomputation ---------------------------------------------

def _reproduction():
    """``benchmarks/reproduce_study_seed.py`` as a module: the recomputation from the per-clip
    outputs with numpy / pandas only, independent of the package."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "reproduce_study_seed", REPO / "benchmarks" / "reproduce_study_seed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_two_architectures_end_to_end(synthetic_shards, tmp_path, capsys, caplog):
    from kvlrp.cli import main

    out = tmp_path / "study"
    models = ["c3d_small", "cnn_gru_small"]
    argv = ["study", "--data", str(synthetic_shards), "--out", str(out), "--seeds", "3", "4",
            "--models", *models, "--clip-len", "4", "--size", "16", "--epochs", "1",
            "--steps-per-epoch", "2", "--batch-size", "4", "--widths", "4", "8",
            "--dense-units", "8", "--model-option", "cnn_gru_small.grid_channels=2",
            "--steps", "1", "2", "--explain-clips", "1",
            "--stride-clips", "1", "--prior-seeds", "1", "--flip-videos", "2", "--n-boot", "50",
            "--no-progress"]
    with caplog.at_level("INFO", logger="kvlrp.analysis.study_architectures"):
        assert main(argv) == 0
    assert "cnn_gru_small takes no dense_units" in caplog.text
    printed = capsys.readouterr().out
    assert "study of 2 architectures over seeds [3, 4] (common analyzer cp_lrp)" in printed
    assert "cnn_gru_small: natural lrp.epsilon, common cp_lrp" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kind"] == "study_architectures" and summary["models"] == models
    assert summary["analyzers"]["c3d_small"] == {"natural": "deep_taylor.bounded",
                                                 "common": "cp_lrp"}
    assert summary["provenance"]["command"][:2] == ["kvlrp", "study"]
    for m in models:
        assert json.loads((out / m / "summary.json").read_text())["kind"] == "study"
        for s in (3, 4):
            for sub in ("model", "explain", "explain_common", "strides"):
                assert (out / m / f"seed{s}" / sub / ("model.keras" if sub == "model"
                                                      else "summary.json")).exists()
            info = json.loads((out / m / f"seed{s}" / "model" / "kvlrp.json").read_text())
            assert info["model_kwargs"].get("grid_channels") == (2 if m == "cnn_gru_small"
                                                                 else None)
            common = json.loads((out / m / f"seed{s}" / "explain_common" / "summary.json")
                                .read_text())
            assert common["analyzer"] == "cp_lrp"
    table = pd.read_csv(out / "study_architectures.csv")
    assert sorted(zip(table["model"], table["analyzer_kind"])) == [
        ("c3d_small", "common"), ("c3d_small", "natural"),
        ("cnn_gru_small", "common"), ("cnn_gru_small", "natural")]
    assert table["test_accuracy_train_step"].between(0, 1).all()
    assert table["control_accuracy"].between(0, 1).all() and (table["control"] == "shuffled").all()
    assert table["relative_border_score_step1"].notna().all()
    assert table["relative_border_change_step2"].notna().all()
    pairs = pd.read_csv(out / "study_architecture_pairs.csv")
    acc = pairs[pairs["quantity"] == "test_accuracy_train_step"]
    assert len(acc) == 1 and acc.iloc[0]["model_a"] == "c3d_small"
    assert acc.iloc[0]["model_b"] == "cnn_gru_small" and acc.iloc[0]["n_seeds"] == 2
    assert set(pairs["analyzer_kind"].dropna()) == {"natural", "common"}
    report = (out / "report.md").read_text()
    assert "Across 2 architectures" in report
    assert (out / "plots" / "study_architectures.png").exists()
    assert "cnn_gru_small" in (out / "report.html").read_text(encoding="utf-8")

    # the held-out check: one seed's accuracy and border scores from its per-clip outputs
    reproduce = _reproduction()
    seed_dir = out / "cnn_gru_small" / "seed4"
    row = pd.read_csv(out / "cnn_gru_small" / "study_seeds.csv").set_index("seed").loc[4]
    assert reproduce.video_accuracy(seed_dir / "strides", 1) == pytest.approx(
        row["test_accuracy_train_step"])
    border = pd.read_csv(out / "cnn_gru_small" / "study_border.csv")
    for kind, sub in (("natural", "explain"), ("common", "explain_common")):
        b, rel = reproduce.border_scores(seed_dir / sub, 1)
        mine = border[(border["seed"] == 4) & (border["step"] == 1)
                      & (border["analyzer_kind"] == kind)].iloc[0]
        assert b == pytest.approx(mine["border_score"], rel=1e-6)
        assert rel == pytest.approx(mine["relative_border_score"], rel=1e-6)
    # ... and the table across architectures is the mean of its two seeds
    both = [reproduce.border_scores(out / "cnn_gru_small" / f"seed{s}" / "explain_common", 1)[1]
            for s in (3, 4)]
    r = table[(table["model"] == "cnn_gru_small") & (table["analyzer_kind"] == "common")].iloc[0]
    assert r["relative_border_score_step1"] == pytest.approx(np.mean(both), rel=1e-6)
    script = subprocess.run([sys.executable, str(REPO / "benchmarks" / "reproduce_study_seed.py"),
                             str(out), "cnn_gru_small", "4"], capture_output=True, text=True,
                            check=True, cwd=REPO)
    assert "all match" in script.stdout, script.stdout

    # re-running resumes: no epoch trained again, no step explained again
    watched = [p for m in models for s in (3, 4) for p in
               [out / m / f"seed{s}" / "model" / "history.csv",
                *sorted((out / m / f"seed{s}" / "explain_common" / "partial").glob("*.csv"))]]
    before = {p: p.stat().st_mtime_ns for p in watched}
    assert main(argv) == 0
    assert {p: p.stat().st_mtime_ns for p in watched} == before
    again = pd.read_csv(out / "study_architectures.csv")
    pd.testing.assert_frame_equal(again, table)


def test_border_rows_carry_pooled_columns_when_explain_wrote_them(tmp_path):
    from kvlrp.analysis.study import BORDER_COLUMNS, border_rows

    scores = pd.DataFrame({"step": [1, 4], "class": "all", "n_clips": 5,
                           "border_score": [1.5, 1.2], "relative_border_score": [1.1, 1.0]})
    changes = pd.DataFrame({"step": [4], "reference_step": 1, "relative_border_change": [-0.1]})
    scores.to_csv(tmp_path / "border_scores.csv", index=False)
    changes.to_csv(tmp_path / "border_changes.csv", index=False)
    old = border_rows(7, tmp_path, "common", "cp_lrp")
    assert [r["step"] for r in old] == [1, 4] and set(old[0]) == set(BORDER_COLUMNS)
    assert old[1]["relative_border_change"] == -0.1 and old[0]["analyzer"] == "cp_lrp"
    assert all(math.isnan(r["pooled_relative_border_score"]) for r in old)
    scores["pooled_relative_border_score"] = [1.3, 1.05]
    scores["pooled_relative_border_ci_low"] = [1.2, 0.9]
    scores["pooled_relative_border_ci_high"] = [1.4, 1.2]
    changes["pooled_relative_border_change"] = [-0.25]
    changes["pooled_relative_border_change_ci_low"] = [-0.4]
    changes["pooled_relative_border_change_ci_high"] = [-0.1]
    scores.to_csv(tmp_path / "border_scores.csv", index=False)
    changes.to_csv(tmp_path / "border_changes.csv", index=False)
    new = border_rows(7, tmp_path, "common", "cp_lrp")
    assert [r["pooled_relative_border_score"] for r in new] == [1.3, 1.05]
    assert new[1]["pooled_relative_border_ci_high"] == 1.2
    assert (new[1]["pooled_relative_border_change"],
            new[1]["pooled_relative_border_change_ci_low"]) == (-0.25, -0.4)
    assert math.isnan(new[0]["pooled_relative_border_change"])
    # ... and on to the table across seeds
    from kvlrp.analysis.study import summarize_seeds

    seeds = pd.DataFrame({"test_gain": [0.0], "test_accuracy_train_step": [0.5],
                          "test_accuracy_selected_step": [0.5]})
    table = summarize_seeds(seeds, pd.DataFrame(new, columns=BORDER_COLUMNS))
    pooled = table[table["quantity"] == "pooled_relative_border_change"]
    assert list(pooled["step"]) == [4] and list(pooled["analyzer_kind"]) == ["common"]
