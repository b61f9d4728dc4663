"""The :class:`Analyzer` base class: input checks, neuron selection (iNNvestigate's
``neuron_selection_mode``), compiled execution, and saving / loading of the settings
(:mod:`analyzers.settings`; loading goes through :mod:`analyzers.registry`)."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import tensorflow as tf

from analyzers import registry
from analyzers.model.graph import Graph, build_graph
from analyzers.model.precision import float32_compute, reduced_precision_layers
from analyzers.settings import NEURON_SELECTION_MODES, Settings, write_npz

NeuronSelection = str | int | np.ndarray | None

_ALL = -2  # index code: explain the sum of all outputs


class Analyzer:
    """Explains one output neuron of a Keras model per input sample.

    Subclasses implement :meth:`_explain` (TensorFlow code, compiled once per input
    signature with ``tf.function(reduce_retracing=True)``).

    Parameters
    ----------
    model
        A built Keras model with one input and one output ``[batch, n_outputs]``; a final
        softmax is stripped (the logits are explained).
    graph
        The model's layer graph, if already built (else built here when ``needs_graph``).
    needs_graph
        Whether the analyzer works on the layer graph (the gradient family does not).
    settings
        What :func:`analyzers.create_analyzer` was given (name, options,
        ``neuron_selection_mode``, ``compat``); ``None`` for an analyzer built directly (then
        :meth:`save` refuses).
    """

    #: Name as accepted by :func:`analyzers.create_analyzer`.
    name = "analyzer"

    #: ``"max_activation"``, ``"index"`` or ``"all"`` (see :meth:`analyze`).
    neuron_selection_mode = "max_activation"

    #: ``None`` (the conserving conventions) or ``"innvestigate"`` (iNNvestigate 2.1.2's
    #: numbers, :mod:`analyzers.settings`).
    compat: str | None = None

    def __init__(self, model: Any, graph: Graph | None = None, *, needs_graph: bool = True,
                 settings: Settings | None = None) -> None:
        self.model = model
        self.graph = graph if (graph is not None or not needs_graph) else build_graph(model)
        self.input_shape, self.n_outputs = _io_shapes(model, self.graph)
        #: Layers computing in half precision (a mixed policy): float32 while explaining.
        self._reduced_precision = reduced_precision_layers(model)
        #: What :func:`analyzers.create_analyzer` was given (for :meth:`save`).
        self.settings = settings
        if settings is not None:
            self.name = settings.name
            self.neuron_selection_mode = settings.neuron_selection_mode
            self.compat = settings.compat
        # A partial, not the bound method: tf.function counts traces per code object, so
        # every instance of one class would share a counter, and building a few analyzers
        # (one per model) would warn "triggered tf.function retracing" although each traces
        # once; a partial is counted on its own.
        self._compiled = tf.function(functools.partial(self._explain), reduce_retracing=True)

    # -- saving ----------------------------------------------------------------------
    def save(self) -> tuple[str, dict[str, Any]]:
        """The analyzer's settings as ``(name, state)`` for :meth:`Analyzer.load`, like
        iNNvestigate's ``save()`` (ours gives the registry name, not a class name; the
        state holds the options, ``neuron_selection_mode``, ``compat`` and the model
        itself)."""
        if self.settings is None:
            raise ValueError(f"{type(self).__name__} was not made by "
                             "analyzers.create_analyzer, so its settings are unknown; create "
                             "it with create_analyzer(name, model, ...) to save it")
        return self.settings.name, {"kwargs": dict(self.settings.options),
                                    "neuron_selection_mode": self.neuron_selection_mode,
                                    "compat": self.compat, "model": self.model}

    def save_npz(self, fname: Any) -> None:
        """Write the settings (and the model's JSON and weights) to ``fname`` (npz,
        no pickle), for :meth:`Analyzer.load_npz`."""
        write_npz(fname, *self.save())

    @staticmethod
    def load(class_name: str, state: dict[str, Any], model: Any = None) -> registry.Explainer:
        """Rebuild an analyzer from :meth:`save`'s ``(name, state)``, on ``model`` if given
        (else on the model held in ``state``)."""
        return registry.load(class_name, state, model)

    @staticmethod
    def load_npz(fname: Any, model: Any = None) -> registry.Explainer:
        """Rebuild an analyzer from a :meth:`save_npz` file, on ``model`` if given (else on
        the model rebuilt from the stored JSON and weights)."""
        return registry.load_npz(fname, model)

    # -- public --------------------------------------------------------------------
    def analyze(self, x: Any, neuron_selection: NeuronSelection = None,
                batch_size: int | None = None) -> np.ndarray:
        """Relevance (or attribution) of every input value, shape of ``x``.

        Parameters
        ----------
        x
            Input batch ``[batch, *model_input_shape]`` (array-like, finite).
        neuron_selection
            With ``neuron_selection_mode="max_activation"`` (default): ``None`` or
            ``"max_activation"`` (each sample's top logit), or, beyond iNNvestigate, an int
            (that output for every sample) or an int array ``[batch]`` (one per sample).
            With ``"index"``: required, an int or int array ``[batch]``. With ``"all"``:
            must be ``None`` (the sum of all outputs is explained).
        batch_size
            Explain at most this many samples at a time (``None``: all at once). Each chunk
            is computed independently and written into the result, so the working memory is
            that of one chunk whatever the size of ``x``; the result equals the unbatched
            one up to float rounding (each sample's relevance depends only on that sample;
            analyzers that draw noise, ``smoothgrad`` and ``random``, draw it per chunk).
        """
        if batch_size is not None:
            batch_size = self._check_batch_size(batch_size)
        x = self._check_input(x)
        index = self._check_selection(neuron_selection, x.shape[0])
        with float32_compute(self._reduced_precision):
            return self._analyze_chunks(x, index, batch_size)

    def _analyze_chunks(self, x: np.ndarray, index: np.ndarray, batch_size: int | None
                        ) -> np.ndarray:
        n = x.shape[0]
        if batch_size is None or batch_size >= n:
            return self._compiled(tf.convert_to_tensor(x), tf.convert_to_tensor(index)).numpy()
        out: np.ndarray | None = None
        for start in range(0, n, int(batch_size)):
            stop = min(start + int(batch_size), n)
            chunk = self._compiled(tf.convert_to_tensor(x[start:stop]),
                                   tf.convert_to_tensor(index[start:stop])).numpy()
            if out is None:
                out = np.empty((n, *chunk.shape[1:]), dtype=chunk.dtype)
            out[start:stop] = chunk
        return out

    def analyze_layers(self, x: Any, layers: Any, neuron_selection: NeuronSelection = None,
                       batch_size: int | None = None) -> dict[str, np.ndarray]:
        """Relevance at intermediate layers: given by the relevance-propagation analyzers
        (LRP and deep Taylor names, :meth:`analyzers.relevance.RelevanceAnalyzer.analyze_layers`);
        the others raise a ValueError."""
        raise ValueError(f"analyzer {self.name!r} gives no relevance at intermediate layers; "
                         "the LRP / deep Taylor analyzers do (e.g. 'lrp.epsilon', "
                         "'deep_taylor.bounded')")

    @staticmethod
    def _check_batch_size(batch_size: Any) -> int:
        if (isinstance(batch_size, (bool, np.bool_))
                or not isinstance(batch_size, (int, np.integer)) or batch_size < 1):
            raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
        return int(batch_size)

    def __repr__(self) -> str:
        """The class, name and model, and the settings given to
        :func:`analyzers.create_analyzer` (options, and ``neuron_selection_mode`` and
        ``compat`` where not the default)."""
        shown = {"name": self.name, "model": self.model.name}
        if self.settings is not None:
            shown.update(self.settings.options)
        if self.neuron_selection_mode != "max_activation":
            shown["neuron_selection_mode"] = self.neuron_selection_mode
        if self.compat is not None:
            shown["compat"] = self.compat
        text = ", ".join(f"{k}={_short(v)}" for k, v in shown.items())
        return f"{type(self).__name__}({text})"

    # -- implementation ------------------------------------------------------------
    def _explain(self, x: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    def _selected(self, logits: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
        """One-hot mask ``[batch, n_outputs]`` of the explained neuron per sample
        (``index == -1``: the sample's top logit; ``-2``: all outputs, a mask of ones)."""
        top = tf.argmax(logits, axis=-1, output_type=tf.int32)
        chosen = tf.where(index < 0, top, index)
        mask = tf.one_hot(chosen, depth=tf.shape(logits)[-1], dtype=logits.dtype)
        every = tf.equal(index, _ALL)[:, None]
        return tf.where(every, tf.ones_like(mask), mask)

    def _check_input(self, x: Any) -> np.ndarray:
        try:
            arr = np.asarray(x, dtype=np.float32)
        except (TypeError, ValueError) as err:
            raise ValueError(f"x must be a numeric array, got {type(x).__name__}: {err}") \
                from err
        expected = self.input_shape  # (None, ...)
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
        n = self.n_outputs
        mode = self.neuron_selection_mode
        if mode not in NEURON_SELECTION_MODES:
            raise ValueError(f"neuron_selection_mode must be one of "
                             f"{', '.join(map(repr, NEURON_SELECTION_MODES))}; got {mode!r}")
        if mode == "all":
            if selection is not None:
                raise ValueError(f"neuron_selection_mode 'all' explains the sum of all outputs "
                                 f"and takes no neuron_selection; got {selection!r}")
            return np.full((batch,), _ALL, dtype=np.int32)
        if selection is None or (isinstance(selection, str) and mode == "max_activation"):
            if mode == "index":
                raise ValueError("neuron_selection_mode 'index' needs neuron_selection=<int or "
                                 "int array of shape [batch]> in analyze()")
            if selection not in (None, "max_activation"):
                raise ValueError(f"neuron_selection must be 'max_activation', an int or an "
                                 f"int array of shape [batch]; got {selection!r}")
            return np.full((batch,), -1, dtype=np.int32)
        if isinstance(selection, (str, bool, np.bool_)):
            raise ValueError(f"neuron_selection must be an int or an int array of shape "
                             f"[batch]; got {selection!r}")
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


def _short(value: Any) -> str:
    """``repr`` of an option, arrays by shape."""
    if isinstance(value, np.ndarray):
        return f"array(shape={value.shape})"
    return repr(value)


def _io_shapes(model: Any, graph: Graph | None) -> tuple[tuple[Any, ...], int]:
    """``(input shape, number of outputs)`` of a single-input model with output
    ``[batch, n_outputs]``."""
    if graph is not None:
        shape, n = graph.input_shape, graph.n_outputs
    else:
        shape, n = tuple(model.inputs[0].shape), model.outputs[0].shape[-1]
    out_shape = model.outputs[0].shape
    if len(out_shape) != 2:
        raise ValueError(f"analyzers explain models whose output is [batch, n_outputs]; "
                         f"'{model.name}' outputs shape {tuple(out_shape)}")
    return tuple(shape), int(n)
