"""``report.html``: the report's blocks as one self-contained page.

Every image is embedded as a ``data:`` URI (the figures as PNG, the heatmaps as animated GIFs
beside their frame shares), the style sheet is inline and there is no script and no network
address: the file can be mailed, archived or opened offline and shows the same. Links to the
CSVs are relative, so they work where the page sits beside its results.
"""

from __future__ import annotations

import base64
import html
import re
from typing import Any

import pandas as pd

from kvlrp.analysis.report.blocks import (
    Block,
    Bullets,
    Callout,
    Facts,
    Figure,
    Heading,
    HeatmapClip,
    Heatmaps,
    Paragraph,
    Provenance,
    Table,
    provenance_table,
    relative,
)

__all__ = ["data_uri", "inline", "to_html"]

_MIME = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_EM = re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")

_CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa; --accent: #0969da; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff; line-height: 1.5;
       font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
             sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 64px; }
h1 { font-size: 28px; margin: 8px 0 4px; }
h2 { font-size: 21px; margin: 40px 0 12px; padding-bottom: 6px;
     border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 24px 0 8px; }
p, ul { margin: 10px 0; max-width: 80ch; }
code { font: 13px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
       background: var(--soft); padding: 1px 4px; border-radius: 4px; }
a { color: var(--accent); }
nav { margin: 12px 0 20px; font-size: 14px; color: var(--muted); }
nav a { margin-right: 14px; white-space: nowrap; }
.callout { border-left: 5px solid #d4a72c; background: #fff8c5; padding: 12px 16px;
           border-radius: 6px; margin: 16px 0; max-width: 90ch; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(240px, 1fr));
         gap: 12px; margin: 12px 0; }
.fact { border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px;
        background: var(--soft); }
.fact .label { font-size: 13px; color: var(--muted); }
.fact .value { font-size: 20px; font-weight: 600; font-variant-numeric: tabular-nums; }
.fact .value .ci { font-size: 14px; font-weight: 400; color: var(--muted); }
.fact .detail { font-size: 13px; color: var(--muted); }
.table-wrap { overflow-x: auto; margin: 10px 0 4px; }
table { border-collapse: collapse; font-size: 14px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--line); padding: 4px 10px; text-align: left;
         white-space: nowrap; }
th { background: var(--soft); font-weight: 600; }
tbody tr:nth-child(even) td { background: #fbfcfd; }
.source { font-size: 13px; color: var(--muted); margin-top: 2px; }
figure { margin: 16px 0; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; }
figcaption { font-size: 13px; color: var(--muted); max-width: 90ch; }
.clips { display: grid; gap: 16px; }
.clip { border: 1px solid var(--line); border-radius: 8px; padding: 12px; margin: 0; }
.clip figcaption { color: var(--fg); font-weight: 600; margin-bottom: 8px; }
.clip-body { display: flex; gap: 14px; align-items: flex-start; flex-wrap: wrap; }
.clip-body img { border: 0; image-rendering: pixelated; }
.shares { font-size: 13px; border: 0; }
.shares td { border: 0; padding: 1px 6px 1px 0; background: none !important; }
.bar { display: inline-block; height: 10px; background: #cf222e; border-radius: 2px;
       vertical-align: middle; }
details { margin-top: 8px; font-size: 13px; }
details img { max-width: 100%; margin-top: 6px; }
.provenance td:nth-child(n+2) { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas,
                                monospace; font-size: 12.5px; white-space: normal;
                                word-break: break-all; min-width: 18ch; }
"""


def data_uri(path: Any) -> str:
    """The bytes of an image file as a ``data:`` URI (local or any ``tf.io.gfile`` URL)."""
    from kvlrp.infra import fs

    p = fs.path(path)
    mime = _MIME.get(p.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64,{base64.b64encode(p.read_bytes()).decode('ascii')}"


def inline(text: str) -> str:
    """Inline markdown (``code``, ``**bold**``, ``*emphasis*``, ``[text](link)``) as HTML,
    everything else escaped."""
    parts = str(text).split("`")
    out = []
    for k, part in enumerate(parts):
        if k % 2:  # inside backticks: literal
            out.append(f"<code>{html.escape(part)}</code>")
            continue
        s = html.escape(part, quote=False)
        s = _LINK.sub(lambda m: f'<a href="{_href(m.group(2))}">{m.group(1)}</a>', s)
        s = _BOLD.sub(r"<strong>\1</strong>", s)
        out.append(_EM.sub(r"<em>\1</em>", s))
    return "".join(out)


def _href(link: str) -> str:
    """A link as an attribute value (the text around it is escaped already)."""
    return link.replace('"', "&quot;")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def to_html(blocks: list[Block], root: Any, title: str) -> str:
    """The page: a contents line from the level-2 headings, then every block."""
    body = [_block(b, root) for b in blocks]
    headings = [b.text for b in blocks if isinstance(b, Heading) and b.level == 2]
    nav = " ".join(f'<a href="#{_slug(h)}">{inline(h)}</a>' for h in headings)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"<main>\n{body[0] if body else ''}\n<nav>{nav}</nav>\n"
            + "\n".join(body[1:]) + "\n</main>\n</body>\n</html>\n")


def _block(block: Block, root: Any) -> str:
    if isinstance(block, Heading):
        return (f'<h{block.level} id="{_slug(block.text)}">{inline(block.text)}'
                f"</h{block.level}>")
    if isinstance(block, Paragraph):
        return f"<p>{inline(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{inline(i)}</li>" for i in block.items) + "</ul>"
    if isinstance(block, Callout):
        return (f'<div class="callout"><strong>{inline(block.title)}</strong> '
                f"{inline(block.text)}</div>")
    if isinstance(block, Facts):
        return '<div class="facts">' + "".join(
            f'<div class="fact"><div class="label">{inline(label)}</div>'
            f'<div class="value">{_fact_value(value)}</div>'
            f'<div class="detail">{inline(detail)}</div></div>'
            for label, value, detail in block.items) + "</div>"
    if isinstance(block, Table):
        source = ""
        if block.source is not None:
            name = html.escape(str(block.source).replace("\\", "/").rsplit("/", 1)[-1])
            source = (f'<p class="source">Every column: <a href="'
                      f'{html.escape(relative(block.source, root))}">{name}</a></p>')
        return _table(block.frame) + source
    if isinstance(block, Figure):
        return (f'<figure><img src="{data_uri(block.path)}" alt="{html.escape(block.caption)}">'
                f"<figcaption>{inline(block.caption)}</figcaption></figure>")
    if isinstance(block, Heatmaps):
        return '<div class="clips">' + "".join(_clip(c) for c in block.clips) + "</div>"
    if isinstance(block, Provenance):
        return _table(provenance_table(block.runs), css="provenance")
    raise TypeError(f"not a report block: {block!r}")


def _fact_value(value: str) -> str:
    """A headline value, its interval (``0.25 [0.00, 0.75]``) set smaller beside it."""
    main, sep, interval = str(value).partition(" [")
    if not sep:
        return inline(value)
    return f'{inline(main)} <span class="ci">[{html.escape(interval)}</span>'


def _table(frame: pd.DataFrame, css: str = "") -> str:
    head = "".join(f"<th>{inline(str(c))}</th>" for c in frame.columns)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    cls = f' class="{css}"' if css else ""
    return (f'<div class="table-wrap"><table{cls}><thead><tr>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table></div>")


def _clip(clip: HeatmapClip) -> str:
    """One heatmap clip: its animation beside its frame shares, the still strip folded."""
    anim = clip.gif if clip.gif is not None else clip.strip
    shares = ""
    if clip.shares:
        top = max(clip.shares) or 1.0
        shares = '<table class="shares"><tbody>' + "".join(
            f"<tr><td>frame {t}</td><td>{100 * s:.1f}%</td><td><span class=\"bar\" "
            f'style="width:{max(1.0, 120 * s / top):.0f}px"></span></td></tr>'
            for t, s in enumerate(clip.shares)) + "</tbody></table>"
    still = ""
    if clip.gif is not None:
        still = ("<details><summary>every frame at once (rows: input, relevance, temporal "
                 f'part)</summary><img src="{data_uri(clip.strip)}" '
                 f'alt="{html.escape(clip.title)}, every frame"></details>')
    return (f'<figure class="clip"><figcaption>{html.escape(clip.title)}</figcaption>'
            f'<div class="clip-body"><img src="{data_uri(anim)}" '
            f'alt="{html.escape(clip.title)}, animated">{shares}</div>{still}</figure>')
