"""Named analyzers: the table behind :func:`create_analyzer` and :func:`list_analyzers`.

Every analyzer name of iNNvestigate 2.1.2 is registered, with its keyword arguments, plus
``neuron_selection_mode`` (``"max_activation"``, ``"index"``, ``"all"``) and ``compat``
(``None`` or ``"innvestigate"``) for all of them. Analyzers are registered where they are
defined, with the :func:`register` decorator (:mod:`analyzers.gradients`,
:mod:`analyzers.lrp`; the package imports both), in the order :func:`list_analyzers` gives.
A builder gets its :class:`~analyzers.settings.Settings` (name, options,
``neuron_selection_mode``, ``compat``) when it is called, and hands them to the analyzer's
constructor.

This module sits below :mod:`analyzers.analyzer` (``Analyzer.load`` calls :func:`load`), so
it knows an analyzer only as an :class:`Explainer`, what its builder returns.
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import numpy as np

from analyzers.model.functional import as_functional
from analyzers.settings import NEURON_SELECTION_MODES, Settings, check_compat, read_npz


class Explainer(Protocol):
    """What a registered builder returns (in this package: an :class:`analyzers.Analyzer`)."""

    name: str
    neuron_selection_mode: str

    def analyze(self, x: Any, neuron_selection: Any = None, batch_size: int | None = None
                ) -> np.ndarray: ...

    def save(self) -> tuple[str, dict[str, Any]]: ...


#: A builder: an analyzer class, or a function ``(model, **options, settings) -> analyzer``.
Builder = Callable[..., Explainer]
B = TypeVar("B", bound=Builder)

_ANALYZERS: dict[str, Builder] = {}

#: Options of iNNvestigate's base classes that have no meaning here.
_INNVESTIGATE_ONLY = ("disable_model_checks", "allow_lambda_layers", "reverse_verbose",
                      "reverse_clip_values", "reverse_project_bottleneck_layers",
                      "reverse_check_min_max_values", "reverse_check_finite",
                      "reverse_keep_tensors", "reverse_reapply_on_copied_layers",
                      "bn_layer_rule", "bn_layer_fuse_mode", "until_layer_rule")

#: Parameters of a builder that are not options.
_NOT_OPTIONS = ("model", "settings")


def register(name: str) -> Callable[[B], B]:
    """Decorator: make ``builder`` the analyzer ``name`` of :func:`create_analyzer`.

    The builder (an analyzer class or a function) is called as ``builder(model,
    settings=Settings(...), **options)``; its other parameters are the analyzer's options.
    """
    def decorate(builder: B) -> B:
        if name in _ANALYZERS:
            raise ValueError(f"analyzer {name!r} is registered twice")
        if "settings" not in inspect.signature(builder).parameters:
            raise TypeError(f"builder of analyzer {name!r} takes no 'settings' argument; it "
                            "must accept settings=... and pass it to the Analyzer")
        _ANALYZERS[name] = builder
        return builder
    return decorate


def list_analyzers() -> list[str]:
    """Names accepted by :func:`create_analyzer`."""
    return list(_ANALYZERS)


def analyzer_options(name: str) -> list[str]:
    """Keyword options of analyzer ``name`` (besides ``neuron_selection_mode``), ``compat``
    last (every analyzer takes it)."""
    params = inspect.signature(_ANALYZERS[_check_name(name)]).parameters
    out = [p for p in params if p not in _NOT_OPTIONS and params[p].kind in
           (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        out += [p for p in ("input_layer_rule", "max_pooling", "canonizers") if p not in out]
    return out + ["compat"]


def _name_hint(name: str) -> str:
    """The equivalent of an unknown name, where there is one."""
    text = str(name)
    lowered = {k.lower(): k for k in _ANALYZERS}
    if text.lower() in lowered:
        return f" Names are case-sensitive: use {lowered[text.lower()]!r}."
    if text.endswith("_IB"):
        base = text[:-3]
        if base in _ANALYZERS and "bias" in analyzer_options(base):
            return f" Use {base!r} with bias=False (ignore the bias)."
    match = re.fullmatch(r"lrp\.alpha_(\d+(?:\.\d+)?)_beta_(\d+(?:\.\d+)?)(_IB)?", text)
    if match:
        alpha, beta, ib = match.groups()
        return (f" Use 'lrp.alpha_beta' with alpha={alpha}, beta={beta}"
                f"{', bias=False' if ib else ''}.")
    if text.startswith(("pattern.", "deep_lift", "lrp.rule_until_index")):
        return " iNNvestigate 2.1.2 has no such analyzer either (it was in iNNvestigate 1.x)."
    close = difflib.get_close_matches(text, list(_ANALYZERS), n=3, cutoff=0.5)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def _check_name(name: str) -> str:
    if name not in _ANALYZERS:
        raise ValueError(f"unknown analyzer {name!r}.{_name_hint(name)} Known analyzers: "
                         f"{', '.join(_ANALYZERS)}.")
    return name


def create_analyzer(name: str, model: Any, neuron_selection_mode: str = "max_activation",
                    compat: str | None = None, **kwargs: Any) -> Explainer:
    """Create the analyzer ``name`` for ``model`` (see :func:`list_analyzers`), like
    ``innvestigate.create_analyzer``.

    Unsupported layers raise :class:`analyzers.UnsupportedLayerError` here, before any
    computation (the gradient family, ``input`` and ``random`` accept any differentiable
    single-input model). A subclassed model is explained through its functional twin
    (:func:`analyzers.as_functional`), or refused in one line saying how to make it
    functional. Keyword arguments are the analyzer's options (e.g. ``low``/``high``
    for ``deep_taylor.bounded``, ``epsilon`` for ``lrp.epsilon``; see
    :func:`analyzer_options`). ``neuron_selection_mode``: ``"max_activation"`` (default;
    each sample's top logit, or the outputs given to ``analyze``), ``"index"`` (``analyze``
    needs ``neuron_selection``) or ``"all"`` (the sum of all outputs). ``compat``: ``None``
    (default: the conserving conventions) or ``"innvestigate"`` (iNNvestigate 2.1.2's
    numbers, see :mod:`analyzers.settings`).
    """
    _check_name(name)
    check_compat(compat)
    if neuron_selection_mode not in NEURON_SELECTION_MODES:
        raise ValueError(f"neuron_selection_mode must be one of "
                         f"{', '.join(map(repr, NEURON_SELECTION_MODES))}; "
                         f"got {neuron_selection_mode!r}")
    options = [o for o in analyzer_options(name) if o != "compat"]  # (a named argument)
    unknown = [k for k in kwargs if k not in options]
    if unknown:
        valid = ", ".join(options + ["neuron_selection_mode", "compat"])
        extra = ""
        if any(k in _INNVESTIGATE_ONLY for k in unknown):
            extra = " (an iNNvestigate option that has no equivalent here)"
        raise ValueError(f"analyzer {name!r} has no option "
                         f"{', '.join(repr(k) for k in unknown)}{extra}; its options are: "
                         f"{valid}")
    settings = Settings(name, dict(kwargs), neuron_selection_mode, compat)
    return _ANALYZERS[name](as_functional(model), settings=settings, **kwargs)


def load(name: str, state: dict[str, Any], model: Any = None) -> Explainer:
    """The analyzer ``name`` rebuilt from ``Analyzer.save()``'s ``state``, on ``model`` if
    given (else on the model held in ``state``)."""
    if not isinstance(state, dict) or "kwargs" not in state:
        raise ValueError("state must be the dict returned by Analyzer.save() (with "
                         f"'kwargs' and 'neuron_selection_mode'); got {type(state).__name__}")
    model = state.get("model") if model is None else model
    if model is None:
        raise ValueError("the state holds no model: pass model=<the Keras model>")
    return create_analyzer(name, model,
                           neuron_selection_mode=state.get("neuron_selection_mode",
                                                           "max_activation"),
                           compat=state.get("compat"), **state["kwargs"])


def load_npz(fname: Any, model: Any = None) -> Explainer:
    """The analyzer saved by ``Analyzer.save_npz()``, on ``model`` (default: the model
    rebuilt from the stored JSON and weights)."""
    name, state = read_npz(fname, model)
    return load(name, state)


__all__ = ["Explainer", "analyzer_options", "create_analyzer", "list_analyzers", "load",
           "load_npz", "register"]
