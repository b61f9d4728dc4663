"""Explain a Keras video model you built yourself: relevance per frame position.

Builds a small Conv3D classifier with plain Keras (not kvlrp's C3D), fits it for a few steps on
clips of the embedded synthetic videos (rendered in memory), explains it with deep Taylor
(z^B at the input, bounds of the [-1, 1] normalisation) and prints the share of relevance that
each frame position of the clip receives, with the border-effect score.
"""

from __future__ import annotations

import keras
import numpy as np

import analyzers
from kvlrp.analysis import border_score, clip_shares, frame_relevance
from kvlrp.data.synth import CLASSES, SynthParams, render_video

FRAMES, SIZE = 8, 32


def make_clips(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One 8-frame clip (step 1) from each of ``n_per_class`` videos per class, in [-1, 1]."""
    params = SynthParams(size=SIZE, min_frames=FRAMES, max_frames=FRAMES + 8)
    clips, labels = [], []
    for label_index, label in enumerate(CLASSES):
        for k in range(n_per_class):
            video = render_video(label, np.random.default_rng([seed, label_index, k]), params)
            clips.append(video[:FRAMES].astype(np.float32) / 127.5 - 1.0)
            labels.append(label_index)
    return np.stack(clips), np.array(labels)


def build_model() -> keras.Model:
    """A user's own small 3D-conv video classifier (ends in softmax)."""
    inputs = keras.Input((FRAMES, SIZE, SIZE, 3))
    x = keras.layers.Conv3D(8, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.MaxPooling3D((1, 2, 2))(x)
    x = keras.layers.Conv3D(16, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling3D(2)(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(len(CLASSES), activation="softmax")(x)
    return keras.Model(inputs, outputs)


def main() -> None:
    keras.utils.set_random_seed(0)
    x_train, y_train = make_clips(8, seed=0)
    x_test, y_test = make_clips(3, seed=1)
    model = build_model()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=3, batch_size=8, verbose=0)

    analyzer = analyzers.create_analyzer("deep_taylor.bounded", model, low=-1.0, high=1.0)
    relevance = analyzer.analyze(x_test)  # explains each clip's top class; shape of x_test
    shares, valid = clip_shares(frame_relevance(relevance))
    profile = shares[valid].mean(axis=0)
    print(f"{valid.sum()} of {len(valid)} clips have non-zero relevance")
    print("mean relevance share per frame position:", np.round(profile, 3))
    print(f"border score B = {border_score(profile):.3f} (B > 1: the clip's borders dominate)")
    assert np.allclose(shares[valid].sum(axis=1), 1.0)


if __name__ == "__main__":
    main()
