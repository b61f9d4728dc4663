"""Issue 16, evaluation side: model and shard classes compared before any work, resume keyed by
the shards' content (and every setting), empty steps never marked complete, and bad arguments
of ``strides`` / ``explain`` refused in one line with exit 2 before any computation."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil

import pandas as pd
import pytest
from cli_helpers import main
from cli_helpers import one_line as _one_line

from kvlrp.analysis.explain.run import run_explain
from kvlrp.analysis.strides.run import run_strides

#: the robustness set (bad input, damaged files, kills, resumes): ``pytest -m robust``
pytestmark = pytest.mark.robust

FAST = {"steps": [1], "clips_per_video": 1, "control": False, "n_boot": 10, "progress": False,
        "select_on": "test"}
FAST_EXPLAIN = {"clips_per_video": 1, "prior_seeds": 0, "n_heatmaps": 0, "flip_videos": 0,
                "n_boot": 10, "progress": False}


# --- classes of model and shards ---

@pytest.mark.parametrize("classes, words", [
    (["drift_down", "drift_sideways", "drift_up"], "differ from the classes of"),
    (["drift_sideways", "drift_down", "drift_up", "still"], "(same names, other order)"),
])
def test_classes_of_model_and_shards_must_match(small_model, synthetic_shards, tmp_path,
                                               classes, words):
    model, info = small_model
    other = dataclasses.replace(info, classes=classes)
    for run, kwargs in ((run_strides, FAST), (run_explain, FAST_EXPLAIN)):
        out = tmp_path / run.__name__
        with pytest.raises(ValueError) as err:
            run(model, other, synthetic_shards, out, **kwargs)
        message = _one_line(str(err.value))
        assert words in message and str(classes) in message
        assert "['drift_down', 'drift_sideways', 'drift_up', 'still']" in message
        assert not out.exists()  # refused before any work


def test_model_outputs_must_match_its_classes(small_model, synthetic_shards, tmp_path):
    import keras

    from kvlrp.analysis.runs.class_check import check_classes
    from kvlrp.models import c3d_small

    _, info = small_model
    keras.utils.set_random_seed(0)
    five = c3d_small(5, frames=6, size=16, widths=(2, 2), dense_units=4)
    with pytest.raises(ValueError, match="the model has 5 outputs but its kvlrp.json lists 4"):
        check_classes(five, info, synthetic_shards)


# --- resume keyed by content ---

def test_shard_fingerprint_follows_content_not_path(synthetic_shards, tmp_path):
    from kvlrp.analysis.runs.run_files import shard_fingerprint

    copy = tmp_path / "copy"
    shutil.copytree(synthetic_shards, copy)
    assert shard_fingerprint(copy, "test") == shard_fingerprint(synthetic_shards, "test")
    index = pd.read_csv(copy / "index.csv", dtype=str)
    index.loc[index["split"] == "test", "label"] = index.loc[index["split"] == "test",
                                                             "label"].iloc[::-1].to_numpy()
    index.to_csv(copy / "index.csv", index=False)
    assert shard_fingerprint(copy, "test") != shard_fingerprint(synthetic_shards, "test")
    assert shard_fingerprint(copy, "train") == shard_fingerprint(synthetic_shards, "train")


@pytest.fixture
def shards_and_smaller(synthetic_manifest, synthetic_shards, tmp_path):
    """A copy of the synthetic shards, and a manifest (beside the videos) without one test
    video, to re-prepare the copy with."""
    shards = tmp_path / "shards"
    shutil.copytree(synthetic_shards, shards)
    table = pd.read_csv(synthetic_manifest, dtype=str)
    dropped = table[table["split"] == "test"].index[0]
    smaller = synthetic_manifest.parent / f"smaller_{tmp_path.name}.csv"
    table.drop(index=dropped).to_csv(smaller, index=False)
    yield shards, smaller
    smaller.unlink()


def test_strides_and_explain_recompute_after_the_shards_changed(small_model, shards_and_smaller,
                                                               tmp_path):
    from kvlrp.data.shards.folder import prepare_shards, read_index

    model, info = small_model
    shards, smaller = shards_and_smaller
    strides_out, explain_out = tmp_path / "strides", tmp_path / "explain"
    first = run_strides(model, info, shards, strides_out, **FAST)
    assert first["table"][0]["n_videos"] == 4
    run_explain(model, info, shards, explain_out, **FAST_EXPLAIN)
    before = set(pd.read_csv(explain_out / "frame_relevance.csv", dtype={"video_id": str})
                 ["video_id"])
    assert len(before) == 4
    prepare_shards(smaller, shards, workers=0, progress=False)  # one test video dropped
    kept = set(read_index(shards).query("split == 'test'")["video_id"])
    assert len(kept) == 3
    again = run_strides(model, info, shards, strides_out, **FAST)
    assert again["table"][0]["n_videos"] == 3
    run_explain(model, info, shards, explain_out, **FAST_EXPLAIN)
    after = set(pd.read_csv(explain_out / "frame_relevance.csv", dtype={"video_id": str})
                ["video_id"])
    assert after == kept


def test_batch_size_is_part_of_the_resume_key(small_model, synthetic_shards, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="kvlrp")  # library messages go through logging

    def messages() -> str:
        text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("kvlrp"))
        caplog.clear()
        return text

    model, info = small_model
    run_strides(model, info, synthetic_shards, tmp_path, batch_size=2, **FAST)
    messages()
    run_strides(model, info, synthetic_shards, tmp_path, batch_size=2, **FAST)
    assert "other settings" not in messages()  # same settings: reused
    run_strides(model, info, synthetic_shards, tmp_path, batch_size=3, **FAST)
    assert "written with other settings; recomputing" in messages()


# --- empty per-step results are never complete ---

def test_a_step_without_clips_is_an_error_and_never_marked_complete(small_model,
                                                                    synthetic_shards, tmp_path):
    model, info = small_model
    skip = dataclasses.replace(info, short_policy="skip")
    kwargs = {**FAST, "steps": [60]}  # span 301 frames: every video (24-48 frames) is short
    for _ in range(2):  # the second run says the same, it does not trip over the first
        with pytest.raises(ValueError, match="no evaluation clip was produced"):
            run_strides(model, skip, synthetic_shards, tmp_path, **kwargs)
    for meta in (tmp_path / "partial").rglob("*.json"):
        assert not json.loads(meta.read_text()).get("complete")
    with pytest.raises(ValueError, match="no evaluation clip at step 60"):
        run_explain(model, skip, synthetic_shards, tmp_path / "explain", steps=[60],
                    **FAST_EXPLAIN)


# --- the commands: one line, exit 2, before any computation ---

@pytest.mark.parametrize("command, extra, words", [
    ("strides", ["--batch-size", "0"], "argument --batch-size: expected a positive int, got '0'"),
    ("explain", ["--batch-size", "0"], "argument --batch-size: expected a positive int, got '0'"),
    ("explain", ["--heatmaps", "-1"], "argument --heatmaps: expected an int >= 0, got '-1'"),
    ("explain", ["--prior-seeds", "-1"], "argument --prior-seeds: expected an int >= 0, got '-1'"),
    ("explain", ["--flip-videos", "-2"], "argument --flip-videos: expected an int >= 0, got '-2'"),
    ("strides", ["--steps", "0", "2"], "argument --steps: expected a positive int, got '0'"),
    ("explain", ["--steps", "-1"], "argument --steps: expected a positive int, got '-1'"),
])
def test_bad_arguments_are_one_line_errors(saved_model, synthetic_shards, tmp_path, capsys,
                                           command, extra, words):
    out = tmp_path / "out"
    code = main([command, "--model", str(saved_model), "--data", str(synthetic_shards),
                 "--out", str(out), "--no-progress", *extra])
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and line.startswith(f"kvlrp {command}: ") and words in line
    assert not out.exists()


@pytest.mark.parametrize("command", ["strides", "explain"])
def test_out_naming_a_file_is_refused_before_computing(saved_model, synthetic_shards, tmp_path,
                                                       capsys, command):
    target = tmp_path / "results.txt"
    target.write_text("keep me")
    code = main([command, "--model", str(saved_model), "--data", str(synthetic_shards),
                 "--out", str(target), "--no-progress"])
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and "is a file, not a folder" in line and str(target) in line
    assert target.read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["results.txt"]
