"""Your own model: normalisations and their z^B bounds, wrap_model's checks, and a hand-built
Keras model (not from kvlrp.models) through ``kvlrp explain --model my.keras`` and
``kvlrp strides``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from own_models import own_model

from kvlrp.cli import main
from kvlrp.data.clips.normalization import NORMALIZATION_BOUNDS, NORMALIZATIONS, get_normalization

CLASSES = ["drift_down", "drift_sideways", "drift_up", "still"]


def test_normalization_bounds_are_the_images_of_pixels_0_and_255():
    imagenet = get_normalization("imagenet")
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(imagenet.low, -mean / std, rtol=1e-12)
    np.testing.assert_allclose(imagenet.high, (1 - mean) / std, rtol=1e-12)
    assert NORMALIZATION_BOUNDS["symmetric"] == (-1.0, 1.0)
    assert NORMALIZATION_BOUNDS["unit"] == (0.0, 1.0)
    assert NORMALIZATION_BOUNDS["raw"] == (0.0, 255.0)
    assert NORMALIZATION_BOUNDS["kinetics"] == pytest.approx((-2.0, (1 - 0.45) / 0.225))
    low, high = NORMALIZATION_BOUNDS["c3d"]
    assert low == (-102.0, -98.0, -90.0) and high == (153.0, 157.0, 165.0)
    for norm in NORMALIZATIONS.values():
        px = np.array([[0.0, 0.0, 0.0], [255.0, 255.0, 255.0], [12.0, 200.0, 77.0]])
        y = norm.apply(px)
        np.testing.assert_allclose(y[0], norm.low, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(y[1], norm.high, rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(norm.invert(y), px, atol=1e-3)
    with pytest.raises(ValueError, match="unknown normalization 'sym'.*imagenet"):
        get_normalization("sym")


@pytest.mark.parametrize("name", list(NORMALIZATIONS))
def test_pipeline_normalize_matches_the_table(name):
    from kvlrp.data.clips.clip_ops import normalize

    px = np.random.default_rng(0).integers(0, 256, size=(2, 4, 4, 3)).astype(np.uint8)
    got = normalize(px, name).numpy()
    np.testing.assert_allclose(got, NORMALIZATIONS[name].apply(px), rtol=1e-6, atol=1e-4)


@pytest.fixture(scope="module")
def my_keras(tmp_path_factory):
    path = tmp_path_factory.mktemp("own") / "my_model.keras"
    own_model().save(path)
    return path


def test_wrap_model_reads_geometry_and_checks_it():
    from kvlrp.models.wrap import ModelMismatchError, wrap_model

    model = own_model()
    _, info = wrap_model(model, CLASSES, "imagenet", step=2)
    assert (info.clip_len, info.size, info.step, info.normalization) == (6, 16, 2, "imagenet")
    assert info.architecture == "custom" and info.classes == CLASSES
    with pytest.raises(ModelMismatchError, match="4 outputs but 3 classes"):
        wrap_model(model, CLASSES[:3], "unit")
    with pytest.raises(ModelMismatchError, match="--clip-len 8 disagrees.*frames is 6"):
        wrap_model(model, CLASSES, "unit", clip_len=8)
    with pytest.raises(ModelMismatchError, match="--size 32 disagrees.*height/width is 16"):
        wrap_model(model, CLASSES, "unit", size=32)
    open_model = own_model(frames=None, size=16)
    with pytest.raises(ModelMismatchError, match="frames open.*--clip-len"):
        wrap_model(open_model, CLASSES, "unit")
    assert wrap_model(open_model, CLASSES, "unit", clip_len=5)[1].clip_len == 5


def test_classes_file_formats(tmp_path):
    from kvlrp.models.wrap import read_classes_file

    (tmp_path / "a.txt").write_text("b\n\na\n")
    (tmp_path / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 Apply Lipstick\n")
    (tmp_path / "c.json").write_text(json.dumps(["x", "y"]))
    assert read_classes_file(tmp_path / "a.txt") == ["b", "a"]
    assert read_classes_file(tmp_path / "classInd.txt") == ["ApplyEyeMakeup", "Apply Lipstick"]
    assert read_classes_file(tmp_path / "c.json") == ["x", "y"]


def test_own_model_through_explain_and_strides(my_keras, synthetic_shards, tmp_path, capsys):
    common = ["--model", str(my_keras), "--data", str(synthetic_shards), "--no-progress",
              "--normalization", "imagenet", "--clips-per-video", "1"]
    code = main(["explain", *common, "--out", str(tmp_path / "x"), "--prior-seeds", "1",
                 "--heatmaps", "1", "--flip-videos", "2"])
    assert code == 0, capsys.readouterr().err
    frame = pd.read_csv(tmp_path / "x" / "frame_relevance.csv")
    n_test = (pd.read_csv(synthetic_shards / "index.csv")["split"] == "test").sum()
    assert len(frame) == n_test * 6 and set(frame["position"]) == set(range(6))
    assert np.isfinite(frame["relevance"]).all() and (frame["relevance"].abs() > 0).any()
    summary = json.loads((tmp_path / "x" / "summary.json").read_text())
    assert summary["clip_len"] == 6 and summary["train_step"] == 1
    code = main(["strides", *common, "--out", str(tmp_path / "s"), "--steps", "1", "2",
                 "--classes", ",".join(CLASSES), "--train-step", "2"])
    assert code == 0, capsys.readouterr().err
    table = pd.read_csv(tmp_path / "s" / "stride_accuracy.csv")
    assert sorted(table.loc[table["control"] == "none", "step"]) == [1, 2]
    assert json.loads((tmp_path / "s" / "summary.json").read_text())["train_step"] == 2


def test_deep_taylor_gets_the_per_channel_bounds(my_keras, synthetic_shards):
    """The z^B rule receives imagenet's bounds per channel: with them, relevance differs from
    what scalar bounds [-1, 1] would give (so the bounds are really used)."""
    import analyzers
    from kvlrp.analysis.explain.frames import analyzer_factory
    from kvlrp.data.clips.pipeline import eval_dataset
    from kvlrp.models.wrap import load_any_model

    model, info = load_any_model(my_keras, normalization="imagenet", shard_dir=synthetic_shards)
    batch = next(iter(eval_dataset(synthetic_shards, info.clip_spec(), "test", 1, 2)))
    x = batch["clip"].numpy()
    low, high = NORMALIZATION_BOUNDS["imagenet"]
    assert (x.min(axis=(0, 1, 2, 3)) >= np.array(low) - 1e-5).all()
    assert (x.max(axis=(0, 1, 2, 3)) <= np.array(high) + 1e-5).all()
    ours = analyzer_factory("deep_taylor.bounded", NORMALIZATION_BOUNDS["imagenet"])(model)
    ref = analyzers.create_analyzer("deep_taylor.bounded", model, low=np.array(low),
                                    high=np.array(high))
    scalar = analyzers.create_analyzer("deep_taylor.bounded", model, low=-1.0, high=1.0)
    r = ours.analyze(x, neuron_selection=0)
    assert np.abs(r).sum() > 0
    np.testing.assert_allclose(r, ref.analyze(x, neuron_selection=0), rtol=1e-5, atol=1e-7)
    assert not np.allclose(r, scalar.analyze(x, neuron_selection=0), rtol=1e-3, atol=1e-6)


def test_own_model_errors_name_both_sides(my_keras, synthetic_shards, tmp_path, capsys):
    common = ["--data", str(synthetic_shards), "--out", str(tmp_path), "--no-progress"]
    assert main(["strides", "--model", str(my_keras), *common]) == 2
    assert "--normalization" in capsys.readouterr().err
    assert main(["strides", "--model", str(my_keras), *common, "--normalization", "unit",
                 "--classes", "a", "b", "c"]) == 2
    err = capsys.readouterr().err
    assert "4 outputs but 3 classes" in err and "a, b, c" in err
    assert main(["strides", "--model", str(my_keras), *common, "--normalization", "unit",
                 "--clip-len", "8"]) == 2
    assert "--clip-len 8 disagrees" in capsys.readouterr().err
    assert main(["strides", "--model", str(my_keras), *common, "--normalization", "unit",
                 "--classes", "drift_down", "drift_sideways", "drift_up", "jump"]) == 2
    assert "lack still" in capsys.readouterr().err
    h5 = tmp_path / "old.h5"
    h5.write_bytes(b"\x89HDF")
    assert main(["strides", "--model", str(h5), *common, "--normalization", "unit"]) == 2
    assert "not a .keras file" in capsys.readouterr().err


def test_order_mismatch_is_named_by_check_against_shards(synthetic_shards):
    from kvlrp.models import ModelInfo
    from kvlrp.models.wrap import ModelMismatchError, check_against_shards

    info = ModelInfo("custom", [CLASSES[1], CLASSES[0], *CLASSES[2:]])
    with pytest.raises(ModelMismatchError, match="another order.*'drift_sideways'.*"
                                                 "'drift_down'"):
        check_against_shards(info, synthetic_shards)


def test_model_with_more_classes_scores_the_shards_classes(synthetic_shards, tmp_path,
                                                           capsys):
    """A 5-class model whose classes include the shards' 4 (shuffled, plus one more): outputs
    are selected and reordered; probabilities renormalise; deep Taylor explains the same
    logit as on the original model."""
    import analyzers
    from kvlrp.models.wrap import match_shard_classes, wrap_model

    model_classes = ["still", "jump", "drift_up", "drift_down", "drift_sideways"]
    model = own_model(n_classes=5, seed=3)
    _, info = wrap_model(model, model_classes, "unit")
    wrapped, new_info, note = match_shard_classes(model, info, synthetic_shards)
    assert new_info.classes == CLASSES and "4 of the model's 5" in note
    x = np.random.default_rng(1).uniform(0, 1, (3, 6, 16, 16, 3)).astype(np.float32)
    idx = [model_classes.index(c) for c in CLASSES]
    p = np.asarray(model(x))[:, idx]
    np.testing.assert_allclose(np.asarray(wrapped(x)), p / p.sum(1, keepdims=True),
                               rtol=1e-5, atol=1e-6)
    for j in range(4):
        a = analyzers.create_analyzer("deep_taylor.bounded", wrapped, low=0.0, high=1.0)
        b = analyzers.create_analyzer("deep_taylor.bounded", model, low=0.0, high=1.0)
        np.testing.assert_allclose(a.analyze(x, neuron_selection=j),
                                   b.analyze(x, neuron_selection=idx[j]), rtol=1e-4,
                                   atol=1e-6)
    model.save(tmp_path / "big.keras")
    assert main(["strides", "--model", str(tmp_path / "big.keras"), "--data",
                 str(synthetic_shards), "--out", str(tmp_path / "s"), "--normalization", "unit",
                 "--classes", *model_classes, "--steps", "1", "--clips-per-video", "1",
                 "--no-progress", "--no-control"]) == 0
    assert "scoring 4 of the model's 5 outputs" in capsys.readouterr().out
