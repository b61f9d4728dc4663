"""Recurrent layers as steps of the engine: LSTM, GRU, SimpleRNN, ConvLSTM1D/2D/3D (and RNN
around their cells), Bidirectional, and the masks Keras passes them.

A recurrent layer is one step. Its op runs the cell (:mod:`analyzers.ops.recurrent.cells`) over the
timesteps itself, a Python loop over the fixed number of frames inside the analyzer's
``tf.function``, with Keras's semantics: ``go_backwards`` processes the frames last to first and
returns its sequence in that order; a masked timestep keeps the previous state and outputs it
(zeros with ``zero_output_for_mask``, which Bidirectional sets for sequences). The rule
(:class:`analyzers.rules.RecurrentRule`) walks the same loop backwards; the composite chooses
the rules of the cell's parts (:meth:`RecurrentOp.parts`).

Masks: a ``Masking`` layer's mask reaches a recurrent layer through the layers Keras passes it
through unchanged (those with ``supports_masking`` and the default ``compute_mask``: Dense,
TimeDistributed, Dropout, activations, ...; stacked recurrent layers with
``return_sequences``). :class:`MaskFlow` follows it over the graph as the model is flattened;
the recurrent step then reads it as a second input, computed by a :class:`MaskOp` step from the
Masking layer's input. A mask that Keras combines or computes otherwise, and any other layer
that uses a mask, are refused by name.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import keras
import tensorflow as tf

from analyzers.ops.base import LayerOp, Tensor
from analyzers.ops.recurrent.cells import Cell, CellSumOp, State, Weights, make_cell
from analyzers.rules import GradientRule
from analyzers.rules.recurrent import select

L = keras.layers


@dataclass(frozen=True)
class Run:
    """One pass of a recurrent layer over a batch, per timestep in processing order.

    ``records``: what the cell's ``relevance`` needs; ``masks``: ``[batch]`` bool per step
    (None: unmasked); ``fresh``: the step is a sample's first (True at step 0; a ``[batch]``
    bool where masked steps came before); ``state``: the final state; ``output``: the layer's
    output.
    """

    weights: Weights
    records: list[Any]
    masks: list[Tensor] | None
    fresh: list[bool | Tensor]
    state: State
    output: Tensor


_UNKNOWN_LENGTH = ("a sequence of unknown length: give the model input a fixed number of "
                   "timesteps, e.g. keras.Input(shape=(timesteps, ...)), and pad shorter "
                   "sequences (mask the padding with a Masking layer)")


def _check_timesteps(layer: Any) -> None:
    config = layer.get_build_config() if layer.built else None
    shapes = {} if not config else config.get("shapes_dict", config)
    shape = shapes.get("input_shape", shapes.get("sequences_shape"))
    if shape is None or shape[1] is None:
        raise ValueError(_UNKNOWN_LENGTH)


class RecurrentOp(LayerOp):
    """``LSTM``, ``GRU``, ``SimpleRNN``, ``ConvLSTM1D/2D/3D``, ``RNN(cell)``: inputs ``[x]``
    or ``[x, mask]`` (``mask``: ``[batch, time]``, 1 for a kept timestep).

    Parameters
    ----------
    layer
        The Keras recurrent layer.
    owner, label
        The layer the parts report to composites (a Bidirectional wrapper) and the prefix of
        their names (default: the layer and its name).
    """

    has_weights = True
    mixes_inputs = True
    preserves_nonnegative = False

    def __init__(self, layer: Any, owner: Any = None, label: str | None = None) -> None:
        super().__init__(layer)
        if layer.stateful:
            raise ValueError("stateful=True (the state would carry over from other batches: "
                             "rebuild the layer with stateful=False)")
        if layer.return_state:
            raise ValueError("return_state=True (several outputs: explain a model that "
                             "returns the sequence or the last output only)")
        _check_timesteps(layer)
        self.cell: Cell = make_cell(layer, owner or layer, label or layer.name)
        self.return_sequences = bool(layer.return_sequences)
        self.go_backwards = bool(layer.go_backwards)
        self.zero_output_for_mask = bool(getattr(layer, "zero_output_for_mask", False))

    def parts(self) -> dict[str, LayerOp]:
        """The cell's parts whose rules the composite chooses, by rule name."""
        return dict(self.cell.parts)

    @tf.autograph.experimental.do_not_convert  # plain Python over fixed timesteps
    def run(self, xs: list[Tensor]) -> Run:
        """Run the cell over the timesteps of ``xs[0]`` (masked by ``xs[1]`` if given)."""
        steps = xs[0].shape[1]
        if steps is None:
            raise ValueError(f"layer '{self.name}' reads {_UNKNOWN_LENGTH}")
        frames = tf.unstack(xs[0], num=steps, axis=1)
        masks = None if len(xs) < 2 else tf.unstack(xs[1] > 0.5, num=steps, axis=1)
        if self.go_backwards:
            frames = frames[::-1]
            masks = None if masks is None else masks[::-1]
        weights = self.cell.weights()
        state: State | None = None
        started: Tensor | None = None
        records, outputs, fresh = [], [], []
        for t, x_t in enumerate(frames):
            new, record = self.cell.step(weights, x_t, state)
            fresh.append(True if t == 0 else (False if masks is None
                                              else tf.logical_not(started)))
            if masks is not None:  # a masked step keeps the previous state
                old = state if state is not None else tuple(tf.zeros_like(s) for s in new)
                new = tuple(select(masks[t], n, o) for n, o in zip(new, old))
                started = masks[t] if started is None else tf.logical_or(started, masks[t])
            state = new
            out = state[0]
            if masks is not None and self.zero_output_for_mask:
                out = select(masks[t], out, tf.zeros_like(out))
            records.append(record)
            outputs.append(out)
        output = tf.stack(outputs, axis=1) if self.return_sequences else outputs[-1]
        return Run(weights, records, masks, fresh, state, output)

    def preactivation(self, xs: list[Tensor]) -> Tensor:
        return self.run(xs).output


_MERGES = ("concat", "sum", "ave")


class BidirectionalOp(LayerOp):
    """``Bidirectional`` around a supported recurrent layer, ``merge_mode`` concat, sum or
    ave: the forward and the backward layer read the same input (and mask); the backward
    sequence is flipped back into time order, then merged."""

    has_weights = True
    mixes_inputs = True
    preserves_nonnegative = False

    def __init__(self, layer: Any) -> None:
        super().__init__(layer)
        if layer.merge_mode not in _MERGES:
            raise ValueError(f"merge_mode={layer.merge_mode!r} (supported: "
                             f"{', '.join(_MERGES)}; 'mul' multiplies two signals, None gives "
                             "two outputs)")
        self.directions = (RecurrentOp(layer.forward_layer, layer, f"{layer.name}/forward"),
                           RecurrentOp(layer.backward_layer, layer, f"{layer.name}/backward"))
        self.merge_mode = layer.merge_mode
        self.return_sequences = bool(layer.return_sequences)
        self.merge = CellSumOp(layer, mean=self.merge_mode == "ave", name=f"{layer.name}/merge")

    def parts(self) -> dict[str, LayerOp]:
        """Both directions' parts (``forward/...``, ``backward/...``) and, for sum / ave, the
        merge (an Add)."""
        out = {f"{side}/{name}": part for side, op in zip(("forward", "backward"),
                                                           self.directions)
               for name, part in op.parts().items()}
        if self.merge_mode != "concat":
            out["merge"] = self.merge
        return out

    def aligned(self, run: Run) -> Tensor:
        """A direction's output in time order (the backward sequence flipped back)."""
        return tf.reverse(run.output, [1]) if self.return_sequences else run.output

    def runs(self, xs: list[Tensor]) -> tuple[Run, Run]:
        """Both directions run on ``xs``."""
        return self.directions[0].run(xs), self.directions[1].run(xs)

    def preactivation(self, xs: list[Tensor]) -> Tensor:
        forward, backward = self.runs(xs)
        ys = [forward.output, self.aligned(backward)]
        if self.merge_mode == "concat":
            return tf.concat(ys, axis=-1)
        return self.merge.linear(ys)


# -- masks ---------------------------------------------------------------------------------
class MaskingOp(LayerOp):
    """``Masking``: a timestep whose features all equal ``mask_value`` becomes zeros (relevance
    passes by the Jacobian: none to masked steps). Its mask goes to recurrent layers through
    :class:`MaskFlow`."""

    def linear(self, xs: list[Tensor], kernel: Tensor | None = None,
               bias: Tensor | None = None) -> Tensor:
        x = xs[0]
        keep = tf.reduce_any(tf.not_equal(x, self.layer.mask_value), axis=-1, keepdims=True)
        return tf.where(keep, x, tf.zeros_like(x))


class MaskOp(LayerOp):
    """The mask of a ``Masking`` layer as a tensor ``[batch, time]`` (1: kept), computed from
    the Masking layer's input for the recurrent layer that reads it. It is no copy of input
    values (``mixes_inputs``: the engine does not count it as carrying the model input) and
    passes no relevance."""

    mixes_inputs = True

    def __init__(self, masking: Any) -> None:
        super().__init__(masking, f"{masking.name}/mask")

    def linear(self, xs: list[Tensor], kernel: Tensor | None = None,
               bias: Tensor | None = None) -> Tensor:
        keep = tf.reduce_any(tf.not_equal(xs[0], self.layer.mask_value), axis=-1)
        return tf.cast(keep, xs[0].dtype)

    def standard_rule(self, max_pooling: str) -> Any:
        return GradientRule()  # zero: the mask is piecewise constant


@dataclass(frozen=True)
class MaskSource:
    """A Masking layer's mask: ``tensor`` is the id of the Masking layer's input."""

    tensor: int
    layer: Any


def _reads_mask(ops: list[LayerOp]) -> bool:
    return len(ops) == 1 and isinstance(ops[0], (RecurrentOp, BidirectionalOp))


def _uses_mask(layer: Any) -> bool:
    """Whether Keras would hand ``layer`` a mask that changes its output (at inference)."""
    if isinstance(layer, L.TimeDistributed):
        return _uses_mask(layer.layer)
    if isinstance(layer, (L.BatchNormalization, L.Softmax, keras.Model)):
        return False  # BatchNormalization: inference statistics; Softmax: after the logits
    return "mask" in inspect.signature(layer.call).parameters


class MaskFlow:
    """Which engine tensors carry a Keras mask, and where it comes from: a
    :class:`MaskSource`, or a string naming the layer where Keras combines or computes it
    otherwise. Filled layer by layer as the graph is flattened."""

    def __init__(self) -> None:
        self.masks: dict[int, MaskSource | str] = {}

    def mask_for(self, layer: Any, ops: list[LayerOp], input_ids: list[int]
                 ) -> MaskSource | None:
        """The mask ``layer`` (made into ``ops``) reads as an extra input: a recurrent layer's
        Masking source, else None. ``ValueError`` (the reason) for an ``initial_state``, a
        mask the engine cannot follow, and any other layer that uses a mask."""
        if _reads_mask(ops) and len(input_ids) != 1:
            raise ValueError("an initial_state argument (the engine starts from the zero "
                             "state)")
        mask = self.masks.get(input_ids[0]) if input_ids else None
        if mask is None:
            return None
        if _reads_mask(ops):
            if isinstance(mask, MaskSource):
                return mask
            raise ValueError(f"a mask Keras computes in {mask} (supported: the mask of a "
                             "Masking layer, passed on unchanged)")
        if _uses_mask(layer):
            what = f"Masking '{mask.layer.name}'" if isinstance(mask, MaskSource) else mask
            raise ValueError(f"it uses the mask of {what}; masks are explained in recurrent "
                             "layers only")
        return None

    def record(self, layer: Any, input_ids: list[int], output_ids: list[int]) -> None:
        """The mask of ``layer``'s outputs, as Keras sets it."""
        mask = self.masks.get(input_ids[0]) if input_ids else None
        if isinstance(layer, L.Masking):
            out: MaskSource | str | None = MaskSource(input_ids[0], layer)
        elif mask is None or not layer.supports_masking:
            out = None  # Keras drops a mask at a layer that does not support masking
        elif isinstance(layer, (L.RNN, L.Bidirectional)):
            out = mask if layer.return_sequences else None
        elif len(input_ids) > 1 or type(layer).compute_mask is not L.Layer.compute_mask:
            out = f"layer '{layer.name}' ({type(layer).__name__})"
        else:
            out = mask
        for i in output_ids:
            if out is not None:
                self.masks[i] = out

    def fold(self, layer: Any, input_id: int, folded_id: int) -> None:
        """Frames of ``input_id`` folded into the batch for ``TimeDistributed`` around a
        model: Keras hands that model one mask per frame, which the engine does not follow."""
        if input_id in self.masks:
            self.masks[folded_id] = f"layer '{layer.name}' (one mask per frame)"


__all__ = ["BidirectionalOp", "MaskFlow", "MaskOp", "MaskSource", "MaskingOp", "RecurrentOp",
           "Run"]
