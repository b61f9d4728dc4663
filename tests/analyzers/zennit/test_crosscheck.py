"""Cross-check against Zennit 1.0 (PyTorch, CPU): the same weights in an R3D-, an
R(2+1)D- and an X3D-shaped network, built in Keras and in PyTorch, explained by ``analyzers``
and by Zennit with the rules both define (z+, epsilon, alpha2-beta1), BatchNorm folded on
both sides (Zennit's ``SequentialMergeBatchNorm`` canonizer). The nets hold a strided stem, a
residual block, grouped and channelwise 3x3x3 convolutions, a squeeze-excitation gate (X3D),
swish (SiLU), global average pooling and a linear classifier. ``analyzers`` has no gamma
rule, so Zennit's ``Gamma`` is not compared.

Runs in ``tox -e zennit`` (torch==2.13.0, torchvision==0.28.0, zennit==1.0.0 installed with
``--ignore-requires-python``: it declares Python >= 3.11.11); skipped where torch or zennit
cannot be imported. Zennit 1.0's ``zennit.types`` imports torchvision (0.5.1's did not), and
the torchvision wheel that installs beside the CPU torch wheel is a CUDA build whose
extension does not load; zennit's rules, composites, canonizers and attributors only read
torchvision's pure-Python ``FrozenBatchNorm2d``, so zennit and torchvision are imported
without their package ``__init__`` where that fails (``zennit_loading.import_zennit``).

Differences, measured (documented, not hidden):

* A residual sum written as ``a + b`` in PyTorch is no module, so Zennit passes relevance
  through it by the plain gradient: both branches get all of it and the total grows at every
  skip (:func:`test_plain_residual_sum_duplicates_relevance_in_zennit`; measured with one
  skip: total / logit 1.977-1.997 on the R3D net, 1.994-1.995 on the R(2+1)D net, as
  iNNvestigate's deep_taylor at Add). Zennit's own
  remedy is its ``Sum`` module with the ``Norm`` rule (proportional split), which is what
  ``analyzers`` does at ``Add``; with it the two agree.
* Zennit's ``ZPlus`` puts the positive part of a bias into the denominator; ours ignores the
  bias (iNNvestigate's z+), so z+ and alpha-beta are compared on bias-free nets; epsilon is
  compared with biases too (BatchNorm offsets and running means, gate and classifier biases).
* Agreement, measured against Zennit 1.0.0 (oneDNN on and off): the largest elementwise
  difference is 1.7e-7 to 4.5e-6 of the largest relevance, totals agree within 9e-6,
  correlation 1 - 4e-12 or closer (float32 round-off; against Zennit 0.5.1 it was 0.1-0.7 %
  and totals 0.6 %). Tolerances: 1e-4 of the largest relevance, totals 1e-4, correlation
  > 1 - 1e-8.
* Zennit has no gate rule: a Multiply by a sigmoid is plain autograd, which scales the
  relevance by the gate and sends some into the gate path (total / logit 1.016-1.025 on the
  X3D net). Zennit's ``Pass`` on the whole squeeze-excitation module is our ``GateRule``
  (input gets all, gate none), and with it the two agree
  (:func:`test_squeeze_excitation_gate_frozen_by_pass_matches_gate_rule`).
* z+ behind swish loses the same relevance in both (totals 0.99970 and 0.99949 of the logit
  on the X3D net, :func:`test_z_plus_loses_the_same_relevance_in_zennit_behind_swish`).
"""

from __future__ import annotations

import importlib.metadata
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from zennit_loading import import_zennit  # noqa: E402  (no kvlrp, no TF)

import analyzers  # noqa: E402
from analyzers.rules import AlphaBetaRule  # noqa: E402

torch = pytest.importorskip("torch")


try:
    import_zennit()
    from zennit.attribution import Gradient
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.composites import LayerMapComposite
    from zennit.core import BasicHook, Stabilizer
    from zennit.layer import Sum
    from zennit.rules import AlphaBeta, Epsilon, Norm, Pass, ZPlus
    from zennit.types import Activation, AvgPool, Convolution
    from zennit.types import Linear as ZLinear
    from zennit.version import __version__ as ZENNIT_VERSION
except ImportError as err:  # pragma: no cover - depends on the environment
    pytest.skip(f"zennit is not importable: {err}", allow_module_level=True)

nn = torch.nn
L = keras.layers
SHAPE = (4, 8, 8, 3)  # frames, height, width, channels (Keras); PyTorch: C, T, H, W
WIDTH = 8
INNER = 12  # channels of the X3D block's channelwise convolution


# -- the two networks, layer for layer -----------------------------------------------------
def _keras_net(kind: str, bias: bool) -> keras.Model:
    if kind == "x3d":
        return _keras_x3d(bias)

    def bn(h, name):
        return L.BatchNormalization(epsilon=1e-3, center=bias, name=name)(h)

    inp = keras.Input(SHAPE)
    if kind == "r3d":
        h = L.ZeroPadding3D(((1, 1), (1, 1), (1, 1)))(inp)
        h = L.Conv3D(WIDTH, 3, strides=(1, 2, 2), use_bias=False, name="stem")(h)
    else:  # (2+1)D stem: spatial 1x3x3 (stride 2), BN, ReLU, temporal 3x1x1
        h = L.ZeroPadding3D(((0, 0), (1, 1), (1, 1)))(inp)
        h = L.Conv3D(6, (1, 3, 3), strides=(1, 2, 2), use_bias=False, name="stem_s")(h)
        h = L.ReLU()(bn(h, "stem_s_bn"))
        h = L.Conv3D(WIDTH, (3, 1, 1), padding="same", use_bias=False, name="stem")(h)
    x = L.ReLU()(bn(h, "stem_bn"))
    if kind == "r3d":
        y = L.Conv3D(WIDTH, 3, padding="same", use_bias=False, name="conv1")(x)
    else:
        y = L.Conv3D(6, (1, 3, 3), padding="same", use_bias=False, name="conv1_s")(x)
        y = L.ReLU()(bn(y, "conv1_s_bn"))
        y = L.Conv3D(WIDTH, (3, 1, 1), padding="same", use_bias=False, name="conv1")(y)
    y = L.ReLU()(bn(y, "bn1"))
    y = L.Conv3D(WIDTH, 3, padding="same", groups=2, use_bias=False, name="conv2")(y)
    y = bn(y, "bn2")
    h = L.ReLU()(L.Add()([y, x]))
    h = L.Conv3D(WIDTH, 3, padding="same", groups=4, use_bias=False, name="conv3")(h)
    h = L.Activation("silu")(bn(h, "bn3"))
    h = L.GlobalAveragePooling3D()(h)
    return keras.Model(inp, L.Dense(3, use_bias=bias, name="fc")(h))


def _keras_x3d(bias: bool) -> keras.Model:
    """An X3D block as in ``kvlrp.models.builders.x3d``: 1x1x1, channelwise 3x3x3, the
    squeeze-excitation gate (GAP, Dense relu, Dense sigmoid, Reshape, Multiply), swish,
    1x1x1, residual sum, ReLU."""
    def bn(h, name):
        return L.BatchNormalization(epsilon=1e-3, center=bias, name=name)(h)

    inp = keras.Input(SHAPE)
    h = L.ZeroPadding3D(((1, 1), (1, 1), (1, 1)))(inp)
    h = L.Conv3D(WIDTH, 3, strides=(1, 2, 2), use_bias=False, name="stem")(h)
    x = L.ReLU()(bn(h, "stem_bn"))
    y = L.ReLU()(bn(L.Conv3D(INNER, 1, use_bias=False, name="conv_a")(x), "bn_a"))
    y = L.Conv3D(INNER, 3, padding="same", groups=INNER, use_bias=False, name="conv_b")(y)
    y = bn(y, "bn_b")
    g = L.GlobalAveragePooling3D()(y)
    g = L.Dense(4, activation="relu", use_bias=bias, name="se_reduce")(g)
    g = L.Dense(INNER, activation="sigmoid", use_bias=bias, name="se_expand")(g)
    y = L.Multiply()([y, L.Reshape((1, 1, 1, INNER))(g)])
    y = L.Activation("silu")(y)
    y = bn(L.Conv3D(WIDTH, 1, use_bias=False, name="conv_c")(y), "bn_c")
    h = L.ReLU()(L.Add()([y, x]))
    h = L.GlobalAveragePooling3D()(h)
    return keras.Model(inp, L.Dense(3, use_bias=bias, name="fc")(h))


def _torch_conv(layer, padding) -> nn.Conv3d:
    kernel = layer.kernel.numpy()
    conv = nn.Conv3d(kernel.shape[3] * layer.groups, kernel.shape[4], kernel.shape[:3],
                     stride=layer.strides, padding=padding, groups=layer.groups, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(kernel.transpose(4, 3, 0, 1, 2).copy()))
    return conv


def _torch_bn(layer) -> nn.BatchNorm3d:
    c = layer.moving_mean.shape[0]
    out = nn.BatchNorm3d(c, eps=layer.epsilon)
    with torch.no_grad():
        out.weight.copy_(torch.from_numpy(layer.gamma.numpy()))
        out.bias.copy_(torch.from_numpy(layer.beta.numpy()) if layer.center
                       else torch.zeros(c))
        out.running_mean.copy_(torch.from_numpy(layer.moving_mean.numpy()))
        out.running_var.copy_(torch.from_numpy(layer.moving_variance.numpy()))
    return out


def _torch_linear(layer) -> nn.Linear:
    out = nn.Linear(layer.kernel.shape[0], layer.kernel.shape[1], bias=layer.use_bias)
    with torch.no_grad():
        out.weight.copy_(torch.from_numpy(layer.kernel.numpy().T.copy()))
        if layer.use_bias:
            out.bias.copy_(torch.from_numpy(layer.bias.numpy()))
    return out


def _unit(model: keras.Model, conv: str, bn: str, padding, act: bool = True) -> nn.Sequential:
    """Convolution and BatchNorm (and ReLU) in one Sequential, for ``SequentialMergeBatchNorm``."""
    mods = [_torch_conv(model.get_layer(conv), padding), _torch_bn(model.get_layer(bn))]
    return nn.Sequential(*mods, nn.ReLU()) if act else nn.Sequential(*mods)


class SqueezeExcite(nn.Module):
    """``x * sigmoid(expand(relu(reduce(mean(x)))))``; Zennit's ``Pass`` on this module gives
    its input all the relevance of its output and its gate none (our ``GateRule``)."""

    def __init__(self, model: keras.Model) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.reduce = _torch_linear(model.get_layer("se_reduce"))
        self.relu = nn.ReLU()
        self.expand = _torch_linear(model.get_layer("se_expand"))
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        gate = self.sigmoid(self.expand(self.relu(self.reduce(self.pool(x).flatten(1)))))
        return x * gate[:, :, None, None, None]


class TorchX3D(nn.Module):
    """:func:`_keras_x3d` in PyTorch."""

    def __init__(self, model: keras.Model, sum_module: bool = True) -> None:
        super().__init__()
        self.stem = _unit(model, "stem", "stem_bn", (1, 1, 1))
        self.conv_a = _unit(model, "conv_a", "bn_a", 0)
        self.conv_b = _unit(model, "conv_b", "bn_b", (1, 1, 1), act=False)
        self.se = SqueezeExcite(model)
        self.swish = nn.SiLU()
        self.conv_c = _unit(model, "conv_c", "bn_c", 0, act=False)
        self.sum = Sum() if sum_module else None
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = _torch_linear(model.get_layer("fc"))

    def forward(self, x):
        x = self.stem(x)
        y = self.conv_c(self.swish(self.se(self.conv_b(self.conv_a(x)))))
        h = self.sum(torch.stack([y, x], dim=-1)) if self.sum is not None else y + x
        return self.fc(self.pool(self.relu(h)).flatten(1))


class TorchNet(nn.Module):
    """The Keras net in PyTorch (channels first); Sequentials so that Zennit's
    ``SequentialMergeBatchNorm`` folds every BatchNorm into the convolution before it."""

    def __init__(self, model: keras.Model, kind: str, sum_module: bool = True) -> None:
        super().__init__()

        def unit(conv, bn, padding, act=True):
            return _unit(model, conv, bn, padding, act)

        if kind == "r3d":
            self.stem = unit("stem", "stem_bn", (1, 1, 1))
            self.conv1 = unit("conv1", "bn1", (1, 1, 1))
        else:
            self.stem = nn.Sequential(unit("stem_s", "stem_s_bn", (0, 1, 1)),
                                      unit("stem", "stem_bn", (1, 0, 0)))
            self.conv1 = nn.Sequential(unit("conv1_s", "conv1_s_bn", (0, 1, 1)),
                                       unit("conv1", "bn1", (1, 0, 0)))
        self.conv2 = unit("conv2", "bn2", (1, 1, 1), act=False)
        self.sum = Sum() if sum_module else None
        self.relu = nn.ReLU()
        self.conv3 = nn.Sequential(*unit("conv3", "bn3", (1, 1, 1), act=False), nn.SiLU())
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = _torch_linear(model.get_layer("fc"))

    def forward(self, x):
        x = self.stem(x)
        y = self.conv2(self.conv1(x))
        h = self.sum(torch.stack([y, x], dim=-1)) if self.sum is not None else y + x
        h = self.conv3(self.relu(h))
        return self.fc(self.pool(h).flatten(1))


def _build(kind: str, bias: bool, seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = _keras_net(kind, bias)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            c = layer.moving_mean.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, c).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, c).astype("float32"))
            if bias:
                layer.beta.assign(rng.normal(0, 0.2, c).astype("float32"))
                layer.moving_mean.assign(rng.normal(0, 0.2, c).astype("float32"))
        if isinstance(layer, L.Dense):  # logits of order 0.1-1, not 1e-3 (stabilisers)
            layer.kernel.assign(layer.kernel.numpy() * 30.0)
            if bias:
                layer.bias.assign(rng.normal(0, 0.1, layer.bias.shape[0]).astype("float32"))
    return model


def _input(seed: int = 1, n: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n,) + SHAPE).astype("float32")


def _positive_part_sum():
    """Zennit's own hook machinery splitting a ``Sum`` by its inputs' positive parts: the
    treatment of residual sums under our z+ analyzers (``ZPlusRule`` at ``Add``)."""
    stabilize = Stabilizer.ensure(1e-12)
    return BasicHook(
        input_modifiers=[lambda input: input.clamp(min=0)],
        output_modifiers=[lambda output: output],
        gradient_mapper=lambda out_grad, outputs: [out_grad / stabilize(outputs[0])],
        reducer=lambda inputs, gradients: inputs[0] * gradients[0])


def _torch_net(model: keras.Model, kind: str, sum_module: bool = True) -> nn.Module:
    if kind == "x3d":
        return TorchX3D(model, sum_module)
    return TorchNet(model, kind, sum_module)


def _zennit(net: nn.Module, rule, x: np.ndarray, selection: np.ndarray,
            sum_rule=None, frozen_gate: bool = True) -> np.ndarray:
    """Zennit's relevance; ``frozen_gate``: ``Pass`` on the squeeze-excitation module (our
    ``GateRule``), else the gate's Multiply is plain autograd."""
    gate = [(SqueezeExcite, Pass())] if frozen_gate else []
    composite = LayerMapComposite(
        layer_map=gate + [(Activation, Pass()), (Sum, sum_rule or Norm(stabilizer=1e-12)),
                   (AvgPool, Norm(stabilizer=1e-12)),
                   (Convolution, rule), (ZLinear, rule)],
        canonizers=[SequentialMergeBatchNorm()])
    net.eval()
    inp = torch.from_numpy(x.transpose(0, 4, 1, 2, 3).copy()).requires_grad_(True)
    with torch.no_grad():
        logits = net(inp)
    seed = torch.zeros_like(logits)
    rows = torch.arange(len(x))
    seed[rows, torch.from_numpy(selection)] = logits[rows, torch.from_numpy(selection)]
    with Gradient(model=net, composite=composite) as attributor:
        _, relevance = attributor(inp, seed)
    return relevance.detach().numpy().transpose(0, 2, 3, 4, 1)


#: (ours: analyzer name and kwargs, Zennit's rule factory, nets with biases?). Under z+ our
#: residual ``Add`` splits by the inputs' positive parts (:func:`_positive_part_sum` on
#: Zennit's side); every other rule splits it in proportion to the signed inputs (``Norm``).
RULES = {
    "z_plus": (("lrp.z_plus", {}), lambda: ZPlus(stabilizer=1e-9), False),
    "epsilon": (("lrp.epsilon", {"epsilon": 0.01}), lambda: Epsilon(epsilon=0.01), False),
    "epsilon_bias": (("lrp.epsilon", {"epsilon": 0.01}), lambda: Epsilon(epsilon=0.01), True),
    "alpha_2_beta_1": (("lrp", {"rule": AlphaBetaRule(2.0, 1.0, epsilon=1e-6,
                                                      conserve_degenerate=False)}),
                       lambda: AlphaBeta(alpha=2.0, beta=1.0, stabilizer=1e-6), False),
}


def test_zennit_is_version_1():
    """The cross-check is against Zennit 1.x (tox.ini installs zennit==1.0.0)."""
    assert ZENNIT_VERSION.split(".")[0] == "1", ZENNIT_VERSION
    assert importlib.metadata.version("zennit") == ZENNIT_VERSION


@pytest.mark.parametrize("kind", ["r3d", "r2plus1d", "x3d"])
@pytest.mark.parametrize("rule", list(RULES))
def test_relevance_matches_zennit(kind, rule):
    (name, kwargs), zennit_rule, bias = RULES[rule]
    model = _build(kind, bias)
    net = _torch_net(model, kind)
    x = _input()
    logits = model.predict(x, verbose=0)
    with torch.no_grad():
        torch_logits = net.eval()(torch.from_numpy(x.transpose(0, 4, 1, 2, 3).copy())).numpy()
    np.testing.assert_allclose(torch_logits, logits, rtol=1e-4, atol=1e-5)
    selection = np.argmax(logits, axis=1)
    ours = analyzers.create_analyzer(name, model, **kwargs).analyze(x, selection)
    theirs = _zennit(net, zennit_rule(), x, selection,
                     sum_rule=_positive_part_sum() if rule == "z_plus" else None)
    scale = np.abs(theirs).max()
    assert scale > 0
    # measured against Zennit 1.0.0: largest difference 1.7e-7-4.5e-6 of the largest
    # relevance, totals within 9e-6 (against 0.5.1 it was 0.1-0.7 % and 0.6 %)
    np.testing.assert_allclose(ours / scale, theirs / scale, atol=1e-4, err_msg=rule)
    np.testing.assert_allclose(ours.reshape(2, -1).sum(1), theirs.reshape(2, -1).sum(1),
                               rtol=1e-4, atol=1e-5 * scale)
    correlation = np.corrcoef(ours.reshape(-1), theirs.reshape(-1))[0, 1]
    assert correlation > 1 - 1e-8, correlation


def test_plain_residual_sum_duplicates_relevance_in_zennit():
    """Without Zennit's ``Sum`` module the residual ``y + x`` passes relevance by the
    gradient: the skip branch gets all of it again, so the total exceeds the logit (lrp.z-like
    epsilon on a bias-free net, where ours conserves)."""
    model = _build("r3d", bias=False)
    x = _input()
    logits = model.predict(x, verbose=0)
    selection = np.argmax(logits, axis=1)
    target = logits[np.arange(2), selection]
    ours = analyzers.create_analyzer("lrp.epsilon", model, epsilon=1e-6).analyze(x, selection)
    np.testing.assert_allclose(ours.reshape(2, -1).sum(1), target, rtol=1e-3)
    # float32 near-cancellations: Zennit's LRP-0-like totals are within 0.2 % of the logit
    with_sum = _zennit(TorchNet(model, "r3d"), Epsilon(epsilon=1e-6), x, selection)
    plain = _zennit(TorchNet(model, "r3d", sum_module=False), Epsilon(epsilon=1e-6), x,
                    selection)
    np.testing.assert_allclose(with_sum.reshape(2, -1).sum(1), target, rtol=1e-2)
    ratio = plain.reshape(2, -1).sum(1) / target
    assert np.all(ratio > 1.5), ratio  # measured 1.98-2.00: see the module docstring


def _totals(relevance: np.ndarray) -> np.ndarray:
    return relevance.reshape(len(relevance), -1).sum(1)


def test_squeeze_excitation_gate_frozen_by_pass_matches_gate_rule():
    """Zennit 1.0 has no gate rule, but ``Pass`` on the squeeze-excitation module is one: its
    input gets all the relevance of its output, the gate none, as our ``GateRule``; with the
    gate's Multiply left to autograd the relevance is scaled by the gate and the gate path
    gets some too, so the total is no longer the logit (measured 1.016-1.025 of it, bias-free
    X3D-shaped net, epsilon 1e-6; 1 - 7e-6 with the frozen gate, on both sides)."""
    model = _build("x3d", bias=False)
    x = _input()
    logits = model.predict(x, verbose=0)
    selection = np.argmax(logits, axis=1)
    target = logits[np.arange(2), selection]
    ours = analyzers.create_analyzer("lrp.epsilon", model, epsilon=1e-6).analyze(x, selection)
    frozen = _zennit(_torch_net(model, "x3d"), Epsilon(epsilon=1e-6), x, selection)
    autograd = _zennit(_torch_net(model, "x3d"), Epsilon(epsilon=1e-6), x, selection,
                       frozen_gate=False)
    np.testing.assert_allclose(_totals(ours), target, rtol=1e-4)
    np.testing.assert_allclose(_totals(frozen), target, rtol=1e-4)
    scale = np.abs(frozen).max()
    np.testing.assert_allclose(ours / scale, frozen / scale, atol=1e-4)
    assert np.all(np.abs(_totals(autograd) / target - 1) > 5e-3), _totals(autograd) / target


def test_z_plus_loses_the_same_relevance_in_zennit_behind_swish():
    """z+ on the X3D-shaped net loses relevance in Zennit 1.0 as in ``analyzers`` (measured:
    totals 0.99970 and 0.99949 of the logit on both sides): a channelwise-convolution unit
    with a negative output receives relevance through swish and the next 1x1x1 convolution
    (a negative activation times a negative weight is a positive contribution), but all its
    own contributions are <= 0 (every input with a positive weight is a zero ReLU output),
    so z+ has nothing to pass it to (tests/kvlrp/models/test_video3d_explain.py traces it layer by
    layer on x3d_small)."""
    model = _build("x3d", bias=False)
    x = _input()
    logits = model.predict(x, verbose=0)
    selection = np.argmax(logits, axis=1)
    target = logits[np.arange(2), selection]
    ours = analyzers.create_analyzer("lrp.z_plus", model).analyze(x, selection)
    theirs = _zennit(_torch_net(model, "x3d"), ZPlus(stabilizer=1e-9), x, selection,
                     sum_rule=_positive_part_sum())
    lost_ours, lost_theirs = 1 - _totals(ours) / target, 1 - _totals(theirs) / target
    assert np.all(lost_ours > 1e-4), lost_ours
    np.testing.assert_allclose(lost_ours, lost_theirs, rtol=1e-2)
