"""Plug your own analyzer into kvlrp's frame report.

Anything with iNNvestigate's ``analyze(x, neuron_selection)`` method works. Here: gradient x
input written with ``tf.GradientTape``. The frame report (shares per position, bootstrap 95 %
interval, border score) is built from the same long table ``kvlrp explain`` writes; a factory
``model -> analyzer`` also gives the position prior of re-initialised copies of the model.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from kvlrp.analysis.explain.frames import explain_frames, reinitialised_clone
from kvlrp.analysis.measures.profiles import summarize_profiles

FRAMES, SIZE, CLASSES = 6, 16, 3


class GradientTimesInput:
    """Relevance = input x d(probability of the selected class)/d(input)."""

    def __init__(self, model: keras.Model):
        self.model = model

    def analyze(self, x, neuron_selection="max_activation"):
        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            probs = self.model(x, training=False)
            if isinstance(neuron_selection, str):
                neuron_selection = tf.argmax(probs, axis=1)
            picked = tf.gather(probs, neuron_selection, axis=1, batch_dims=1)
        return (x * tape.gradient(picked, x)).numpy()


def main() -> None:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((FRAMES, SIZE, SIZE, 3))
    x = keras.layers.Conv3D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling3D()(x)
    model = keras.Model(inputs, keras.layers.Dense(CLASSES, activation="softmax")(x))

    rng = np.random.default_rng(0)
    batches = [{"clip": rng.uniform(-1, 1, (4, FRAMES, SIZE, SIZE, 3)).astype(np.float32),
                "label": np.full(4, v % CLASSES), "video_id": np.array([f"video{v}"] * 4),
                "clip_start": np.arange(4) * FRAMES} for v in range(6)]
    priors = {s: GradientTimesInput(reinitialised_clone(model, s)) for s in (1000, 1001)}
    result = explain_frames(model, batches, GradientTimesInput(model), step=1,
                            analyzer_name="gradient_x_input", prior_analyzers=priors)
    summary, borders = summarize_profiles(result.frame, result.prior, n_boot=200)
    print(f"{result.n_clips} clips, {len(result.excluded)} excluded (zero total relevance)")
    print(summary[summary["class"] == "all"].round(3).to_string(index=False))
    print(borders.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
