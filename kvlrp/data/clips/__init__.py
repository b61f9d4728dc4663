"""Clips: which frames a clip holds (a plain-Python reference and its in-graph twin), input
normalisations, and the tf.data pipelines that cut training and evaluation clips from shards."""
