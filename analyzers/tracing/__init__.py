"""Relevance through the TensorFlow operations a layer's call runs.

A layer without a rule of its own (a custom layer, a ``keras.ops`` call in a functional model,
``MultiHeadAttention``) is explained by the operations its ``call`` executes: the call is traced
once into a TensorFlow graph (:mod:`~analyzers.tracing.trace`), every operation on a path from
the layer's inputs to its output gets a role (:mod:`~analyzers.tracing.roles`: moves or sums
values, contracts with a weight, multiplies two signals, softmax, an elementwise nonlinearity,
a normalising statistic), the graph is rewritten so that its gradient times its input is the
relevance the rules ask for (:mod:`~analyzers.tracing.rewrite`, with the gradients of
:mod:`~analyzers.tracing.gradients`), and the rewritten graph is run inside the analyzer's
compiled function (:mod:`~analyzers.tracing.run`). An operation with no role is refused by
layer and operation name before anything is computed; :func:`register_operation` gives one.

Nothing here knows Keras layers: :mod:`analyzers.ops.traced` turns a layer call into the
function traced here, so the same machinery serves any TensorFlow callable (a recurrent cell's
step, for instance).
"""

from analyzers.tracing.rewrite import ModifiedGraph, modified_graph
from analyzers.tracing.roles import (
    ATTNLRP,
    CONVENTIONS,
    CP_LRP,
    Plan,
    UnsupportedOperation,
    plan_relevance,
    register_operation,
    registered_operations,
)
from analyzers.tracing.run import relevance_at, traced_output, traced_relevance
from analyzers.tracing.trace import Trace, trace_function

__all__ = ["ATTNLRP", "CONVENTIONS", "CP_LRP", "ModifiedGraph", "Plan", "Trace",
           "UnsupportedOperation", "modified_graph", "plan_relevance", "register_operation",
           "registered_operations", "relevance_at", "trace_function", "traced_output",
           "traced_relevance"]
