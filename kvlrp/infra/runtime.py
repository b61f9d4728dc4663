"""TensorFlow start-up without its start-up notes, and the one line naming the device used.

Importing TensorFlow 2.21 on a machine without a GPU writes absl lines straight to the
process's stderr (file descriptor 2), below Python: "oneDNN custom operations are on",
"Could not find cuda drivers", "failed call to cuInit", CPU-feature notes. ``TF_CPP_MIN_LOG_LEVEL``
does not reach the ones logged before absl is initialised. The attribution engine imports
TensorFlow with those lines filtered (:func:`analyzers.compat.import_tensorflow`: every other
line still shows); :func:`start_tensorflow` starts it that way and describes the device.
"""

from __future__ import annotations

import os


def start_tensorflow() -> str:
    """Import TensorFlow quietly (if not imported yet) and describe the device it will use.

    Returns
    -------
    str
        One line, e.g. ``device: CPU (no GPU visible to TensorFlow 2.21.0; oneDNN on)`` or
        ``device: GPU:0 NVIDIA A100 (1 GPU, TensorFlow 2.21.0)``.
    """
    from analyzers.compat import import_tensorflow

    tf = import_tensorflow()
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
