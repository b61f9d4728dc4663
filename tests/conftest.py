"""Shared pytest fixtures and settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

#: The five real-world clips that live beside the repository (never inside it).
REALVIDEOS_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "realvideos"


@pytest.fixture(scope="session")
def realvideos_dir() -> Path:
    """Folder of the real-world clips; skips the test, saying why, where it is absent."""
    if not REALVIDEOS_DIR.is_dir():
        pytest.skip(f"real-world clips not found at {REALVIDEOS_DIR} (they live in ../shared/realvideos)")
    return REALVIDEOS_DIR
