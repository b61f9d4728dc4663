"""The ``provenance`` of an evaluation run or a study: the model file with its SHA-256 and the
shard folder with its fingerprint (:mod:`kvlrp.infra.provenance` adds software, machine,
command and time)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kvlrp.data.shards.folder import shard_fingerprint
from kvlrp.infra import fs
from kvlrp.infra.provenance import provenance

__all__ = ["run_provenance"]


def run_provenance(model_path: str | Path | None, shard_dir: str | Path) -> dict[str, Any]:
    """The ``provenance`` object of a run of the model at ``model_path`` (a model folder,
    hashed by its ``model.keras``, or a ``.keras`` file; None: a model without a file) over the
    shard folder ``shard_dir`` (fingerprinted over all its splits, not by its path)."""
    from kvlrp.models.saving import MODEL_FILENAME  # (Keras)

    model_file = None
    if model_path is not None:
        path = fs.path(model_path)
        model_file = path / MODEL_FILENAME if path.is_dir() else path
    return provenance(model_path=model_path, model_file=model_file, shards_path=shard_dir,
                      shards_fingerprint=shard_fingerprint(shard_dir))
