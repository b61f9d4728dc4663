"""Packaging facts a user relies on: one version, a license, type markers, links that resolve."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest

import kvlrp

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_version_is_written_once():
    result = subprocess.run(
        [sys.executable, "setup.py", "--version"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )
    assert result.stdout.strip().splitlines()[-1] == kvlrp.__version__
    assert "version=read_version()" in (ROOT / "setup.py").read_text(encoding="utf-8")


def test_installed_metadata_matches_the_source_version():
    try:
        installed = importlib.metadata.version("kvlrp")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("kvlrp is not installed (run through tox)")
    assert installed == kvlrp.__version__


def test_license_changelog_and_type_markers_exist():
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## {kvlrp.__version__}" in changelog
    for package in ("analyzers", "kvlrp"):
        assert (ROOT / package / "py.typed").is_file()
    assert '"py.typed"' in (ROOT / "setup.py").read_text(encoding="utf-8")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_relative_links_resolve_inside_the_repository(doc):
    text = doc.read_text(encoding="utf-8")
    for target in LINK.findall(text):
        if "://" in target or target.startswith("mailto:"):
            continue
        resolved = (doc.parent / target).resolve()
        assert resolved.is_relative_to(ROOT), f"{doc.name} links outside the repository: {target}"
        assert resolved.exists(), f"{doc.name} links to a missing file: {target}"
