"""Issue 26's small oddities, each as a newcomer met it on the command line: a duplicate class
name names its flag; strides refuses a sigmoid-output model as explain does (one check); a
model input larger than the shards' frames is one warning line; a resumed strides run says it
resumed; temporary files a killed run left are removed when the next run starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import main, one_line
from own_models import own_model

pytestmark = pytest.mark.robust

FAST_STRIDES = ["--steps", "1", "--clips-per-video", "1", "--no-control", "--no-progress"]
FAST_EXPLAIN = ["--clips-per-video", "1", "--prior-seeds", "0", "--flip-videos", "1",
                "--heatmaps", "1", "--no-progress"]


@pytest.fixture(scope="module")
def my_model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("own") / "my.keras"
    own_model(frames=4, size=16).save(path)
    return path


def _common(model: Path, shards: Path, out: Path) -> list[str]:
    return ["--model", str(model), "--normalization", "unit", "--data", str(shards),
            "--out", str(out)]


def _stderr_lines(err: str) -> list[str]:
    notice = "kvlrp: using TensorFlow's oneDNN"
    return [line for line in err.splitlines() if line.strip() and not line.startswith(notice)]


@pytest.mark.parametrize("how", ["--classes", "--classes-file"])
def test_a_duplicate_class_name_names_its_flag(how, my_model, synthetic_shards, tmp_path,
                                               capsys):
    names = ["drift_down", "still", "drift_up", "still"]
    if how == "--classes":
        given = ["--classes", *names]
    else:
        (tmp_path / "classes.txt").write_text("\n".join(names) + "\n")
        given = ["--classes-file", str(tmp_path / "classes.txt")]
    code = main(["strides", *_common(my_model, synthetic_shards, tmp_path / "s"), *given,
                 *FAST_STRIDES])
    line = one_line("\n".join(_stderr_lines(capsys.readouterr().err)))
    assert code == 2 and f"{how}" in line and "names the class 'still' twice" in line, line
    assert "ModelInfo" not in line


def test_strides_refuses_a_sigmoid_output_model_as_explain_does(synthetic_shards, tmp_path,
                                                                capsys):
    import keras

    inputs = keras.Input((4, 16, 16, 3))
    x = keras.layers.GlobalAveragePooling3D()(keras.layers.Conv3D(2, 3)(inputs))
    path = tmp_path / "multilabel.keras"
    keras.Model(inputs, keras.layers.Dense(4, activation="sigmoid", name="tags")(x),
                name="tagger").save(path)
    lines = {}
    for command, fast in (("strides", FAST_STRIDES), ("explain", FAST_EXPLAIN)):
        code = main([command, *_common(path, synthetic_shards, tmp_path / command), *fast])
        err = "\n".join(_stderr_lines(capsys.readouterr().err))
        assert code == 2, err
        lines[command] = one_line(err).split(": ", 1)[1]
    assert lines["strides"] == lines["explain"]
    assert "ends in a sigmoid (layer 'tags')" in lines["strides"]
    assert "softmax or linear (logits) output" in lines["strides"]
    assert not (tmp_path / "strides").exists()


def test_a_model_input_larger_than_the_frames_is_one_warning(synthetic_shards, tmp_path,
                                                             capsys):
    path = tmp_path / "big.keras"
    own_model(frames=4, size=48).save(path)  # the synthetic shards' frames are 32 px
    assert main(["strides", *_common(path, synthetic_shards, tmp_path / "s"),
                 *FAST_STRIDES]) == 0
    lines = _stderr_lines(capsys.readouterr().err)
    assert len(lines) == 1, lines
    assert lines[0].startswith("kvlrp: the 48-pixel crop is larger than the frames of 4 of 4 "
                               "videos in split 'test'")
    assert "upscaled" in lines[0] and "--short-side 48" in lines[0]


def test_a_resumed_strides_run_says_it_resumed(my_model, synthetic_shards, tmp_path, capsys):
    argv = ["strides", *_common(my_model, synthetic_shards, tmp_path / "s"), *FAST_STRIDES]
    assert main(argv) == 0
    assert not [ln for ln in _stderr_lines(capsys.readouterr().err) if "resum" in ln]
    assert main(argv) == 0
    lines = _stderr_lines(capsys.readouterr().err)
    assert any(ln.startswith("kvlrp: resuming from ") and "step 1 complete" in ln
               for ln in lines), lines


def test_temporary_files_of_a_killed_run_are_removed_at_the_next_start(
        my_model, synthetic_shards, tmp_path, capsys):
    out = tmp_path / "explain"
    argv = ["explain", *_common(my_model, synthetic_shards, out), *FAST_EXPLAIN]
    assert main(argv) == 0
    gifs = sorted((out / "heatmaps").glob("*.gif"))
    assert gifs
    stray = [out / "heatmaps" / f".{gifs[0].name}.k9x_2abc.tmp",
             out / "partial" / ".frame_relevance_step1.csv.abcdefgh.tmp"]
    for path in stray:
        path.write_bytes(b"half")
    capsys.readouterr()
    assert main(argv) == 0
    assert not any(path.exists() for path in stray)
    assert any("removed 2 temporary file(s) an interrupted run left" in ln
               for ln in _stderr_lines(capsys.readouterr().err))
