"""The report as a list of blocks (headings, text, tables, figures, heatmaps, provenance), and
its markdown form.

The sections (:mod:`~kvlrp.analysis.report.explain_section`,
:mod:`~kvlrp.analysis.report.strides_section`, :mod:`~kvlrp.analysis.report.study_section`,
:mod:`~kvlrp.analysis.report.findings`) build blocks once; :func:`to_markdown` writes them as
``report.md`` and :func:`kvlrp.analysis.report.html.to_html` as ``report.html``, so both say the
same. Text is markdown with inline ``code``, ``**bold**``, ``*emphasis*`` and ``[links](x)``
only. Paths are absolute (local or ``tf.io.gfile`` URLs); renderers make them relative to the
report's folder or embed them.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from kvlrp.analysis.report.tables import markdown_table
from kvlrp.infra.provenance import PROVENANCE_FIELDS

__all__ = ["Block", "Callout", "Facts", "Figure", "Heading", "HeatmapClip", "Heatmaps",
           "Paragraph", "Provenance", "Table", "provenance_value", "relative", "to_markdown"]


@dataclass(frozen=True)
class Heading:
    """A section title (``level`` 2) or sub-title (3)."""

    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    """Running text (inline markdown)."""

    text: str


@dataclass(frozen=True)
class Bullets:
    """A list of short lines (inline markdown)."""

    items: tuple[str, ...]


@dataclass(frozen=True)
class Callout:
    """Something the reader must not miss (e.g. a model at chance level), shown first."""

    title: str
    text: str


@dataclass(frozen=True)
class Facts:
    """Labelled values (``(label, value, detail)``): the numbers at a glance, a protocol's
    outcome."""

    items: tuple[tuple[str, str, str], ...]


@dataclass(frozen=True)
class Table:
    """A narrow view of a CSV (cells formatted as text); ``source`` is the CSV with every
    column, linked under the table."""

    frame: pd.DataFrame
    source: Any = None


@dataclass(frozen=True)
class Figure:
    """A PNG of ``plots/`` (or any image), with its alternative text as caption."""

    path: Any
    caption: str


@dataclass(frozen=True)
class HeatmapClip:
    """One explained clip: its PNG strip, its GIF and its frame shares (None where the clip's
    row is not in ``frame_relevance.csv``)."""

    strip: Any
    gif: Any
    title: str
    shares: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Heatmaps:
    """The heatmap clips of a run."""

    clips: tuple[HeatmapClip, ...]


@dataclass(frozen=True)
class Provenance:
    """The ``provenance`` objects of the runs, by run name (``explain``, ``strides``, ...)."""

    runs: dict[str, dict[str, Any] | None] = field(default_factory=dict)


Block = (Heading | Paragraph | Bullets | Callout | Facts | Table | Figure | Heatmaps
         | Provenance)


def relative(path: Any, root: Any) -> str:
    """``path`` relative to ``root``, with ``/`` separators (a link inside the report)."""
    return Path(os.path.relpath(str(path), str(root))).as_posix()


def provenance_value(key: str, value: Any) -> str:
    """One provenance value as text (the argv as a shell command line; ``n/a`` for none)."""
    if value is None:
        return "n/a"
    if key == "command" and isinstance(value, list):
        return shlex.join(str(v) for v in value)
    return str(value)


def provenance_table(runs: dict[str, dict[str, Any] | None]) -> pd.DataFrame:
    """One row per provenance field, one column per run."""
    rows = [{"field": key, **{name: provenance_value(key, (p or {}).get(key))
                              for name, p in runs.items()}} for key in PROVENANCE_FIELDS]
    return pd.DataFrame(rows, columns=["field", *runs])


def to_markdown(blocks: list[Block], root: Any) -> str:
    """``report.md``: the blocks as GitHub markdown, links relative to ``root``."""
    lines: list[str] = []
    for block in blocks:
        lines += _markdown(block, root) + [""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _markdown(block: Block, root: Any) -> list[str]:
    if isinstance(block, Heading):
        return ["#" * block.level + " " + block.text]
    if isinstance(block, Paragraph):
        return [block.text]
    if isinstance(block, Bullets):
        return [f"- {item}" for item in block.items]
    if isinstance(block, Callout):
        return [f"> **{block.title}** {block.text}"]
    if isinstance(block, Facts):
        return [f"- **{label}**: {value}" + (f" ({detail})" if detail else "")
                for label, value, detail in block.items]
    if isinstance(block, Table):
        out = [markdown_table(block.frame)]
        if block.source is not None:
            name = Path(str(block.source)).name
            out += ["", f"Every column: [`{name}`]({relative(block.source, root)})."]
        return out
    if isinstance(block, Figure):
        link = relative(block.path, root)
        return [f"![{Path(link).stem.replace('_', ' ')}]({link})", "", f"*{block.caption}*"]
    if isinstance(block, Heatmaps):
        out = []
        for clip in block.clips:
            gif = "" if clip.gif is None else f" ([animated]({relative(clip.gif, root)}))"
            out += [f"**{clip.title}**{gif}", "",
                    f"![{clip.title}]({relative(clip.strip, root)})", ""]
        return out[:-1]
    if isinstance(block, Provenance):
        return [markdown_table(provenance_table(block.runs))]
    raise TypeError(f"not a report block: {block!r}")
