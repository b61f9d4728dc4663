"""Paths of the repository that tests read (README, docs, benchmarks), wherever a test file sits."""

from pathlib import Path

#: The repository's root folder.
REPO_ROOT = Path(__file__).resolve().parents[2]
