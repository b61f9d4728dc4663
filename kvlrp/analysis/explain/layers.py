"""Relevance at intermediate layers during an explain run (``--layers``, ``--channels-layer``).

:func:`layer_probe` decides, before any work, which layers are measured and where their
outputs sit in time (:mod:`kvlrp.analysis.explain.layer_map`); :class:`LayerRows` collects,
batch by batch, each clip's relevance per input frame at those layers (and at the layers of
the re-initialised copies, for the prior) and the relevance per channel and input frame of
the channel layer, summed over clips.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from kvlrp.analysis.measures.layer_profiles import (
    CHANNEL_SUM_COLUMNS,
    CLIP_COLUMNS,
    channel_sum_rows,
    channels_by_frame,
    frames_of_layer,
    layer_rows,
)

__all__ = ["AUTO", "LayerProbe", "LayerRows", "layer_probe"]

#: ``--layers auto``: every layer with relevance whose output still resolves time (two or
#: more time cells), and the input.
AUTO = "auto"


@dataclass(frozen=True)
class LayerProbe:
    """The layers measured, in execution order, with their depth (0: the model input) and
    frame centres."""

    input_name: str
    names: tuple[str, ...]
    depths: dict[str, int]
    centres: dict[str, np.ndarray]
    cells: dict[str, int]
    length: int
    channels_layer: str | None = None

    @property
    def wanted(self) -> list[str]:
        """What to ask the analyzer for: the input first, then every measured layer."""
        return list(dict.fromkeys([self.input_name, *self.names,
                                   *([self.channels_layer] if self.channels_layer else [])]))


def layer_probe(model: Any, analyzer: Any, analyzer_name: str, layers: Sequence[str],
                channels_layer: str | None) -> LayerProbe:
    """The :class:`LayerProbe` of ``--layers`` (names, or ``auto``) and ``--channels-layer``;
    a one-line ValueError for an analyzer without layer relevance, an unknown layer or a
    layer that cannot be placed in time."""
    from kvlrp.analysis.explain.layer_map import frame_centres

    if not (hasattr(analyzer, "layer_names") and hasattr(analyzer, "analyze_layers")):
        raise ValueError(f"analyzer {analyzer_name!r} gives no relevance at intermediate "
                         f"layers (--layers / --channels-layer need an LRP or deep Taylor "
                         f"analyzer, e.g. deep_taylor.bounded or lrp.epsilon)")
    names = list(analyzer.layer_names())
    depths = {name: k for k, name in enumerate(names)}
    lmap = frame_centres(model)
    chosen: list[str] = []
    for name in layers:
        if name == AUTO:
            chosen += [n for n in names if n in lmap.centres and lmap.cells(n) >= 2]
        else:
            _check_layer("--layers", name, depths, lmap, names)
            chosen.append(name)
    if channels_layer is not None:
        _check_layer("--channels-layer", channels_layer, depths, lmap, names)
        centres = lmap.centres[channels_layer]
        if centres.ndim < 2 or centres.shape[-1] != 1 or lmap.cells(channels_layer) < 2:
            raise ValueError(f"--channels-layer {channels_layer!r}: its output has no time "
                             f"axis beside a channel axis (a feature map whose last axis is "
                             f"channels); choose a convolution, pooling or activation layer")
    chosen = sorted(dict.fromkeys(chosen), key=depths.__getitem__)
    if layers and not chosen:
        raise ValueError(f"--layers auto: no layer of model {model.name!r} resolves time "
                         f"(layers with relevance: {', '.join(names)})")
    used = [*chosen, *([channels_layer] if channels_layer else [])]
    return LayerProbe(input_name=names[0], names=tuple(chosen),
                      depths={n: depths[n] for n in used},
                      centres={n: lmap.centres[n] for n in used},
                      cells={n: lmap.cells(n) for n in used}, length=lmap.length,
                      channels_layer=channels_layer)


def _check_layer(option: str, name: str, depths: Mapping[str, int], lmap: Any,
                 names: list[str]) -> None:
    if name not in depths:
        raise ValueError(f"{option}: no layer {name!r} with relevance in this model (the "
                         f"analyzer gives relevance at: {', '.join(names)})")
    if name not in lmap.centres:
        raise ValueError(f"{option}: layer {name!r} cannot be placed in time "
                         f"({lmap.unmapped.get(name, 'unknown')})")


@dataclass
class LayerRows:
    """Per-clip layer rows of the model explained and of its re-initialised copies, and the
    channel sums, collected over the batches of one step."""

    probe: LayerProbe
    step: int
    clips: list[pd.DataFrame] = field(default_factory=list)
    prior: list[pd.DataFrame] = field(default_factory=list)
    channel_sums: np.ndarray | None = None
    channel_clips: int = 0

    def add(self, got: Mapping[str, np.ndarray], vids: Sequence[str],
            clip_index: Sequence[int], usable: Sequence[int], seed: int | None = None) -> None:
        """The layer relevance ``got`` (layer name -> ``[batch, ...]``) of one batch; only
        the ``usable`` clips (those with a usable total at the input) count."""
        if not len(usable):
            return
        keep = np.asarray(usable, dtype=int)
        probe = self.probe
        for name in probe.names:
            frame, unmapped = frames_of_layer(np.asarray(got[name])[keep], probe.centres[name],
                                              probe.length)
            rows = layer_rows(frame, unmapped, self.step, [vids[i] for i in keep],
                              [clip_index[i] for i in keep], name, probe.depths[name],
                              probe.cells[name])
            if seed is None:
                self.clips.append(rows)
            else:
                rows.insert(1, "seed", seed)
                self.prior.append(rows)
        if seed is None and probe.channels_layer is not None:
            name = probe.channels_layer
            sums = channels_by_frame(np.asarray(got[name])[keep], probe.centres[name],
                                     probe.length).sum(axis=0)
            self.channel_sums = sums if self.channel_sums is None else self.channel_sums + sums
            self.channel_clips += len(keep)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The step's partial tables: ``layers``, ``layer_prior`` and ``channels``."""
        prior_columns = [CLIP_COLUMNS[0], "seed", *CLIP_COLUMNS[1:]]
        out = {"layers": (pd.concat(self.clips, ignore_index=True) if self.clips
                          else pd.DataFrame(columns=CLIP_COLUMNS)),
               "layer_prior": (pd.concat(self.prior, ignore_index=True) if self.prior
                               else pd.DataFrame(columns=prior_columns))}
        if self.probe.channels_layer is not None:
            out["channels"] = (pd.DataFrame(columns=CHANNEL_SUM_COLUMNS)
                               if self.channel_sums is None else
                               channel_sum_rows(self.channel_sums, self.channel_clips,
                                                self.probe.channels_layer, self.step))
        if not self.probe.names:
            out.pop("layers"), out.pop("layer_prior")
        return out
