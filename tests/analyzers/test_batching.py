"""``analyze(x, batch_size=N)``: a large batch explained in chunks gives the unbatched result
and never hands the compiled function more than N samples."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import analyzers  # noqa: E402

L = keras.layers
SHAPE = (4, 8, 8, 2)
N = 7


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)
    return keras.Sequential([
        keras.Input(SHAPE), L.Conv3D(4, 3, padding="same", activation="relu"),
        L.MaxPooling3D((1, 2, 2)), L.Conv3D(6, 3, padding="same", activation="relu"),
        L.GlobalAveragePooling3D(), L.Dense(5)], name="tiny_c3d")


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(1).uniform(-1, 1, (N,) + SHAPE).astype(np.float32)


def _count_chunks(analyzer):
    sizes: list[int] = []
    compiled = analyzer._compiled

    def recording(xt, index):
        sizes.append(int(xt.shape[0]))
        return compiled(xt, index)

    analyzer._compiled = recording
    return sizes


@pytest.mark.parametrize("name, kwargs", [
    ("deep_taylor.bounded", {"low": -1.0, "high": 1.0}), ("lrp.epsilon", {}),
    ("gradient", {}), ("lrp.alpha_2_beta_1", {})])
@pytest.mark.parametrize("batch_size", [1, 3, 50])
def test_batched_equals_unbatched(model, x, name, kwargs, batch_size):
    analyzer = analyzers.create_analyzer(name, model, **kwargs)
    selection = np.arange(N) % 5
    whole = analyzer.analyze(x, neuron_selection=selection)
    sizes = _count_chunks(analyzer)
    chunked = analyzer.analyze(x, neuron_selection=selection, batch_size=batch_size)
    assert sizes and max(sizes) <= batch_size and sum(sizes) == N
    assert len(sizes) == -(-N // batch_size)
    assert chunked.shape == x.shape and chunked.dtype == whole.dtype
    scale = np.abs(whole).max()
    assert scale > 0
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-6 * scale)


def test_batched_default_selection_is_per_sample(model, x):
    analyzer = analyzers.create_analyzer("lrp.z", model)
    whole = analyzer.analyze(x)
    chunked = analyzer.analyze(x, batch_size=2)
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-6 * np.abs(whole).max())
    one = analyzer.analyze(x[4:5])
    np.testing.assert_allclose(chunked[4:5], one, rtol=1e-5, atol=1e-6 * np.abs(one).max())


@pytest.mark.parametrize("bad", [0, -2, 1.5, "4", True])
def test_bad_batch_size_is_refused(model, x, bad):
    analyzer = analyzers.create_analyzer("gradient", model)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        analyzer.analyze(x, batch_size=bad)


def test_selection_array_is_checked_against_the_whole_batch(model, x):
    analyzer = analyzers.create_analyzer("gradient", model)
    with pytest.raises(ValueError, match=r"shape \[batch\] = \(7,\)"):
        analyzer.analyze(x, neuron_selection=np.zeros(3, dtype=int), batch_size=3)
