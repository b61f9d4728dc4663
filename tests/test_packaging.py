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
MANUAL = sorted((ROOT / "docs").rglob("*.md"))
DOCS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *MANUAL]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
#: A page of the nav in mkdocs.yml: ``- Title: page.md`` or ``- page.md``.
NAV_PAGE = re.compile(r"^\s*-\s+(?:[^\n]*?:\s+)?([\w./-]+\.md)\s*$", flags=re.MULTILINE)


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
        if doc in MANUAL:  # the site holds docs/ only: a link out of it breaks there
            assert resolved.is_relative_to(ROOT / "docs"), (
                f"{doc.name} links outside docs/ (name the file in backticks instead): {target}")


def test_the_site_nav_lists_every_page_of_the_manual():
    nav = NAV_PAGE.findall((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert len(nav) == len(set(nav)), f"a page is in the nav twice: {nav}"
    for page in nav:
        assert (ROOT / "docs" / page).is_file(), f"mkdocs.yml's nav names a missing page: {page}"
    pages = sorted(p.relative_to(ROOT / "docs").as_posix() for p in MANUAL)
    assert sorted(nav) == pages, f"pages not in the nav: {sorted(set(pages) - set(nav))}"


def test_readme_is_a_front_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200, "README.md is the front page; the manual is docs/"
    assert "tox" in readme and "python3 -m tox" in (ROOT / ".ci" / "run").read_text()
    assert "2016 PyPI package" in readme  # ours is not the PyPI package called analyzers
