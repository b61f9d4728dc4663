"""iNNvestigate-style attribution engine (deep Taylor / LRP) for Keras 3 models."""
