"""A hand-built Keras video model (not from kvlrp.models), the "your own model" of the tests."""

from __future__ import annotations


def own_model(frames=6, size=16, n_classes=4, seed=0):
    """A hand-built video model in the style of R(2+1)D: Conv3D stem, BatchNorm, a residual
    block of (1,3,3) spatial + (3,1,1) temporal convolutions, global pooling, a softmax head.
    Built with keras.layers only (nothing from kvlrp.models)."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    x_in = keras.Input((frames, size, size, 3), name="video")
    x = layers.Conv3D(6, 3, padding="same", use_bias=False, name="stem")(x_in)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU()(x)
    y = layers.Conv3D(6, (1, 3, 3), padding="same", name="spatial")(x)
    y = layers.ReLU()(y)
    y = layers.Conv3D(6, (3, 1, 1), padding="same", name="temporal")(y)
    x = layers.ReLU()(layers.Add()([x, y]))
    x = layers.MaxPooling3D((1, 2, 2))(x)
    x = layers.GlobalAveragePooling3D()(x)
    # a positive bias: the untrained head's logits are > 0, so deep Taylor has something to
    # explain (it explains max(logit, 0))
    out = layers.Dense(n_classes, activation="softmax", name="head",
                       bias_initializer=keras.initializers.Constant(1.0))(x)
    return keras.Model(x_in, out, name="my_video_net")
