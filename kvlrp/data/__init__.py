"""Datasets: manifests, the synthetic dataset, decode-once shards, clip sampling, tf.data.

Submodules are imported on demand (``kvlrp.data.clips.pipeline`` imports TensorFlow; the others
do not, so shard-decoding worker processes start quickly).
"""
