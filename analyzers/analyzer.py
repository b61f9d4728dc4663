"""The :class:`Analyzer` base class: input checks, neuron selection, compiled execution."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from analyzers.graph import Graph, build_graph

NeuronSelection = str | int | np.ndarray


class Analyzer:
    """Explains one output neuron of a Keras model per input sample.

    Subclasses implement :meth:`_explain` (TensorFlow code, compiled once per input
    signature with ``tf.function(reduce_retracing=True)``).

    Parameters
    ----------
    model
        A built Keras model with one input and one output ``[batch, n_outputs]``; a final
        softmax is stripped (the logits are explained).
    """

    #: Name as accepted by :func:`analyzers.create_analyzer`.
    name = "analyzer"

    def __init__(self, model: Any, graph: Graph | None = None) -> None:
        self.model = model
        self.graph = graph if graph is not None else build_graph(model)
        out_shape = model.outputs[0].shape
        if len(out_shape) != 2:
            raise ValueError(f"analyzers explain models whose output is [batch, n_outputs]; "
                             f"'{model.name}' outputs shape {tuple(out_shape)}")
        self._compiled = tf.function(self._explain, reduce_retracing=True)

    # -- public --------------------------------------------------------------------
    def analyze(self, x: Any, neuron_selection: NeuronSelection = "max_activation"
                ) -> np.ndarray:
        """Relevance (or attribution) of every input value, shape of ``x``.

        Parameters
        ----------
        x
            Input batch ``[batch, *model_input_shape]`` (array-like, finite).
        neuron_selection
            ``"max_activation"`` (each sample's top logit), an int (that output for every
            sample), or an int array of shape ``[batch]`` (one output per sample).
        """
        x = self._check_input(x)
        index = self._check_selection(neuron_selection, x.shape[0])
        result = self._compiled(tf.convert_to_tensor(x), tf.convert_to_tensor(index))
        return result.numpy()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, model={self.model.name!r})"

    # -- implementation ------------------------------------------------------------
    def _explain(self, x: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    def _selected(self, logits: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
        """One-hot mask ``[batch, n_outputs]`` of the explained neuron per sample
        (``index < 0`` means the sample's top logit)."""
        top = tf.argmax(logits, axis=-1, output_type=tf.int32)
        chosen = tf.where(index < 0, top, index)
        return tf.one_hot(chosen, depth=tf.shape(logits)[-1], dtype=logits.dtype)

    def _check_input(self, x: Any) -> np.ndarray:
        try:
            arr = np.asarray(x, dtype=np.float32)
        except (TypeError, ValueError) as err:
            raise ValueError(f"x must be a numeric array, got {type(x).__name__}: {err}") \
                from err
        expected = self.graph.input_shape  # (None, ...)
        shown = "(batch, " + ", ".join("any" if d is None else str(d)
                                       for d in expected[1:]) + ")"
        if arr.ndim != len(expected):
            raise ValueError(f"x has shape {arr.shape} but model '{self.model.name}' expects "
                             f"input of shape {shown}")
        for got, want in zip(arr.shape[1:], expected[1:]):
            if want is not None and got != want:
                raise ValueError(f"x has shape {arr.shape} but model '{self.model.name}' "
                                 f"expects input of shape {shown}")
        if arr.shape[0] == 0:
            raise ValueError("x is an empty batch (batch size 0)")
        finite = np.isfinite(arr)
        if not finite.all():
            bad = np.argwhere(~finite)[0]
            n_nan = int(np.isnan(arr).sum())
            n_inf = int(np.isinf(arr).sum())
            raise ValueError(f"x contains {n_nan} NaN and {n_inf} Inf values (first at index "
                             f"{tuple(int(i) for i in bad)}); inputs must be finite")
        return arr

    def _check_selection(self, selection: NeuronSelection, batch: int) -> np.ndarray:
        n = self.graph.n_outputs
        if isinstance(selection, str):
            if selection != "max_activation":
                raise ValueError(f"neuron_selection must be 'max_activation', an int or an "
                                 f"int array of shape [batch]; got {selection!r}")
            return np.full((batch,), -1, dtype=np.int32)
        if isinstance(selection, (bool, np.bool_)):
            raise ValueError(f"neuron_selection must be 'max_activation', an int or an int "
                             f"array of shape [batch]; got {selection!r}")
        arr = np.asarray(selection)
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"neuron_selection must be 'max_activation', an int or an int "
                             f"array of shape [batch]; got dtype {arr.dtype}")
        if arr.ndim == 0:
            arr = np.full((batch,), int(arr))
        elif arr.shape != (batch,):
            raise ValueError(f"neuron_selection array must have shape [batch] = ({batch},), "
                             f"got {arr.shape}")
        if arr.min() < 0 or arr.max() >= n:
            bad = int(arr[(arr < 0) | (arr >= n)][0])
            raise ValueError(f"neuron_selection {bad} is out of range: the model has {n} "
                             f"outputs (valid indices 0..{n - 1})")
        return arr.astype(np.int32)
