"""Flatten a Keras model (Functional, Sequential, nested) into a list of steps.

A :class:`Graph` is the engine's own, runnable form of a model: steps in execution order,
each an op with the integer ids of the tensors it reads and writes. Nested models are
inlined; a final softmax is stripped (the model is explained at its logits, like
iNNvestigate's ``model_wo_softmax``); a softmax inside the model is a step of its own. A
subclassed model is traced into its layers first (:func:`analyzers.model.functional.as_functional`);
custom layers and ``keras.ops`` calls are traced into the operations their call runs
(:mod:`analyzers.ops.traced`). Every unsupported layer is reported here, before any
computation, by :class:`~analyzers.errors.UnsupportedLayerError`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Any

import keras
import tensorflow as tf

from analyzers import tracing
from analyzers.compat import call_arguments, is_functional, mask_arguments, nodes_by_depth
from analyzers.errors import UnsupportedLayerError
from analyzers.model.functional import as_functional
from analyzers.ops import LayerOp, make_ops, supported_layer_names
from analyzers.ops.activations import GATES
from analyzers.ops.factory import CUSTOM, SOFTMAX_INSIDE, support_for
from analyzers.ops.gates import MultiplyOp
from analyzers.ops.recurrent.layers import MaskFlow, MaskOp
from analyzers.ops.structural import (
    ActivationOp,
    FoldTimeOp,
    IdentityOp,
    LayerCallOp,
    SoftmaxOp,
    TimeDistributedOp,
    UnfoldTimeOp,
)
from analyzers.ops.traced import TracedOp, explained_by_operations


@dataclass(frozen=True)
class Step:
    """One layer call: ``outputs = op(inputs)``, with tensor ids.

    ``input_nonnegative`` is True if every input is known to be >= 0 (a ReLU output, or
    pooled / reshaped / merged ReLU outputs); ``is_input_layer`` is True for a weight
    layer fed by the model input through weightless shape layers only.
    """

    op: LayerOp
    inputs: tuple[int, ...]
    output: int
    input_nonnegative: bool = False
    is_input_layer: bool = False


@dataclass
class Graph:
    """A model as steps. ``input_id``/``output_id`` name the model's input and output."""

    steps: list[Step]
    input_id: int
    output_id: int
    input_shape: tuple[Any, ...]
    n_outputs: int
    name: str = "model"
    notes: list[str] = field(default_factory=list)
    #: Keras layer name -> the tensor id(s) of its output, one per call (the model input
    #: under its input's name). Canonizers keep ids, so a layer whose output a rewrite
    #: removed (a convolution with its BatchNormalization folded in) names an id no step
    #: writes any more.
    layer_outputs: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def forward(self, x: tf.Tensor) -> tf.Tensor:
        """Run the graph (softmax stripped): the explained output (logits)."""
        return self.forward_all(x)[self.output_id]

    def forward_all(self, x: tf.Tensor) -> dict[int, tf.Tensor]:
        """Run the graph, returning every tensor by id."""
        values: dict[int, tf.Tensor] = {self.input_id: x}
        for step in self.steps:
            values[step.output] = step.op.forward([values[i] for i in step.inputs])
        return values

    def consumers(self) -> dict[int, list[int]]:
        """Tensor id -> indices of the steps that read it."""
        out: dict[int, list[int]] = {}
        for k, step in enumerate(self.steps):
            for i in step.inputs:
                out.setdefault(i, []).append(k)
        return out


class _Flattener:
    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.ids = itertools.count()
        self.masks = MaskFlow()
        self.layer_outputs: dict[str, list[int]] = {}

    def new_id(self) -> int:
        return next(self.ids)

    def record(self, layer: Any, output_ids: list[int]) -> list[int]:
        """Note ``output_ids`` as the output of ``layer`` (by name); returns them."""
        if len(output_ids) == 1:
            self.layer_outputs.setdefault(layer.name, []).append(output_ids[0])
        return output_ids

    def emit(self, layer: Any, input_ids: list[int], node: Any = None) -> list[int]:
        if isinstance(layer, keras.Model) and (
                isinstance(layer, keras.Sequential) or is_functional(layer)
                or not explained_by_operations(layer)):
            return self.record(layer, self.inline(layer, input_ids))
        if not isinstance(layer, keras.layers.Layer) and not explained_by_operations(layer):
            name = getattr(layer, "name", repr(layer))
            raise UnsupportedLayerError(name, type(layer).__name__, supported_layer_names(),
                                        "a Keras operation, not a layer: write it as a layer")
        if isinstance(layer, keras.layers.InputLayer):
            return list(input_ids)
        if isinstance(layer, keras.layers.TimeDistributed) and isinstance(layer.layer,
                                                                           keras.Model):
            return self.inline_time_distributed(layer, input_ids)
        ops = _layer_ops(layer, node)
        current = tuple(input_ids)
        try:
            mask = self.masks.mask_for(layer, ops, input_ids)
        except ValueError as err:
            raise UnsupportedLayerError(layer.name, type(layer).__name__,
                                        supported_layer_names(), str(err)) from err
        if mask is not None:  # a recurrent layer reads its mask as a second input
            mask_id = self.new_id()
            self.steps.append(Step(MaskOp(mask.layer), (mask.tensor,), mask_id))
            current += (mask_id,)
        for op in ops:
            out = self.new_id()
            self.steps.append(Step(op, current, out))
            current = (out,)
        self.masks.record(layer, input_ids, list(current))
        return self.record(layer, list(current))

    def inline_time_distributed(self, layer: Any, input_ids: list[int]) -> list[int]:
        """``TimeDistributed`` around a nested model: the model's steps inlined on the frames
        folded into the batch, ``[batch * time, ...]``, and unfolded after (the number of
        frames read from the wrapper's input, so an open time axis works too)."""
        folded = self.new_id()
        self.steps.append(Step(FoldTimeOp(layer), tuple(input_ids), folded))
        self.masks.fold(layer, input_ids[0], folded)
        inner = self.inline(layer.layer, [folded])
        if len(inner) != 1:
            raise UnsupportedLayerError(layer.name, type(layer).__name__,
                                        supported_layer_names(),
                                        "TimeDistributed around a model with several outputs")
        out = self.new_id()
        self.steps.append(Step(UnfoldTimeOp(layer), (inner[0], input_ids[0]), out))
        self.masks.record(layer, input_ids, [out])
        return self.record(layer, [out])

    def inline(self, model: Any, input_ids: list[int]) -> list[int]:
        if isinstance(model, keras.Sequential):
            current = list(input_ids)
            for layer in model.layers:
                current = self.emit(layer, current)
            return current
        if not is_functional(model):
            try:
                model = as_functional(model)
            except ValueError as err:
                raise UnsupportedLayerError(
                    model.name, type(model).__name__, supported_layer_names(),
                    "a subclassed model whose call() cannot be traced into layers: build "
                    "it with the functional API") from err
        inputs = list(model.inputs)
        if len(inputs) != len(input_ids):
            raise ValueError(f"model '{model.name}' expects {len(inputs)} inputs, "
                             f"got {len(input_ids)}")
        mapping = {id(t): i for t, i in zip(inputs, input_ids)}
        by_depth = nodes_by_depth(model)
        mask_only = _mask_computations(by_depth, model.outputs)
        for depth in sorted(by_depth, reverse=True):
            for node in by_depth[depth]:
                if not node.operation or node.is_input or id(node) in mask_only:
                    continue
                masks = {id(t) for t in mask_arguments(node)}
                in_ids = [mapping[id(t)] for t in node.input_tensors if id(t) not in masks]
                out_ids = self.emit(node.operation, in_ids, node)
                if len(out_ids) != len(node.outputs):
                    raise UnsupportedLayerError(
                        node.operation.name, type(node.operation).__name__,
                        supported_layer_names(), "layers with several outputs")
                for t, o in zip(node.outputs, out_ids):
                    mapping[id(t)] = o
        return [mapping[id(t)] for t in model.outputs]


def _mask_computations(by_depth: dict[int, list[Any]], outputs: list[Any]) -> set[int]:
    """Ids of the nodes that only compute masks: operations that are no layers (a Masking
    layer's mask is recorded as ``NotEqual`` / ``Any`` nodes) whose outputs reach layers as
    ``mask`` arguments alone. The engine follows masks itself
    (:class:`~analyzers.ops.recurrent.layers.MaskFlow`)."""
    read = {id(t) for t in outputs}  # tensors read as values (by kept nodes, or outputs)
    skipped: set[int] = set()
    for depth in sorted(by_depth):  # consumers before producers
        for node in by_depth[depth]:
            if not node.operation or node.is_input:
                continue
            if (not isinstance(node.operation, keras.layers.Layer)
                    and not any(id(t) in read for t in node.outputs)):
                skipped.add(id(node))
                continue
            masks = {id(t) for t in mask_arguments(node)}
            read.update(id(t) for t in node.input_tensors if id(t) not in masks)
    return skipped


def _layer_ops(layer: Any, node: Any) -> list[LayerOp]:
    """The ops of one layer call; a layer explained through its operations is traced with
    the call's arguments (``node``: the model's graph node, ``None`` in a Sequential)."""
    if support_for(layer) is None and explained_by_operations(layer):
        op = TracedOp(layer)
        op.support = CUSTOM
        ops: list[LayerOp] = [op]
    else:
        ops = make_ops(layer)
    for op in ops:
        if isinstance(op, TimeDistributedOp) and isinstance(op.inner, TracedOp):
            raise UnsupportedLayerError(layer.name, type(layer).__name__,
                                        supported_layer_names(),
                                        "TimeDistributed around a layer explained through its "
                                        "operations; apply the layer to the reshaped tensor")
        if isinstance(op, TracedOp):
            try:
                if node is not None:
                    args, kwargs = call_arguments(node)
                    op.bind(args, kwargs, list(node.input_tensors))
                else:  # a layer of a Sequential model: one positional input
                    op.bind((layer.input,), {}, [layer.input])
            except (ValueError, AttributeError) as err:
                raise UnsupportedLayerError(layer.name, type(layer).__name__,
                                            supported_layer_names(), str(err)) from err
    return ops


def _strip_softmax(steps: list[Step], output_id: int, notes: list[str]) -> list[Step]:
    """Drop a softmax that produces the model output (activation layer or fused)."""
    for k in range(len(steps) - 1, -1, -1):
        step = steps[k]
        if step.output != output_id:
            continue
        op = step.op
        if op.activation_name == "softmax":
            steps = list(steps)
            steps[k] = replace(step, op=op.without_activation())
            notes.append(f"softmax of layer '{op.name}' stripped: explaining the logits")
        elif isinstance(op, (IdentityOp, LayerCallOp)) and len(step.inputs) == 1:
            # look through e.g. a Flatten/Dropout after the softmax
            steps = _strip_softmax(steps[:k], step.inputs[0], notes) + steps[k:]
        break
    return steps


def _inner_softmax_steps(steps: list[Step]) -> list[Step]:
    """Every softmax left (not the model's output) as a :class:`SoftmaxOp` step: a softmax
    layer becomes one; a layer with a softmax activation becomes the layer without it,
    then the softmax."""
    used = [i for step in steps for i in (*step.inputs, step.output)]
    next_id = itertools.count(max(used, default=0) + 1)
    out: list[Step] = []
    for step in steps:
        op = step.op
        if op.activation_name != "softmax":
            out.append(step)
            continue
        layer = op.layer
        axis = getattr(layer, "axis", -1) if isinstance(layer, keras.layers.Softmax) else -1
        softmax = SoftmaxOp(layer, axis=axis, name=op.name if isinstance(op, ActivationOp)
                            else f"{op.name}/softmax")
        softmax.support = SOFTMAX_INSIDE
        if isinstance(op, ActivationOp):
            out.append(replace(step, op=softmax))
            continue
        hidden = next(next_id)
        out.append(replace(step, op=op.without_activation(), output=hidden))
        out.append(Step(softmax, (hidden,), step.output))
    return out


def mark_softmax_inputs(steps: list[Step]) -> None:
    """Tell each op explained through its operations which of its inputs are softmax
    outputs (directly or through reshaping and identity layers): under CP-LRP an attention
    weight computed outside the call is held constant where it multiplies another signal."""
    origin: set[int] = set()
    for step in steps:
        if isinstance(step.op, SoftmaxOp):
            origin.add(step.output)
        elif (isinstance(step.op, _GATE_THROUGH) and len(step.inputs) == 1
              and step.inputs[0] in origin):
            origin.add(step.output)
    for step in steps:
        if isinstance(step.op, TracedOp):
            step.op.softmax_inputs = tuple(i in origin for i in step.inputs)


def check_traced(steps: list[Step]) -> None:
    """Refuse a layer explained through its operations if one of them has no rule (under
    CP-LRP, which needs the fewest; AttnLRP's extra ones are checked by its analyzer)."""
    for step in steps:
        op = step.op
        if isinstance(op, TracedOp):
            reason = op.unsupported(tracing.CP_LRP)
            if reason is not None:
                raise UnsupportedLayerError(op.name, type(op.layer).__name__,
                                            supported_layer_names(), reason)


#: Ops a gate passes through unchanged in value (reshaping, identity layers).
_GATE_THROUGH = (LayerCallOp, IdentityOp)


def mark_gates(steps: list[Step]) -> None:
    """Decide which inputs of every ``Multiply`` are gates (outputs of a sigmoid /
    hard_sigmoid, directly or through reshaping layers) and set ``op.gate_inputs``.

    Raises :class:`UnsupportedLayerError` for a Multiply without exactly one non-gate
    input, and for a sigmoid / hard_sigmoid whose output reaches anything but gates.
    """
    origin: dict[int, Step] = {}  # gate tensor id -> the step applying the sigmoid
    for step in steps:
        if step.op.activation_name in GATES:
            origin[step.output] = step
        elif (isinstance(step.op, _GATE_THROUGH) and len(step.inputs) == 1
              and step.inputs[0] in origin):
            origin[step.output] = origin[step.inputs[0]]
    consumers: dict[int, list[Step]] = {}
    for step in steps:
        for i in step.inputs:
            consumers.setdefault(i, []).append(step)
    for step in steps:
        op = step.op
        if isinstance(op, MultiplyOp):
            flags = tuple(i in origin for i in step.inputs)
            if flags.count(False) != 1:
                what = "two or more non-gate tensors" if flags.count(False) > 1 else \
                    "gates only"
                raise UnsupportedLayerError(
                    op.name, type(op.layer).__name__, supported_layer_names(),
                    f"a Multiply of {what}; only x * sigmoid gates is explained")
            op.gate_inputs = flags
        if step.output in origin:
            for user in consumers.get(step.output, []):
                if not (isinstance(user.op, MultiplyOp) or user.output in origin):
                    source = origin[step.output].op
                    raise UnsupportedLayerError(
                        source.name, type(source.layer).__name__, supported_layer_names(),
                        f"'{source.activation_name}' only as a gate of Multiply; its output "
                        f"reaches '{user.op.name}'")


def annotate_steps(steps: list[Step], input_id: int) -> list[Step]:
    """Set ``input_nonnegative`` and ``is_input_layer`` on every step."""
    nonneg: dict[int, bool] = {input_id: False}
    from_input: dict[int, bool] = {input_id: True}  # reached through weightless ops only
    out = []
    for step in steps:
        ins_nonneg = all(nonneg.get(i, False) for i in step.inputs)
        ins_from_input = any(from_input.get(i, False) for i in step.inputs)
        op = step.op
        nonneg[step.output] = op.output_nonnegative or (op.preserves_nonnegative
                                                        and ins_nonneg)
        from_input[step.output] = ins_from_input and not op.has_weights and not op.mixes_inputs
        is_input_layer = ins_from_input and op.has_weights
        out.append(replace(step, input_nonnegative=ins_nonneg, is_input_layer=is_input_layer))
    return out


def build_graph(model: Any) -> Graph:
    """Flatten ``model`` into a :class:`Graph` (softmax stripped, steps annotated).

    Raises
    ------
    UnsupportedLayerError
        For any layer no rule handles (named, with its class and the supported list).
    ValueError
        If the model is not built or has several inputs or outputs.
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"expected a keras.Model, got {type(model).__name__}")
    model = as_functional(model)  # a subclassed model: traced into its layers
    if not model.built:
        raise ValueError(f"model '{model.name}' is not built: call it on data or build it "
                         "with an input shape before creating an analyzer")
    try:
        inputs = model.inputs
        outputs = model.outputs
    except (AttributeError, ValueError) as err:
        raise ValueError(f"model '{model.name}' has no defined inputs/outputs "
                         f"({err}); build it with keras.Input") from err
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(f"analyzers explain models with one input and one output; "
                         f"'{model.name}' has {len(inputs)} inputs and {len(outputs)} outputs")
    flat = _Flattener()
    input_id = flat.new_id()
    (output_id,) = flat.inline(model, [input_id])
    notes: list[str] = []
    steps = _strip_softmax(flat.steps, output_id, notes)
    for step in steps:
        if step.op.activation_name in GATES and step.output == output_id:
            raise UnsupportedLayerError(
                step.op.name, type(step.op.layer).__name__, supported_layer_names(),
                f"'{step.op.activation_name}' only as a gate of Multiply, not as the "
                "model's output")
    steps = _inner_softmax_steps(steps)
    mark_gates(steps)
    mark_softmax_inputs(steps)
    check_traced(steps)
    steps = annotate_steps(steps, input_id)
    out_shape = outputs[0].shape
    layer_outputs = {name: tuple(ids) for name, ids in flat.layer_outputs.items()}
    input_name = getattr(inputs[0], "name", None)
    if input_name and input_name not in layer_outputs:
        layer_outputs[input_name] = (input_id,)
    return Graph(steps=steps, input_id=input_id, output_id=output_id,
                 input_shape=tuple(inputs[0].shape), n_outputs=int(out_shape[-1]),
                 name=model.name, notes=notes, layer_outputs=layer_outputs)


__all__ = ["Graph", "Step", "annotate_steps", "build_graph", "check_traced", "mark_gates",
           "mark_softmax_inputs"]
