"""Every architecture kvlrp builds is explained by analyzers: deep Taylor gives finite,
non-zero relevance of the input's shape (C3D itself on small 16x32x32 clips)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kvlrp.models import c3d, c3d_small

analyzers = pytest.importorskip("analyzers")

BUILDERS = {
    "c3d": lambda: c3d(3, input_shape=(16, 32, 32, 3), dense_units=16),
    "c3d_bn": lambda: c3d(3, input_shape=(16, 32, 32, 3), dense_units=16, batch_norm=True),
    "c3d_small": lambda: c3d_small(3, frames=8, size=16, widths=(4, 8), dense_units=8),
    "c3d_small_gap": lambda: c3d_small(
        3, frames=8, size=16, widths=(4, 8), dense_units=8, head="global_average"),
    "c3d_small_valid_bn": lambda: c3d_small(
        3, frames=8, size=16, widths=(4, 8), dense_units=8, batch_norm=True,
        temporal_padding="valid"),
}


CASES = [("c3d", "deep_taylor"), ("c3d_bn", "deep_taylor.bounded"),
         ("c3d_small", "deep_taylor"), ("c3d_small", "deep_taylor.bounded"),
         ("c3d_small_gap", "deep_taylor.bounded"),
         ("c3d_small_valid_bn", "deep_taylor"), ("c3d_small_valid_bn", "deep_taylor.bounded")]


@pytest.mark.parametrize(("name", "method"), CASES)
def test_deep_taylor_explains_every_builder(name, method):
    keras.utils.set_random_seed(0)
    model = BUILDERS[name]()
    kwargs = {"low": -1.0, "high": 1.0} if method == "deep_taylor.bounded" else {}
    analyzer = analyzers.create_analyzer(method, model, **kwargs)
    x = np.random.default_rng(0).uniform(-1, 1, (2, *model.input_shape[1:])).astype("float32")
    relevance = analyzer.analyze(x)
    assert relevance.shape == x.shape
    assert np.isfinite(relevance).all()
    assert np.abs(relevance).sum() > 0
