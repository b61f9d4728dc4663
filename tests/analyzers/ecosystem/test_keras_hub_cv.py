"""Video transformers of the Keras ecosystem, whole, under ``attnlrp`` and ``cp_lrp``:
keras-hub's ``VideoPrismBackbone`` (factorised space / time encoders whose attention is a
custom layer: einsum attention, a learned per-dimension query scale, a tanh logit soft-cap) and
keras-cv's ``VideoSwinBackbone`` (3D shifted windows: relative position bias, window masks;
its blocks are subclassed ``keras.Model``s). Tiny configurations are built offline with random
weights and given a Dense head; both are explained through the operations their layers run
(no rule per class): accepted whole, finite relevance, the same whatever the batch size, and
CP-LRP conserving where the backbone has no biases to absorb relevance.

Runs in ``tox -e keras-hub-cv`` (keras-hub 0.32.0, keras-cv 0.9.0 beside TensorFlow 2.21 /
Keras 3.15); skipped where they cannot be imported.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import analyzers  # noqa: E402
from analyzers.ops.traced import TracedOp  # noqa: E402

keras_hub = pytest.importorskip("keras_hub")
keras_cv = pytest.importorskip("keras_cv")
L = keras.layers


def _video_prism() -> tuple[keras.Model, tuple[int, ...]]:
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.VideoPrismBackbone(
        num_frames=2, patch_size=4, hidden_dim=16, intermediate_dim=32, num_heads=2,
        num_spatial_layers=1, num_temporal_layers=1, num_auxiliary_layers=0,
        attention_logit_soft_cap=5.0, image_shape=(8, 8, 3))
    for weight in backbone.weights:  # position tables absorb relevance, as biases do
        if "position_embedding" in weight.path:
            weight.assign(np.zeros(weight.shape, np.float32))
    inp = keras.Input((2, 8, 8, 3))
    h = L.Reshape((-1, 16))(backbone(inp))  # [batch, frames * patches, dim]
    return keras.Model(inp, L.Dense(3)(L.GlobalAveragePooling1D()(h))), (2, 8, 8, 3)


def _video_swin() -> tuple[keras.Model, tuple[int, ...]]:
    keras.utils.set_random_seed(0)
    backbone = keras_cv.models.VideoSwinBackbone(
        input_shape=(4, 8, 8, 3), embed_dim=8, patch_size=[2, 2, 2], window_size=[2, 2, 2],
        depths=[2], num_heads=[2], drop_path_rate=0.0)  # depth 2: a shifted window
    inp = keras.Input((4, 8, 8, 3))
    h = L.GlobalAveragePooling3D()(backbone(inp))
    return keras.Model(inp, L.Dense(3)(h)), (4, 8, 8, 3)


BACKBONES = {"VideoPrismBackbone": _video_prism, "VideoSwinBackbone": _video_swin}


@pytest.mark.parametrize("name", list(BACKBONES))
def test_accepted_whole_finite_and_the_same_whatever_the_batch_size(name):
    model, shape = BACKBONES[name]()
    clips = np.random.default_rng(1).normal(size=(3, *shape)).astype(np.float32)
    logits = model.predict(clips, verbose=0)[:, 0]
    for analyzer in ("attnlrp", "cp_lrp"):
        explainer = analyzers.create_analyzer(analyzer, model)
        if analyzer == "attnlrp":  # explained through the operations of its layers
            traced = [s.op for s in explainer.graph.steps if isinstance(s.op, TracedOp)]
            assert traced, f"{name}: no layer traced"
            roles = {role for op in traced for role in op.plan(analyzer).roles.values()}
            assert {"weight", "product", "softmax", "statistic", "elementwise"} <= roles, \
                (name, roles)
        whole = explainer.analyze(clips, neuron_selection=0)
        assert np.isfinite(whole).all() and np.abs(whole).max() > 0, (name, analyzer)
        np.testing.assert_allclose(explainer.analyze(clips, neuron_selection=0, batch_size=1),
                                   whole, rtol=1e-5, atol=1e-6 * np.abs(whole).max(),
                                   err_msg=f"{analyzer} on {name}, one clip at a time")
        if analyzer == "cp_lrp":  # no biases (zero-initialised), position tables zero
            totals = whole.reshape(len(clips), -1).sum(axis=1)
            np.testing.assert_allclose(totals, logits, rtol=1e-4, atol=1e-5, err_msg=name)
