"""Issue 26: every output-folder problem of every command with ``--out`` (a file where a folder
is expected, a folder that cannot be written, a kernel pseudo-filesystem) is one line on stderr
and exit 2 before any work: nothing on stdout (no device line), nothing written; arguments are
checked before the device line; ``kvlrp --version``."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import main, one_line

from kvlrp import __version__

pytestmark = pytest.mark.robust


def _argv(command: str, inputs: Path, out: str) -> list[str]:
    """``kvlrp COMMAND`` with inputs that exist (never read: the output check comes first)."""
    model, data, manifest = inputs / "model.keras", inputs / "shards", inputs / "manifest.csv"
    return {
        "demo": ["demo", "--quick", "--out", out],
        "synth": ["synth", "--out", out],
        "manifest": ["manifest", "class-folders", str(inputs), "--out", f"{out}/manifest.csv"],
        "prepare": ["prepare", str(manifest), "--out", out],
        "train": ["train", "--data", str(data), "--out", out],
        "explain": ["explain", "--model", str(model), "--normalization", "unit", "--data",
                    str(data), "--out", out],
        "strides": ["strides", "--model", str(model), "--normalization", "unit", "--data",
                    str(data), "--out", out],
        "study": ["study", "--data", str(data), "--out", out],
        "merge": ["merge", str(data), "--out", out],
    }[command]


COMMANDS = ["demo", "synth", "manifest", "prepare", "train", "explain", "strides", "study",
            "merge"]


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "inputs"
    (folder / "shards").mkdir(parents=True)
    (folder / "model.keras").write_text("never loaded")
    (folder / "manifest.csv").write_text("path,label\n")
    return folder


def _refused(argv: list[str], capsys, *words: str) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    line = one_line(captured.err)
    assert code == 2, captured
    assert line.startswith(f"kvlrp {argv[0]}: ") and "--out" in line, line
    for word in words:
        assert word in line, line
    assert captured.out == ""  # no device line, no work
    return line


@pytest.mark.parametrize("command", COMMANDS)
def test_a_file_in_the_way_is_one_line_before_any_work(command, inputs, tmp_path, capsys):
    blocker = tmp_path / "afile.txt"
    blocker.write_text("keep")
    _refused(_argv(command, inputs, str(blocker)), capsys, "is a file, not a folder")
    _refused(_argv(command, inputs, str(blocker / "below")), capsys, "is a file, not a folder")
    assert blocker.read_text() == "keep"


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unwritable_folder_is_one_line_before_any_work(command, inputs, unwritable_dir,
                                                          capsys):
    _refused(_argv(command, inputs, str(unwritable_dir / "out")), capsys, "cannot write in",
             str(unwritable_dir))
    assert list(unwritable_dir.iterdir()) == []


@pytest.mark.parametrize("command", COMMANDS)
def test_a_pseudo_filesystem_is_one_line_before_any_work(command, inputs, capsys):
    if not Path("/proc/self/mountinfo").is_file():
        pytest.skip("no /proc here")
    _refused(_argv(command, inputs, "/proc/kvlrp-out"), capsys, "pseudo-filesystem")


def test_arguments_are_checked_before_the_device_line(tmp_path, capsys):
    code = main(["explain", "--model", str(tmp_path / "nope"), "--data", str(tmp_path),
                 "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert "--model" in one_line(captured.err) and "does not exist" in captured.err
    assert not (tmp_path / "out").exists()


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"kvlrp {__version__}"
