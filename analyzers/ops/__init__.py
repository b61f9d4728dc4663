"""Layer operations: the uniform view of Keras layers that relevance rules work on."""

from analyzers.ops.base import LayerOp
from analyzers.ops.factory import SUPPORTED_LAYERS, make_op, supported_layer_names

__all__ = ["LayerOp", "SUPPORTED_LAYERS", "make_op", "supported_layer_names"]
