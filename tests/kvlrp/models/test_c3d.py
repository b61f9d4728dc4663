"""C3D builders: shapes, the layer set analyzers supports, padding modes, input checks."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kvlrp.models import build_model, c3d, c3d_small

#: Layer classes the analyzers engine explains (DESIGN.md); the builders may use only these.
SUPPORTED = {
    "InputLayer", "Conv3D", "MaxPooling3D", "AveragePooling3D", "ZeroPadding3D", "Flatten",
    "GlobalAveragePooling3D", "GlobalMaxPooling3D", "Dense", "Dropout", "ReLU", "Activation",
    "BatchNormalization",
}


def _layer_classes(model: keras.Model) -> set[str]:
    return {type(layer).__name__ for layer in model.layers}


def test_c3d_original_shape_and_size():
    model = c3d(101)
    assert model.input_shape == (None, 16, 112, 112, 3)
    assert model.output_shape == (None, 101)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv3D)]
    assert [layer.filters for layer in convs] == [64, 128, 256, 256, 512, 512, 512, 512]
    assert all(layer.kernel_size == (3, 3, 3) and layer.padding == "same" for layer in convs)
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling3D)]
    assert pools[0].pool_size == (1, 2, 2)
    assert all(p.pool_size == (2, 2, 2) for p in pools[1:])
    # pool5 on the padded 8x8 maps gives 1x4x4x512 = 8192 features, as in the original
    assert model.get_layer("flatten").output.shape[-1] == 8192
    assert [model.get_layer(n).units for n in ("fc6", "fc7")] == [4096, 4096]
    # ~78M parameters with 101 classes (Tran et al. 2015)
    assert 77e6 < model.count_params() < 80e6
    assert _layer_classes(model) <= SUPPORTED


def test_c3d_small_input_and_batch_norm():
    model = c3d(5, input_shape=(16, 32, 32, 3), batch_norm=True, dense_units=64)
    assert model.output_shape == (None, 5)
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers) == 8
    assert _layer_classes(model) <= SUPPORTED
    x = np.random.default_rng(0).uniform(-1, 1, (2, 16, 32, 32, 3)).astype("float32")
    probs = model.predict(x, verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("temporal_padding", ["same", "valid"])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_c3d_small_builds_and_ends_in_softmax(temporal_padding, batch_norm):
    model = c3d_small(
        4, frames=8, size=32, widths=(8, 16, 32), dense_units=32,
        batch_norm=batch_norm, temporal_padding=temporal_padding,
    )
    assert model.input_shape == (None, 8, 32, 32, 3)
    assert model.output_shape == (None, 4)
    last = model.layers[-1]
    assert isinstance(last, keras.layers.Dense) and last.activation.__name__ == "softmax"
    assert _layer_classes(model) <= SUPPORTED
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv3D)]
    assert [layer.filters for layer in convs] == [8, 16, 32]
    assert all(layer.padding == temporal_padding for layer in convs)
    has_bn = any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    assert has_bn == batch_norm


def test_valid_temporal_padding_pads_only_space():
    model = c3d_small(2, frames=8, size=16, widths=(4, 4), dense_units=8, temporal_padding="valid")
    pads = [layer for layer in model.layers if isinstance(layer, keras.layers.ZeroPadding3D)]
    assert pads and all(p.padding == ((0, 0), (1, 1), (1, 1)) for p in pads)
    # each valid convolution shortens the clip by two frames: 8 -> 6 -> 4 (no pooling in time
    # where it would leave too few frames)
    assert model.get_layer("conv1").output.shape[1] == 6
    assert model.get_layer("conv2").output.shape[1] == 4
    # the border frame still reaches the output (valid convolutions drop no input frame)
    x = np.zeros((1, 8, 16, 16, 3), "float32")
    y = x.copy()
    y[0, 0] = 1.0
    assert not np.allclose(model.predict(x, verbose=0), model.predict(y, verbose=0))


def test_build_model_by_name():
    model = build_model("c3d_small", 3, frames=4, size=16, widths=(4,), dense_units=8)
    assert model.output_shape == (None, 3) and model.name == "c3d_small"
    with pytest.raises(ValueError, match="unknown architecture 'resnet'.*c3d_small"):
        build_model("resnet", 3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_classes": 1}, "num_classes must be >= 2"),
        ({"num_classes": 3, "size": 4}, "size=4 is too small.*size >= 8"),
        ({"num_classes": 3, "frames": 6, "temporal_padding": "valid"}, "frames >= 7"),
        ({"num_classes": 3, "temporal_padding": "causal"}, "temporal_padding must be one of"),
        ({"num_classes": 3, "widths": ()}, "widths must be non-empty"),
        ({"num_classes": 3, "dropout": 1.0}, r"dropout must be in \[0, 1\)"),
    ],
)
def test_c3d_small_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        c3d_small(**kwargs)


def test_c3d_rejects_too_short_clips():
    with pytest.raises(ValueError, match="too small.*at least 16 frames"):
        c3d(3, input_shape=(8, 112, 112, 3))


def test_global_average_head():
    flat = c3d_small(4, frames=8, size=32, widths=(8, 16), dense_units=16)  # the default
    gap = c3d_small(4, frames=8, size=32, widths=(8, 16), dense_units=16, head="global_average")
    assert isinstance(gap.get_layer("global_average"), keras.layers.GlobalAveragePooling3D)
    assert gap.get_layer("fc").kernel.shape == (16, 16)  # one feature per channel
    assert gap.count_params() < flat.count_params()
    assert flat.get_layer("flatten").output.shape[-1] == 4 * 8 * 8 * 16
    assert _layer_classes(gap) <= SUPPORTED
    with pytest.raises(ValueError, match="head must be one of"):
        c3d_small(4, head="attention")
