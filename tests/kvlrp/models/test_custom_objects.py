"""Models kvlrp did not build (issue 22): ``--custom-objects FILE_OR_MODULE`` loads custom
layers and subclassed models, a subclassed model is explained through its layers, a Lambda
model loaded with ``--allow-unsafe`` is refused by the relevance analyzers in one line naming
the ones that work, and a note about a model is printed once per run."""

from __future__ import annotations

import json
import textwrap

import keras
import numpy as np
import pandas as pd
import pytest

from kvlrp.cli import main
from kvlrp.models import ModelLoadError, load_any_model
from kvlrp.models.custom_objects import load_custom_objects

CLASSES = ["drift_down", "drift_sideways", "drift_up", "still"]
FRAMES, SIZE = 4, 16

#: A user's file defining a subclassed video model and a custom layer, without registering
#: them (the loader hands every Keras class it defines to Keras by name).
SOURCE = textwrap.dedent('''
    import keras

    L = keras.layers


    class Double(L.Layer):
        def call(self, x):
            return 2.0 * x


    class TinyVideoNet(keras.Model):
        def __init__(self, n_classes=4, **kwargs):
            super().__init__(**kwargs)
            self.n_classes = n_classes
            self.conv = L.Conv3D(3, 3, padding="same")
            self.relu = L.ReLU()
            self.pool = L.MaxPooling3D((1, 2, 2))
            self.gap = L.GlobalAveragePooling3D()
            self.head = L.Dense(n_classes, bias_initializer="ones")

        def call(self, x, training=None):
            return self.head(self.gap(self.pool(self.relu(self.conv(x)))))

        def get_config(self):
            return {**super().get_config(), "n_classes": self.n_classes}
''')


@pytest.fixture(scope="module")
def user_files(tmp_path_factory):
    """``(folder, models.py, subclassed.keras, custom_layer.keras)``."""
    folder = tmp_path_factory.mktemp("user")
    source = folder / "my_models.py"
    source.write_text(SOURCE)
    objects = load_custom_objects(str(source))
    keras.utils.set_random_seed(0)
    net = objects["TinyVideoNet"]()
    net(np.zeros((1, FRAMES, SIZE, SIZE, 3), np.float32))
    net.save(folder / "subclassed.keras")
    inp = keras.Input((FRAMES, SIZE, SIZE, 3))
    h = objects["Double"]()(inp)
    h = keras.layers.Conv3D(2, 3, activation="relu")(h)
    out = keras.layers.Dense(4)(keras.layers.GlobalAveragePooling3D()(h))
    keras.Model(inp, out).save(folder / "custom_layer.keras")
    return folder, source, folder / "subclassed.keras", folder / "custom_layer.keras"


def test_custom_objects_from_a_file_a_module_or_a_dict(user_files, tmp_path, monkeypatch):
    folder, source, *_ = user_files
    by_file = load_custom_objects(str(source))
    assert {"TinyVideoNet", "Double"} <= set(by_file)
    monkeypatch.syspath_prepend(str(folder))
    by_module = load_custom_objects("my_models")
    assert {"TinyVideoNet", "Double"} <= set(by_module)
    (tmp_path / "explicit.py").write_text(
        "import keras\nCUSTOM_OBJECTS = {'x': keras.layers.Dense}\n")
    assert load_custom_objects(str(tmp_path / "explicit.py")) == {"x": keras.layers.Dense}
    assert load_custom_objects(None) == {}


def test_custom_objects_errors_are_one_line(tmp_path):
    with pytest.raises(ValueError, match="custom objects file .*nope.py not found"):
        load_custom_objects(str(tmp_path / "nope.py"))
    (tmp_path / "broken.py").write_text("import keras\nraise RuntimeError('bad\\nthing')\n")
    with pytest.raises(ValueError, match="could not import custom objects from .*broken.py: "
                                         "RuntimeError: bad thing"):
        load_custom_objects(str(tmp_path / "broken.py"))
    with pytest.raises(ValueError, match="ModuleNotFoundError"):
        load_custom_objects("no_such_module_for_kvlrp")


def test_subclassed_model_loads_as_its_functional_twin(user_files, synthetic_shards):
    folder, source, subclassed, _ = user_files
    with pytest.raises(ModelLoadError, match="Could not locate class 'TinyVideoNet'.*"
                                             "--custom-objects FILE_OR_MODULE"):
        load_any_model(subclassed, normalization="unit", shard_dir=synthetic_shards)
    model, info = load_any_model(subclassed, normalization="unit", shard_dir=synthetic_shards,
                                 custom_objects=load_custom_objects(str(source)))
    assert isinstance(model, keras.Model) and (info.clip_len, info.size) == (FRAMES, SIZE)
    assert [type(layer).__name__ for layer in model.layers][1:3] == ["Conv3D", "ReLU"]


def test_subclassed_and_custom_layer_models_through_explain(user_files, synthetic_shards,
                                                            tmp_path, capsys):
    folder, source, subclassed, custom_layer = user_files
    common = ["--data", str(synthetic_shards), "--no-progress", "--normalization", "unit",
              "--clips-per-video", "1", "--prior-seeds", "1", "--heatmaps", "0",
              "--flip-videos", "1", "--custom-objects", str(source)]
    code = main(["explain", "--model", str(subclassed), *common, "--out", str(tmp_path / "a")])
    assert code == 0, capsys.readouterr().err
    frame = pd.read_csv(tmp_path / "a" / "frame_relevance.csv")
    assert np.isfinite(frame["relevance"]).all() and (frame["relevance"].abs() > 0).any()
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["analyzer"] == \
        "deep_taylor.bounded"
    # a custom layer no rule knows: refused in one line naming what works; gradient works
    code = main(["explain", "--model", str(custom_layer), *common, "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err
    assert code == 2 and "(Double) has no relevance rule" in err
    line = [x for x in err.splitlines() if "Double" in x][0]
    assert len(line) < 320 and "Works on this model: attnlrp, cp_lrp, gradient" in line
    code = main(["explain", "--model", str(custom_layer), *common, "--out", str(tmp_path / "c"),
                 "--analyzer", "gradient"])
    err = capsys.readouterr().err
    assert code == 0, err
    notes = [x for x in err.splitlines() if "(Double) has no relevance rule" in x]
    assert len(notes) <= 1, notes  # once per run (none if noted already in this process)


def test_lambda_model_with_allow_unsafe(synthetic_shards, tmp_path, capsys):
    keras.utils.set_random_seed(0)
    inp = keras.Input((FRAMES, SIZE, SIZE, 3))
    h = keras.layers.Lambda(lambda t: t * 2.0, name="times_two")(inp)
    h = keras.layers.Conv3D(2, 3, activation="relu")(h)
    out = keras.layers.Dense(4)(keras.layers.GlobalAveragePooling3D()(h))
    keras.Model(inp, out).save(tmp_path / "lam.keras")
    common = ["--model", str(tmp_path / "lam.keras"), "--data", str(synthetic_shards),
              "--no-progress", "--normalization", "unit", "--clips-per-video", "1",
              "--prior-seeds", "0", "--heatmaps", "0", "--flip-videos", "1", "--allow-unsafe"]
    code = main(["explain", *common, "--out", str(tmp_path / "a")])
    err = capsys.readouterr().err
    assert code == 2 and "layer 'times_two' (Lambda)" in err
    assert "Works on this model: attnlrp, cp_lrp, gradient" in err  # traced into its ops
    code = main(["explain", *common, "--out", str(tmp_path / "b"), "--analyzer",
                 "input_t_gradient"])
    assert code == 0, capsys.readouterr().err
