"""The ``provenance`` object of a result: which software on which machine, which command,
when, and which model file and shard folder it read.

Every ``summary.json`` (explain, strides, study) and a trained model's ``kvlrp.json`` keep one
``provenance`` object with :data:`PROVENANCE_FIELDS`. It holds paths and a time by nature, so
it stays in that one object (comparisons of two runs drop it) and never enters a CSV. The
callers name the files (:func:`kvlrp.analysis.runs.provenance.run_provenance` for a model and
shards); this module only records them.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

from kvlrp.infra import fs
from kvlrp.infra.environment import command, cpu_model, device, kernel_set, software

__all__ = ["PROVENANCE_FIELDS", "provenance", "shown_path"]

#: The keys of every ``provenance`` object, in the order reports show them.
PROVENANCE_FIELDS = ("kvlrp_version", "tensorflow_version", "keras_version", "kernel_set",
                     "device", "cpu", "command", "created", "model_path", "model_sha256",
                     "shards_path", "shards_fingerprint")


def shown_path(path: str | os.PathLike | fs.GPath) -> str:
    """A path as provenance records it: absolute if local, the URL as it is."""
    return str(path) if fs.is_url(path) else os.path.abspath(os.fspath(path))


def provenance(*, model_path: str | os.PathLike | fs.GPath | None = None,
               model_file: str | os.PathLike | fs.GPath | None = None,
               shards_path: str | os.PathLike | fs.GPath | None = None,
               shards_fingerprint: str | None = None) -> dict[str, Any]:
    """The ``provenance`` object of a result this process makes now (imports TensorFlow).

    Parameters
    ----------
    model_path
        The model as the user named it (a model folder or a file; None: no model file).
    model_file
        The file whose SHA-256 is ``model_sha256`` (default ``model_path``; ``n/a`` where it
        is not a file).
    shards_path, shards_fingerprint
        The shard folder read and its content fingerprint.

    Returns
    -------
    dict
        :data:`PROVENANCE_FIELDS`, in that order: ``command`` is the argv list
        (:func:`kvlrp.infra.environment.command`), ``created`` the UTC time in ISO 8601.
    """
    versions = software()
    file = model_path if model_file is None else model_file
    sha = fs.file_sha256(file) if file is not None and fs.path(file).is_file() else None
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return {
        "kvlrp_version": versions["kvlrp"], "tensorflow_version": versions["tensorflow"],
        "keras_version": versions["keras"], "kernel_set": kernel_set(), "device": device(),
        "cpu": cpu_model(), "command": command(), "created": created,
        "model_path": None if model_path is None else shown_path(model_path),
        "model_sha256": sha,
        "shards_path": None if shards_path is None else shown_path(shards_path),
        "shards_fingerprint": shards_fingerprint,
    }
