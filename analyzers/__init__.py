"""iNNvestigate-style attribution engine (deep Taylor / LRP) for Keras 3 models.

Nothing here is video-specific: any supported Keras model, 1D/2D/3D, can be explained.

>>> import analyzers
>>> a = analyzers.create_analyzer("deep_taylor.bounded", model, low=-1.0, high=1.0)
>>> R = a.analyze(x)              # numpy, shape of x
>>> analyzers.list_analyzers()

This package ships inside the ``kvlrp`` distribution; it is not the 2016 PyPI package
also called ``analyzers``.

The named analyzers are registered by the modules that define them
(:mod:`analyzers.gradients`, :mod:`analyzers.lrp`), imported here for that.
"""

# TensorFlow first, without its start-up notes (TF_CPP_MIN_LOG_LEVEL=2 unless set; the notes
# logged before TensorFlow reads it are filtered from file descriptor 2)
from analyzers.compat import import_tensorflow

import_tensorflow()

# the modules that define (and register) the named analyzers, gradient family first: the
# order of list_analyzers()
from analyzers import gradients, lrp  # noqa: F401
from analyzers.analyzer import Analyzer
from analyzers.canonizers import BatchNormFolder, Canonizer
from analyzers.composites import Composite, layer_map_composite
from analyzers.errors import UnsupportedLayerError
from analyzers.model.functional import as_functional
from analyzers.model.graph import build_graph
from analyzers.ops import SUPPORTED_LAYERS, supported_layer_names, supported_layers
from analyzers.registry import analyzer_options, create_analyzer, list_analyzers
from analyzers.rules import (
    AlphaBetaRule,
    BoundedRule,
    EpsilonRule,
    FlatRule,
    GradientRule,
    Rule,
    WSquareRule,
    ZPlusRule,
    ZRule,
)

__all__ = [
    "AlphaBetaRule", "Analyzer", "BatchNormFolder", "BoundedRule", "Canonizer", "Composite",
    "EpsilonRule", "FlatRule", "GradientRule", "Rule", "SUPPORTED_LAYERS",
    "UnsupportedLayerError", "WSquareRule", "ZPlusRule", "ZRule", "build_graph",
    "analyzer_options", "as_functional", "create_analyzer",
    "layer_map_composite", "list_analyzers", "supported_layer_names", "supported_layers",
]
