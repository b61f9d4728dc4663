"""One-line messages for shard folders whose TFRecord files are damaged (truncated, bit
flips): TensorFlow raises ``DataLossError`` with a multi-line message deep in a pipeline."""

from __future__ import annotations

import os


def is_data_loss(err: BaseException) -> bool:
    """Whether ``err`` is TensorFlow's ``DataLossError`` (a damaged record)."""
    import tensorflow as tf

    return isinstance(err, tf.errors.DataLossError)


def corrupt_shards_message(err: BaseException, shard_dir: str | os.PathLike) -> str:
    """What is wrong (the first line of TensorFlow's message) and what would be right."""
    detail = (getattr(err, "message", None) or str(err)).strip().splitlines()
    first = detail[0].strip() if detail else type(err).__name__
    return (f"the shards in {shard_dir} are damaged ({first}); re-run `kvlrp prepare` into a "
            "new --out folder (the finished outputs written so far are kept)")
