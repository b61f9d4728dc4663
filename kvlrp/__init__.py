"""kvlrp: explain 3D-convolutional Keras video classifiers and tune their step size at test time."""

__version__ = "0.1.0"
