"""The README's "Your own model and videos" recipe, run as written: the five real clips as class
folders, a tiny hand-built model saved as ``my_model.keras``, then manifest -> prepare ->
strides -> explain -> report, command by command (issue 26: it used to stop at strides because
the manifest put all five clips in train). docs/own-model.md shows the same commands."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import pandas as pd
import pytest
from cli_helpers import main
from own_models import own_model
from repo_paths import REPO_ROOT

pytestmark = pytest.mark.slow

#: The clips by class folder (classes of one, two and two videos, as a newcomer's folder).
CLASSES = {"cooking": ["flipping_pancake.mkv"],
           "household": ["cleaning_pool.mp4", "ucf101_ApplyEyeMakeup.avi"],
           "sport": ["arm_wrestling.mp4", "basketball.mp4"]}


def recipe(page: Path, heading: str) -> list[list[str]]:
    """The ``kvlrp`` commands of the first ``sh`` block after ``heading`` in ``page``."""
    text = page.read_text(encoding="utf-8")
    section = text[text.index(heading):]
    block = re.search(r"```sh\n(.*?)```", section, flags=re.DOTALL).group(1)
    commands = [shlex.split(line, comments=True)
                for line in block.replace("\\\n", " ").splitlines()]
    commands = [c for c in commands if c]
    assert commands and all(c[0] == "kvlrp" for c in commands), commands
    return [c[1:] for c in commands]


def test_docs_show_the_readme_recipe():
    readme = recipe(REPO_ROOT / "README.md", "## Your own model and videos")
    assert recipe(REPO_ROOT / "docs" / "own-model.md", "## End to end") == readme


def test_the_readme_recipe_runs_on_real_clips(realvideos_dir, tmp_path, monkeypatch, capsys):
    for label, names in CLASSES.items():
        (tmp_path / "myvideos" / label).mkdir(parents=True)
        for name in names:
            shutil.copy(realvideos_dir / name, tmp_path / "myvideos" / label / name)
    own_model(frames=8, size=32, n_classes=len(CLASSES)).save(tmp_path / "my_model.keras")
    (tmp_path / "classes.txt").write_text("\n".join(sorted(CLASSES)) + "\n")
    monkeypatch.chdir(tmp_path)
    for argv in recipe(REPO_ROOT / "README.md", "## Your own model and videos"):
        code = main(argv)
        captured = capsys.readouterr()
        assert code == 0, (argv, captured.err[-2000:])
        assert "Traceback" not in captured.err
    manifest = pd.read_csv(tmp_path / "manifest.csv")
    assert manifest["split"].value_counts().to_dict() == {"train": 3, "val": 1, "test": 1}
    strides = json.loads((tmp_path / "strides" / "summary.json").read_text())
    assert strides["selected_on"] == "val" and strides["split"] == "test"
    explain = json.loads((tmp_path / "explain" / "summary.json").read_text())
    assert [b["step"] for b in explain["border"]] == [1, 2]
    assert (tmp_path / "explain" / "report.md").is_file()
