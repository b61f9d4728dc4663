"""``progress.json`` of a shard folder: the options it was built with and its finished shards.

A :mod:`kvlrp.infra.resume` state file, ``{"settings": <ShardOptions + classes>, "shards": {name:
record}}``, written by the local runner after each shard and by the Beam runner at its end; a
later run with the same settings keeps the shards it lists. Folders written before this layout
(``"config"`` in place of ``"settings"``) are read as well.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from kvlrp.data.shards.prepare_inputs import ShardOptions
from kvlrp.infra import fs, resume

PROGRESS_FILENAME = "progress.json"

log = logging.getLogger(__name__)


def progress_settings(options: ShardOptions, classes: list[str]) -> dict[str, Any]:
    """What a shard folder's content depends on besides the manifest rows."""
    return {**asdict(options), "classes": list(classes)}


def load_progress(out_dir: Any, settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The shard records of an earlier run with ``settings`` (``{}``: none, or unreadable).

    Raises
    ------
    ValueError
        ``out_dir`` holds shards built with other settings; the message names each one that
        changed, from what to what.
    """
    out_dir = fs.path(out_dir)
    decision = resume.check(out_dir / PROGRESS_FILENAME, settings, upgrade=_settings_were_config)
    if decision.unreadable:
        log.warning("%s; every shard is built again", decision.reason)
        return {}
    if decision.saved is None:
        return {}
    if not decision.reuse:
        raise ValueError(
            f"{out_dir} holds shards built with other options or classes "
            f"({decision.describe()}); use a new --out folder, or delete it to build it again"
        )
    return dict(decision.saved.get("shards") or {})


def save_progress(out_dir: Any, settings: dict[str, Any],
                  shards: dict[str, dict[str, Any]]) -> None:
    """Write ``progress.json`` (atomically) with the records of the finished shards."""
    resume.save(fs.path(out_dir) / PROGRESS_FILENAME, settings, shards=shards)


def _settings_were_config(state: dict[str, Any]) -> dict[str, Any]:
    """A progress file of the first layout (``"config"``) in the current one."""
    if "settings" in state or "config" not in state:
        return state
    return {"settings": state["config"], **{k: v for k, v in state.items() if k != "config"}}
