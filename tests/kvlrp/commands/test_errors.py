"""The command line's one error path: bad options and bad input give one line on stderr, exit 2."""

from __future__ import annotations

import logging

import pytest
from repo_paths import REPO_ROOT

from kvlrp import cli
from kvlrp.cli import main
from kvlrp.commands.shared.errors import CommandError, bad_input_is_a_command_error

BAD_OPTIONS = [
    (["train", "--data", "d", "--out", "o", "--val-clips", "some"], "--val-clips",
     "positive int or 'all'"),
    (["train", "--data", "d", "--out", "o", "--epochs", "0"], "--epochs", "positive int"),
    (["train", "--data", "d", "--out", "o", "--lr", "-1"], "--lr", "positive finite number"),
    (["strides", "--model", "m", "--data", "d", "--out", "o", "--steps", "1", "0"], "--steps",
     "positive int"),
    (["explain", "--model", "m", "--data", "d", "--out", "o", "--batch-size", "x"],
     "--batch-size", "positive int"),
    (["explain", "--model", "m", "--data", "d", "--out", "o", "--prior-seeds", "-1"],
     "--prior-seeds", "int >= 0"),
    (["manifest", "class-folders", "r", "--out", "m.csv", "--val-fraction", "1.5"],
     "--val-fraction", "fraction in [0, 1)"),
    (["prepare", "m.csv", "--out", "s", "--workers", "-1"], "--workers", "int >= 0"),
    (["synth", "--out", "s", "--size", "big"], "--size", "positive int"),
]


@pytest.mark.parametrize("argv, option, expected", BAD_OPTIONS,
                         ids=[" ".join(a[:1] + [o]) for a, o, _ in BAD_OPTIONS])
def test_bad_option_values_are_refused_naming_the_option_and_what_is_right(
        argv, option, expected, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert option in err and expected in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and err.startswith(f"kvlrp {argv[0]}: ")


def test_bad_input_is_one_line_on_stderr_with_exit_status_2(tmp_path, capsys):
    missing = tmp_path / "nothing-here.csv"
    assert main(["prepare", str(missing), "--out", str(tmp_path / "shards")]) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.strip().splitlines()
             if not line.startswith("kvlrp: using TensorFlow's oneDNN")]  # kernel notice
    assert len(lines) == 1 and lines[0].startswith("kvlrp prepare: ")
    assert "nothing-here.csv" in lines[0]
    assert captured.out == ""


def test_command_errors_keep_the_message_on_one_line():
    with pytest.raises(CommandError, match="^bad thing: use a good one$") as info:
        with bad_input_is_a_command_error():
            raise ValueError("bad thing:\n   use a good one")
    assert isinstance(info.value.__cause__, ValueError)
    with pytest.raises(KeyError):  # not bad input: a bug, keeps its traceback
        with bad_input_is_a_command_error():
            raise KeyError("x")


def test_a_command_that_fails_to_import_is_an_error_not_a_missing_command(monkeypatch):
    monkeypatch.setitem(cli.COMMANDS, "broken", "module_that_does_not_exist")
    with pytest.raises(ModuleNotFoundError, match="module_that_does_not_exist"):
        cli.build_parser()


def test_library_messages_reach_stderr_through_logging(capsys):
    cli.show_library_messages()
    cli.show_library_messages()  # idempotent: one handler
    logging.getLogger("kvlrp.analysis.somewhere").warning("recomputing step %d", 3)
    assert capsys.readouterr().err.splitlines() == ["kvlrp: recomputing step 3"]


def test_library_code_does_not_print():
    import ast

    root = REPO_ROOT
    offenders = []
    for package in ("analyzers", "kvlrp"):
        for path in (root / package).rglob("*.py"):
            rel = path.relative_to(root).as_posix()
            if rel.startswith("kvlrp/commands/") or rel == "kvlrp/cli.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                        and node.func.id == "print"):
                    offenders.append(f"{rel}:{node.lineno}")
    assert offenders == [], f"library code prints (use logging): {offenders}"
