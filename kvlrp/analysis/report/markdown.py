"""The report of a folder of results: ``report.md`` and ``report.html`` (the same blocks) and
their plots, built from the CSVs and ``summary.json`` files of ``explain`` and ``strides`` runs
(and a study, or a study across architectures) found in the folder or its sub-folders."""

from __future__ import annotations

import json
from pathlib import Path

from kvlrp.analysis.report.architectures_section import architectures_blocks, read_architectures
from kvlrp.analysis.report.blocks import (
    Block,
    Bullets,
    Heading,
    Paragraph,
    Provenance,
    relative,
    to_markdown,
)
from kvlrp.analysis.report.explain_section import explain_blocks
from kvlrp.analysis.report.findings import at_a_glance, chance_callout
from kvlrp.analysis.report.html import to_html
from kvlrp.analysis.report.strides_section import strides_blocks
from kvlrp.analysis.report.study_section import read_study, study_blocks
from kvlrp.infra import fs
from kvlrp.infra.atomic import atomic_write

__all__ = ["build_report", "find_runs", "report_blocks"]


def find_runs(root: str | Path) -> dict[str, Path]:
    """Folders holding an ``explain`` and a ``strides`` run (``summary.json`` with ``kind``),
    searched in ``root`` and up to three levels below it (a study across architectures keeps
    them in ``ARCH/seed<N>/explain``); the shallowest first."""
    root = fs.path(root)  # local, or any tf.io.gfile URL
    if not root.is_dir():
        raise FileNotFoundError(f"report folder {root} does not exist")
    runs: dict[str, Path] = {}
    for pattern in ("summary.json", "*/summary.json", "*/*/summary.json",
                    "*/*/*/summary.json"):
        for p in sorted(root.glob(pattern)):
            try:
                kind = json.loads(p.read_text()).get("kind")
            except (ValueError, AttributeError, UnicodeDecodeError) as err:
                raise ValueError(f"{p} is not a readable summary ({type(err).__name__}: "
                                 f"{str(err).splitlines()[0] if str(err) else 'not an object'}"
                                 "); re-run the command that wrote it") from None
            if kind in ("explain", "strides") and kind not in runs:
                runs[kind] = p.parent
    if not runs:
        raise FileNotFoundError(
            f"no explain or strides results under {root}: expected a summary.json written by "
            f"`kvlrp explain` or `kvlrp strides` in it or in a sub-folder"
        )
    return runs


def report_blocks(root: str | Path) -> list[Block]:
    """The report of the results in ``root`` as blocks (writes the plots into
    ``root/plots``): the headline numbers and warnings first, then the study, explain and
    strides sections, the provenance and the files."""
    root = fs.path(root)
    runs = find_runs(root)
    plots = root / "plots"
    where = ", ".join(f"{kind} in `{relative(run, root)}/`" for kind, run in runs.items())
    blocks: list[Block] = [Heading("kvlrp report", 1), Paragraph(f"Results: {where}.")]
    callout = chance_callout(runs.get("strides"), root)
    if callout is not None:
        blocks.append(callout)
    glance = at_a_glance(runs.get("explain"), runs.get("strides"))
    if glance is not None:
        blocks += [Heading("At a glance"), glance]
    study = architectures_blocks(root, plots) + study_blocks(root, plots)
    if study and runs:
        seed = relative(next(iter(runs.values())).parent, root)
        study.append(Paragraph(f"The sections below show one seed, `{seed}/` (its explain "
                               f"and strides runs); `kvlrp report` of another seed's folder "
                               f"reports that seed."))
    blocks += study
    if "explain" in runs:
        blocks += explain_blocks(runs["explain"], plots)
    if "strides" in runs:
        blocks += strides_blocks(runs["strides"], plots)
    return blocks + _provenance_blocks(root, runs) + _file_blocks(root, runs)


def _provenance_blocks(root: Path, runs: dict[str, Path]) -> list[Block]:
    """Where each result came from: the ``provenance`` of every summary."""
    records = {}
    study = read_study(root) or read_architectures(root)
    if study is not None:
        records["study"] = study.get("provenance")
    for kind, run in runs.items():
        records[kind] = json.loads((run / "summary.json").read_text()).get("provenance")
    text = ("Which model file and shards each result was computed from, with which software, "
            "on which machine, by which command and when (UTC); every `summary.json` keeps "
            "these under `provenance`. The shards fingerprint covers the folder's index, "
            "classes, frame options and shard sizes, not its path.")
    if any(p is None for p in records.values()):
        text += (" *n/a* throughout a column: that summary was written by a kvlrp without "
                 "provenance; re-run it to record one.")
    return [Heading("Provenance"), Paragraph(text), Provenance(records)]


def _file_blocks(root: Path, runs: dict[str, Path]) -> list[Block]:
    """Links to every CSV of the runs (the tables above show a few columns of each)."""
    studies = read_study(root) or read_architectures(root)
    folders = ([root] if studies is not None else []) + list(runs.values())
    items = []
    for folder in folders:
        csvs = sorted(folder.glob("*.csv"))
        if csvs:
            links = ", ".join(f"[{p.name}]({relative(p, root)})" for p in csvs)
            items.append(f"`{relative(folder, root)}/`: {links}")
    return [Heading("Files"), Bullets(tuple(items))] if items else []


def build_report(root: str | Path) -> Path:
    """Write ``root/report.md``, ``root/report.html`` (self-contained: images embedded) and
    ``root/plots/*.png``; returns the path of ``report.md``."""
    root = fs.path(root)  # local, or any tf.io.gfile URL
    blocks = report_blocks(root)
    text = to_markdown(blocks, root)
    page = to_html(blocks, root, title=f"kvlrp report: {root.name}")
    atomic_write(root / "report.html", lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return atomic_write(root / "report.md", lambda tmp: tmp.write_text(text, encoding="utf-8"))
