"""Cross-check of ``attnlrp`` and ``cp_lrp`` against LXT 2.1 (PyTorch, CPU), an independent
implementation by AttnLRP's authors, on PyTorch twins of the ViViT- and TimeSformer-shaped
nets of ``tests/helpers/transformer_nets.py`` with identical weights.

LXT is only *run* here (its licence restricts use; nothing of it is copied into
``analyzers``). Its "efficient" rules are used as LXT applies them to vision transformers:
relevance is gradient times input of a forward pass whose gradients LXT modifies:

* ``lxt.efficient.patches.wrap_attention_forward`` around the twins' attention function:
  the query and key gradients divided by 4 and the value's by 2 (the equal split at ``Q K^T``
  and ``A V``), the softmax differentiated as it is (AttnLRP's softmax rule);
  ``cp_wrap_attention_forward``: query and key detached (CP-LRP's constant attention weights);
* ``lxt.efficient.patches.layer_norm_forward``: LayerNorm with its standard deviation
  detached; ``lxt.efficient.rules.identity_rule_implicit`` at GELU;
* Zennit's ``Epsilon(1e-6)`` (or ``Gamma``) on every ``Linear`` / ``Conv3d``, turned into
  gradient form by ``lxt.efficient.zennit_patches.monkey_patch_zennit``.

Environment (``tox -e lxt``): torch==2.13.0 (CPU wheel), ``lxt==2.1`` and ``zennit==0.5.1``
installed with ``--no-deps``. LXT 2.1 declares transformers, accelerate, bitsandbytes,
open_clip_torch, ... but ``lxt.efficient.rules``, ``.patches`` and ``.zennit_patches`` import
only torch and Zennit's core; its ``lxt.efficient`` package ``__init__`` imports every
Hugging Face model patch, so the package is loaded without it (``bare_package``). Zennit is
0.5.1 because LXT 2.1's Zennit patch has 0.5's hook signature (``forward(module, input,
output)``; Zennit 1.0's hooks take ``(module, args, kwargs, output)`` and the patch fails).

Agreement, measured (2 nets x with / without biases x 2 analyzers, and gamma; 3 clips):
the largest elementwise difference is 1.5e-5 of the largest relevance or less (oneDNN on;
2e-6 with TensorFlow's Eigen kernels), the totals agree to 1.3e-6 relative: float32 round-off.
Tolerances: 1e-4 of the largest relevance and of the totals. (The first run found a fault
here: an epsilon node at the very end of a traced call was not on the path to its output, so
a bias-free MultiHeadAttention's output projection got the z rule instead of epsilon, 6e-5
of the largest relevance on the bias-free TimeSformer net; ``tests/analyzers/test_tracing.py``
now checks it.)

Conventions that differ, measured here (in ``test_agrees_with_lxt``):

* Where gamma applies: ours on Dense / Conv / EinsumDense layers outside attention (attention
  projections keep epsilon). LXT's recipe for torchvision ViTs puts Zennit's Gamma on every
  ``nn.Linear`` and ``nn.Conv2d``, which includes the attention's output projection (a
  ``Linear`` subclass) but not the fused query/key/value projection; the twins here map
  Gamma as ours does. Gamma on every projection too (``gamma=0.25``) is another explanation:
  it differs from ours by 0.38-0.79 (TimeSformer net) and 1.13-1.30 (ViViT net) of the
  largest relevance, correlation 0.85-0.92.
* LXT's identity rule divides by ``x + 1e-10`` (ours: ``x + 1e-12 * sign(x)``), and its Zennit
  patch by ``x + 1e-10 * sign(x)``: the same to float32 round-off wherever ``|x| > 1e-5``
  (no input of a GELU or linear layer came closer to zero here).
* LXT's recommendation for vision transformers is CP-LRP (``vit_torch.cp_LRP``); its
  ``patches.wrap_attention_forward`` is the AttnLRP variant used for language models.
"""

from __future__ import annotations

import importlib.metadata
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from transformer_nets import SHAPE, timesformer, vivit  # noqa: E402
from zennit_loading import bare_package  # noqa: E402  (no kvlrp, no TF)

import analyzers  # noqa: E402

torch = pytest.importorskip("torch")

try:
    bare_package("zennit")
    bare_package("lxt")
    bare_package("lxt.efficient")
    from lxt.efficient import patches as lxt_patches
    from lxt.efficient import rules as lxt_rules
    from lxt.efficient.zennit_patches import monkey_patch_zennit
    from zennit.core import Composite
    from zennit.rules import Epsilon, Gamma
except ImportError as err:  # pragma: no cover - depends on the environment
    pytest.skip(f"lxt / zennit are not importable: {err}", allow_module_level=True)

LXT_VERSION = importlib.metadata.version("lxt")
ZENNIT_VERSION = importlib.metadata.version("zennit")
monkey_patch_zennit()

nn = torch.nn
F = torch.nn.functional
EPS = 1e-6
RTOL = 1e-4  # of the largest relevance, and of the totals


def _tensor(value) -> torch.Tensor:
    return torch.from_numpy(np.asarray(value, dtype=np.float32).copy())


# -- the PyTorch twins ------------------------------------------------------------------------
def _linear(kernel, bias) -> nn.Linear:
    """``nn.Linear`` of a Keras kernel ``[in, ...out]`` (flattened) and bias."""
    kernel = np.asarray(kernel)
    n_in = kernel.shape[0]
    weight = kernel.reshape(n_in, -1).T
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        layer.weight.copy_(_tensor(weight))
        if bias is not None:
            layer.bias.copy_(_tensor(np.asarray(bias).reshape(-1)))
    return layer


def _dense(layer) -> nn.Linear:
    return _linear(layer.kernel, layer.bias if layer.use_bias else None)


def _conv(layer) -> nn.Conv3d:
    kernel = np.asarray(layer.kernel)  # [t, h, w, in, out]
    conv = nn.Conv3d(kernel.shape[3], kernel.shape[4], kernel.shape[:3],
                     stride=tuple(layer.strides), bias=layer.use_bias)
    with torch.no_grad():
        conv.weight.copy_(_tensor(kernel.transpose(4, 3, 0, 1, 2)))
        if layer.use_bias:
            conv.bias.copy_(_tensor(layer.bias))
    return conv


def _norm(layer) -> nn.LayerNorm:
    norm = nn.LayerNorm(int(layer.gamma.shape[0]), eps=layer.epsilon)
    with torch.no_grad():
        norm.weight.copy_(_tensor(layer.gamma))
        norm.bias.copy_(_tensor(layer.beta) if layer.center else torch.zeros_like(norm.bias))
    return norm


def _attention_function(module, query, key, value, scaling):
    """Eager attention over the second-to-last axis: ``softmax(q k^T * scaling) v``."""
    scores = (query * scaling) @ key.transpose(-1, -2)
    return torch.softmax(scores, dim=-1) @ value


class Attention(nn.Module):
    """Keras ``MultiHeadAttention`` (self-attention over the tokens axis) as Linear layers
    and an attention function that LXT wraps."""

    def __init__(self, layer, attend) -> None:
        super().__init__()
        self.heads, self.key_dim = layer.num_heads, layer.key_dim
        self.q = _linear(layer.query_dense.kernel, layer.query_dense.bias)
        self.k = _linear(layer.key_dense.kernel, layer.key_dense.bias)
        self.v = _linear(layer.value_dense.kernel, layer.value_dense.bias)
        out = np.asarray(layer.output_dense.kernel)  # [heads, key_dim, dim]
        self.out = _linear(out.reshape(-1, out.shape[-1]), layer.output_dense.bias)
        self.attend = attend

    def forward(self, x):  # x [batch, tokens, dim]
        b, n, _ = x.shape

        def split(t):
            return t.reshape(b, n, self.heads, self.key_dim).transpose(1, 2)

        o = self.attend(self, split(self.q(x)), split(self.k(x)), split(self.v(x)),
                        scaling=1.0 / math.sqrt(self.key_dim))
        return self.out(o.transpose(1, 2).reshape(b, n, -1))


def _gelu(x):
    return lxt_rules.identity_rule_implicit(F.gelu, x)


class MLP(nn.Module):
    def __init__(self, model, prefix: str) -> None:
        super().__init__()
        self.norm = _norm(model.get_layer(f"{prefix}_ln"))
        self.fc1 = _dense(model.get_layer(f"{prefix}_fc1"))
        self.fc2 = _dense(model.get_layer(f"{prefix}_fc2"))

    def forward(self, h):
        return h + self.fc2(_gelu(self.fc1(lxt_patches.layer_norm_forward(self.norm, h))))


class ViViT(nn.Module):
    def __init__(self, model, attend, depth: int = 2) -> None:
        super().__init__()
        self.tubelets = _conv(model.get_layer("tubelets"))
        self.token = nn.Parameter(_tensor(model.get_layer("class_token").token))
        self.table = nn.Parameter(_tensor(model.get_layer("positions").table.embeddings))
        self.norms = nn.ModuleList(_norm(model.get_layer(f"block{k}_ln")) for k in range(depth))
        self.attention = nn.ModuleList(
            Attention(model.get_layer(f"block{k}_attention"), attend) for k in range(depth))
        self.mlps = nn.ModuleList(MLP(model, f"block{k}_mlp") for k in range(depth))
        self.final = _norm(model.get_layer("final_ln"))
        self.head = _dense(model.get_layer("head"))

    def forward(self, x):  # x [batch, frames, height, width, channels]
        h = self.tubelets(x.permute(0, 4, 1, 2, 3))
        h = h.permute(0, 2, 3, 4, 1).reshape(x.shape[0], -1, h.shape[1])
        h = torch.cat([self.token.expand(x.shape[0], 1, -1), h], dim=1) + self.table
        for norm, attention, mlp in zip(self.norms, self.attention, self.mlps):
            h = h + attention(lxt_patches.layer_norm_forward(norm, h))
            h = mlp(h)
        return self.head(lxt_patches.layer_norm_forward(self.final, h)[:, 0])


class TimeSformer(nn.Module):
    def __init__(self, model, attend) -> None:
        super().__init__()
        self.patches = _conv(model.get_layer("patches"))
        self.space = nn.Parameter(_tensor(model.get_layer("space_table").embeddings))
        self.time = nn.Parameter(_tensor(model.get_layer("time_table").embeddings))
        self.time_norm = _norm(model.get_layer("block0_time_ln"))
        self.time_attention = Attention(model.get_layer("block0_time_attention"), attend)
        self.space_norm = _norm(model.get_layer("block0_space_ln"))
        self.space_attention = Attention(model.get_layer("block0_space_attention"), attend)
        self.mlp = MLP(model, "block0_mlp")
        self.final = _norm(model.get_layer("final_ln"))
        self.head = _dense(model.get_layer("head"))

    def forward(self, x):
        b, t = x.shape[:2]
        h = self.patches(x.permute(0, 4, 1, 2, 3))  # [b, d, t, h, w]
        d = h.shape[1]
        h = h.permute(0, 2, 3, 4, 1).reshape(b, t, -1, d)  # [b, t, n, d]
        n = h.shape[2]
        h = h + self.space[None, None] + self.time[None, :, None]
        by_patch = lxt_patches.layer_norm_forward(self.time_norm, h).transpose(1, 2)
        a = self.time_attention(by_patch.reshape(b * n, t, d)).reshape(b, n, t, d)
        h = h + a.transpose(1, 2)
        s = lxt_patches.layer_norm_forward(self.space_norm, h).reshape(b * t, n, d)
        h = h + self.space_attention(s).reshape(b, t, n, d)
        h = self.mlp(h)
        h = lxt_patches.layer_norm_forward(self.final, h).reshape(b, t * n, d)
        return self.head(h.mean(dim=1))


def _twin(net: str, model, name: str) -> nn.Module:
    wrap = (lxt_patches.wrap_attention_forward if name == "attnlrp"
            else lxt_patches.cp_wrap_attention_forward)
    attend = wrap(_attention_function)
    return ViViT(model, attend) if net == "vivit" else TimeSformer(model, attend)


def _composite(gamma: float | None, gamma_in_attention: bool = False) -> Composite:
    """Zennit rules on the twins' Linear / Conv3d modules, as ``attnlrp`` maps them."""
    def module_map(ctx, name, module):
        if not isinstance(module, (nn.Linear, nn.Conv3d)):
            return None
        inside = ".q" in name or ".k" in name or ".v" in name or ".out" in name
        if gamma and (gamma_in_attention or not inside):
            return Gamma(gamma, stabilizer=EPS)
        return Epsilon(EPS)
    return Composite(module_map=module_map)


def _lxt(net: str, model, name: str, x: np.ndarray, selection: np.ndarray,
         gamma: float | None = None, gamma_in_attention: bool = False) -> np.ndarray:
    twin = _twin(net, model, name).eval()
    inputs = torch.from_numpy(x).requires_grad_()
    with _composite(gamma, gamma_in_attention).context(twin) as hooked:
        logits = hooked(inputs)
        np.testing.assert_allclose(logits.detach().numpy(), model.predict(x, verbose=0),
                                   rtol=1e-4, atol=1e-5)  # the twins compute the same
        logits[torch.arange(len(x)), torch.from_numpy(selection)].sum().backward()
    return (inputs * inputs.grad).detach().numpy()


NETS = {"vivit": vivit, "timesformer": timesformer}


@pytest.fixture(scope="module")
def clips() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(2, *SHAPE)).astype(np.float32)


def _assert_agree(ours, theirs, label):
    scale = float(np.abs(theirs).max())
    np.testing.assert_allclose(ours / scale, theirs / scale, atol=RTOL, rtol=0, err_msg=label)
    totals = ours.reshape(len(ours), -1).sum(1), theirs.reshape(len(theirs), -1).sum(1)
    np.testing.assert_allclose(*totals, rtol=RTOL, atol=RTOL * scale, err_msg=label)


@pytest.mark.parametrize("offsets", [True, False])
@pytest.mark.parametrize("net", list(NETS))
def test_agrees_with_lxt(net, offsets, clips):
    """Both analyzers (and, with biases, with gamma outside attention) against LXT; with
    gamma, the convention that differs: Gamma on the attention projections too (LXT's
    torchvision-ViT mapping) is another explanation (measured in the module docstring)."""
    model = NETS[net](offsets=offsets)
    selection = np.argmax(model.predict(clips, verbose=0), axis=1)
    for name in ("attnlrp", "cp_lrp"):
        for gamma in (None, 0.25) if offsets else (None,):
            options = {} if gamma is None else {"gamma": gamma}
            ours = analyzers.create_analyzer(name, model, **options).analyze(
                clips, neuron_selection=selection)
            theirs = _lxt(net, model, name, clips, selection, gamma=gamma)
            _assert_agree(ours, theirs, f"{name} {options} on {net} (offsets={offsets}), "
                                        f"lxt {LXT_VERSION}, zennit {ZENNIT_VERSION}")
            if gamma is None:
                continue
            everywhere = _lxt(net, model, name, clips, selection, gamma=gamma,
                              gamma_in_attention=True)
            difference = float(np.abs(ours - everywhere).max() / np.abs(everywhere).max())
            correlation = float(np.corrcoef(ours.ravel(), everywhere.ravel())[0, 1])
            assert difference > 0.2 and correlation < 0.95, (name, difference, correlation)
    keras.backend.clear_session()
