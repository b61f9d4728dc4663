"""Cross-check zoo: tiny Conv3D/pooling models shared by our tests and iNNvestigate 2.1.2.

``spec`` holds the models as plain data, ``build_keras3`` / ``build_keras2`` build them with
Keras 3 and tf.keras 2.14, ``generate`` writes (or checks) the iNNvestigate reference relevance
in ``references/<model>.npz``.
"""
