"""The cross-check model zoo, as plain Python data (no TensorFlow import).

Every model is a :class:`ModelSpec`: an input shape and a list of :class:`LayerSpec` (a Keras
layer class name, its constructor arguments and the names of the layers it reads). The same
spec is built with Keras 3 (``build_keras3.py``, our tests and benchmarks) and with tf.keras 2.14
(``build_keras2.py``, the iNNvestigate 2.1.2 environment), so both sides explain the very same
network. Weights and inputs come from fixed numpy seeds (:func:`make_weights`,
:func:`make_inputs`); shapes are inferred here in pure Python (:func:`weight_shapes`), so no
framework is needed to make them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Analyzers whose iNNvestigate 2.1.2 relevance is stored for every reference model.
ANALYZERS: tuple[str, ...] = (
    "gradient",
    "lrp.z",
    "lrp.epsilon",
    "lrp.z_plus",
    "lrp.alpha_2_beta_1",
    "deep_taylor",
    "deep_taylor.bounded",
)

#: The other iNNvestigate 2.1.2 names, stored for :data:`EXTENDED_MODELS` only (small files,
#: fast tests). ``lrp`` (a rule or composite of your own) has no common argument form.
EXTENDED_ANALYZERS: tuple[str, ...] = (
    "input",
    "random",
    "gradient.baseline",
    "input_t_gradient",
    "smoothgrad",
    "integrated_gradients",
    "deconvnet",
    "guided_backprop",
    "lrp.z_plus_fast",
    "lrp.w_square",
    "lrp.flat",
    "lrp.alpha_beta",
    "lrp.alpha_1_beta_0",
    "lrp.alpha_1_beta_0_IB",
    "lrp.alpha_2_beta_1_IB",
    "lrp.sequential_preset_a",
    "lrp.sequential_preset_b",
    "lrp.sequential_preset_a_flat",
    "lrp.sequential_preset_b_flat",
    "lrp.sequential_preset_b_flat_until_idx",
)

#: The models of the ``compat="innvestigate"`` cross-check: separate ``ReLU`` and
#: ``Activation("relu")`` layers, signed inputs with letterbox bars of exact zeros (so that
#: max-pooling windows tie: at the value of a bias after a convolution of zeros, and at zero
#: after a ReLU) or quantized to a few levels (ties in max pooling of the input itself, which
#: every rule sees), 2D and 3D, biases, a residual sum of signed tensors, BatchNormalization.
#: Every deterministic name is stored for them in every ``neuron_selection_mode``.
#: (iNNvestigate's LRP analyzers refuse a ``ReLU`` layer unless ``disable_model_checks=True``,
#: see :func:`innvestigate_kwargs`; its deconvnet cannot take one at all.)
COMPAT_MODELS: tuple[str, ...] = ("relu_layers_3d", "relu_layers_2d", "residual_bn",
                                  "quantized_input")

#: Models that get :data:`EXTENDED_ANALYZERS` too.
EXTENDED_MODELS: tuple[str, ...] = ("plain_bias", "plain_nobias", "residual_add", "dense_probe",
                                    "smooth_act") + COMPAT_MODELS

#: ``neuron_selection_mode`` values stored besides ``"index"`` (as ``mode/<mode>/<analyzer>``)
#: for :data:`MODE_MODELS` and :data:`MODE_ANALYZERS` (and see :func:`mode_analyzers`).
MODES: tuple[str, ...] = ("max_activation", "all")
MODE_MODELS: tuple[str, ...] = ("plain_bias",)
MODE_ANALYZERS: tuple[str, ...] = ("gradient", "input_t_gradient", "smoothgrad",
                                   "integrated_gradients", "guided_backprop", "lrp.z",
                                   "lrp.epsilon", "lrp.alpha_1_beta_0", "deep_taylor")

#: The names whose output is a function of the model and input alone (not ``random`` and
#: ``smoothgrad``, which draw noise; not ``lrp``, which needs rules of your own).
DETERMINISTIC_ANALYZERS: tuple[str, ...] = tuple(
    a for a in ANALYZERS + EXTENDED_ANALYZERS if a not in ("random", "smoothgrad"))


#: Max-pooling layers whose TensorFlow gradient at tied maxima is stored
#: (``references/pool_ties.npz``): ``case -> (Keras class, constructor arguments, input shape
#: without batch)``. Inputs take the values -1, 0 and 1 only, so windows tie everywhere.
POOL_TIE_CASES: Mapping[str, tuple[str, Mapping[str, Any], tuple[int, ...]]] = {
    "max1d_2": ("MaxPooling1D", {"pool_size": 2}, (7, 2)),
    "max1d_3_s1_same": ("MaxPooling1D", {"pool_size": 3, "strides": 1, "padding": "same"},
                        (7, 2)),
    "max2d_2": ("MaxPooling2D", {"pool_size": (2, 2)}, (6, 7, 2)),
    "max2d_3_s1_same": ("MaxPooling2D", {"pool_size": (3, 3), "strides": 1, "padding": "same"},
                        (6, 7, 2)),
    "max2d_3_s2_same": ("MaxPooling2D", {"pool_size": (3, 3), "strides": 2, "padding": "same"},
                        (6, 7, 2)),
    "max2d_23_s12": ("MaxPooling2D", {"pool_size": (2, 3), "strides": (1, 2)}, (6, 7, 2)),
    "max3d_2": ("MaxPooling3D", {"pool_size": (2, 2, 2)}, (4, 5, 6, 2)),
    "max3d_122": ("MaxPooling3D", {"pool_size": (1, 2, 2)}, (4, 5, 6, 2)),
    "max3d_2_s1_same": ("MaxPooling3D", {"pool_size": (2, 2, 2), "strides": 1,
                                         "padding": "same"}, (4, 5, 6, 2)),
    "max3d_3_s1_same": ("MaxPooling3D", {"pool_size": (3, 3, 3), "strides": 1,
                                         "padding": "same"}, (4, 5, 6, 2)),
    "max3d_3_s2_same": ("MaxPooling3D", {"pool_size": (3, 3, 3), "strides": 2,
                                         "padding": "same"}, (4, 5, 6, 2)),
    "global1d": ("GlobalMaxPooling1D", {}, (7, 2)),
    "global2d": ("GlobalMaxPooling2D", {}, (6, 7, 2)),
    "global3d": ("GlobalMaxPooling3D", {}, (4, 5, 6, 2)),
    # near ties: offsets of 0 to 2e-5 below the levels (TensorFlow's 3D gradient treats
    # inputs within 1e-5 of the maximum as tied)
    "near_max2d_2": ("MaxPooling2D", {"pool_size": (2, 2)}, (6, 7, 2)),
    "near_max3d_2": ("MaxPooling3D", {"pool_size": (2, 2, 2)}, (4, 5, 6, 2)),
    "near_max3d_3_s1_same": ("MaxPooling3D", {"pool_size": (3, 3, 3), "strides": 1,
                                              "padding": "same"}, (4, 5, 6, 2)),
    "near_global3d": ("GlobalMaxPooling3D", {}, (4, 5, 6, 2)),
}

#: Offsets below the levels -1, 0, 1 in the ``near_`` cases of :data:`POOL_TIE_CASES`.
NEAR_TIE_OFFSETS = (0.0, 3e-6, 9.5e-6, 1e-5, 1.05e-5, 2e-5)


def pool_tie_inputs(case: str) -> tuple[np.ndarray, np.ndarray]:
    """``(x, weights)`` of a :data:`POOL_TIE_CASES` case: ``x`` ``[2, *shape]`` with values
    in {-1, 0, 1} (one sample all -1 in its first half, so padding meets negative maxima;
    ``near_`` cases minus one of :data:`NEAR_TIE_OFFSETS`) and ``weights``, an integer per
    output unit (the output gradient, shaped like the pooled output once the layer runs:
    drawn here for the largest output, ``x``'s size)."""
    _, _, shape = POOL_TIE_CASES[case]
    index = list(POOL_TIE_CASES).index(case)
    rng = np.random.default_rng([300, index])
    x = rng.integers(-1, 2, (2,) + tuple(shape)).astype(np.float32)
    x[1, : shape[0] // 2] = -1.0
    if case.startswith("near_"):
        offsets = np.asarray(NEAR_TIE_OFFSETS, np.float32)
        x = (x - offsets[rng.integers(0, len(offsets), x.shape)]).astype(np.float32)
    weights = rng.integers(1, 10, x.size).astype(np.float32)
    return x, weights


def mode_analyzers(name: str) -> tuple[str, ...]:
    """The analyzers stored in :data:`MODES` for zoo model ``name`` (none, the selection
    :data:`MODE_ANALYZERS`, or every deterministic name for :data:`COMPAT_MODELS`)."""
    if name in COMPAT_MODELS:
        return DETERMINISTIC_ANALYZERS
    return MODE_ANALYZERS if name in MODE_MODELS else ()

#: Keyword arguments given to both libraries' ``create_analyzer`` per analyzer.
ANALYZER_KWARGS: Mapping[str, Mapping[str, Any]] = {
    "deep_taylor.bounded": {"low": -1.0, "high": 1.0},
    # the noise itself is fixed (make_noise), on both sides; see generate.py / reference.py
    "smoothgrad": {"augment_by_n": 4},
    "integrated_gradients": {"steps": 8, "reference_inputs": -0.25},
    "lrp.alpha_beta": {"alpha": 3.0, "beta": 2.0},
    "lrp.sequential_preset_b_flat_until_idx": {"until_layer_idx": 2},
}



def innvestigate_kwargs(model: str, analyzer: str) -> dict[str, Any]:
    """Keyword arguments for iNNvestigate's ``create_analyzer``: :data:`ANALYZER_KWARGS`, and
    ``disable_model_checks=True`` for the LRP names on :data:`COMPAT_MODELS`. Its LRP
    analyzers raise a bare ``NotImplementedError`` for any layer outside their list of
    convnet layers (a ``ReLU`` layer among them) unless the checks are disabled, which is
    how an iNNvestigate user analyses such a model; our side gets ``ANALYZER_KWARGS``."""
    kwargs = dict(ANALYZER_KWARGS.get(analyzer, {}))
    if model in COMPAT_MODELS and analyzer.startswith("lrp"):
        kwargs["disable_model_checks"] = True
    return kwargs


#: Copies of noise per sample drawn by :func:`make_noise` (smoothgrad's ``augment_by_n``).
N_NOISE = 4

#: Inputs are drawn uniformly from this range (the bounds of ``deep_taylor.bounded``).
INPUT_RANGE: tuple[float, float] = (-1.0, 1.0)


@dataclass(frozen=True)
class LayerSpec:
    """One Keras layer of a zoo model.

    Parameters
    ----------
    name : str
        Layer name (unique in its model; also the key of its weights).
    kind : str
        Keras layer class name, e.g. ``"Conv3D"`` (the same in Keras 2 and Keras 3).
    config : Mapping[str, Any]
        Constructor keyword arguments (without ``name``).
    inputs : tuple[str, ...]
        Names of the layers this one reads; empty means the previous layer of the list.
    wrapped : LayerSpec or None
        The inner layer of a ``TimeDistributed`` layer.
    """

    name: str
    kind: str
    config: Mapping[str, Any] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()
    wrapped: LayerSpec | None = None


@dataclass(frozen=True)
class ModelSpec:
    """One zoo model: input shape (without batch), layers, seeds and what it is for.

    ``reference`` models get stored iNNvestigate relevance; ``bias_free`` models have no
    additive constants (no bias, BatchNormalization without shift), so conserving rules must
    give ``R.sum() == explained logit``. A model ``derived_from`` another is a mathematically
    equivalent twin: its weights are the other model's (reshaped where the layer differs, e.g.
    a ``TimeDistributed(Conv2D)`` kernel as a ``Conv3D`` kernel of depth 1), with each
    BatchNormalization of ``fold_batchnorm`` (conv name -> BN name) folded into its conv.
    ``letterbox`` rows at the top and at the bottom of every input image (all channels) are
    exact zeros; with ``levels`` the inputs are rounded to that many evenly spaced values.
    """

    name: str
    input_shape: tuple[int, ...]
    layers: tuple[LayerSpec, ...]
    description: str
    seed: int
    bias_free: bool = False
    reference: bool = True
    n_samples: int = 2
    derived_from: str | None = None
    fold_batchnorm: Mapping[str, str] = field(default_factory=dict)
    letterbox: int = 0
    levels: int = 0


def _conv(name, filters, kernel=(3, 3, 3), bias=True, act="relu", inputs=(), **kw) -> LayerSpec:
    config = {"filters": filters, "kernel_size": kernel, "padding": "same",
              "activation": act, "use_bias": bias}
    config.update(kw)
    return LayerSpec(name, "Conv3D", config, tuple(inputs))


def _dense(name, units, bias=True, act=None, inputs=()) -> LayerSpec:
    return LayerSpec(name, "Dense", {"units": units, "activation": act, "use_bias": bias},
                     tuple(inputs))


def _pool(name, size, kind="MaxPooling3D", padding="valid") -> LayerSpec:
    return LayerSpec(name, kind, {"pool_size": size, "padding": padding})


def _flat(name="flatten") -> LayerSpec:
    return LayerSpec(name, "Flatten")


def _relu(name, inputs=()) -> LayerSpec:
    """A separate ``keras.layers.ReLU`` layer (not ``Activation("relu")``)."""
    return LayerSpec(name, "ReLU", {}, tuple(inputs))


def _plain(bias: bool, out_act: str | None = None) -> tuple[LayerSpec, ...]:
    return (
        _conv("conv1", 4, bias=bias),
        _pool("pool1", (1, 2, 2)),
        _conv("conv2", 6, bias=bias),
        _pool("pool2", (2, 2, 2)),
        _flat(),
        _dense("fc1", 16, bias=bias, act="relu"),
        _dense("logits", 5, bias=bias, act=out_act),
    )


CLIP = (6, 12, 12, 3)
IMAGE = (12, 12, 3)
PROBE = (2, 4, 4, 2)

_ZOO_LIST: tuple[ModelSpec, ...] = (
    ModelSpec("plain_bias", CLIP, _plain(bias=True),
              "Conv3D+ReLU / MaxPooling3D / Flatten / Dense stack with biases", seed=101),
    ModelSpec("plain_nobias", CLIP, _plain(bias=False),
              "the same stack without biases", seed=102, bias_free=True),
    ModelSpec("avgpool", CLIP, (
        _conv("conv1", 4, bias=False),
        _pool("pool1", (1, 2, 2), "AveragePooling3D"),
        _conv("conv2", 6, bias=False),
        _pool("pool2", (2, 2, 2), "AveragePooling3D"),
        _flat(),
        _dense("logits", 5, bias=False),
    ), "AveragePooling3D instead of max pooling, bias-free", seed=103, bias_free=True),
    ModelSpec("global_avgpool", CLIP, (
        _conv("conv1", 4, bias=False),
        _conv("conv2", 6, bias=False),
        LayerSpec("gap", "GlobalAveragePooling3D"),
        _dense("logits", 5, bias=False),
    ), "GlobalAveragePooling3D head, bias-free", seed=104, bias_free=True),
    ModelSpec("strides_dilation", CLIP, (
        _conv("conv1", 4, kernel=(1, 3, 3), bias=False, strides=(1, 2, 2), padding="valid"),
        _conv("conv2", 5, kernel=(3, 1, 1), bias=False, dilation_rate=(2, 1, 1)),
        _conv("conv3", 6, bias=False, strides=(2, 2, 2)),
        _conv("conv4", 6, kernel=(2, 2, 2), bias=False, padding="valid"),
        _flat(),
        _dense("logits", 5, bias=False),
    ), "strides (1,2,2)/(2,2,2), dilation (2,1,1), valid and same padding, kernels (1,3,3) "
       "and (3,1,1), bias-free", seed=105, bias_free=True),
    ModelSpec("residual_add", CLIP, (
        _conv("conv1", 4, bias=False),
        _conv("conv2", 4, bias=False),
        LayerSpec("add1", "Add", inputs=("conv1", "conv2")),
        _conv("conv3", 4, bias=False),
        LayerSpec("add2", "Add", inputs=("add1", "conv3")),
        _pool("pool", (2, 2, 2)),
        _flat(),
        _dense("logits", 5, bias=False),
    ), "two residual Add skip connections, bias-free", seed=106, bias_free=True),
    ModelSpec("batchnorm", CLIP, (
        _conv("conv1", 4, bias=False, act=None),
        LayerSpec("bn1", "BatchNormalization"),
        LayerSpec("relu1", "Activation", {"activation": "relu"}),
        _pool("pool1", (1, 2, 2)),
        _conv("conv2", 6, bias=False, act=None),
        LayerSpec("bn2", "BatchNormalization"),
        LayerSpec("relu2", "Activation", {"activation": "relu"}),
        _pool("pool2", (2, 2, 2)),
        _flat(),
        _dense("logits", 5, bias=False),
    ), "Conv3D -> BatchNormalization -> ReLU blocks (BN with non-trivial statistics)",
              seed=107),
    ModelSpec("concat", CLIP, (
        _conv("branch_133", 3, kernel=(1, 3, 3), inputs=("input",)),
        _conv("branch_311", 3, kernel=(3, 1, 1), inputs=("input",)),
        LayerSpec("cat", "Concatenate", {"axis": -1}, inputs=("branch_133", "branch_311")),
        _conv("conv3", 6),
        _pool("pool", (2, 2, 2)),
        _flat(),
        _dense("logits", 5),
    ), "two branches (kernels (1,3,3) and (3,1,1)) joined by Concatenate, with biases",
              seed=108),
    ModelSpec("time_distributed", CLIP, (
        LayerSpec("td_conv", "TimeDistributed", wrapped=LayerSpec(
            "td_conv_inner", "Conv2D",
            {"filters": 4, "kernel_size": (3, 3), "padding": "same", "activation": "relu",
             "use_bias": False})),
        _conv("conv2", 4, bias=False),
        _pool("pool", (2, 2, 2)),
        _flat(),
        _dense("logits", 5, bias=False),
    ), "TimeDistributed(Conv2D) followed by Conv3D, bias-free", seed=109, bias_free=True),
    ModelSpec("layer_norm", CLIP, (
        _conv("conv1", 4),
        LayerSpec("ln", "LayerNormalization", {"axis": -1}),
        _conv("conv2", 4),
        _pool("pool", (2, 2, 2)),
        _flat(),
        _dense("logits", 5),
    ), "a LayerNormalization layer (unsupported by both libraries)", seed=110),
    ModelSpec("softmax_out", CLIP, _plain(bias=True, out_act="softmax"),
              "the plain stack ending in Dense(softmax); explained at its logits", seed=111),
    ModelSpec("batchnorm_folded", CLIP, (
        _conv("conv1", 4, act=None),
        LayerSpec("relu1", "Activation", {"activation": "relu"}),
        _pool("pool1", (1, 2, 2)),
        _conv("conv2", 6, act=None),
        LayerSpec("relu2", "Activation", {"activation": "relu"}),
        _pool("pool2", (2, 2, 2)),
        _flat(),
        _dense("logits", 5, bias=False),
    ), "batchnorm with each BatchNormalization folded into its Conv3D by hand (same function)",
              seed=107, derived_from="batchnorm",
              fold_batchnorm={"conv1": "bn1", "conv2": "bn2"}),
    ModelSpec("time_distributed_conv3d", CLIP, (
        _conv("td_conv", 4, kernel=(1, 3, 3), bias=False),
        _conv("conv2", 4, bias=False),
        _pool("pool", (2, 2, 2)),
        _flat(),
        _dense("logits", 5, bias=False),
    ), "time_distributed with TimeDistributed(Conv2D 3x3) written as Conv3D (1,3,3)",
              seed=109, bias_free=True, derived_from="time_distributed"),
    ModelSpec("smooth_act", CLIP, (
        _conv("conv1", 4, act="softplus"),
        _pool("pool1", (2, 2, 2)),
        _conv("conv2", 4, act="relu"),
        _pool("pool2", (1, 2, 2)),
        _flat(),
        _dense("fc1", 8, act="sigmoid"),
        _dense("logits", 5),
    ), "softplus and (non-gate) sigmoid activations: no LRP rule in ours, any gradient works",
              seed=114),
    ModelSpec("dense_probe", PROBE, (
        _flat(),
        _dense("logits", 5, bias=True),
    ), "one Dense layer with bias: exposes the alpha-beta bias handling", seed=112),
    ModelSpec("bn_probe", PROBE, (
        LayerSpec("bn", "BatchNormalization"),
        _flat(),
        _dense("logits", 5, bias=False),
    ), "BatchNormalization then a bias-free Dense: exposes the BN relevance rules", seed=113),
    # compat="innvestigate" (COMPAT_MODELS): letterbox bars of zeros make max-pooling
    # windows tie exactly (a convolution of zeros gives its bias at every position)
    ModelSpec("relu_layers_3d", CLIP, (
        _conv("conv1", 4, act=None),
        _relu("relu1"),
        _pool("pool1", (1, 2, 2)),
        _conv("conv2", 6),
        _pool("pool2", (2, 2, 2), "AveragePooling3D"),
        _flat(),
        _dense("fc1", 16),
        _relu("relu2"),
        _dense("logits", 5),
    ), "Conv3D, separate ReLU layers, MaxPooling3D then AveragePooling3D, Flatten, Dense, "
       "biases; signed inputs with letterbox bars (tied maxima)", seed=121, letterbox=3),
    ModelSpec("relu_layers_2d", IMAGE, (
        LayerSpec("conv1", "Conv2D", {"filters": 4, "kernel_size": (3, 3), "padding": "same",
                                      "activation": None}),
        LayerSpec("act1", "Activation", {"activation": "relu"}),
        _pool("pool1", (2, 2), "MaxPooling2D"),
        LayerSpec("conv2", "Conv2D", {"filters": 6, "kernel_size": (3, 3), "padding": "same",
                                      "activation": "relu"}),
        _pool("pool2", (2, 2), "MaxPooling2D"),
        _flat(),
        _dense("logits", 5),
    ), "2D: Conv2D, an Activation('relu') layer, two MaxPooling2D, biases; signed images with "
       "letterbox bars (tied maxima)", seed=122, letterbox=3),
    ModelSpec("residual_bn", CLIP, (
        _conv("conv_a", 4, act=None, inputs=("input",)),
        _conv("conv_b", 4, kernel=(1, 1, 1), act=None, inputs=("input",)),
        LayerSpec("sum", "Add", inputs=("conv_a", "conv_b")),
        LayerSpec("bn", "BatchNormalization"),
        LayerSpec("relu1", "Activation", {"activation": "relu"}),
        _pool("pool1", (1, 2, 2)),
        _conv("conv2", 6, strides=(2, 2, 2)),
        LayerSpec("gmp", "GlobalMaxPooling3D"),
        _dense("logits", 5),
    ), "a residual sum of two signed convolutions, BatchNormalization, Activation('relu'), "
       "MaxPooling3D, GlobalMaxPooling3D, biases; signed inputs with letterbox bars",
              seed=123, letterbox=3),
    ModelSpec("quantized_input", CLIP, (
        _pool("pool0", (1, 2, 2)),
        _conv("conv1", 4),
        _pool("pool1", (2, 2, 2)),
        _flat(),
        _dense("fc1", 8, act="relu"),
        _dense("logits", 5),
    ), "MaxPooling3D of the input itself, quantized to 9 levels in [-1, 1] (tied maxima that "
       "every rule sees), Conv3D, MaxPooling3D, Dense, biases", seed=124, levels=9),
)


def _c3d(name, widths, fc, classes, description, seed) -> ModelSpec:
    """A C3D network (Tran et al. 2015): 8 3x3x3 convolutions, 5 poolings, 3 dense layers."""
    w1, w2, w3, w4, w5 = widths
    layers = (
        _conv("conv1", w1), _pool("pool1", (1, 2, 2)),
        _conv("conv2", w2), _pool("pool2", (2, 2, 2)),
        _conv("conv3a", w3), _conv("conv3b", w3), _pool("pool3", (2, 2, 2)),
        _conv("conv4a", w4), _conv("conv4b", w4), _pool("pool4", (2, 2, 2)),
        _conv("conv5a", w5), _conv("conv5b", w5), _pool("pool5", (2, 2, 2), padding="same"),
        _flat(),
        _dense("fc6", fc, act="relu"), _dense("fc7", fc, act="relu"),
        _dense("fc8", classes),
    )
    return ModelSpec(name, (16, 112, 112, 3), layers, description, seed=seed, reference=False)


_BENCH_LIST: tuple[ModelSpec, ...] = (
    _c3d("c3d_bench", (16, 32, 64, 128, 128), 512, 10,
         "C3D layout at a quarter of the convolution widths (16,32,64,64,128,128,128,128), "
         "fc6/fc7 512, 10 classes; input 16x112x112x3 (benchmarks, batch 8)", seed=201),
    _c3d("c3d_full", (64, 128, 256, 512, 512), 4096, 101,
         "C3D as in Tran et al. 2015: convolutions 64,128,256,256,512,512,512,512, pool1 "
         "(1,2,2) then (2,2,2), fc6/fc7 4096, 101 classes; input 16x112x112x3", seed=202),
)

#: Every spec by name: the reference zoo and the two benchmark-sized C3D models.
ZOO: dict[str, ModelSpec] = {m.name: m for m in _ZOO_LIST + _BENCH_LIST}

#: Names of the models that have stored iNNvestigate references.
REFERENCE_MODELS: tuple[str, ...] = tuple(m.name for m in _ZOO_LIST)


def get_spec(name: str | ModelSpec) -> ModelSpec:
    """Return the spec called ``name`` (a spec is returned unchanged)."""
    if isinstance(name, ModelSpec):
        return name
    try:
        return ZOO[name]
    except KeyError:
        raise KeyError(f"no zoo model {name!r}; known models: {sorted(ZOO)}") from None


# --------------------------------------------------------------------------- shapes


def _conv_out(size: int, k: int, s: int, d: int, padding: str) -> int:
    eff = (k - 1) * d + 1
    if padding == "same":
        return math.ceil(size / s)
    return (size - eff) // s + 1


def _tuple(v, n: int) -> tuple[int, ...]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


def _layer_output_and_weights(layer: LayerSpec, in_shapes: list[tuple[int, ...]]):
    """Output shape (no batch) and weight shapes of one layer, Keras' order."""
    kind, cfg, shape = layer.kind, layer.config, in_shapes[0]
    if kind in ("Conv3D", "Conv2D"):
        n = 3 if kind == "Conv3D" else 2
        k = _tuple(cfg["kernel_size"], n)
        s = _tuple(cfg.get("strides", 1), n)
        d = _tuple(cfg.get("dilation_rate", 1), n)
        pad = cfg.get("padding", "valid")
        out = tuple(_conv_out(shape[i], k[i], s[i], d[i], pad) for i in range(n))
        weights = [k + (shape[-1], cfg["filters"])]
        if cfg.get("use_bias", True):
            weights.append((cfg["filters"],))
        return out + (cfg["filters"],), weights
    if kind in ("MaxPooling3D", "AveragePooling3D", "MaxPooling2D", "AveragePooling2D"):
        n = len(shape) - 1
        p = _tuple(cfg["pool_size"], n)
        s = _tuple(cfg.get("strides") or p, n)
        pad = cfg.get("padding", "valid")
        out = tuple(_conv_out(shape[i], p[i], s[i], 1, pad) for i in range(n))
        return out + (shape[-1],), []
    if kind.startswith("Global"):
        return (shape[-1],), []
    if kind == "Flatten":
        return (int(np.prod(shape)),), []
    if kind == "Dense":
        weights = [(shape[-1], cfg["units"])]
        if cfg.get("use_bias", True):
            weights.append((cfg["units"],))
        return shape[:-1] + (cfg["units"],), weights
    if kind == "Add":
        return shape, []
    if kind == "Concatenate":
        return shape[:-1] + (sum(s[-1] for s in in_shapes),), []
    if kind == "BatchNormalization":
        return shape, [(shape[-1],)] * 4
    if kind == "LayerNormalization":
        return shape, [(shape[-1],)] * 2
    if kind in ("Activation", "ReLU"):
        return shape, []
    if kind == "TimeDistributed":
        inner_out, inner_w = _layer_output_and_weights(layer.wrapped, [shape[1:]])
        return (shape[0],) + inner_out, inner_w
    raise ValueError(f"layer {layer.name!r}: kind {kind!r} has no shape rule in spec.py")


def layer_shapes(spec: str | ModelSpec) -> dict[str, tuple[tuple[int, ...], list[tuple]]]:
    """Map each layer name to ``(output shape without batch, weight shapes)``."""
    spec = get_spec(spec)
    shapes: dict[str, tuple[tuple[int, ...], list[tuple]]] = {"input": (spec.input_shape, [])}
    previous = "input"
    for layer in spec.layers:
        sources = layer.inputs or (previous,)
        out, weights = _layer_output_and_weights(layer, [shapes[s][0] for s in sources])
        shapes[layer.name] = (out, weights)
        previous = layer.name
    return shapes


def weight_shapes(spec: str | ModelSpec) -> dict[str, list[tuple[int, ...]]]:
    """Weight shapes per layer (layers without weights left out), in Keras' order."""
    return {name: w for name, (_, w) in layer_shapes(spec).items() if w}


def output_units(spec: str | ModelSpec) -> int:
    """Number of outputs (classes) of the model."""
    spec = get_spec(spec)
    return layer_shapes(spec)[spec.layers[-1].name][0][-1]


def n_parameters(spec: str | ModelSpec) -> int:
    """Total number of weights (including BatchNormalization statistics)."""
    return sum(int(np.prod(s)) for ws in weight_shapes(spec).values() for s in ws)


# --------------------------------------------------------------------------- weights / inputs


def _kind_of(spec: ModelSpec, name: str) -> str:
    layer = next(layer for layer in spec.layers if layer.name == name)
    return layer.wrapped.kind if layer.kind == "TimeDistributed" else layer.kind


def make_weights(spec: str | ModelSpec, seed: int | None = None) -> dict[str, list[np.ndarray]]:
    """Deterministic float32 weights for every layer of ``spec`` (numpy only).

    Kernels are He-normal (``N(0, 2 / fan_in)``); biases uniform in [-0.1, 0.1];
    BatchNormalization gets gamma in [0.5, 1.5], beta in [-0.2, 0.2], moving mean in
    [-0.3, 0.3] and moving variance in [0.2, 3.0] (far from 1, so that a variance that is
    squared by mistake shows); bias-free models get beta = 0 and mean = 0. LayerNormalization
    gets gamma in [0.5, 1.5] and beta in [-0.2, 0.2].
    """
    spec = get_spec(spec)
    if spec.derived_from is not None:
        return _derived_weights(spec, make_weights(spec.derived_from, seed))
    seed = spec.seed if seed is None else seed
    weights: dict[str, list[np.ndarray]] = {}
    for index, (name, shapes) in enumerate(weight_shapes(spec).items()):
        rng = np.random.default_rng([seed, index])
        kind = _kind_of(spec, name)
        if kind == "BatchNormalization":
            n = shapes[0]
            beta = rng.uniform(-0.2, 0.2, n)
            mean = rng.uniform(-0.3, 0.3, n)
            if spec.bias_free:
                beta, mean = np.zeros(n), np.zeros(n)
            arrays = [rng.uniform(0.5, 1.5, n), beta, mean, rng.uniform(0.2, 3.0, n)]
        elif kind == "LayerNormalization":
            arrays = [rng.uniform(0.5, 1.5, shapes[0]), rng.uniform(-0.2, 0.2, shapes[1])]
        else:
            kernel = shapes[0]
            fan_in = int(np.prod(kernel[:-1]))
            arrays = [rng.normal(0.0, math.sqrt(2.0 / fan_in), kernel)]
            arrays += [rng.uniform(-0.1, 0.1, s) for s in shapes[1:]]
        weights[name] = [a.astype(np.float32) for a in arrays]
    return weights


#: BatchNormalization epsilon (the Keras 2 and Keras 3 default, used by the zoo).
BN_EPSILON = 1e-3


def _derived_weights(spec: ModelSpec, source: dict[str, list[np.ndarray]]):
    """Weights of a twin model: copied or reshaped by layer name, BatchNormalization folded."""
    weights = {}
    for name, shapes in weight_shapes(spec).items():
        if name in spec.fold_batchnorm:
            kernel = source[name][0]
            bias = source[name][1] if len(source[name]) > 1 else np.zeros(kernel.shape[-1])
            gamma, beta, mean, var = source[spec.fold_batchnorm[name]]
            scale = gamma / np.sqrt(var + BN_EPSILON)
            arrays = [kernel * scale, (bias - mean) * scale + beta]
        else:
            arrays = [np.reshape(w, s) for w, s in zip(source[name], shapes)]
        weights[name] = [np.asarray(a, dtype=np.float32) for a in arrays]
    return weights


def make_inputs(spec: str | ModelSpec, n: int | None = None, seed: int | None = None) -> np.ndarray:
    """Deterministic float32 inputs ``[n, *input_shape]``, uniform in :data:`INPUT_RANGE`
    (rounded to the spec's ``levels``, zero in its letterbox bars)."""
    spec = get_spec(spec)
    n = spec.n_samples if n is None else n
    rng = np.random.default_rng([spec.seed if seed is None else seed, 10_000])
    low, high = INPUT_RANGE
    x = rng.uniform(low, high, (n,) + spec.input_shape).astype(np.float32)
    if spec.levels:
        step = (high - low) / (spec.levels - 1)
        x = (low + np.round((x - low) / step) * step).astype(np.float32)
    if spec.letterbox:  # rows are the third axis from the end (..., rows, columns, channels)
        rows = x.shape[-3]
        x[..., : spec.letterbox, :, :] = 0.0
        x[..., rows - spec.letterbox:, :, :] = 0.0
    return x


def make_noise(spec: str | ModelSpec, n_copies: int = N_NOISE) -> np.ndarray:
    """Deterministic standard-normal float32 noise ``[n_samples, n_copies, *input_shape]``.

    Replaces the random draws of ``smoothgrad`` (copy ``k`` of sample ``b`` is
    ``x[b] + noise[b, k]``) and ``random`` (``x + stddev * noise[:, 0]``) in both libraries, so
    that what they do with the noise can be compared exactly.
    """
    spec = get_spec(spec)
    rng = np.random.default_rng([spec.seed, 20_000])
    shape = (spec.n_samples, n_copies) + spec.input_shape
    return rng.standard_normal(shape).astype(np.float32)


def flatten_weights(weights: Mapping[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
    """``{"layer": [w0, w1]}`` -> ``{"weights/layer/0": w0, "weights/layer/1": w1}`` (npz keys)."""
    return {f"weights/{name}/{i}": w for name, ws in weights.items() for i, w in enumerate(ws)}


def unflatten_weights(arrays: Mapping[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Inverse of :func:`flatten_weights`; other keys are ignored."""
    found: dict[str, dict[int, np.ndarray]] = {}
    for key, value in arrays.items():
        parts = key.split("/")
        if len(parts) == 3 and parts[0] == "weights":
            found.setdefault(parts[1], {})[int(parts[2])] = np.asarray(value)
    return {name: [ws[i] for i in sorted(ws)] for name, ws in found.items()}
