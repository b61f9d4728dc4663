"""Winner-take-all max pooling at tied maxima: exactly one winner per window (the first
maximum in window order), in 1D/2D/3D, for strided, overlapping and ``same``-padded
windows and for global max pooling, whatever kernel TensorFlow runs (issue 8: TF's
``max_pool3d`` gradient hands the full gradient to every tied input). Checked through the
matrix-form reference and by conservation of every rule on models whose inputs have flat
regions (letterbox bars, static background), where ties occur."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import analyzers_reference as ref  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from conservation import assert_conserved  # noqa: E402

import analyzers  # noqa: E402
from analyzers.ops import make_op  # noqa: E402
from analyzers.ops.pooling.winner import METHODS, max_pool_first_winner  # noqa: E402

L = keras.layers

#: (id, max-pooling class, its average twin, kwargs, input shape without batch)
TIE_CASES = [
    ("1d", L.MaxPooling1D, L.AveragePooling1D, dict(pool_size=2), (6, 2)),
    ("1d_overlap_same", L.MaxPooling1D, L.AveragePooling1D,
     dict(pool_size=3, strides=2, padding="same"), (7, 2)),
    ("2d", L.MaxPooling2D, L.AveragePooling2D, dict(pool_size=2), (4, 4, 2)),
    ("2d_s1_same", L.MaxPooling2D, L.AveragePooling2D,
     dict(pool_size=3, strides=1, padding="same"), (4, 5, 1)),
    ("3d", L.MaxPooling3D, L.AveragePooling3D, dict(pool_size=2), (4, 4, 4, 2)),
    ("3d_122", L.MaxPooling3D, L.AveragePooling3D, dict(pool_size=(1, 2, 2)), (3, 4, 4, 2)),
    ("3d_overlap_same", L.MaxPooling3D, L.AveragePooling3D,
     dict(pool_size=(2, 3, 3), strides=(1, 2, 2), padding="same"), (3, 5, 5, 1)),
    ("3d_stride_gt_pool", L.MaxPooling3D, L.AveragePooling3D,
     dict(pool_size=(1, 2, 2), strides=(2, 3, 3)), (5, 7, 7, 1)),
    # non-overlapping windows (strides == pool) take the reshape path; with a remainder
    # (valid: uncovered tail gets no gradient) and with same padding (-inf must not win)
    ("2d_remainder", L.MaxPooling2D, L.AveragePooling2D, dict(pool_size=(2, 3)), (5, 7, 1)),
    ("3d_remainder", L.MaxPooling3D, L.AveragePooling3D, dict(pool_size=2), (5, 5, 3, 2)),
    ("3d_same_tiled", L.MaxPooling3D, L.AveragePooling3D,
     dict(pool_size=(2, 2, 3), padding="same"), (3, 5, 4, 1)),
    ("3d_channels_first", L.MaxPooling3D, L.AveragePooling3D,
     dict(pool_size=(1, 2, 2), data_format="channels_first"), (2, 3, 4, 5)),
]

#: inputs with ties: all zero (after ReLU), few distinct positive values, negative values
#: (so that ``same`` padding must never win)
TIE_INPUTS = {
    "zeros": lambda rng, shape: np.zeros(shape, np.float32),
    "ones": lambda rng, shape: np.ones(shape, np.float32),
    "two_levels": lambda rng, shape: rng.integers(0, 2, shape).astype(np.float32) * 0.5,
    "negative_levels": lambda rng, shape: -rng.integers(1, 3, shape).astype(np.float32),
}


def _membership(avg_cls, kw, in_shape):
    avg = avg_cls(**kw)
    avg.build((None,) + in_shape)
    w, _, out_shape = ref.dense_matrix(avg, in_shape)
    return (w > 0).astype(np.float64), out_shape


@pytest.mark.parametrize("inputs", list(TIE_INPUTS))
@pytest.mark.parametrize("case", TIE_CASES, ids=[c[0] for c in TIE_CASES])
def test_winner_take_all_at_ties_matches_matrix_form(case, inputs):
    _, max_cls, avg_cls, kw, in_shape = case
    membership, out_shape = _membership(avg_cls, kw, in_shape)
    mx = max_cls(**kw)
    mx.build((None,) + in_shape)
    rng = np.random.default_rng(4)
    x = TIE_INPUTS[inputs](rng, in_shape)
    r = rng.uniform(0.1, 1.0, size=out_shape).astype(np.float32)
    got = analyzers.GradientRule()(make_op(mx), [tf.constant(x[None])],
                                   tf.constant(r[None]))[0].numpy()[0]
    # the reference's np.argmax takes the first maximum in flat order = window order
    expected = ref.pool_winner_take_all(x.reshape(-1).astype(np.float64), membership,
                                        r.reshape(-1).astype(np.float64))
    np.testing.assert_allclose(got, expected.reshape(in_shape), rtol=1e-6, atol=1e-7)
    assert got.sum() == pytest.approx(float(r.sum()), rel=1e-6)
    # exactly one winner per window: as many non-zero inputs as windows at most
    assert np.count_nonzero(got) <= r.size


def _case_geometry(kw, in_shape):
    rank = len(in_shape) - 1
    pool = kw["pool_size"]
    pool = (pool,) * rank if isinstance(pool, int) else tuple(pool)
    strides = kw.get("strides", pool)
    strides = (strides,) * rank if isinstance(strides, int) else tuple(strides)
    return pool, strides, kw.get("padding", "valid"), kw.get("data_format", "channels_last")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("inputs", ["zeros", "two_levels", "negative_levels"])
@pytest.mark.parametrize("case", TIE_CASES, ids=[c[0] for c in TIE_CASES])
def test_every_method_matches_matrix_form_at_ties(case, inputs, method):
    """Each way of computing the first-winner gradient (XLA, argmax pooling, stages) routes
    tied windows as the matrix-form reference, and its forward is TensorFlow's max."""
    _, _, avg_cls, kw, in_shape = case
    membership, out_shape = _membership(avg_cls, kw, in_shape)
    pool, strides, padding, data_format = _case_geometry(kw, in_shape)
    rng = np.random.default_rng(4)
    x = tf.constant(TIE_INPUTS[inputs](rng, in_shape)[None])
    r = tf.constant(rng.uniform(0.1, 1.0, size=(1,) + out_shape).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = max_pool_first_winner(x, pool, strides, padding, data_format, method=method)
    got = tape.gradient(y, x, output_gradients=r).numpy()[0]
    expected = ref.pool_winner_take_all(x.numpy().reshape(-1).astype(np.float64), membership,
                                        r.numpy().reshape(-1).astype(np.float64))
    np.testing.assert_array_equal(y.numpy(), keras.ops.max_pool(
        x, pool, strides=strides, padding=padding, data_format=data_format).numpy())
    np.testing.assert_allclose(got, expected.reshape(in_shape), rtol=1e-6, atol=1e-7)
    assert np.count_nonzero(got) <= r.shape.num_elements()


@pytest.mark.parametrize("case", TIE_CASES, ids=[c[0] for c in TIE_CASES])
def test_first_winner_forward_is_tensorflows_max(case):
    _, _, _, kw, in_shape = case
    rng = np.random.default_rng(0)
    x = tf.constant(rng.integers(-2, 3, (2,) + in_shape).astype(np.float32))
    pool = kw["pool_size"]
    rank = len(in_shape) - 1
    pool = (pool,) * rank if isinstance(pool, int) else pool
    strides = kw.get("strides", pool)
    strides = (strides,) * rank if isinstance(strides, int) else strides
    padding = kw.get("padding", "valid")
    data_format = kw.get("data_format", "channels_last")
    got = max_pool_first_winner(x, pool, strides, padding, data_format)
    expected = keras.ops.max_pool(x, pool, strides=strides, padding=padding,
                                  data_format=data_format)
    np.testing.assert_array_equal(got.numpy(), expected.numpy())


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_global_max_pooling_ties_go_to_the_first_maximum(rank):
    cls = {1: L.GlobalMaxPooling1D, 2: L.GlobalMaxPooling2D, 3: L.GlobalMaxPooling3D}[rank]
    in_shape = (3, 4, 2, 2)[-(rank + 1):]
    layer = cls()
    layer.build((None,) + in_shape)
    rng = np.random.default_rng(2)
    x = rng.integers(0, 2, (2,) + in_shape).astype(np.float32)
    x[1] = 0.0  # an all-zero sample: every position ties
    r = rng.uniform(0.1, 1.0, (2, in_shape[-1])).astype(np.float32)
    got = analyzers.GradientRule()(make_op(layer), [tf.constant(x)], tf.constant(r))[0]
    got = got.numpy().reshape(2, -1, in_shape[-1])
    flat = x.reshape(2, -1, in_shape[-1])
    expected = np.zeros_like(flat)
    for b in range(2):
        for c in range(in_shape[-1]):
            expected[b, np.argmax(flat[b, :, c]), c] = r[b, c]
    np.testing.assert_allclose(got, expected, rtol=1e-6)


# -- conservation of every rule on models where ties occur ------------------------------
SHAPE = (4, 8, 8, 2)


def _conv(filters, kernel=3, **kw):
    kw.setdefault("padding", "same")
    kw.setdefault("activation", "relu")
    return L.Conv3D(filters, kernel, use_bias=False, **kw)


def _pool_stack():
    return keras.Sequential([
        keras.Input(SHAPE), _conv(4), L.MaxPooling3D((1, 2, 2)), _conv(4),
        L.MaxPooling3D(2, padding="same"), _conv(4, (3, 1, 1)),
        L.TimeDistributed(L.MaxPooling2D(2)), L.Flatten(),
        L.Dense(6, activation="relu", use_bias=False), L.Dense(3, use_bias=False),
    ], name="pool_stack")


def _global_max():
    return keras.Sequential([
        keras.Input(SHAPE), _conv(4), L.MaxPooling3D((2, 3, 3), strides=(1, 2, 2),
                                                     padding="same"),
        _conv(4), L.GlobalMaxPooling3D(), L.Dense(3, use_bias=False),
    ], name="global_max")


def _flat_region_clips(rng, lo, hi):
    """Two clips: random content with letterbox bars at ``lo`` and a static patch of one
    value, and a constant clip; both have many tied windows after ReLU."""
    x = rng.uniform(lo, hi, (2,) + SHAPE).astype(np.float32)
    x[0, :, :2] = lo          # letterbox bar (top rows)
    x[0, :, -2:] = lo         # letterbox bar (bottom rows)
    x[0, :, 3:6, 3:6] = (lo + hi) / 2  # static patch
    x[1] = lo + 0.75 * (hi - lo)       # a constant clip
    return x


#: (analyzer, kwargs, input range, explains relu(logit))
ALL_RULES = [
    ("lrp.z", {}, (-1, 1), False),
    ("lrp.epsilon", {"epsilon": 1e-9}, (-1, 1), False),
    ("lrp.z_plus", {}, (0, 1), False),
    ("deep_taylor", {}, (0, 1), True),
    ("deep_taylor.bounded", {"low": -1.0, "high": 1.0}, (-1, 1), True),
    ("lrp.alpha_1_beta_0", {}, (-1, 1), False),
    ("lrp.alpha_2_beta_1", {}, (-1, 1), False),
    ("lrp.w_square", {}, (-1, 1), False),
    ("lrp.flat", {}, (-1, 1), False),
    ("deep_taylor", {"input_rule": "w_square"}, (-1, 1), True),
]


@pytest.mark.parametrize("make_model", [_pool_stack, _global_max],
                         ids=["pool_stack", "global_max"])
def test_every_rule_conserves_on_tied_windows(make_model):
    keras.utils.set_random_seed(3)
    model = make_model()
    dense = model.layers[-1]
    kernel = dense.kernel.numpy()
    kernel[:, 2] = -kernel[:, 0]  # a positive top logit for deep Taylor
    dense.kernel.assign(kernel)
    graph = analyzers.build_graph(model)
    rng = np.random.default_rng(5)
    for name, kwargs, (lo, hi), relu_output in ALL_RULES:
        x = _flat_region_clips(rng, lo, hi)
        logits = graph.forward(x).numpy()
        selection = np.argmax(logits, axis=1)
        relevance = analyzers.create_analyzer(name, model, **kwargs).analyze(
            x, neuron_selection=selection)
        target = logits[np.arange(2), selection]
        if relu_output:
            target = np.maximum(target, 0.0)
        assert_conserved(relevance, target, rtol=1e-4, err_msg=f"{name} {kwargs}")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("pool,strides,padding,shape", [
    ((2, 2, 2), (2, 2, 2), "valid", (3, 8, 9, 7, 4)),
    ((1, 2, 2), (1, 2, 2), "valid", (2, 5, 8, 8, 3)),
    ((2, 3, 2), (2, 3, 2), "same", (2, 5, 7, 5, 3)),
    ((3, 3, 3), (1, 1, 1), "same", (2, 4, 6, 5, 2)),
    ((1, 3, 3), (1, 2, 2), "same", (2, 3, 7, 6, 2)),
    ((3, 2, 3), (2, 1, 2), "valid", (2, 7, 5, 8, 2)),
    ((2, 2), (2, 2), "valid", (3, 7, 6, 2)), ((3, 2), (1, 3), "same", (2, 6, 7, 2)),
    ((3,), (3,), "same", (2, 10, 3)), ((3,), (2,), "valid", (2, 10, 3)),
])
def test_separable_pool_routes_as_the_joint_window(pool, strides, padding, shape,
                                                   data_format, method):
    """The pool as it runs, by every method (one reshape stage for stride == window,
    otherwise one stage per axis, each a reshape where that axis' stride equals its window,
    else sliced; the same by XLA; the joint window by XLA; argmax pooling stages) gives the
    same output and winners as ranking all offsets of the whole window jointly, on inputs
    with many ties and on distinct values."""
    from analyzers.ops.pooling.winner import _sliced_first_winner_grad, _spatial_axes

    rng = np.random.default_rng(1)
    if data_format == "channels_first":  # shapes are given channels-last
        shape = (shape[0], shape[-1]) + shape[1:-1]
    axes = _spatial_axes(len(shape), data_format)
    for x_np in (rng.integers(0, 3, shape).astype(np.float32),
                 rng.normal(size=shape).astype(np.float32)):
        x = tf.constant(x_np)
        expected_y = keras.ops.max_pool(x, list(pool), strides=list(strides), padding=padding,
                                        data_format=data_format)
        g = tf.constant(rng.uniform(0.5, 1.5, expected_y.shape).astype(np.float32))
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = max_pool_first_winner(x, pool, strides, padding, data_format, method=method)
        staged = tape.gradient(y, x, output_gradients=g)
        joint = _sliced_first_winner_grad(x, expected_y, g, axes, list(pool), list(strides),
                                          padding)
        np.testing.assert_array_equal(y.numpy(), expected_y.numpy())
        # same winners; where windows overlap an input winning several windows sums their
        # gradients in another order (float32 round-off), else bit for bit
        np.testing.assert_array_equal(staged.numpy() != 0, joint.numpy() != 0)
        if tuple(pool) == tuple(strides) and method != "argmax":
            np.testing.assert_array_equal(staged.numpy(), joint.numpy())
        else:
            np.testing.assert_allclose(staged.numpy(), joint.numpy(), rtol=1e-6)
        assert np.count_nonzero(staged.numpy()) <= expected_y.shape.num_elements()
        assert float(tf.reduce_sum(staged)) == pytest.approx(float(tf.reduce_sum(g)),
                                                             rel=1e-6)
