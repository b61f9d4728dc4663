"""The private Keras / TensorFlow internals the packages use, checked on the installed versions.

If one of these fails after a Keras or TensorFlow upgrade, the fix belongs in
``analyzers/compat.py`` or ``kvlrp/infra/compat.py`` only.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from analyzers.compat import (
    build_input_shape,
    is_functional,
    mask_arguments,
    nodes_by_depth,
    onednn_enabled,
    sublayers,
)
from kvlrp.infra.compat import disable_op_determinism, op_determinism_enabled


def _branching_model() -> keras.Model:
    inputs = keras.Input((4,))
    a = keras.layers.Dense(3, name="a")(inputs)
    b = keras.layers.Dense(3, name="b")(inputs)
    out = keras.layers.Add(name="add")([a, b])
    return keras.Model(inputs, out)


def test_functional_models_expose_nodes_by_depth_with_the_fields_used():
    model = _branching_model()
    assert is_functional(model)
    by_depth = nodes_by_depth(model)
    assert min(by_depth) == 0
    assert [n.operation.name for n in by_depth[0]] == ["add"]
    layer_nodes = [n for d in by_depth for n in by_depth[d] if n.operation and not n.is_input]
    assert sorted(n.operation.name for n in layer_nodes) == ["a", "add", "b"]
    for node in layer_nodes:
        assert len(node.outputs) == 1
        assert all(hasattr(t, "shape") for t in node.input_tensors)
    add_node = by_depth[0][0]
    assert len(add_node.input_tensors) == 2


def test_nodes_keep_the_mask_a_layer_was_handed():
    """Keras records a Masking layer's mask as operation nodes of their own and passes it to
    the recurrent layer as its ``mask`` argument, which the node keeps."""
    inputs = keras.Input((5, 3))
    masked = keras.layers.Masking(name="masking")(inputs)
    out = keras.layers.LSTM(2, name="lstm")(masked)
    by_depth = nodes_by_depth(keras.Model(inputs, out))
    nodes = {n.operation.name: n for d in by_depth for n in by_depth[d] if n.operation}
    lstm = nodes["lstm"]
    (mask,) = mask_arguments(lstm)
    assert [id(t) for t in lstm.input_tensors] == [id(masked), id(mask)]
    assert mask_arguments(nodes["masking"]) == []
    producers = {type(n.operation).__name__ for n in nodes.values()
                 if not isinstance(n.operation, keras.layers.Layer)}
    assert producers == {"NotEqual", "Any"}


def test_subclassed_models_are_not_taken_for_functional_ones():
    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)

        def call(self, x):
            return self.dense(x)

    assert not is_functional(Sub())


def test_a_built_subclassed_model_tells_its_input_shape(tmp_path):
    @keras.saving.register_keras_serializable(package="test_compat")
    class Sub(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense = keras.layers.Dense(1)

        def call(self, x):
            return self.dense(x)

    model = Sub()
    assert build_input_shape(model) is None  # not called yet
    model(np.ones((2, 5), "float32"))
    assert build_input_shape(model) == (2, 5)
    model.save(tmp_path / "sub.keras")
    assert build_input_shape(keras.saving.load_model(tmp_path / "sub.keras")) == (2, 5)


def test_sublayers_reach_wrapped_layers_cells_and_nested_models():
    inner = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="inner_dense")])
    model = keras.Sequential([
        keras.Input((4, 3)), keras.layers.TimeDistributed(inner, name="td"),
        keras.layers.GRU(2, name="gru"), keras.layers.Dense(1, name="head")])
    names = [type(layer).__name__ for layer in sublayers(model)]
    assert names[0] == "Sequential" and "GRUCell" in names
    assert "inner_dense" in [layer.name for layer in sublayers(model)]


def test_op_determinism_can_be_queried_and_switched_back_off():
    before = op_determinism_enabled()
    tf.config.experimental.enable_op_determinism()
    try:
        assert op_determinism_enabled()
        tf.constant(np.ones(3))  # still usable
    finally:
        if not before:
            assert disable_op_determinism()
    assert op_determinism_enabled() == before


def test_onednn_query_answers_on_this_tensorflow_and_follows_the_switch():
    import os

    answer = onednn_enabled()
    assert answer is not None, "TensorFlow lost _pywrap_util_port.IsMklEnabled"
    assert isinstance(answer, bool)
    import platform

    asked = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    if asked == "0":  # tox sets it; TensorFlow must obey
        assert answer is False
    elif asked == "1" and platform.machine().lower() in ("x86_64", "amd64"):
        assert answer is True  # x86 wheels carry oneDNN


def _draws() -> list:
    """One draw of each global random source a training run uses after a reseed."""
    import random

    shuffled = tf.data.Dataset.range(20).shuffle(20, seed=7)
    return [random.random(), float(np.random.rand()),  # noqa: NPY002 - the global state
            float(tf.random.uniform(())), float(keras.random.uniform(())),
            [int(x) for x in shuffled]]


def test_random_state_kept_puts_back_every_global_random_state():
    from kvlrp.infra.compat import random_state_kept

    keras.utils.set_random_seed(5)
    expected = _draws()
    keras.utils.set_random_seed(5)
    with random_state_kept():
        keras.utils.set_random_seed(1234)
        _draws()
    assert _draws() == expected
