"""Layer operations: the uniform view of Keras layers that relevance rules work on."""

from analyzers.ops.base import LayerOp
from analyzers.ops.factory import (
    REGISTRY,
    SUPPORTED_LAYERS,
    make_op,
    make_ops,
    supported_layer_names,
    supported_layers,
    supported_layers_markdown,
)

__all__ = ["LayerOp", "REGISTRY", "SUPPORTED_LAYERS", "make_op", "make_ops",
           "supported_layer_names", "supported_layers", "supported_layers_markdown"]
