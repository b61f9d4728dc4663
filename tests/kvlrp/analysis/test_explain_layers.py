"""``kvlrp explain --layers ... --channels-layer ...`` end to end on a tiny saved model: the
layer tables, the depth x position plot and the report section; the input's row equals the
frame profile; a re-run resumes; analyzers without layer relevance are refused in one line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from kvlrp.analysis.measures.layer_profiles import (
    CHANNEL_COLUMNS,
    LAYER_BORDER_COLUMNS,
    PROFILE_COLUMNS,
)
from kvlrp.analysis.measures.pooled import POOLED_COLUMNS
from kvlrp.cli import main

COMMON = ["--clips-per-video", "2", "--prior-seeds", "1", "--heatmaps", "0",
          "--flip-videos", "0", "--batch-size", "4", "--no-progress"]


@pytest.fixture(scope="module")
def layer_run(saved_model, synthetic_shards, tmp_path_factory):
    """Output folder of an explain run with every layer that resolves time and the channels
    of ``conv2``, and what it printed."""
    out = tmp_path_factory.mktemp("explain_layers")
    args = ["explain", "--model", str(saved_model), "--data", str(synthetic_shards),
            "--out", str(out), *COMMON, "--layers", "auto", "--channels-layer", "conv2"]
    assert main(args) == 0
    return out, args


def test_layer_tables_plot_and_summary(layer_run, capsys):
    out, _ = layer_run
    profiles = pd.read_csv(out / "layer_profiles.csv")
    assert list(profiles.columns) == PROFILE_COLUMNS
    layers = profiles.drop_duplicates("layer").sort_values("depth")
    assert layers["layer"].iloc[0] == "clip" and layers["depth"].iloc[0] == 0
    assert {"conv1", "conv2"} <= set(layers["layer"])
    assert "fc" not in set(layers["layer"])  # one time cell: not chosen by auto
    clip_len = json.loads((out / "summary.json").read_text())["clip_len"]
    for _, g in profiles.groupby("layer"):
        assert sorted(g["position"]) == list(range(clip_len))  # input frame positions
        assert g["share"].sum() == pytest.approx(1.0)
        assert g["prior_share"].notna().all()
    # depth 0 is the model input: the same profile as the frame table's
    frame = pd.read_csv(out / "frame_relevance_summary.csv")
    frame = frame[frame["class"].astype(str) == "all"].sort_values("position")
    np.testing.assert_allclose(profiles[profiles["depth"] == 0]["share"],
                               frame["mean_share"], rtol=1e-6)
    # ... and the same pooled border scores as border_scores.csv (same clips and videos)
    layer_b = pd.read_csv(out / "layer_border_scores.csv")
    assert list(layer_b.columns) == LAYER_BORDER_COLUMNS
    frame_b = pd.read_csv(out / "border_scores.csv")
    frame_b = frame_b[frame_b["class"].astype(str) == "all"].iloc[0]
    input_b = layer_b[layer_b["depth"] == 0].iloc[0]
    for column in POOLED_COLUMNS:
        assert input_b[column] == pytest.approx(frame_b[column], rel=1e-9, nan_ok=True)
    np.testing.assert_allclose(profiles[profiles["depth"] == 0]["pooled_share"].sum(), 1.0)
    clips = pd.read_csv(out / "layer_relevance.csv")
    assert clips.groupby(["layer", "video_id", "clip_index"])["share"].sum().round(9).eq(1).all()
    channels = pd.read_csv(out / "concept_profiles.csv")
    assert list(channels.columns) == CHANNEL_COLUMNS and set(channels["layer"]) == {"conv2"}
    assert channels["share"].sum() == pytest.approx(1.0)
    assert channels.drop_duplicates("channel")["border_share"].sum() == pytest.approx(1.0)
    assert (out / "layer_profiles.png").stat().st_size > 0
    summary = json.loads((out / "summary.json").read_text())
    assert {"layer_profiles", "concept_profiles", "layer_profiles_plot"} <= set(summary["files"])
    assert [b["layer"] for b in summary["layer_border"]] == list(layers["layer"])
    assert summary["config"]["layers"] == ["auto"]
    assert summary["config"]["channels_layer"] == "conv2"
    assert not list(out.glob("*.tmp*"))


def test_rerun_resumes_and_report_has_the_section(layer_run, capsys):
    out, args = layer_run
    state = out / "partial" / "explain_step1.json"
    before = state.stat().st_mtime_ns, (out / "layer_profiles.csv").read_text()
    assert main(args) == 0
    assert state.stat().st_mtime_ns == before[0]  # the step was reused, not recomputed
    assert (out / "layer_profiles.csv").read_text() == before[1]
    assert "layer 0 clip: border score" in capsys.readouterr().out
    assert main(["report", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert "Where the preference arises" in report and "Channels of `conv2`" in report
    assert "plots/layer_profiles.png" in report
    assert "pooled relative B" in report.split("Where the preference arises")[1]
    assert "Where the preference arises" in (out / "report.html").read_text()


@pytest.mark.parametrize("extra, message", [
    (["--analyzer", "gradient", "--layers", "auto"], "gives no relevance at intermediate"),
    (["--layers", "nope"], "no layer 'nope'"),
    (["--channels-layer", "fc"], "no time axis beside a channel axis"),
])
def test_refusals_are_one_line(saved_model, synthetic_shards, tmp_path, capsys, extra, message):
    code = main(["explain", "--model", str(saved_model), "--data", str(synthetic_shards),
                 "--out", str(tmp_path), *COMMON, *extra])
    assert code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if message in line]
    assert len(err) == 1 and err[0].startswith("kvlrp explain:")


def test_two_workers_merge_to_the_single_run(small_model, synthetic_shards, tmp_path):
    from kvlrp.analysis.explain.run import run_explain
    from kvlrp.analysis.runs.merge import merge_runs
    from kvlrp.analysis.runs.partition import Worker

    model, info = small_model
    kw = dict(steps=[1], split="test", clips_per_video=1, prior_seeds=1, n_heatmaps=0,
              flip_videos=0, n_boot=50, progress=False, layers=("auto",),
              channels_layer="conv2")
    run_explain(model, info, synthetic_shards, tmp_path / "single", **kw)
    for i in range(2):
        run_explain(model, info, synthetic_shards, tmp_path / f"w{i}", worker=Worker(2, i),
                    **kw)
    merge_runs([tmp_path / "w0", tmp_path / "w1"], tmp_path / "merged")
    for name in ("layer_profiles.csv", "layer_border_scores.csv", "layer_relevance.csv",
                 "layer_relevance_prior.csv", "concept_profiles.csv"):
        a, b = (pd.read_csv(tmp_path / d / name) for d in ("single", "merged"))
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-5, atol=1e-7, obj=name)


def test_options_and_their_aliases():
    from kvlrp.cli import build_parser
    from kvlrp.commands.explain import config_from_args

    base = ["explain", "--model", "m", "--data", "d", "--out", "o"]
    parse = build_parser().parse_args
    config = config_from_args(parse([*base, "--layers", "conv1", "pool2",
                                     "--channels-layer", "conv2"]))
    assert config.layers == ("conv1", "pool2") and config.channels_layer == "conv2"
    config = config_from_args(parse([*base, "--layer-profiles", "--concepts", "conv1"]))
    assert config.layers == ("auto",) and config.channels_layer == "conv1"
    config = config_from_args(parse(base))
    assert config.layers == () and config.channels_layer is None
