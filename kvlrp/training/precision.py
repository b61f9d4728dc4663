"""Which training precision this machine gets: mixed precision where the device computes it
natively, float32 (or a refusal) with a one-line reason where it does not.

- ``bfloat16`` (Keras ``mixed_bfloat16``): on a GPU of compute capability >= 8.0, or on a CPU
  with bfloat16 instructions (x86 ``avx512_bf16`` / ``amx_bf16``, Arm ``bf16``) running
  TensorFlow's oneDNN kernels. Elsewhere TensorFlow would emulate it, slower than float32:
  training falls back to float32 and says so (so a bfloat16 default works on any machine).
- ``float16`` (``mixed_float16``, with loss scaling): GPUs only; refused without one.
"""

from __future__ import annotations

from dataclasses import dataclass

from kvlrp.models.precision import POLICIES, check_precision
from kvlrp.training.checks import TrainingSetupError

#: CPU flags (``/proc/cpuinfo``) of native bfloat16 arithmetic.
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
#: Lowest GPU compute capability with native bfloat16 (NVIDIA Ampere).
BF16_GPU_CAPABILITY = (8, 0)


@dataclass(frozen=True)
class Precision:
    """The precision a run trains in.

    Attributes
    ----------
    requested
        What the settings asked for.
    used
        What it trains in (``requested``, or ``float32`` where the device lacks bfloat16).
    note
        One line saying why ``used`` differs from ``requested`` (None if it does not).
    """

    requested: str
    used: str
    note: str | None = None

    @property
    def policy(self) -> str:
        """The Keras dtype policy of :attr:`used`."""
        return POLICIES[self.used]


def resolve_precision(requested: str) -> Precision:
    """The :class:`Precision` ``requested`` gets on this machine (imports TensorFlow).

    Raises
    ------
    TrainingSetupError
        ``float16`` without a GPU, or an unknown name.
    """
    try:
        check_precision(requested)
    except ValueError as err:
        raise TrainingSetupError(str(err)) from None
    if requested == "float32":
        return Precision(requested, "float32")
    gpus = _gpu_capabilities()
    if requested == "float16":
        if not gpus:
            raise TrainingSetupError(
                "precision float16 needs a GPU and none is visible; use --precision bfloat16 "
                "(CPUs with AVX512_BF16 or AMX) or float32")
        return Precision(requested, "float16")
    lacking = _bf16_lacking(gpus)
    if lacking:
        return Precision(requested, "float32",
                         f"precision bfloat16 requested, training in float32: {lacking}")
    return Precision(requested, "bfloat16")


def _bf16_lacking(gpus: list[tuple[int, int] | None]) -> str | None:
    """Why this machine's devices lack native bfloat16, or None if they have it."""
    if gpus:
        slow = [c for c in gpus if c is None or tuple(c) < BF16_GPU_CAPABILITY]
        if not slow:
            return None
        shown = ", ".join("unknown" if c is None else f"{c[0]}.{c[1]}" for c in slow)
        return (f"GPU compute capability {shown} < {BF16_GPU_CAPABILITY[0]}."
                f"{BF16_GPU_CAPABILITY[1]} has no native bfloat16")
    from kvlrp.infra.tfsetup import ONEDNN_VAR, cpu_flags, cpu_model, onednn_enabled

    if not BF16_CPU_FLAGS & cpu_flags():
        return (f"this CPU ({cpu_model()}) has no bfloat16 instructions (AVX512_BF16 or "
                "AMX), so TensorFlow would emulate them, slower than float32")
    if not onednn_enabled():
        return (f"TensorFlow's oneDNN CPU kernels are off ({ONEDNN_VAR}=0) and its Eigen "
                "kernels compute bfloat16 slower than float32 (4-5x for c3d_small, measured)")
    return None


def _gpu_capabilities() -> list[tuple[int, int] | None]:
    """Compute capability of every visible GPU (None where TensorFlow cannot say)."""
    import tensorflow as tf

    found = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            found.append(tf.config.experimental.get_device_details(gpu).get("compute_capability"))
        except (ValueError, RuntimeError):
            found.append(None)
    return found
