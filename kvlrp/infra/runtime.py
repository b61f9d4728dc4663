"""TensorFlow start-up without its start-up noise, and the one line naming the device used.

Importing TensorFlow 2.21 on a machine without a GPU writes absl lines straight to the
process's stderr (file descriptor 2), below Python: "oneDNN custom operations are on",
"Could not find cuda drivers", "failed call to cuInit", CPU-feature notes. ``TF_CPP_MIN_LOG_LEVEL``
does not reach the ones logged before absl is initialised. :func:`start_tensorflow` imports
TensorFlow and lists its devices with descriptor 2 sent to a temporary file, then writes back
every line that is not one of those known start-up notes (so real errors still show).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

#: Start-up notes of TensorFlow / XLA / CUDA stubs dropped on import (everything else is kept).
NOISE = re.compile(
    r"All log messages before absl::InitializeLog"
    r"|oneDNN custom operations are on"
    r"|Could not find cuda drivers"
    r"|failed call to cuInit"
    r"|This TensorFlow binary is optimized to use available CPU instructions"
    r"|To enable the following instructions:"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation placer already registered"
    r"|TF-TRT Warning: Could not find TensorRT"
    r"|cuda_(platform|executor|blas|dnn|fft)\.cc"
    r"|cudart_stub\.cc"
)


@contextlib.contextmanager
def filtered_stderr(pattern: re.Pattern[str] = NOISE) -> Iterator[None]:
    """Send file descriptor 2 to a temporary file inside the block; afterwards write back the
    lines that do not match ``pattern``."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines() if line.strip() and
                    not pattern.search(line)]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")
                sys.stderr.flush()


def start_tensorflow() -> str:
    """Import TensorFlow quietly (if not imported yet) and describe the device it will use.

    Returns
    -------
    str
        One line, e.g. ``device: CPU (no GPU visible to TensorFlow 2.21.0; oneDNN on)`` or
        ``device: GPU:0 NVIDIA A100 (1 GPU, TensorFlow 2.21.0)``.
    """
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
    else:
        with filtered_stderr():
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
    version = tf.__version__
    if not gpus:
        onednn = "off" if os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0" else "on"
        return f"device: CPU (no GPU visible to TensorFlow {version}; oneDNN {onednn})"
    names = []
    for gpu in gpus:
        try:
            details = tf.config.experimental.get_device_details(gpu)
        except Exception:  # noqa: BLE001 - details are optional
            details = {}
        names.append(details.get("device_name", gpu.name))
    return (f"device: GPU:0 {names[0]} ({len(gpus)} GPU{'s' if len(gpus) > 1 else ''}, "
            f"TensorFlow {version})")
