"""Model folders: model.keras + kvlrp.json round trip, and Keras safe mode."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from kvlrp.models import (
    INFO_FILENAME,
    MODEL_FILENAME,
    ModelInfo,
    ModelLoadError,
    UnsafeModelError,
    c3d_small,
    load_model,
    save_model,
)


def _info(**kw) -> ModelInfo:
    base = dict(
        architecture="c3d_small", classes=["drift", "still", "zoom"], clip_len=4, step=2,
        size=16, normalization="unit", short_policy="repeat_last", seed=7,
        model_kwargs={"widths": [4, 8], "dense_units": 8},
    )
    base.update(kw)
    return ModelInfo(**base)


def test_save_load_round_trip(tmp_path):
    model = c3d_small(3, frames=4, size=16, widths=(4, 8), dense_units=8, batch_norm=True)
    x = np.random.default_rng(1).uniform(-1, 1, (3, 4, 16, 16, 3)).astype("float32")
    expected = model.predict(x, verbose=0)
    info = _info()
    save_model(model, tmp_path / "m", info)
    assert (tmp_path / "m" / MODEL_FILENAME).is_file()
    stored = json.loads((tmp_path / "m" / INFO_FILENAME).read_text())
    assert stored["classes"] == ["drift", "still", "zoom"] and stored["step"] == 2
    loaded, loaded_info = load_model(tmp_path / "m")
    assert loaded_info == info
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)
    # the .keras path works as well as its folder
    again, _ = load_model(tmp_path / "m" / MODEL_FILENAME)
    assert again.count_params() == model.count_params()
    # no temporary files left behind
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [INFO_FILENAME, MODEL_FILENAME]


def test_clip_spec_from_info():
    pytest.importorskip("kvlrp.data.clips.pipeline")
    spec = _info().clip_spec()
    assert (spec.clip_len, spec.step, spec.size) == (4, 2, 16)
    assert (spec.normalization, spec.short_policy) == ("unit", "repeat_last")
    assert _info().clip_spec(step=3).step == 3


def _lambda_model() -> keras.Model:
    inputs = keras.Input((4, 8, 8, 3))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


def test_safe_mode_refuses_lambda_unless_allowed(tmp_path):
    model = _lambda_model()
    save_model(model, tmp_path, _info(classes=["a", "b"], architecture="custom"))
    with pytest.raises(UnsafeModelError, match="allow_unsafe=True.*--allow-unsafe"):
        load_model(tmp_path)
    loaded, info = load_model(tmp_path, allow_unsafe=True)
    x = np.ones((1, 4, 8, 8, 3), "float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert info.classes == ["a", "b"]


def test_missing_files_and_mismatches_are_clear(tmp_path):
    with pytest.raises(ModelLoadError, match="model.keras not found"):
        load_model(tmp_path)
    model = c3d_small(2, frames=4, size=16, widths=(4,), dense_units=4)
    with pytest.raises(ValueError, match="2 outputs but ModelInfo lists 3 classes"):
        save_model(model, tmp_path, _info())
    save_model(model, tmp_path, _info(classes=["a", "b"]))
    (tmp_path / INFO_FILENAME).unlink()
    with pytest.raises(ModelLoadError, match="kvlrp.json not found"):
        load_model(tmp_path)


def test_model_info_validation_and_forward_compatibility():
    with pytest.raises(ValueError, match="at least 2 classes"):
        ModelInfo("c3d_small", ["only"])
    with pytest.raises(ValueError, match="step must be a positive int"):
        ModelInfo("c3d_small", ["a", "b"], step=0)
    data = _info().to_dict()
    data["future_field"] = 1
    assert ModelInfo.from_dict(data).extra == {"future_field": 1}
    with pytest.raises(ValueError, match="lacks required keys"):
        ModelInfo.from_dict({"architecture": "c3d"})
