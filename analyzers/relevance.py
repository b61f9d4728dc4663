"""Relevance-propagation analyzers (LRP and deep Taylor): an explicit backward walk
over the model's steps, applying each layer's rule."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from analyzers.analyzer import Analyzer
from analyzers.canonizers import BatchNormFolder, Canonizer, TensorFlowTies
from analyzers.composites import Composite
from analyzers.graph import build_graph
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

    def _explain(self, x: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
        graph = self.graph
        values = graph.forward_all(x)
        logits = values[graph.output_id]
        if self.relu_output:
            logits = tf.nn.relu(logits)
        relevance = {graph.output_id: logits * self._selected(values[graph.output_id], index)}
        carried = self._carried_inputs(x)
        for k in range(len(graph.steps) - 1, -1, -1):
            step, rule = graph.steps[k], self.rules[k]
            r = relevance.pop(step.output, None)
            if r is None:
                continue
            xs = [values[i] for i in step.inputs]
            r_in = rule(step.op.at(xs), xs, r, nonnegative=step.input_nonnegative,
                        stand_ins=carried.get(k))
            for i, ri in zip(step.inputs, r_in):
                relevance[i] = relevance[i] + ri if i in relevance else ri
        result = relevance.get(graph.input_id)
        if result is None:
            return tf.zeros_like(x)
        return result
