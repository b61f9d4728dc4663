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
        pytest.skip(
            f"real-world clips not found at {REALVIDEOS_DIR} (they live in ../shared/realvideos)"
        )
    return REALVIDEOS_DIR


# --- data layer (engineer C): a tiny synthetic dataset and its shards, shared by all tests ---

#: Geometry of the shared synthetic fixture: 4 classes x 4 videos (2 train, 1 val, 1 test each).
SYNTHETIC_FIXTURE = {"videos_per_class": 4, "seed": 0, "size": 32, "min_frames": 24,
                     "max_frames": 48}


@pytest.fixture(scope="session")
def synthetic_manifest(tmp_path_factory) -> Path:
    """``manifest.csv`` of a tiny synthetic set (real H.264 files, 32x32 px, 24-48 frames)."""
    from kvlrp.data.synth import write_synthetic_dataset

    return write_synthetic_dataset(tmp_path_factory.mktemp("synthetic"), **SYNTHETIC_FIXTURE)


@pytest.fixture(scope="session")
def synthetic_shards(synthetic_manifest: Path) -> Path:
    """Shard folder (JPEG frames) prepared from :func:`synthetic_manifest`."""
    from kvlrp.data.shards.folder import prepare_shards

    out = synthetic_manifest.parent / "shards"
    return prepare_shards(synthetic_manifest, out, workers=0, progress=False).out_dir


# --- analysis: a tiny untrained c3d_small for the synthetic shards' classes ---
@pytest.fixture(scope="module")
def small_model():
    """``(model, info)``: an untrained 6x16x16 ``c3d_small`` (module scope: tests may change
    its weights) with a ``ModelInfo`` for the classes of ``synthetic_shards``."""
    import keras

    from kvlrp.models import ModelInfo, c3d_small

    keras.utils.set_random_seed(0)
    info = ModelInfo(architecture="c3d_small", classes=["drift_down", "drift_sideways",
                                                        "drift_up", "still"],
                     clip_len=6, step=1, size=16)
    model = c3d_small(4, frames=6, size=16, widths=(4, 8), dense_units=8)
    return model, info


@pytest.fixture(scope="session")
def saved_model(tmp_path_factory) -> Path:
    """Folder of a saved untrained 4x16x16 ``c3d_small`` (``model.keras`` + ``kvlrp.json``) for
    the classes of ``synthetic_shards``, for the commands that take ``--model`` (read only)."""
    import keras

    from kvlrp.models import ModelInfo, c3d_small, save_model

    keras.utils.set_random_seed(0)
    info = ModelInfo(architecture="c3d_small", clip_len=4, size=16,
                     classes=["drift_down", "drift_sideways", "drift_up", "still"])
    path = tmp_path_factory.mktemp("model")
    save_model(c3d_small(4, frames=4, size=16, widths=(2, 4), dense_units=4), path, info)
    return path


@pytest.fixture
def unwritable_dir(tmp_path: Path) -> Path:
    """A folder this process cannot create anything in, also as root: made immutable
    (``chattr +i``) where that works, else read-only by its mode; skips where neither holds."""
    import shutil
    import subprocess

    folder = tmp_path / "locked"
    folder.mkdir()
    immutable = os.geteuid() == 0 and shutil.which("chattr") and subprocess.run(
        ["chattr", "+i", str(folder)], capture_output=True).returncode == 0
    if not immutable:
        folder.chmod(0o555)
    try:
        probe = folder / "probe"
        try:
            probe.mkdir()
        except OSError:
            yield folder
        else:
            probe.rmdir()
            pytest.skip("no way to make a folder unwritable for this process here")
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)
