"""Errors raised by the analyzers package."""

from __future__ import annotations

from collections.abc import Sequence

#: The analyzers that explain any differentiable single-input model: they need no rule per
#: layer, so they work wherever a relevance analyzer refuses a layer.
GRADIENT_FAMILY = ("gradient", "input_t_gradient", "smoothgrad", "integrated_gradients")
#: Where adding a layer to the relevance analyzers is described.
ADDING_A_LAYER = "docs/adding-a-layer.md"
#: Longest message (characters): one short line saying what to do.
MAX_MESSAGE = 299


class UnsupportedLayerError(ValueError):
    """A model contains a layer (or layer setting) that no relevance rule handles.

    Raised by :func:`analyzers.create_analyzer` before any computation. The message is one
    line of at most 299 characters: the layer's name and class, the reason, the analyzers
    that do work on the model and where adding a layer is described; the full list of
    supported layers is :func:`analyzers.supported_layers`.

    Parameters
    ----------
    layer_name
        Name of the offending layer.
    layer_class
        Its class name.
    supported
        Names of the supported layer classes (kept as an attribute; not in the message).
    reason
        Optional detail (for example an unsupported activation function).
    working
        Analyzers that do explain the model (default: the gradient family).
    """

    def __init__(self, layer_name: str, layer_class: str,
                 supported: Sequence[str] | None = None, reason: str = "",
                 working: Sequence[str] = GRADIENT_FAMILY) -> None:
        self.layer_name = layer_name
        self.layer_class = layer_class
        self.supported = list(supported or [])
        self.reason = reason
        self.working = tuple(working)
        super().__init__(self._message())

    def _message(self) -> str:
        head = f"layer '{self.layer_name}' ({self.layer_class}) has no relevance rule"
        tail = (f". Works on this model: {', '.join(self.working)}. Layers: "
                f"analyzers.supported_layers(); adding one: {ADDING_A_LAYER}")
        reason = " ".join(self.reason.split())
        room = MAX_MESSAGE - len(head) - len(tail) - 3
        if reason and room > 12:
            if len(reason) > room:
                reason = reason[: room - 3].rstrip() + "..."
            head += f" ({reason})"
        return head + tail
