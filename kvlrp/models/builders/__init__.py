"""Builders of the video architectures (C3D, R3D, R(2+1)D, I3D, X3D) and their shared layers
and arguments (:mod:`~kvlrp.models.builders.common`)."""
