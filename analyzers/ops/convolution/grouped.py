"""Channelwise 3D convolutions as depthwise 2D convolutions per temporal tap.

TensorFlow runs ``Conv3D(groups=channels)`` (X3D's channelwise 3x3x3 convolutions) on the CPU
through a generic grouped path that costs about as much as the dense convolution with the
block-diagonal kernel, or more (measured: a full X3D-XS input gradient ten times R(2+1)D-18's
with ~30x fewer FLOPs). The same map is the sum over the temporal taps ``dt`` of a depthwise 2D
convolution of the frames ``t * stride_t + dt * dilation_t`` (folded into the batch) with the
kernel's slice ``dt``; ``tf.nn.depthwise_conv2d`` and its gradient are fast on the CPU under
oneDNN and Eigen alike. Results equal ``Conv3D(groups=...)`` to float32 round-off (the taps are
summed in another order).

Covered: channels-last, one input channel per group (``groups == in_channels``, any number of
outputs per group: depthwise multiplier), any strides, ``valid`` / ``same`` padding, dilations
(a spatial stride and a spatial dilation both > 1 excepted, which ``depthwise_conv2d``
refuses). :func:`supports` says whether a convolution is covered.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

Tensor = tf.Tensor


def supports(input_shape: Sequence[int | None], groups: int, data_format: str,
             strides: Sequence[int], dilations: Sequence[int]) -> bool:
    """Whether :func:`channelwise_conv3d` computes this grouped convolution of an input of
    ``input_shape`` (its frames and channels must be static)."""
    if len(input_shape) != 5 or groups <= 1 or input_shape[1] is None:
        return False
    if input_shape[-1] is None or int(input_shape[-1]) != groups:
        return False
    if data_format != "channels_last":
        return False
    spatial_strides = [int(s) for s in strides[1:]]
    spatial_dilations = [int(d) for d in dilations[1:]]
    return max(spatial_strides) == 1 or max(spatial_dilations) == 1


def _temporal_geometry(frames: int, taps: int, stride: int, dilation: int, padding: str
                       ) -> tuple[int, int, int]:
    """``(output frames, zeros before, zeros after)`` along time, as TensorFlow pads."""
    span = (taps - 1) * dilation + 1
    if padding == "same":
        out = -(-frames // stride)
        total = max((out - 1) * stride + span - frames, 0)
        return out, total // 2, total - total // 2
    return (frames - span) // stride + 1, 0, 0


def channelwise_conv3d(x: Tensor, kernel: Tensor, strides: Sequence[int], padding: str,
                       dilations: Sequence[int] = (1, 1, 1)) -> Tensor:
    """``Conv3D(groups=in_channels)`` of ``x`` as depthwise 2D convolutions per temporal tap.

    Parameters
    ----------
    x
        ``[batch, frames, height, width, channels]`` (the number of frames must be static).
    kernel
        ``[k_t, k_h, k_w, 1, channels * multiplier]``, Keras' grouped ``Conv3D`` layout
        (output channel ``c * multiplier + m`` reads input channel ``c``).
    strides, dilations
        Per axis (time, height, width).
    padding
        ``"valid"`` or ``"same"``.
    """
    frames, channels = x.shape[1], x.shape[-1]
    if frames is None or channels is None:
        raise ValueError("channelwise_conv3d needs a static number of frames and channels, "
                         f"got input shape {x.shape}")
    taps, k_h, k_w = (int(k) for k in kernel.shape[:3])
    multiplier = int(kernel.shape[-1]) // int(channels)
    s_t, s_h, s_w = (int(s) for s in strides)
    d_t, d_h, d_w = (int(d) for d in dilations)
    out_frames, before, after = _temporal_geometry(int(frames), taps, s_t, d_t, padding)
    if before or after:
        x = tf.pad(x, [[0, 0], [before, after], [0, 0], [0, 0], [0, 0]])
    shape = tf.shape(x)
    batch, height, width = shape[0], shape[2], shape[3]
    total = None
    for tap in range(taps):
        start = tap * d_t
        window = x[:, start:start + (out_frames - 1) * s_t + 1:s_t]
        folded = tf.reshape(window, tf.stack([batch * out_frames, height, width, channels]))
        tap_kernel = tf.reshape(kernel[tap], [k_h, k_w, channels, multiplier])
        y = tf.nn.depthwise_conv2d(folded, tap_kernel, [1, s_h, s_w, 1], padding.upper(),
                                   dilations=[d_h, d_w])
        total = y if total is None else total + y
    out_shape = tf.shape(total)
    return tf.reshape(total, tf.stack([batch, out_frames, out_shape[1], out_shape[2],
                                       channels * multiplier]))
