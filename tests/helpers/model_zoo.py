"""A generated zoo of Keras models for the analyzers tests (issue 22).

A model is described by a :class:`Spec` (rank, Sequential or functional, biases, blocks,
head) and built by :func:`build`, which also returns the *facts* the checks need: which
rules should conserve on it, whether the matrix-form reference applies, whether it has
separate ReLU layers. Hypothesis draws specs with :func:`specs`.

Every layer kind comes from a table, so a new kind is one entry:

* :data:`ACTIVATIONS`: how a block's nonlinearity is written (fused, as a layer, ...);
* :data:`POOLS`, :data:`DROPOUTS`: what may follow it;
* :data:`BLOCKS`: the body's building blocks (a convolution block, residual ``Add``,
  ``Concatenate`` branches, ``TimeDistributed`` around single layers or around a nested
  per-frame model, a nested Sequential model, ...); a block declares the ranks and styles it
  works in, and the names of analyzers that refuse it (``refused_by``: the checks then expect
  a clear refusal instead of an explanation);
* :data:`REDUCERS`, :data:`ENDS`: the head (flatten / global pooling / reshape, and how the
  final softmax is written, if any).

Facts (strings) a build reports: ``bias`` (some layer has a bias), ``signed`` (some hidden
activation can be negative: z+ may lose relevance there), ``proportional`` (average pooling
or a sum splits relevance in proportion to its inputs: w^2 / flat may lose it there),
``chain`` (a Sequential chain of single layers: the matrix-form reference of
``zoo_reference`` applies), ``relu`` and ``separate_relu`` (ReLUs, and ReLUs written as
layers of their own).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import keras
import numpy as np
from hypothesis import strategies as st

L = keras.layers

#: Input shape per rank (spatial dims, channels last).
SHAPES = {1: (12, 2), 2: (8, 8, 2), 3: (4, 8, 8, 2)}
#: Outputs of every zoo model (output 2 mirrors output 0: the top logit is never negative).
N_OUTPUTS = 3
#: The input box of the zoo's data (the z^B bounds of ``deep_taylor.bounded``).
LOW, HIGH = -1.0, 1.0


def _cls(prefix: str, rank: int, suffix: str = "D") -> type:
    return getattr(L, f"{prefix}{rank}{suffix}")


# -- activations -------------------------------------------------------------------------
@dataclass(frozen=True)
class Activation:
    """How a nonlinearity is written: fused into the layer before (``fused``, a Keras name)
    and/or as a layer of its own (``layer``). ``nonnegative``: its output is >= 0."""

    fused: str | None
    layer: Callable[[], Any] | None
    nonnegative: bool
    relu: bool = False

    def as_layer(self) -> Any:
        """The nonlinearity as a layer (``Activation(fused)`` if it has no layer form)."""
        return self.layer() if self.layer is not None else L.Activation(self.fused or "linear")


ACTIVATIONS: dict[str, Activation] = {
    "fused_relu": Activation("relu", None, True, relu=True),
    "relu_layer": Activation(None, L.ReLU, True, relu=True),
    "activation_relu": Activation(None, lambda: L.Activation("relu"), True, relu=True),
    "leaky_relu": Activation(None, lambda: L.LeakyReLU(negative_slope=0.2), False),
    "elu": Activation(None, L.ELU, False),
    "fused_elu": Activation("elu", None, False),
    "linear": Activation(None, None, False),
}
#: Separate ReLU layers and the fused form they must explain like.
FUSED_TWIN = {"relu_layer": "fused_relu", "activation_relu": "fused_relu"}


# -- what follows an activation ----------------------------------------------------------
#: Pooling after a block: ``(rank) -> layer or None``; ``proportional`` kinds are marked.
POOLS: dict[str, Callable[[int], Any]] = {
    "none": lambda r: None,
    "max": lambda r: _cls("MaxPooling", r)(2, padding="same"),
    "max_overlapping": lambda r: _cls("MaxPooling", r)(3, strides=2, padding="same"),
    "avg": lambda r: _cls("AveragePooling", r)(2, padding="same"),
}
PROPORTIONAL_POOLS = ("avg",)
DROPOUTS: dict[str, Callable[[int], Any]] = {
    "none": lambda r: None,
    "dropout": lambda r: L.Dropout(0.3),
    "spatial": lambda r: _cls("SpatialDropout", r)(0.3),
    "gaussian_noise": lambda r: L.GaussianNoise(0.5),
}


# -- spec ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Block:
    """One building block (a key of :data:`BLOCKS`) and its choices."""

    kind: str
    activation: str = "fused_relu"
    norm: str = "none"  # "none", "before" or "after" the activation
    pool: str = "none"
    dropout: str = "none"
    filters: int = 3
    nested: str = "sequential"  # a nested model's style (td_model, nested)


@dataclass(frozen=True)
class Spec:
    """A zoo model."""

    rank: int
    style: str  # "sequential" or "functional"
    bias: bool
    blocks: tuple[Block, ...]
    reducer: str = "flatten"
    hidden: str = "none"  # an activation key for a hidden Dense, or "none"
    end: str = "logits"
    seed: int = 0

    def with_activations(self, mapping: dict[str, str]) -> Spec:
        """The same spec with activation kinds renamed (e.g. separate ReLUs fused)."""
        blocks = tuple(replace(b, activation=mapping.get(b.activation, b.activation))
                       for b in self.blocks)
        return replace(self, blocks=blocks, hidden=mapping.get(self.hidden, self.hidden))


@dataclass
class Built:
    """A built zoo model, its spec and facts."""

    model: keras.Model
    spec: Spec
    facts: set[str] = field(default_factory=set)
    #: analyzer names that must refuse this model (a block's ``refused_by``)
    refused_by: set[str] = field(default_factory=set)


class _Net:
    """The model under construction: a symbolic tensor and the facts gathered."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.input = keras.Input(SHAPES[spec.rank])
        self.h = self.input
        self.facts: set[str] = set()
        self.refused_by: set[str] = set()
        #: the current tensor may be negative (the input is; a ReLU block's output is not)
        self.signed = True

    @property
    def rank(self) -> int:
        return len(self.h.shape) - 2

    def add(self, layer: Any) -> None:
        if layer is not None:
            self.h = layer(self.h)

    def activation(self, key: str) -> Activation:
        act = ACTIVATIONS[key]
        self.signed = not act.nonnegative
        if not act.nonnegative:
            self.facts.add("signed")
        if act.relu:
            self.facts.add("relu")
            if act.fused is None:
                self.facts.add("separate_relu")
        return act


def _conv_layers(net: _Net, block: Block, conv: Callable[..., Any], wrap: Callable[[Any], Any],
                 rank: int) -> list[Any]:
    """Kernel layer, normalisation, activation, dropout, pooling of one block (each wrapped
    by ``wrap``, e.g. TimeDistributed)."""
    act = net.activation(block.activation)
    fused = act.fused if (block.norm != "before" and act.layer is None) else None
    layers = [conv(activation=fused)]
    norm = L.BatchNormalization(center=net.spec.bias) if block.norm != "none" else None
    if block.norm == "before":
        layers.append(norm)
    if fused is None and (act.layer is not None or act.fused is not None):
        layers.append(act.as_layer())
    if block.norm == "after":
        layers.append(norm)
    layers += [DROPOUTS[block.dropout](rank), POOLS[block.pool](rank)]
    if block.pool in PROPORTIONAL_POOLS:
        net.facts.add("proportional")
    return [wrap(layer) for layer in layers if layer is not None]


def _conv(net: _Net, block: Block, rank: int | None = None) -> Callable[..., Any]:
    rank = net.rank if rank is None else rank
    return lambda activation: _cls("Conv", rank)(block.filters, 3, padding="same",
                                                 activation=activation,
                                                 use_bias=net.spec.bias)


def _block_conv(net: _Net, block: Block) -> None:
    for layer in _conv_layers(net, block, _conv(net, block), lambda x: x, net.rank):
        net.add(layer)


def _block_td_layers(net: _Net, block: Block) -> None:
    """TimeDistributed around each layer of a (rank-1) convolution block."""
    for layer in _conv_layers(net, block, _conv(net, block, net.rank - 1), L.TimeDistributed,
                              net.rank - 1):
        net.add(layer)


def _block_td_dense(net: _Net, block: Block) -> None:
    """TimeDistributed(Dense) on the last axis, its activation as the block says."""
    dense = lambda activation: L.Dense(block.filters, activation=activation,  # noqa: E731
                                       use_bias=net.spec.bias)
    for layer in _conv_layers(net, replace(block, pool="none"), dense, L.TimeDistributed,
                              net.rank):
        net.add(layer)


def _nested_model(net: _Net, block: Block, shape: tuple[int, ...]) -> keras.Model:
    rank = len(shape) - 1
    layers = _conv_layers(net, block, _conv(net, block, rank), lambda x: x, rank)
    if block.nested == "sequential":
        return keras.Sequential([keras.Input(shape)] + layers)
    inp = keras.Input(shape)
    h = inp
    for layer in layers:
        h = layer(h)
    return keras.Model(inp, h)


def _block_td_model(net: _Net, block: Block) -> None:
    """TimeDistributed around a nested per-frame model (a per-frame CNN)."""
    net.add(L.TimeDistributed(_nested_model(net, block, tuple(net.h.shape[2:]))))


def _block_nested(net: _Net, block: Block) -> None:
    """A convolution block as a nested model."""
    net.add(_nested_model(net, block, tuple(net.h.shape[1:])))


def _block_residual(net: _Net, block: Block) -> None:
    """``h + block(h)`` (the block keeps the channels), then the activation again."""
    before, signed = net.h, net.signed
    block = replace(block, filters=int(before.shape[-1]), pool="none")
    _block_conv(net, block)
    net.h = L.Add()([before, net.h])
    net.facts.add("proportional")
    if signed:  # a sum with a negative input: z+ may find no positive part at the sum
        net.facts.add("signed")
        net.signed = True


def _block_branches(merge: Callable[[], Any]) -> Callable[[_Net, Block], None]:
    def build(net: _Net, block: Block) -> None:
        start, outs = net.h, []
        for filters in (block.filters, block.filters):  # same channels: Add works too
            net.h = start
            _block_conv(net, replace(block, filters=filters, pool="none"))
            outs.append(net.h)
        net.h = merge()(outs)
        net.add(POOLS[block.pool](net.rank))
        if block.pool in PROPORTIONAL_POOLS:
            net.facts.add("proportional")
    return build


@dataclass(frozen=True)
class BlockMaker:
    """A kind of block: how to build it, where it fits, what it implies."""

    build: Callable[[_Net, Block], None]
    ranks: tuple[int, ...] = (1, 2, 3)
    functional_only: bool = False
    #: the matrix-form reference handles it (a chain of single layers)
    chain: bool = True
    facts: tuple[str, ...] = ()
    #: analyzer names that refuse it (a clear UnsupportedLayerError is expected)
    refused_by: tuple[str, ...] = ()


BLOCKS: dict[str, BlockMaker] = {
    "conv": BlockMaker(_block_conv),
    "td_layers": BlockMaker(_block_td_layers, ranks=(2, 3)),
    "td_dense": BlockMaker(_block_td_dense),
    "td_model": BlockMaker(_block_td_model, ranks=(2, 3), chain=False),
    "nested": BlockMaker(_block_nested, chain=False),
    "residual": BlockMaker(_block_residual, functional_only=True, chain=False),
    "add": BlockMaker(_block_branches(L.Add), functional_only=True, chain=False,
                      facts=("proportional",)),
    "concat": BlockMaker(_block_branches(L.Concatenate), functional_only=True, chain=False),
}

#: How the body is reduced to a vector.
REDUCERS: dict[str, Callable[[int], Any]] = {
    "flatten": lambda r: L.Flatten(),
    "reshape": lambda r: L.Reshape((-1,)),
    "global_max": lambda r: _cls("GlobalMaxPooling", r)(),
    "global_avg": lambda r: _cls("GlobalAveragePooling", r)(),
}
PROPORTIONAL_REDUCERS = ("global_avg",)
#: How the output is written: ``(bias) -> [layers]`` after the body.
ENDS: dict[str, Callable[[bool], list[Any]]] = {
    "logits": lambda bias: [L.Dense(N_OUTPUTS, use_bias=bias)],
    "dense_softmax": lambda bias: [L.Dense(N_OUTPUTS, activation="softmax", use_bias=bias)],
    "activation_softmax": lambda bias: [L.Dense(N_OUTPUTS, use_bias=bias),
                                        L.Activation("softmax")],
    "softmax_layer": lambda bias: [L.Dense(N_OUTPUTS, use_bias=bias), L.Softmax()],
}


def build(spec: Spec, logits: bool = False) -> Built:
    """The model of ``spec`` with random weights (BatchNormalization statistics and biases
    included), seeded by ``spec.seed``; ``logits=True``: without its final softmax (the
    same weights, for the tape-gradient reference)."""
    keras.utils.set_random_seed(spec.seed)
    net = _Net(spec)
    chain = spec.style == "sequential"
    for block in spec.blocks:
        maker = BLOCKS[block.kind]
        maker.build(net, block)
        net.facts.update(maker.facts)
        net.refused_by.update(maker.refused_by)
        chain = chain and maker.chain
    net.add(REDUCERS[spec.reducer](net.rank))
    if spec.reducer in PROPORTIONAL_REDUCERS:
        net.facts.add("proportional")
    if spec.hidden != "none":
        act = net.activation(spec.hidden)
        net.add(L.Dense(4, activation=act.fused if act.layer is None else None,
                        use_bias=spec.bias))
        if act.layer is not None:
            net.add(act.as_layer())
    for layer in ENDS["logits" if logits else spec.end](spec.bias):
        net.add(layer)
    model = keras.Model(net.input, net.h, name="zoo")
    if spec.style == "sequential":
        model = keras.Sequential([keras.Input(SHAPES[spec.rank])] + model.layers[1:],
                                 name="zoo_sequential")
    if spec.bias:
        net.facts.add("bias")
    if chain and not (spec.bias and any(b.norm != "none" for b in spec.blocks)):
        net.facts.add("chain")  # (a folded BatchNorm with a shift is not layer by layer)
    _randomise(model, spec)
    return Built(model, spec, net.facts, net.refused_by)


def _all_layers(model: Any) -> list[Any]:
    out = []
    for layer in model.layers:
        inner = getattr(layer, "layer", None)
        if isinstance(layer, keras.Model):
            out += _all_layers(layer)
        elif isinstance(inner, keras.Model):
            out += _all_layers(inner)
        else:
            out.append(inner if inner is not None else layer)
    return out


def _randomise(model: keras.Model, spec: Spec) -> None:
    """Random BatchNorm statistics (zero mean without biases, so that a bias-free model
    stays bias-free), random biases, and output 2 = -output 0 (the top logit is >= 0)."""
    rng = np.random.default_rng(spec.seed)
    for layer in _all_layers(model):
        if isinstance(layer, L.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, n).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, n).astype("float32"))
            if spec.bias:
                layer.moving_mean.assign(rng.normal(0, 0.2, n).astype("float32"))
                layer.beta.assign(rng.normal(0, 0.2, n).astype("float32"))
        elif getattr(layer, "bias", None) is not None and getattr(layer, "use_bias", False):
            layer.bias.assign(rng.normal(0, 0.1, layer.bias.shape).astype("float32"))
    head = [layer for layer in _all_layers(model) if isinstance(layer, L.Dense)][-1]
    kernel = head.kernel.numpy()
    kernel[:, 2] = -kernel[:, 0]
    head.kernel.assign(kernel)
    if head.use_bias:
        bias = head.bias.numpy()
        bias[2] = -bias[0]
        head.bias.assign(bias)


def inputs(built: Built, n: int, seed: int = 0) -> np.ndarray:
    """``n`` samples uniform in the zoo's input box."""
    shape = (n,) + SHAPES[built.spec.rank]
    return np.random.default_rng(seed).uniform(LOW, HIGH, shape).astype(np.float32)


# -- strategies ---------------------------------------------------------------------------
def _blocks(rank: int, style: str) -> list[str]:
    return [k for k, m in BLOCKS.items() if rank in m.ranks
            and (style == "functional" or not m.functional_only)]


@st.composite
def specs(draw: Any, ranks: tuple[int, ...] = (1, 2, 3), max_blocks: int = 3) -> Spec:
    """A random :class:`Spec`."""
    rank = draw(st.sampled_from(ranks))
    style = draw(st.sampled_from(["sequential", "functional"]))
    block = st.builds(
        Block, kind=st.sampled_from(_blocks(rank, style)),
        activation=st.sampled_from(list(ACTIVATIONS)),
        norm=st.sampled_from(["none", "before", "after"]),
        pool=st.sampled_from(list(POOLS)), dropout=st.sampled_from(list(DROPOUTS)),
        filters=st.integers(2, 4), nested=st.sampled_from(["sequential", "functional"]))
    return Spec(rank=rank, style=style, bias=draw(st.booleans()),
                blocks=tuple(draw(st.lists(block, min_size=1, max_size=max_blocks))),
                reducer=draw(st.sampled_from(list(REDUCERS))),
                hidden=draw(st.sampled_from(["none"] + list(ACTIVATIONS))),
                end=draw(st.sampled_from(list(ENDS))), seed=draw(st.integers(0, 2**16)))
