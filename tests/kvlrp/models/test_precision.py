"""Mixed-precision builds and float32 copies: the policy of a scope does not leak, every
builder's classifier computes in float32 under a mixed policy, a mixed model's float32 copy
has its weights and float32 layers only (nested ones too), and analyzers see float32."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import analyzers
from kvlrp.models import build_model
from kvlrp.models.precision import (
    as_float32,
    check_precision,
    model_precision,
    precision_scope,
)

#: Every ``_small`` builder, narrow, for 4x16x16 clips.
SMALL = {
    "c3d_small": {"widths": (4, 8), "dense_units": 8},
    "r3d_small": {"widths": (4, 8, 8, 8)},
    "r2plus1d_small": {"widths": (4, 8, 8, 8)},
    "i3d_small": {"width": 0.0625},
    "x3d_small": {"head_dim": 16},
    "vivit_small": {"dim": 16, "heads": 2, "mlp_dim": 32, "spatial_depth": 1,
                    "temporal_depth": 1},
    "timesformer_small": {"dim": 16, "heads": 2, "mlp_dim": 32, "depth": 1},
    "cnn_gru_small": {"widths": (4, 8), "units": 8},
}


def _compute_dtypes(model: keras.Model) -> set[str]:
    return {str(layer.dtype_policy.compute_dtype)
            for layer in model._flatten_layers(include_self=False)}


def test_scope_sets_and_restores_the_global_policy():
    assert keras.config.dtype_policy().name == "float32"
    with precision_scope("bfloat16"):
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
        inside = keras.layers.Dense(2)
    outside = keras.layers.Dense(2)
    assert inside.compute_dtype == "bfloat16" and outside.compute_dtype == "float32"
    with pytest.raises(RuntimeError), precision_scope("float16"):
        raise RuntimeError("interrupted")
    assert keras.config.dtype_policy().name == "float32"
    with pytest.raises(ValueError, match="unknown precision 'half'"):
        check_precision("half")


@pytest.mark.parametrize("name", sorted(SMALL))
def test_mixed_builds_output_float32_and_copy_back_to_float32(name):
    keras.utils.set_random_seed(0)
    with precision_scope("bfloat16"):
        mixed = build_model(name, 3, frames=4, size=16, **SMALL[name])
    assert model_precision(mixed) == "bfloat16"
    assert mixed.get_layer("predictions").compute_dtype == "float32"
    x = np.random.default_rng(0).uniform(-1, 1, (2, 4, 16, 16, 3)).astype("float32")
    probs = mixed(x)
    assert probs.dtype == "float32"
    copy = as_float32(mixed)
    assert copy is not mixed and model_precision(copy) == "float32"
    assert _compute_dtypes(copy) == {"float32"}  # nested layers (TimeDistributed) too
    assert all(w.dtype == "float32" for w in copy.weights)
    for a, b in zip(mixed.get_weights(), copy.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(copy(x), probs, atol=0.05)  # bfloat16 round-off only
    assert as_float32(copy) is copy


def test_analyzers_see_float32_layers_of_the_copy():
    keras.utils.set_random_seed(0)
    with precision_scope("bfloat16"):
        mixed = build_model("c3d_small", 3, frames=4, size=16, **SMALL["c3d_small"])
    copy = as_float32(mixed)
    reference = build_model("c3d_small", 3, frames=4, size=16, **SMALL["c3d_small"])
    reference.set_weights(mixed.get_weights())  # built in float32 from the start
    x = np.random.default_rng(1).uniform(-1, 1, (2, 4, 16, 16, 3)).astype("float32")
    graph = analyzers.build_graph(copy)
    assert {str(step.op.layer.compute_dtype) for step in graph.steps} == {"float32"}
    assert graph.forward(x).dtype == "float32"
    for method in ("deep_taylor.bounded", "gradient"):
        kwargs = {"low": -1.0, "high": 1.0} if method == "deep_taylor.bounded" else {}
        got = analyzers.create_analyzer(method, copy, **kwargs).analyze(x, neuron_selection=0)
        want = analyzers.create_analyzer(method, reference, **kwargs).analyze(
            x, neuron_selection=0)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["c3d_small", "vivit_small", "cnn_gru_small"])
def test_explained_logits_are_float32(name):
    """What the analyzers explain, the logits of a mixed model's float32 copy, is float32 and
    is what the classifier's softmax turns into the model's probabilities (float32 arithmetic
    both ways: agreement to a few float32 ulps); the mixed model's own output is float32."""
    from analyzers.model.logits import logit_function

    keras.utils.set_random_seed(0)
    with precision_scope("bfloat16"):
        mixed = build_model(name, 3, frames=4, size=16, **SMALL[name])
    x = np.random.default_rng(2).uniform(-1, 1, (2, 4, 16, 16, 3)).astype("float32")
    assert mixed(x).dtype == "float32"
    copy = as_float32(mixed)
    forward, _ = logit_function(copy)
    logits = forward(x)
    assert logits.dtype == "float32" and tuple(logits.shape) == (2, 3)
    np.testing.assert_allclose(keras.ops.softmax(logits), copy(x), rtol=1e-5, atol=1e-7)
