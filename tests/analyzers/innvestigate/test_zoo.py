"""The cross-check zoo itself: specs, Keras 3 builder, stored files and the --check logic."""

from __future__ import annotations

import numpy as np
import pytest
from innvestigate_zoo import build_keras3, builder, generate, reference, spec
from repo_paths import REPO_ROOT

#: Hand-computed parameter count of C3D (Tran et al. 2015) with 101 classes:
#: 3x3x3 convolutions 3-64-128-256-256-512-512-512-512, fc6 8192->4096, fc7, fc8 4096->101.
C3D_PARAMETERS = (
    sum(27 * a * b + b for a, b in [(3, 64), (64, 128), (128, 256), (256, 256), (256, 512),
                                    (512, 512), (512, 512), (512, 512)])
    + (8192 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 101 + 101)
)


def test_c3d_full_has_the_published_layout():
    assert spec.n_parameters("c3d_full") == C3D_PARAMETERS
    shapes = spec.layer_shapes("c3d_full")
    assert shapes["pool5"][0] == (1, 4, 4, 512)
    assert shapes["fc8"][0] == (101,)
    assert spec.get_spec("c3d_full").input_shape == (16, 112, 112, 3)


@pytest.mark.parametrize("name", list(spec.REFERENCE_MODELS) + ["c3d_bench"])
def test_keras3_builder_matches_the_spec_shapes(name):
    model = reference.model(name) if name in spec.REFERENCE_MODELS else build_keras3.build(name)
    shapes = spec.layer_shapes(name)
    for layer in model.layers[1:]:
        out, weights = shapes[layer.name]
        assert tuple(layer.output.shape[1:]) == out, layer.name
        assert [tuple(w.shape) for w in layer.get_weights()] == [tuple(s) for s in weights]
    assert model.count_params() == spec.n_parameters(name)


@pytest.mark.parametrize("name", spec.REFERENCE_MODELS)
def test_stored_files_match_the_spec_and_keras3(name):
    """Weights and inputs are the seeded ones; Keras 3 reproduces TF 2.14's logits."""
    data = reference.load(name)
    for layer, arrays in spec.make_weights(name).items():
        for i, array in enumerate(arrays):
            np.testing.assert_array_equal(data[f"weights/{layer}/{i}"], array)
    np.testing.assert_array_equal(data["x"], spec.make_inputs(name))
    model = reference.model(name)
    if spec.get_spec(name).layers[-1].config.get("activation") == "softmax":
        import keras

        model = build_keras3.build(name, reference.weights(name))  # a copy to modify
        model.get_layer("logits").activation = keras.activations.linear
    logits = np.asarray(model(data["x"]))
    assert reference.relative_difference(logits, data["logits"]) <= 1e-5
    assert str(data["meta/innvestigate"]) == "2.1.2"


def test_twins_compute_the_same_function():
    for twin, source in [("batchnorm_folded", "batchnorm"),
                         ("time_distributed_conv3d", "time_distributed")]:
        a, b = reference.load(twin), reference.load(source)
        assert reference.relative_difference(a["logits"], b["logits"]) <= 1e-5


def test_builder_rejects_mismatched_weights():
    weights = spec.make_weights("dense_probe")
    with pytest.raises(ValueError, match="missing \\['logits'\\]"):
        build_keras3.build("dense_probe", {})
    weights["logits"] = [weights["logits"][0][:3]] + weights["logits"][1:]
    with pytest.raises(ValueError, match="layer 'logits': weight shapes"):
        build_keras3.build("dense_probe", weights)
    with pytest.raises(KeyError, match="no zoo model 'nope'"):
        spec.get_spec("nope")
    assert builder.build_model  # the shared builder is importable without TensorFlow 2.14


def test_check_reports_every_kind_of_difference():
    stored = dict(reference.load("dense_probe"))
    assert generate.compare(stored, dict(stored)) == []
    new = dict(stored)
    new["relevance/lrp.z/max"] = stored["relevance/lrp.z/max"] * (1 + 1e-3)
    new["error/lrp.z/max"] = np.array("ValueError: boom")
    del new["relevance/gradient/max"]
    new["x"] = stored["x"] + 1e-7
    problems = "\n".join(generate.compare(stored, new))
    assert "relevance/lrp.z/max: max |diff|" in problems
    assert "error/lrp.z/max: produced but not stored" in problems
    assert "relevance/gradient/max: stored but no longer produced" in problems
    assert "x: differs (must match exactly)" in problems
    tiny = dict(stored)
    tiny["relevance/lrp.z/max"] = stored["relevance/lrp.z/max"] * (1 + 1e-7)
    assert generate.compare(stored, tiny) == []


def test_bench_innvestigate_rejects_bad_arguments(tmp_path, capsys):
    """The benchmark's argument checks run without TensorFlow 2.14 (no import needed)."""
    import importlib.util

    path = REPO_ROOT / "benchmarks" / "bench_innvestigate.py"
    module_spec = importlib.util.spec_from_file_location("bench_innvestigate", path)
    bench = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(bench)
    with pytest.raises(SystemExit):
        bench.parse_args(["--model", "nope"])
    assert "is not a zoo spec" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.parse_args(["--weights", str(tmp_path / "missing.npz")])
    assert "file not found" in capsys.readouterr().err
    args = bench.parse_args(["--model", "c3d_bench", "--batch", "8", "--repeats", "5"])
    assert (args.model, args.batch, args.repeats, args.analyzers) == (
        "c3d_bench", 8, 5, ["deep_taylor", "gradient"])
