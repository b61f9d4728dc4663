"""Map a Keras layer to its :class:`~analyzers.ops.base.LayerOp`, or refuse it clearly."""

from __future__ import annotations

from typing import Any

import keras

from analyzers.errors import UnsupportedLayerError
from analyzers.ops.base import LayerOp
from analyzers.ops.kernel import AffineOp, ConvOp, ConvTransposeOp, DenseOp
from analyzers.ops.pooling import GlobalPoolOp, PoolOp
from analyzers.ops.structural import (
    ActivationOp,
    AddOp,
    ConcatenateOp,
    IdentityOp,
    LayerCallOp,
    TimeDistributedOp,
)

L = keras.layers

_CONV = (L.Conv1D, L.Conv2D, L.Conv3D)
_CONV_T = (L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose)
_MAX_POOL = (L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D)
_AVG_POOL = (L.AveragePooling1D, L.AveragePooling2D, L.AveragePooling3D)
_GLOBAL_MAX = (L.GlobalMaxPooling1D, L.GlobalMaxPooling2D, L.GlobalMaxPooling3D)
_GLOBAL_AVG = (L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalAveragePooling3D)
_IDENTITY = (L.InputLayer, L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D,
             L.SpatialDropout3D, L.GaussianNoise, L.GaussianDropout, L.AlphaDropout,
             L.ActivityRegularization)
_SHAPE = (L.Flatten, L.Reshape, L.Permute, L.ZeroPadding1D, L.ZeroPadding2D, L.ZeroPadding3D,
          L.Cropping1D, L.Cropping2D, L.Cropping3D, L.UpSampling1D, L.UpSampling2D,
          L.UpSampling3D)

#: Every supported layer class (besides nested Functional / Sequential models).
SUPPORTED_LAYERS: tuple[type, ...] = (
    (L.Dense,) + _CONV + _CONV_T + _MAX_POOL + _AVG_POOL + _GLOBAL_MAX + _GLOBAL_AVG
    + _IDENTITY + _SHAPE
    + (L.Activation, L.ReLU, L.Softmax, L.Add, L.Average, L.Concatenate,
       L.BatchNormalization, L.TimeDistributed)
)


def supported_layer_names() -> list[str]:
    """Class names of the supported layers, for messages and docs."""
    return sorted({cls.__name__ for cls in SUPPORTED_LAYERS})


def _unsupported(layer: Any, reason: str = "") -> UnsupportedLayerError:
    return UnsupportedLayerError(layer.name, type(layer).__name__, supported_layer_names(),
                                 reason)


def make_op(layer: Any) -> LayerOp:
    """Wrap ``layer`` in its op; raise :class:`UnsupportedLayerError` if none fits."""
    try:
        return _make_op(layer)
    except UnsupportedLayerError:
        raise
    except ValueError as err:  # e.g. an unsupported activation
        raise _unsupported(layer, str(err)) from err


def _make_op(layer: Any) -> LayerOp:
    if isinstance(layer, L.Dense):
        return DenseOp(layer)
    if isinstance(layer, _CONV):
        if getattr(layer, "groups", 1) != 1:
            raise _unsupported(layer, "grouped convolution (groups != 1)")
        return ConvOp(layer)
    if isinstance(layer, _CONV_T):
        return ConvTransposeOp(layer)
    if isinstance(layer, _MAX_POOL + _AVG_POOL):
        return PoolOp(layer, is_max=isinstance(layer, _MAX_POOL))
    if isinstance(layer, _GLOBAL_MAX + _GLOBAL_AVG):
        return GlobalPoolOp(layer, is_max=isinstance(layer, _GLOBAL_MAX))
    if isinstance(layer, _IDENTITY):
        return IdentityOp(layer)
    if isinstance(layer, _SHAPE):
        return LayerCallOp(layer)
    if isinstance(layer, L.Activation):
        return ActivationOp(layer, layer.activation)
    if isinstance(layer, L.ReLU):
        if (layer.max_value is not None or float(layer.negative_slope) != 0.0
                or float(layer.threshold) != 0.0):
            raise _unsupported(layer, "ReLU with max_value, negative_slope or threshold")
        return ActivationOp(layer, "relu")
    if isinstance(layer, L.Softmax):
        return ActivationOp(layer, "softmax")
    if isinstance(layer, L.Add):
        return AddOp(layer)
    if isinstance(layer, L.Average):
        return AddOp(layer, mean=True)
    if isinstance(layer, L.Concatenate):
        return ConcatenateOp(layer)
    if isinstance(layer, L.BatchNormalization):
        return AffineOp(layer)
    if isinstance(layer, L.TimeDistributed):
        inner = layer.layer
        if isinstance(inner, (L.TimeDistributed, keras.Model)):
            raise _unsupported(layer, f"TimeDistributed around {type(inner).__name__}")
        return TimeDistributedOp(layer, _make_op(inner))
    raise _unsupported(layer)
