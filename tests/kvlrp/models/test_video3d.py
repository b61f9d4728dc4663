"""R3D, R(2+1)D, I3D and X3D builders: parameter counts against the reference
implementations, feature-map sizes, the small variants, saving, input checks."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from kvlrp.commands.train import MODELS
from kvlrp.models import (
    ARCHITECTURES,
    ModelInfo,
    build_model,
    i3d,
    load_model,
    r2plus1d,
    save_model,
    x3d,
)
from kvlrp.models.builders.resnet3d import midplanes
from kvlrp.models.builders.x3d import round_width

#: Parameters at 400 classes of the reference implementations (PyTorch ``parameters()``:
#: weights and BatchNorm's scale and shift, not its running statistics):
#: torchvision's r3d_18 and r2plus1d_18 (their documented ``num_params``) and X3D-XS in
#: PyTorchVideo's model zoo (3.79M, given to two decimals).
REFERENCE = {"r3d": 33_371_472, "r2plus1d": 31_505_325, "x3d": 3.79e6}

#: The deepmind/kinetics-i3d RGB network, written out independently of kvlrp.models.builders.i3d:
#: (input channels, [(kernel volume, filters), ...]) per Inception module.
I3D_MODULES = [
    (192, (64, 96, 128, 16, 32, 32)), (256, (128, 128, 192, 32, 96, 64)),
    (480, (192, 96, 208, 16, 48, 64)), (512, (160, 112, 224, 24, 64, 64)),
    (512, (128, 128, 256, 24, 64, 64)), (512, (112, 144, 288, 32, 64, 64)),
    (528, (256, 160, 320, 32, 128, 128)), (832, (256, 160, 320, 32, 128, 128)),
    (832, (384, 192, 384, 48, 128, 128)),
]


def _i3d_reference_count(num_classes: int) -> int:
    """Trainable parameters of the release: bias-free convolutions, each followed by a
    BatchNorm with an offset and no scale (Sonnet's default), a 1x1x1 classifier with bias."""

    def unit(c_in, kernel_volume, c_out):
        return c_in * kernel_volume * c_out + c_out

    total = unit(3, 343, 64) + unit(64, 1, 64) + unit(64, 27, 192)
    for c_in, (b0, b1a, b1b, b2a, b2b, b3) in I3D_MODULES:
        assert b0 + b1b + b2b + b3 in (256, 480, 512, 528, 832, 1024)
        total += unit(c_in, 1, b0) + unit(c_in, 1, b1a) + unit(b1a, 27, b1b)
        total += unit(c_in, 1, b2a) + unit(b2a, 27, b2b) + unit(c_in, 1, b3)
    return total + 1024 * num_classes + num_classes


def _trainable(model: keras.Model) -> int:
    return int(sum(math.prod(w.shape) for w in model.trainable_weights))


@pytest.mark.parametrize("name", ["r3d", "r2plus1d"])
def test_video_resnets_match_torchvision_parameter_count_exactly(name):
    model = build_model(name, 400)
    assert _trainable(model) == REFERENCE[name]
    # layer4 of torchvision: 512 channels at 1/8 of the frames and 1/16 of the pixels
    assert model.get_layer("layer4_block2_relu").output.shape[1:] == (2, 7, 7, 512)
    assert model.output_shape == (None, 400)


def test_r2plus1d_uses_torchvision_midplanes():
    assert midplanes(64, 64) == 144 and midplanes(64, 128) == 230 and midplanes(512, 512) == 1152
    model = r2plus1d(10, input_shape=(8, 32, 32, 3))
    assert model.get_layer("layer2_block1_conv1_s").filters == 230
    assert model.get_layer("layer2_block1_conv2_s").filters == 230  # one value per block
    assert model.get_layer("stem_conv_s").filters == 45


def test_i3d_matches_reference_parameter_count():
    model = i3d(400)
    reference = _i3d_reference_count(400)
    assert abs(_trainable(model) - reference) <= 0.01 * reference
    assert model.get_layer("mixed_5c_concat").output.shape[1:] == (8, 7, 7, 1024)
    assert model.get_layer("mixed_3b_concat").output.shape[-1] == 256
    assert model.get_layer("mixed_4f_concat").output.shape[-1] == 832


def test_x3d_xs_matches_model_zoo_parameter_count():
    model = x3d(400, channelwise="conv3d")  # the grouped Conv3D form (default: temporal taps)
    assert abs(_trainable(model) - REFERENCE["x3d"]) <= 0.01 * REFERENCE["x3d"]
    assert _trainable(x3d(400)) == _trainable(model)  # the taps hold the same weights
    grouped = [layer for layer in model.layers
               if isinstance(layer, keras.layers.Conv3D) and layer.groups > 1]
    # the stem's 5x1x1 and every block's 3x3x3 are channelwise: 1 + 3 + 5 + 11 + 7 blocks
    assert len(grouped) == 27 and all(layer.groups == layer.filters for layer in grouped)
    gates = [layer for layer in model.layers if isinstance(layer, keras.layers.Multiply)]
    assert len(gates) == 2 + 3 + 6 + 4  # squeeze-excitation in every other block
    assert model.get_layer("s4_b7_relu").output.shape[1:] == (4, 5, 5, 192)
    assert model.get_layer("head_proj").units == 2048


def test_x3d_round_width_rule():
    assert [round_width(12, 2.0), round_width(54, 0.0625), round_width(216, 0.0625),
            round_width(432, 0.0625)] == [24, 8, 16, 32]


@pytest.mark.parametrize("name", ["r3d_small", "r2plus1d_small", "i3d_small", "x3d_small"])
def test_small_variants_predict_save_and_reload(name, tmp_path):
    keras.utils.set_random_seed(0)
    model = build_model(name, 4, frames=8, size=32)
    assert model.input_shape == (None, 8, 32, 32, 3)
    assert model.count_params() < 400_000
    x = np.random.default_rng(0).uniform(-1, 1, (2, 8, 32, 32, 3)).astype("float32")
    probs = model.predict(x, verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    info = ModelInfo(architecture=name, classes=["a", "b", "c", "d"], clip_len=8, size=32,
                     model_kwargs={"frames": 8, "size": 32})
    save_model(model, tmp_path / name, info)
    loaded, loaded_info = load_model(tmp_path / name)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), probs, rtol=1e-5, atol=1e-6)
    assert loaded_info.architecture == name
    rebuilt = build_model(name, 4, **loaded_info.model_kwargs)
    assert rebuilt.count_params() == model.count_params()


@pytest.mark.parametrize("name", ["r3d", "r2plus1d", "i3d", "x3d"])
def test_full_size_builders_run_on_short_small_clips(name):
    model = build_model(name, 3, input_shape=(4, 32, 32, 3))
    x = np.random.default_rng(1).uniform(-1, 1, (1, 4, 32, 32, 3)).astype("float32")
    assert model.predict(x, verbose=0).shape == (1, 3)


def test_bias_free_variants_have_no_additive_terms():
    for name in ("r3d_small", "r2plus1d_small", "i3d_small", "x3d_small"):
        model = build_model(name, 3, frames=4, size=16, bias=False)
        for layer in model.layers:
            assert not getattr(layer, "use_bias", False), (name, layer.name)
            assert not getattr(layer, "center", False), (name, layer.name)


def test_registry_and_cli_list_the_same_architectures():
    assert sorted(MODELS) == sorted(ARCHITECTURES)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: build_model("r3d_small", 1), "num_classes must be an int >= 2"),
    (lambda: build_model("r3d_small", 3, widths=(8, 16)), "widths must be 4 positive ints"),
    (lambda: build_model("r2plus1d", 3, input_shape=(16, 112, 112)), "input_shape must be"),
    (lambda: build_model("i3d_small", 3, width=0), "width must be in (0, 1]"),
    (lambda: build_model("x3d_small", 3, depth_factor=-1), "depth_factor must be > 0"),
    (lambda: build_model("i3d", 3, dropout=1.0), "dropout must be in [0, 1)"),
])
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[")):
        call()
