"""Convolutions whose input VJP is computed faster than by TensorFlow's own kernel: stride-1
convolutions (a forward convolution) and patch embeddings (a matrix product).

The VJP of a stride-1 (possibly dilated) convolution with respect to its input is the
convolution of the output gradient with the spatially flipped kernel whose input and output
channels are swapped ("full" padding for ``valid``, mirrored padding for ``same``). TensorFlow's
tape uses ``Conv*DBackpropInput`` instead; under its Eigen CPU kernels that was measured 1.8x
slower than the identical forward convolution for a C3D layer (1.12 s against 0.62 s), while
under oneDNN both took 0.55 s (issue 10; ``benchmarks/bench_conv_vjp.py`` measures it). The
rules only differentiate with respect to a layer's *inputs*, so the kernel is held constant
here (no gradient flows to it).

:func:`forward_vjp_enabled` says whether the ops use it: by default where TensorFlow runs its
Eigen kernels (oneDNN off), switchable with :func:`set_forward_vjp`.

**Patch embeddings.** A convolution whose strides equal its kernel size (``valid``, no
dilation: the tubelet / patch embedding of ViViT, TimeSformer, VideoSwin) reads every input
value once, so it is a reshape into patches and one matrix product (:func:`patch_conv`). Under
the Eigen kernels TensorFlow's ``Conv3DBackpropInputV2`` for a 2x8x8 tubelet took 10.9 s for a
batch of 4 8x32x32 clips (the forward 4 ms); the matrix product's VJP took 16 ms (oneDNN: 7 ms
either way). It is used under the same switch.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from analyzers.compat import onednn_enabled

Tensor = tf.Tensor

_override: bool | None = None


def set_forward_vjp(enabled: bool | None) -> None:
    """Use the forward-convolution VJP (``True``), the tape's (``False``), or the default
    (``None``: on where oneDNN is off). Takes effect for analyzers traced afterwards."""
    global _override
    _override = None if enabled is None else bool(enabled)


def forward_vjp_enabled() -> bool:
    """Whether stride-1 convolutions in the rules use the forward-convolution VJP."""
    if _override is not None:
        return _override
    return not onednn_enabled()  # None (a TensorFlow without the query): Eigen assumed


def _pads(sizes: Sequence[int], dilations: Sequence[int], padding: str
          ) -> list[tuple[int, int]]:
    """``(before, after)`` padding of the output gradient, per spatial axis."""
    out = []
    for k, d in zip(sizes, dilations):
        total = (k - 1) * d
        if padding == "valid":
            out.append((total, total))
        else:  # TF's "same" at stride 1 pads total // 2 before; the VJP mirrors it
            before = total // 2
            out.append((total - before, before))
    return out


def supports(rank: int, strides: Sequence[int], padding: str, data_format: str,
             groups: int) -> bool:
    """Whether :func:`conv_forward_vjp` handles this convolution."""
    return (1 <= rank <= 3 and all(int(s) == 1 for s in strides)
            and padding in ("valid", "same") and data_format == "channels_last"
            and groups == 1)


def conv_forward_vjp(x: Tensor, kernel: Tensor, padding: str,
                     dilations: Sequence[int]) -> Tensor:
    """Stride-1 channels-last convolution of ``x`` with ``kernel`` (held constant) whose
    gradient with respect to ``x`` is computed as a forward convolution.

    Parameters
    ----------
    x
        Input ``[batch, *spatial, in_channels]``.
    kernel
        ``[*kernel_size, in_channels, out_channels]``.
    padding
        ``"valid"`` or ``"same"``.
    dilations
        Dilation rate per spatial axis.
    """
    kernel = tf.stop_gradient(tf.convert_to_tensor(kernel))
    rank = len(dilations)
    dil = [int(d) for d in dilations]
    pad_name = padding.upper()

    @tf.custom_gradient
    def conv(inp: Tensor) -> tuple[Tensor, object]:
        z = tf.nn.convolution(inp, kernel, strides=1, padding=pad_name, dilations=dil)

        def grad(g: Tensor) -> Tensor:
            flipped = tf.reverse(kernel, axis=list(range(rank)))
            flipped = tf.transpose(flipped, list(range(rank)) + [rank + 1, rank])
            sizes = [int(s) for s in kernel.shape[:rank]]
            pads = _pads(sizes, dil, padding)
            if padding == "same" and all(b == a for b, a in pads):
                return tf.nn.convolution(g, flipped, strides=1, padding="SAME",
                                         dilations=dil)
            g = tf.pad(g, [[0, 0], *[[b, a] for b, a in pads], [0, 0]])
            return tf.nn.convolution(g, flipped, strides=1, padding="VALID", dilations=dil)

        return z, grad

    return conv(x)


def supports_patches(rank: int, kernel_size: Sequence[int], strides: Sequence[int],
                     padding: str, dilations: Sequence[int], data_format: str,
                     groups: int) -> bool:
    """Whether :func:`patch_conv` computes this convolution (strides = kernel size)."""
    return (1 <= rank <= 3 and [int(s) for s in strides] == [int(k) for k in kernel_size]
            and padding == "valid" and all(int(d) == 1 for d in dilations)
            and data_format == "channels_last" and groups == 1)


def patch_conv(x: Tensor, kernel: Tensor) -> Tensor:
    """The ``valid`` convolution of ``x`` ``[batch, *spatial, in]`` with ``kernel`` ``[*k, in,
    out]`` at strides ``k`` (non-overlapping patches): the input cut into patches, flattened in
    the kernel's order, times the kernel as a matrix. The same values as ``tf.nn.convolution``
    to float rounding; its gradients are reshapes and matrix products."""
    rank = len(kernel.shape) - 2
    k = [int(d) for d in kernel.shape[:rank]]
    shape = tf.shape(x)
    n = [shape[1 + i] // k[i] for i in range(rank)]
    x = tf.slice(x, [0] * (rank + 2),
                 tf.stack([shape[0], *[n[i] * k[i] for i in range(rank)], shape[-1]]))
    split = [shape[0]]
    for i in range(rank):
        split += [n[i], k[i]]
    split.append(shape[-1])
    perm = [0] + [1 + 2 * i for i in range(rank)] + [2 + 2 * i for i in range(rank)] + [
        1 + 2 * rank]
    patches = tf.transpose(tf.reshape(x, tf.stack(split)), perm)
    patches = tf.reshape(patches, tf.stack([shape[0], *n, -1]))
    return tf.matmul(patches, tf.reshape(kernel, [-1, int(kernel.shape[-1])]))
