"""Relevance conservation through the full C3D layout (8 convolutions, 5 max poolings, 3
dense layers) on video-like inputs, under both of TensorFlow's CPU kernel sets.

Issue 10 measured deep_taylor relevance / logit of 1.0008-1.0013 on ``c3d_bench`` under
TensorFlow's Eigen kernels and 1.0000001 under oneDNN. The cause was max pooling: Eigen's
``MaxPool3DGrad`` (which the winner-take-all rule used to call through the tape) hands a
window's whole gradient to *every* tied maximum, so the relevance of a tied window was
counted once per tie; oneDNN gives it to one. Tied maxima are common on real video (8-bit
values, flat regions give identical convolution outputs). The pooling rule now picks exactly
one winner itself (commit c4bcb86); this test pins the end-to-end result at C3D depth, on a
real decoded clip and on a quantized flat-region clip, and checks that the inputs do tie.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import analyzers  # noqa: E402

L = keras.layers
SHAPE = (16, 16, 16, 3)
TOL = 1e-4  # the target for relevance / logit at float32


def _c3d_tiny(seed: int = 7) -> keras.Model:
    keras.utils.set_random_seed(seed)
    # He initialisation keeps activations at the input's scale through 11 ReLU layers, as in
    # a trained network (Glorot halves them per layer: the logit would be ~1e-5 and the z+
    # stabilizer, 1e-9 absolute, would absorb ~1e-4 of the relevance)
    init = "he_normal"

    def conv(n):
        return L.Conv3D(n, 3, padding="same", activation="relu", kernel_initializer=init)

    return keras.Sequential([
        keras.Input(SHAPE), conv(4), L.MaxPooling3D((1, 2, 2)),
        conv(8), L.MaxPooling3D(2), conv(8), conv(8), L.MaxPooling3D(2),
        conv(16), conv(16), L.MaxPooling3D(2), conv(16), conv(16),
        L.MaxPooling3D(2, padding="same"), L.Flatten(),
        L.Dense(32, activation="relu", kernel_initializer=init),
        L.Dense(32, activation="relu", kernel_initializer=init), L.Dense(5)],
        name="c3d_tiny")


@pytest.fixture(scope="module")
def model():
    return _c3d_tiny()


def _flat_region_clip(seed: int) -> np.ndarray:
    """8-bit levels in 8x8-pixel blocks that hold still for 2 frames (flat regions)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (8, 2, 2, 3)).astype(np.float32)
    clip = coarse.repeat(2, axis=0).repeat(8, axis=1).repeat(8, axis=2)
    return clip / 255.0


def _real_clip(folder) -> np.ndarray:
    from kvlrp.video.reader import read_video

    frames = read_video(folder / "ucf101_ApplyEyeMakeup.avi").frames[:16]
    h, w = frames.shape[1:3]
    top, left = h // 2 - 8, w // 2 - 8
    clip = frames[:, top:top + 16, left:left + 16, :]  # full resolution: 8-bit ties kept
    return clip.astype(np.float32) / 255.0


def _tied_windows(model, x) -> int:
    """Windows of the first max pooling whose positive maximum occurs more than once."""
    act = keras.Model(model.inputs[0], model.layers[0].output)(x).numpy()
    b, t, h, w, c = act.shape
    win = act.reshape(b, t, h // 2, 2, w // 2, 2, c).transpose(0, 1, 2, 4, 6, 3, 5)
    win = win.reshape(-1, 4)
    top = win.max(axis=1, keepdims=True)
    return int(((win == top).sum(axis=1)[top[:, 0] > 0] > 1).sum())


def _check(model, x, names):
    graph = analyzers.build_graph(model)
    logits = graph.forward(x).numpy()
    assert (logits.max(axis=1) > 0).all()  # deep Taylor explains relu(logit)
    for name in names:
        relevance = analyzers.create_analyzer(name, model).analyze(x)
        totals = relevance.reshape(len(x), -1).astype(np.float64).sum(axis=1)
        np.testing.assert_allclose(totals / logits.max(axis=1), 1.0, atol=TOL, err_msg=name)


def test_c3d_conserves_on_flat_region_clips(model):
    x = np.stack([_flat_region_clip(s) for s in (0, 1)])
    assert _tied_windows(model, x) > 0  # the inputs exercise tied maxima
    _check(model, x, ("deep_taylor", "lrp.z_plus"))


def test_c3d_conserves_on_a_real_clip(model, realvideos_dir):
    x = _real_clip(realvideos_dir)[None]
    assert x.shape[1:] == SHAPE
    assert _tied_windows(model, x) > 0
    _check(model, x, ("deep_taylor",))
