"""Errors raised by the analyzers package."""

from __future__ import annotations


class UnsupportedLayerError(ValueError):
    """A model contains a layer (or layer setting) that no relevance rule handles.

    Raised by :func:`analyzers.create_analyzer` before any computation.

    Parameters
    ----------
    layer_name
        Name of the offending layer.
    layer_class
        Its class name.
    supported
        Names of the supported layer classes.
    reason
        Optional detail (for example an unsupported activation function).
    """

    def __init__(
        self, layer_name: str, layer_class: str, supported: list[str], reason: str = ""
    ) -> None:
        self.layer_name = layer_name
        self.layer_class = layer_class
        self.supported = list(supported)
        detail = f" ({reason})" if reason else ""
        super().__init__(
            f"layer '{layer_name}' of class {layer_class} is not supported{detail}. "
            f"Supported layer classes: {', '.join(self.supported)}."
        )
