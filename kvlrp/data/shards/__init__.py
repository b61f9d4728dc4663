"""Decode-once shards: every video of a manifest decoded once into TFRecord files (local or
Apache Beam runner), resumable, with corrupt videos skipped and listed."""

from kvlrp.data.shards.folder import (
    PrepareResult,
    prepare_shards,
    read_classes,
    read_dataset_info,
    read_index,
    shard_fingerprint,
)

__all__ = ["PrepareResult", "prepare_shards", "read_classes", "read_dataset_info", "read_index",
           "shard_fingerprint"]
