"""ViViT (factorised encoder), TimeSformer (divided space-time attention) and the CNN + GRU
baseline: parameter counts against the publications, token shapes and the factorisation
(which tokens attend to which), standard Keras layers only, saving, training through the
tf.data pipeline with a resume, and a gradient explanation."""

from __future__ import annotations

import json
import zipfile

import keras
import numpy as np
import pandas as pd
import pytest
from conservation import assert_conserved

import analyzers
from kvlrp.models import (
    ModelInfo,
    build_model,
    cnn_gru_small,
    load_model,
    save_model,
    timesformer,
    timesformer_small,
    vivit,
    vivit_small,
)

SMALL = ["vivit_small", "timesformer_small", "cnn_gru_small"]
#: Narrow variants for 4x16x16 clips (a few thousand parameters).
TINY = {
    "vivit_small": {"dim": 16, "heads": 2, "mlp_dim": 32, "spatial_depth": 1,
                    "temporal_depth": 1},
    "timesformer_small": {"dim": 16, "heads": 2, "mlp_dim": 32, "depth": 1},
    "cnn_gru_small": {"widths": (4, 8), "units": 8},
}

#: Published parameter counts at 400 classes: ViViT-B/16x2 factorised encoder (Arnab et al.
#: 2021, Table 4: 115.1M; its average-pooling baseline, the spatial transformer alone: 86.7M)
#: and TimeSformer (Bertasius et al. 2021, Table 1, divided space-time attention: 121.4M).
PUBLISHED = {"vivit": 115.1e6, "vivit_spatial_only": 86.7e6, "timesformer": 121.4e6}


def _block(dim: int, mlp: int) -> int:
    """Parameters of one pre-norm ViT block: two LayerNorms, q/k/v/output projections with
    biases, a two-layer MLP."""
    return 4 * dim + 4 * dim * dim + 4 * dim + dim * mlp + mlp + mlp * dim + dim


def _vivit_reference(classes: int, frames=32, size=224, tubelet=(2, 16, 16), dim=768,
                     mlp=3072, spatial=12, temporal=4) -> tuple[int, int]:
    """(all, spatial part + head) of Scenic's ``SpaceTimeViViT``, written out: tubelet
    embedding, per transformer a class token, a position table over class token + tokens,
    the blocks and the final LayerNorm; the classifier on the temporal class token."""
    t, p = frames // tubelet[0], (size // tubelet[1]) * (size // tubelet[2])
    embed = tubelet[0] * tubelet[1] * tubelet[2] * 3 * dim + dim
    head = dim * classes + classes
    spatial_part = dim + (1 + p) * dim + spatial * _block(dim, mlp) + 2 * dim
    temporal_part = dim + (1 + t) * dim + temporal * _block(dim, mlp) + 2 * dim
    return embed + spatial_part + temporal_part + head, embed + spatial_part + head


def _timesformer_reference(classes: int, frames=8, size=224, patch=16, dim=768, mlp=3072,
                           depth=12) -> int:
    """The official ``VisionTransformer(attention_type="divided_space_time")``, written out:
    patch embedding, class token, position table (class token + patches), time table; per
    block a ViT block plus the temporal LayerNorm, attention and ``temporal_fc``."""
    patches = (size // patch) ** 2
    temporal = 2 * dim + 4 * dim * dim + 4 * dim + dim * dim + dim
    return (patch * patch * 3 * dim + dim + dim + (1 + patches) * dim + frames * dim
            + depth * (_block(dim, mlp) + temporal) + 2 * dim + dim * classes + classes)


def test_vivit_b_factorised_encoder_matches_the_published_count():
    model = vivit(400)  # ViViT-B/16x2 FE: 32 frames of 224x224
    total, spatial_only = _vivit_reference(400)
    assert model.count_params() == total == 115_062_928
    assert abs(total - PUBLISHED["vivit"]) <= 0.001 * PUBLISHED["vivit"]  # 0.03 % off
    spatial = sum(layer.count_params() for layer in model.layers
                  if not layer.name.startswith("temporal"))
    assert spatial == spatial_only
    assert abs(spatial - PUBLISHED["vivit_spatial_only"]) <= 0.001 * 86.7e6
    assert model.get_layer("tokens").output.shape[1:] == (16, 196, 768)
    assert model.get_layer("frame_tokens").output.shape[1:] == (16, 768)


def test_timesformer_base_matches_the_official_count():
    model = timesformer(400)  # 8 frames of 224x224, 16x16 patches
    assert model.count_params() == _timesformer_reference(400) == 121_566_352
    # the paper's Table 1 rounds to 121.4M: 0.14 % below the official implementation's count
    assert abs(model.count_params() - PUBLISHED["timesformer"]) <= 0.002 * 121.4e6
    assert model.get_layer("block11_join").output.shape[1:] == (8, 197, 768)


@pytest.mark.parametrize("name", SMALL)
@pytest.mark.parametrize("shape", [(8, 32), (8, 56), (16, 64)])
def test_small_variants_are_small(name, shape):
    frames, size = shape
    model = build_model(name, 4, frames=frames, size=size)
    assert model.input_shape == (None, frames, size, size, 3)
    assert model.output_shape == (None, 4)
    assert model.count_params() < 300_000


def test_documented_small_counts():
    assert vivit_small(4).count_params() == 162_692
    assert timesformer_small(4).count_params() == 179_716
    assert cnn_gru_small(4).count_params() == 187_304
    assert cnn_gru_small(4, frame_features="average").count_params() == 48_804


@pytest.mark.parametrize("name", SMALL)
def test_small_builders_use_standard_keras_only_and_reload(name, tmp_path):
    keras.utils.set_random_seed(0)
    model = build_model(name, 4, frames=8, size=32)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 8, 32, 32, 3)).astype("float32")
    probs = model.predict(x, verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    modules = {type(layer).__module__ for layer in model._flatten_layers(include_self=False)}
    assert all(m.startswith("keras.") for m in modules), modules
    info = ModelInfo(architecture=name, classes=list("abcd"), clip_len=8, size=32,
                     model_kwargs={"frames": 8, "size": 32})
    folder = save_model(model, tmp_path / name, info)
    with zipfile.ZipFile(folder / "model.keras") as archive:
        config = archive.read("config.json").decode()
    assert "kvlrp" not in config and '"Lambda"' not in config
    assert all(m == "keras" or m.startswith("keras.") for m in _modules(json.loads(config)))
    plain = keras.saving.load_model(folder / "model.keras", safe_mode=True)  # Keras only
    loaded, loaded_info = load_model(folder)
    np.testing.assert_allclose(plain.predict(x, verbose=0), probs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), probs, rtol=1e-5, atol=1e-6)
    assert loaded_info.architecture == name


def _modules(config) -> set[str]:
    """Every ``module`` a saved config names (a custom object names its own package)."""
    if isinstance(config, dict):
        found = {config["module"]} if isinstance(config.get("module"), str) else set()
        return found.union(*(_modules(value) for value in config.values()))
    if isinstance(config, list):
        return set().union(*(_modules(value) for value in config))
    return set()


def test_vivit_encodes_each_temporal_index_on_its_own():
    """The spatial transformer attends within a temporal index: changing the frames of
    tubelet index 1 leaves the spatial class token of index 0 unchanged."""
    keras.utils.set_random_seed(0)
    model = vivit_small(3, frames=4, size=16, **TINY["vivit_small"])
    assert model.get_layer("spatial0_attention")._attention_axes == (2,)
    frame_tokens = keras.Model(model.input, model.get_layer("frame_tokens").output)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 4, 16, 16, 3)).astype("float32")
    y = x.copy()
    y[:, 2:] += 0.5
    a, b = frame_tokens(x).numpy(), frame_tokens(y).numpy()
    assert a.shape == (1, 2, 16)
    np.testing.assert_allclose(a[:, 0], b[:, 0], atol=1e-6)
    assert np.abs(a[:, 1] - b[:, 1]).max() > 1e-3


def test_timesformer_divided_attention_and_tied_class_token():
    """Temporal attention mixes only the patches at one spatial position; the class token
    stays one token (its copies per frame equal) through the blocks."""
    keras.utils.set_random_seed(0)
    model = timesformer_small(3, frames=4, size=16, dim=16, heads=2, mlp_dim=32, depth=2)
    assert model.get_layer("block0_time_attention")._attention_axes == (1,)
    assert model.get_layer("block0_space_attention")._attention_axes == (2,)
    for layer in model.layers:  # non-zero offsets everywhere, so nothing is trivially equal
        if isinstance(layer, (keras.layers.Dense, keras.layers.LayerNormalization)):
            for weight in layer.weights:
                if weight.name in ("bias", "beta"):
                    weight.assign(np.random.default_rng(1).normal(0, 0.5, weight.shape))
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (1, 4, 16, 16, 3)).astype("float32")
    after_time = keras.Model(model.input, model.get_layer("block0_time_add").output)
    y = x.copy()
    y[:, 1, :8, :8] += 0.5  # patch 0 of frame 1
    a, b = after_time(x).numpy(), after_time(y).numpy()  # [1, frames, patches, dim]
    changed = np.abs(a - b).max(axis=(0, 3)) > 1e-6
    assert changed[:, 0].all() and not changed[:, 1:].any()
    tokens = keras.Model(model.input, model.get_layer("block1_mlp_add").output)(x).numpy()
    np.testing.assert_allclose(tokens[:, 1:, 0], np.repeat(tokens[:, :1, 0], 3, axis=1),
                               atol=1e-5)
    assert np.abs(tokens[:, 0, 1] - tokens[:, 1, 1]).max() > 1e-3


def test_cnn_gru_runs_one_nested_frame_cnn_per_frame():
    model = cnn_gru_small(3, frames=4, size=16, widths=(4, 8), units=8)
    per_frame = model.get_layer("per_frame")
    assert isinstance(per_frame, keras.layers.TimeDistributed)
    assert isinstance(per_frame.layer, keras.Sequential)
    assert per_frame.output.shape[1:] == (4, 8 * 8 * 4)  # a 1x1 conv to 4 channels, flattened
    assert isinstance(model.get_layer("gru"), keras.layers.GRU)


@pytest.mark.parametrize("name", SMALL)
def test_bias_free_variants_have_no_additive_terms(name):
    model = build_model(name, 3, frames=4, size=16, bias=False, **TINY[name])
    for layer in model._flatten_layers(include_self=False):
        assert not getattr(layer, "use_bias", False), (name, layer.name)
        assert not getattr(layer, "center", False), (name, layer.name)
        if isinstance(layer, keras.layers.Embedding):
            assert not np.any(layer.embeddings.numpy()), layer.name


@pytest.mark.parametrize("name", SMALL)
def test_gradient_analyzers_explain_them(name):
    model = build_model(name, 3, frames=4, size=16, **TINY[name])
    x = np.random.default_rng(0).uniform(-1, 1, (2, 4, 16, 16, 3)).astype("float32")
    for method in ("gradient", "input_t_gradient"):
        relevance = analyzers.create_analyzer(method, model).analyze(x)
        assert relevance.shape == x.shape and np.isfinite(relevance).all()
        assert np.abs(relevance).sum() > 0


#: The natural relevance analyzer of each: CP-LRP for attention, the LRP rules for the GRU.
NATURAL = {"vivit_small": "cp_lrp", "timesformer_small": "cp_lrp", "cnn_gru_small": "lrp.z"}


@pytest.mark.parametrize("name", SMALL)
def test_their_relevance_analyzers_conserve_on_the_bias_free_variants(name):
    """Attention (CP-LRP) and the GRU (gates held constant) pass every logit's relevance to
    the clip when nothing absorbs it (no biases), for each sample on its own."""
    model = build_model(name, 3, frames=4, size=16, bias=False, **TINY[name])
    x = np.random.default_rng(1).uniform(-1, 1, (3, 4, 16, 16, 3)).astype("float32")
    analyzer = analyzers.create_analyzer(NATURAL[name], model)
    relevance = analyzer.analyze(x, neuron_selection=0)
    dense = model.get_layer("predictions")  # the logit: its input times its kernel (no bias)
    target = keras.Model(model.inputs, dense.input)(x).numpy() @ dense.kernel.numpy()[:, 0]
    assert_conserved(relevance, target, rtol=1e-4)
    alone = analyzer.analyze(x[1:2], neuron_selection=0)
    np.testing.assert_allclose(alone[0], relevance[1], rtol=1e-4,
                               atol=1e-5 * float(np.abs(relevance[1]).max()))


@pytest.mark.parametrize("name", SMALL)
def test_their_relevance_at_intermediate_layers_conserves(name):
    """``analyze_layers`` under the natural analyzer (``kvlrp explain --layer-profiles``):
    the attention analyzers' canonizer keeps the graph's layer names, and the layer before
    the classifier (a cut of the network) holds the input's total on the bias-free
    variants."""
    model = build_model(name, 3, frames=4, size=16, bias=False, **TINY[name])
    analyzer = analyzers.create_analyzer(NATURAL[name], model)
    names = analyzer.layer_names()
    assert len(names) > 3 and names[0] == model.inputs[0].name
    x = np.random.default_rng(2).uniform(-1, 1, (2, 4, 16, 16, 3)).astype("float32")
    relevance = analyzer.analyze_layers(x, [names[0], names[-2]], neuron_selection=0)
    total = relevance[names[0]].reshape(2, -1).sum(axis=1)
    assert_conserved(relevance[names[-2]], total, rtol=1e-4)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: vivit_small(3, dim=30, heads=4), "dim=30 must be a multiple of heads=4"),
    (lambda: vivit_small(3, size=4), "too small"),
    (lambda: vivit_small(3, tubelet=(2, 8)), "tubelet must be 3 positive ints"),
    (lambda: timesformer_small(3, depth=0), "depth must be a positive int"),
    (lambda: cnn_gru_small(3, units=0), "units must be a positive int"),
    (lambda: cnn_gru_small(3, size=2), "too small"),
])
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("name", SMALL)
def test_small_builder_trains_through_the_pipeline(name, synthetic_shards, tmp_path):
    from kvlrp.training import train

    settings = {"model": name, "clip_len": 4, "size": 16, "batch_size": 4, "seed": 0,
                "learning_rate": 1e-2, "progress": False, "restore_best": False, **TINY[name]}
    first = train(synthetic_shards, tmp_path / "m", epochs=1, steps_per_epoch=2, **settings)
    before = [w.copy() for w in first.model.get_weights()]
    result = train(synthetic_shards, tmp_path / "m", epochs=3, steps_per_epoch=3, **settings)
    assert list(result.history["epoch"]) == [1, 2, 3]  # resumed after epoch 1
    scores = ["loss", "accuracy", "val_loss", "val_video_accuracy"]
    assert np.isfinite(result.history[scores].to_numpy()).all()
    moved = [not np.allclose(a, b) for a, b in zip(before, result.model.get_weights())]
    assert sum(moved) >= len(moved) // 2, f"{sum(moved)} of {len(moved)} weights changed"
    loaded, info = load_model(tmp_path / "m")
    assert info.architecture == name
    rebuilt = build_model(name, 4, **info.model_kwargs)  # kvlrp.json holds the arguments
    assert rebuilt.count_params() == loaded.count_params()
    # the workflow: kvlrp explain with the model's relevance analyzer, prior and heatmaps
    from kvlrp.cli import main

    out = tmp_path / "explain"
    code = main(["explain", "--model", str(tmp_path / "m"), "--data", str(synthetic_shards),
                 "--out", str(out), "--analyzer", NATURAL[name], "--steps", "1", "2",
                 "--clips-per-video", "1", "--prior-seeds", "1", "--heatmaps", "1",
                 "--flip-videos", "1", "--no-progress"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["analyzer"] == NATURAL[name]
    frames = pd.read_csv(out / "frame_relevance.csv")
    assert sorted(frames["position"].unique()) == [0, 1, 2, 3]  # one row per input frame
    assert np.isfinite(frames["relevance"]).all() and (frames["relevance"].abs() > 0).any()
    assert list((out / "heatmaps").glob("*.png"))


def test_cnn_gru_grid_features_keep_the_layout_and_conserve():
    """``frame_features="grid"``: a 1x1 convolution flattened (cells x channels per frame),
    so moving the content of a frame changes its feature where global averaging does not;
    the LRP rules still pass every logit's relevance to the clip without biases."""
    model = cnn_gru_small(3, frames=4, size=16, widths=(4, 8), units=8, bias=False,
                          frame_features="grid", grid_channels=2)
    assert model.get_layer("per_frame").output.shape[1:] == (4, 8 * 8 * 2)
    x = np.random.default_rng(2).uniform(-1, 1, (2, 4, 16, 16, 3)).astype("float32")
    relevance = analyzers.create_analyzer("lrp.z", model).analyze(x, neuron_selection=0)
    dense = model.get_layer("predictions")
    target = keras.Model(model.inputs, dense.input)(x).numpy() @ dense.kernel.numpy()[:, 0]
    assert_conserved(relevance, target, rtol=1e-4)
    with pytest.raises(ValueError, match="frame_features must be 'average' or 'grid'"):
        cnn_gru_small(3, frame_features="max")
