"""Relevance-propagation analyzers (LRP and deep Taylor): an explicit backward walk
over the model's steps, applying each layer's rule.

Besides the input's relevance (:meth:`RelevanceAnalyzer.analyze`), the walk gives the
relevance arriving at any layer's output (:meth:`RelevanceAnalyzer.analyze_layers`): the sum
of what every consumer of that output passed back to it, the quantity the rules' conservation
is stated for (with a conserving rule and no biases it sums to the explained logit at every
layer the whole output passes through).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from analyzers.analyzer import Analyzer
from analyzers.canonizers import BatchNormFolder, Canonizer, TensorFlowTies
from analyzers.composites import Composite
from analyzers.model.graph import build_graph
from analyzers.settings import Settings, is_innvestigate


class RelevanceAnalyzer(Analyzer):
    """Layer-wise relevance propagation with a :class:`~analyzers.composites.Composite`.

    Parameters
    ----------
    model
        The Keras model.
    composite
        Maps each layer to its rule.
    relu_output
        Explain ``max(0, logit)`` instead of the logit (deep Taylor; a negative logit gives
        an all-zero map, as in iNNvestigate).
    canonizers
        Graph rewrites applied first (default: fold BatchNormalization).
    name
        Name reported by ``repr`` (``settings.name`` where ``settings`` are given).
    settings
        What :func:`analyzers.create_analyzer` was given (see :class:`~analyzers.Analyzer`);
        with ``compat="innvestigate"`` max pooling routes ties as TensorFlow does
        (:class:`~analyzers.canonizers.TensorFlowTies`, after ``canonizers``).
    """

    def __init__(self, model: Any, composite: Composite, relu_output: bool = False,
                 canonizers: Sequence[Canonizer] | None = None, name: str = "lrp", *,
                 settings: Settings | None = None) -> None:
        if not isinstance(composite, Composite):
            raise ValueError(f"composite must be an analyzers.composites.Composite, got "
                             f"{type(composite).__name__}")
        graph = build_graph(model)
        for canonizer in (BatchNormFolder(),) if canonizers is None else canonizers:
            graph = canonizer.apply(graph)
        if is_innvestigate(settings):
            graph = TensorFlowTies().apply(graph)
        self.composite = composite
        self.relu_output = relu_output
        self.name = name
        self.rules = [composite.rule_for(step.op, step) for step in graph.steps]
        super().__init__(model, graph, settings=settings)
        self._layer_functions: dict[tuple[int, ...], Any] = {}

    def _carried_inputs(self, x: tf.Tensor) -> dict[int, tuple[tf.Tensor, ...]]:
        """For each first-layer step whose rule works on stand-in inputs (z^B: the bounds;
        w^2 / flat: ones) and that the model input reaches through weightless shape layers
        (padding, reshaping, dropout, ...): those stand-ins carried through the same layers,
        so that zero padding is not treated as an input."""
        out: dict[int, tuple[tf.Tensor, ...]] = {}
        graph = self.graph
        for k, (step, rule) in enumerate(zip(graph.steps, self.rules)):
            if not (step.is_input_layer and len(step.inputs) == 1):
                continue
            stand_ins = rule.stand_in_inputs(x)
            if stand_ins is None:
                continue
            carried = {graph.input_id: stand_ins}
            for prev in graph.steps[:k]:
                if (len(prev.inputs) == 1 and prev.inputs[0] in carried
                        and not prev.op.has_weights and not prev.op.mixes_inputs):
                    carried[prev.output] = tuple(prev.op.forward([t])
                                                 for t in carried[prev.inputs[0]])
            if step.inputs[0] in carried:
                out[k] = carried[step.inputs[0]]
        return out

    def layer_rules(self) -> list[tuple[str, str]]:
        """``(layer name, rule)`` for every step, in execution order."""
        return [(step.op.name, repr(rule)) for step, rule in zip(self.graph.steps, self.rules)]

    def layer_names(self) -> list[str]:
        """Names :meth:`analyze_layers` accepts, in execution order: the model input's name
        first, then every layer called once whose output is a tensor of the explained graph
        (a layer a canonizer merged away, such as a convolution with its BatchNormalization
        folded in, is left out: ask for the BatchNormalization)."""
        graph = self.graph
        order = {graph.input_id: -1}
        order.update({step.output: k for k, step in enumerate(graph.steps)})
        named = [(order[ids[0]], name) for name, ids in graph.layer_outputs.items()
                 if len(ids) == 1 and ids[0] in order]
        return [name for _, name in sorted(named)]

    def analyze_layers(self, x: Any, layers: Sequence[str],
                       neuron_selection: Any = None,
                       batch_size: int | None = None) -> dict[str, np.ndarray]:
        """Relevance arriving at each named layer's output, from one backward pass.

        Parameters
        ----------
        x, neuron_selection, batch_size
            As in :meth:`~analyzers.Analyzer.analyze` (each sample's relevance depends only
            on that sample, whatever the batch or ``batch_size``).
        layers
            Keras layer names (see :meth:`layer_names`); the model input's name gives the
            input relevance (what :meth:`~analyzers.Analyzer.analyze` returns). A layer
            inside a nested model is named by its own name.

        Returns
        -------
        dict
            Layer name -> relevance, numpy ``[batch, *layer output shape]`` (zeros for a
            layer no relevance reaches), in the order of ``layers``.
        """
        names = list(dict.fromkeys(layers))
        ids = tuple(self._layer_id(name) for name in names)
        x = self._check_input(x)
        index = self._check_selection(neuron_selection, x.shape[0])
        function = self._layer_functions.get(ids)
        if function is None:
            function = tf.function(functools.partial(self._explain_layers, ids=ids),
                                   reduce_retracing=True)
            self._layer_functions[ids] = function
        n = x.shape[0]
        size = n if batch_size is None else self._check_batch_size(batch_size)
        chunks = [function(tf.convert_to_tensor(x[i:i + size]),
                           tf.convert_to_tensor(index[i:i + size])) for i in range(0, n, size)]
        return {name: np.concatenate([c[k].numpy() for c in chunks], axis=0)
                for k, name in enumerate(names)}

    def _layer_id(self, name: str) -> int:
        """The tensor id of layer ``name``'s output, or a ValueError saying why there is
        none."""
        ids = self.graph.layer_outputs.get(name)
        if ids is None:
            raise ValueError(f"model {self.model.name!r} has no layer {name!r}; layers with "
                             f"relevance: {', '.join(self.layer_names())}")
        if len(ids) != 1:
            raise ValueError(f"layer {name!r} is called {len(ids)} times in model "
                             f"{self.model.name!r}: its output is not one tensor")
        written = {self.graph.input_id} | {step.output for step in self.graph.steps}
        if ids[0] not in written:
            raise ValueError(f"layer {name!r} has no output of its own in the explained "
                             f"graph of {self.model.name!r} (a canonizer merged it with the "
                             f"next layer, e.g. a BatchNormalization folded into it: ask for "
                             f"that layer's name); layers with relevance: "
                             f"{', '.join(self.layer_names())}")
        return ids[0]

    def _explain(self, x: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
        return self._propagate(x, index, (self.graph.input_id,))[0]

    def _explain_layers(self, x: tf.Tensor, index: tf.Tensor,
                        ids: tuple[int, ...]) -> tuple[tf.Tensor, ...]:
        return tuple(self._propagate(x, index, ids))

    def _propagate(self, x: tf.Tensor, index: tf.Tensor,
                   keep: tuple[int, ...]) -> list[tf.Tensor]:
        """The backward walk; returns the relevance of the tensors ``keep`` (ids), each
        complete once its producing step is reached (every consumer comes later)."""
        graph = self.graph
        values = {graph.input_id: x}
        for step, rule in zip(graph.steps, self.rules):  # each rule may keep its forward
            values[step.output] = rule.forward(step.op, [values[i] for i in step.inputs])
        logits = values[graph.output_id]
        if self.relu_output:
            logits = tf.nn.relu(logits)
        relevance = {graph.output_id: logits * self._selected(values[graph.output_id], index)}
        carried = self._carried_inputs(x)
        wanted, kept = set(keep), {}
        for k in range(len(graph.steps) - 1, -1, -1):
            step, rule = graph.steps[k], self.rules[k]
            r = relevance.pop(step.output, None)
            if r is None:
                continue
            if step.output in wanted:
                kept[step.output] = r
            xs = [values[i] for i in step.inputs]
            r_in = rule(step.op.at(xs), xs, r, nonnegative=step.input_nonnegative,
                        stand_ins=carried.get(k))
            for i, x_i, ri in zip(step.inputs, xs, r_in):
                if ri is None:  # this input gets no relevance (an index, a held weight)
                    continue
                ri = _shaped_like(ri, x_i)
                relevance[i] = relevance[i] + ri if i in relevance else ri
        if graph.input_id in relevance:
            kept[graph.input_id] = relevance[graph.input_id]
        return [kept[i] if i in kept else tf.zeros_like(values[i]) for i in keep]


def _shaped_like(r: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
    """``r`` with the static shape of ``x`` (relevance has its input's shape; a rule's VJP,
    e.g. through a reshape with a dynamic batch, may come back with unknown dimensions)."""
    if r.shape.is_fully_defined() or r.shape == x.shape:
        return r
    return tf.ensure_shape(r, x.shape)
