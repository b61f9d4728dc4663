"""Rewrite a traced graph so that its gradient times its input is the relevance.

The forward values are untouched: every change is a node whose forward is the identity and
whose gradient is one of :mod:`analyzers.tracing.gradients`, or a ``StopGradient``:

1. each elementwise region's exits pass through an identity-rule node tied to the region's
   source (nothing flows into the region itself);
2. each weight layer's end passes through an epsilon node;
3. held tensors (statistics, CP-LRP's attention weights) pass through ``StopGradient``;
4. each factor of a bilinear product reads its input through a share node.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from tensorflow.core.framework import graph_pb2, node_def_pb2

from analyzers.tracing import gradients
from analyzers.tracing.roles import Plan
from analyzers.tracing.trace import Trace


@dataclass(frozen=True)
class ModifiedGraph:
    """A traced call rewritten for one rule set, ready to run
    (:func:`analyzers.tracing.traced_relevance`).

    ``inputs``, ``weights``, ``captures`` and ``output`` are tensor names as in
    :class:`~analyzers.tracing.trace.Trace`; ``relevant_inputs`` says which inputs get
    relevance.
    """

    graph_def: graph_pb2.GraphDef
    inputs: tuple[str, ...]
    weights: tuple[str, ...]
    captures: tuple[tuple[str, Any], ...]
    output: str
    relevant_inputs: tuple[bool, ...]


def _ref(tensor: str) -> str:
    """A tensor name as a NodeDef input (``node`` for output 0)."""
    return tensor[:-2] if tensor.endswith(":0") else tensor


def _same(ref: str, tensor: str) -> bool:
    return not ref.startswith("^") and (ref if ":" in ref else f"{ref}:0") == tensor


class _Rewriter:
    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.graph_def = copy.deepcopy(trace.graph_def)
        self.alias: dict[str, str] = {}
        self.dtypes = {name: info.dtype.as_datatype_enum for name, info in trace.tensors.items()}
        self.count = 0

    def current(self, tensor: str) -> str:
        return self.alias.get(tensor, tensor)

    def _dtype_enum(self, tensor: str) -> int:
        return self.dtypes[tensor]

    def _new(self, op: str, inputs: list[str], kind: str) -> node_def_pb2.NodeDef:
        self.count += 1
        node = self.graph_def.node.add()
        node.name = f"analyzers_rule/{kind}_{self.count}"
        node.op = op
        node.input.extend(_ref(self.current(t)) for t in inputs)
        return node

    def _rewire(self, tensor: str, new: str, keep: set[str]) -> None:
        old = self.current(tensor)
        for node in self.graph_def.node:
            if node.name in keep:
                continue
            for k, ref in enumerate(node.input):
                if _same(ref, old):
                    node.input[k] = _ref(new)
        self.alias[tensor] = new

    def after(self, tensor: str, node: node_def_pb2.NodeDef, keep: set[str]) -> None:
        """Make ``node`` (already reading ``tensor``) the reader of ``tensor`` for everyone
        else."""
        self.dtypes[f"{node.name}:0"] = self.dtypes[tensor]
        self._rewire(tensor, f"{node.name}:0", keep | {node.name})

    def region(self, exit_: str, source: str, members: frozenset[str]) -> None:
        node = self._new("IdentityN", [exit_, source], "identity")
        node.attr["T"].list.type.extend([self._dtype_enum(exit_), self._dtype_enum(source)])
        node.attr["_gradient_op_type"].s = gradients.IDENTITY.encode()
        self.after(exit_, node, set(members))

    def epsilon(self, tensor: str, epsilon: float) -> None:
        node = self._new("Identity", [tensor], "epsilon")
        node.attr["T"].type = self._dtype_enum(tensor)
        node.attr["_gradient_op_type"].s = gradients.EPSILON.encode()
        node.attr[gradients.EPSILON_ATTR].f = float(epsilon)
        self.after(tensor, node, set())

    def stop(self, tensor: str) -> None:
        node = self._new("StopGradient", [tensor], "hold")
        node.attr["T"].type = self._dtype_enum(tensor)
        self.after(tensor, node, set())

    def share(self, consumer: str, slot: int, factor: float) -> None:
        target = next(n for n in self.graph_def.node if n.name == consumer)
        data = [k for k, ref in enumerate(target.input) if not ref.startswith("^")]
        k = data[slot]
        ref = target.input[k]
        tensor = ref if ":" in ref else f"{ref}:0"
        self.count += 1
        node = self.graph_def.node.add()
        node.name = f"analyzers_rule/share_{self.count}"
        node.op = "Identity"
        node.input.append(ref)
        node.attr["T"].type = self._dtype_enum(tensor)
        node.attr["_gradient_op_type"].s = gradients.SCALE.encode()
        node.attr[gradients.FACTOR_ATTR].f = float(factor)
        target.input[k] = node.name


def modified_graph(trace: Trace, plan: Plan, epsilon: float) -> ModifiedGraph:
    """``trace`` rewritten by ``plan`` (see module docstring), the weight layers' epsilon
    being ``epsilon``.

    Raises
    ------
    ValueError
        If the plan lists unsupported operations (the caller refuses the layer first).
    """
    if plan.unsupported:
        names = ", ".join(f"{u.op_type} ({u.node})" for u in plan.unsupported)
        raise ValueError(f"the traced call has operations without a rule: {names}")
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon!r}")
    rw = _Rewriter(trace)
    for region in plan.regions:
        for exit_ in region.exits:
            rw.region(exit_, region.source, region.nodes)
    for tensor in plan.epsilon:
        rw.epsilon(tensor, epsilon)
    for tensor in plan.stops:
        rw.stop(tensor)
    for consumer, slot, factor in plan.shares:
        rw.share(consumer, slot, factor)
    # a weight layer can end the call: its epsilon node is then the output
    return ModifiedGraph(graph_def=rw.graph_def, inputs=trace.inputs, weights=trace.weights,
                         captures=trace.captures, output=rw.current(trace.outputs[0]),
                         relevant_inputs=plan.relevant_inputs)


__all__ = ["ModifiedGraph", "modified_graph"]
