"""Issue 16, the commands: bad arguments of ``train``, ``synth`` and ``report`` and damaged
shard files (truncated, bit-flipped) give one line and exit 2, never a traceback, and are
refused before anything is computed or overwritten."""

from __future__ import annotations

import shutil

import pytest
from cli_helpers import main
from cli_helpers import one_line as _one_line

#: the robustness set (bad input, damaged files, kills, resumes): ``pytest -m robust``
pytestmark = pytest.mark.robust

TRAIN = ["--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "2", "--clip-len", "4",
         "--size", "16", "--widths", "2", "2", "--dense-units", "4", "--no-progress"]


@pytest.mark.parametrize("option, value, words", [
    ("--size", "0", "argument --size: expected a positive int, got '0'"),
    ("--clip-len", "0", "argument --clip-len: expected a positive int, got '0'"),
    ("--step", "0", "argument --step: expected a positive int, got '0'"),
    ("--val-clips", "abc", "argument --val-clips: expected a positive int or 'all', got 'abc'"),
    ("--val-clips", "0", "argument --val-clips: expected a positive int or 'all', got '0'"),
])
def test_train_refuses_bad_clip_settings(synthetic_shards, tmp_path, capsys, option, value,
                                         words):
    out = tmp_path / "model"
    code = main(["train", "--data", str(synthetic_shards), "--out", str(out), *TRAIN,
                 option, value])
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and line.startswith("kvlrp train: ") and words in line
    assert not out.exists()


def test_train_refuses_an_out_that_is_a_file(synthetic_shards, tmp_path, capsys):
    target = tmp_path / "model.keras"
    target.write_text("not a folder")
    code = main(["train", "--data", str(synthetic_shards), "--out", str(target), *TRAIN])
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and "is a file, not a folder" in line
    assert target.read_text() == "not a folder"


@pytest.mark.parametrize("args, words", [
    (["--videos-per-class", "0"], "argument --videos-per-class: expected a positive int"),
    (["--size", "7"], "size must be an even number in 8..1024"),
    (["--size", "100000"], "size must be an even number in 8..1024"),
    (["--min-frames", "0"], "argument --min-frames: expected a positive int"),
    (["--min-frames", "50", "--max-frames", "10"], "got 50, 10"),
])
def test_synth_refuses_bad_arguments(tmp_path, capsys, args, words):
    out = tmp_path / "synth"
    assert main(["synth", "--out", str(out), *args]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("kvlrp synth: ") and words in line
    assert not out.exists()


def test_synth_refuses_an_out_that_is_a_file(tmp_path, capsys):
    target = tmp_path / "data.txt"
    target.write_text("keep")
    assert main(["synth", "--out", str(target), "--videos-per-class", "1"]) == 2
    assert "is a file, not a folder" in _one_line(capsys.readouterr().err)
    assert target.read_text() == "keep"


@pytest.mark.parametrize("content", ['{"kind": "strides", "tab', "[1, 2]", "\xff\xfe"])
def test_report_on_a_corrupt_summary_is_one_line(tmp_path, capsys, content):
    run = tmp_path / "strides"
    run.mkdir()
    (run / "summary.json").write_bytes(content.encode("latin-1"))
    assert main(["report", str(tmp_path)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert str(run / "summary.json") in line and "re-run the command that wrote it" in line
    assert not (tmp_path / "report.md").exists()


# --- damaged shard files ---

def _damage(shards, split: str, how: str) -> None:
    for path in sorted(shards.glob(f"{split}-*.tfrecord")):
        data = bytearray(path.read_bytes())
        if how == "truncated":
            path.write_bytes(bytes(data[: len(data) * 2 // 3]))
        else:  # one bit flipped in the middle of the frames
            data[len(data) // 2] ^= 0x10
            path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["truncated", "bit-flipped"])
@pytest.mark.parametrize("command", ["strides", "explain"])
def test_damaged_shards_in_evaluation_are_one_line(saved_model, synthetic_shards, tmp_path,
                                                   capsys, command, how):
    shards = tmp_path / "shards"
    shutil.copytree(synthetic_shards, shards)
    _damage(shards, "test", how)
    code = main([command, "--model", str(saved_model), "--data", str(shards), "--out",
                 str(tmp_path / "out"), "--no-progress", "--clips-per-video", "1",
                 *(["--steps", "1", "--no-control", "--select-on", "test"]
                   if command == "strides" else ["--prior-seeds", "0", "--flip-videos", "0"])])
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and line.startswith(f"kvlrp {command}: the shards in {shards} are damaged")
    assert "re-run `kvlrp prepare`" in line


@pytest.mark.parametrize("how", ["truncated", "bit-flipped"])
def test_damaged_shards_in_training_are_one_line(synthetic_shards, tmp_path, capsys, how):
    shards = tmp_path / "shards"
    shutil.copytree(synthetic_shards, shards)
    _damage(shards, "train", how)
    code = main(["train", "--data", str(shards), "--out", str(tmp_path / "model"), *TRAIN])
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and line.startswith(f"kvlrp train: the shards in {shards} are damaged")
