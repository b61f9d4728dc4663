"""Recompute one seed's numbers of a ``kvlrp study`` from its per-clip outputs, independently of
kvlrp's code (numpy and pandas from the definitions), and print them next to the study's tables.

    python benchmarks/reproduce_study_seed.py OUT ARCH SEED

``OUT/ARCH`` is the architecture's study folder (``kvlrp study --models``; for a one-architecture
study pass ``.`` as ARCH). Recomputed:

- the test video accuracy at the training step: each video's clip probabilities
  (``strides/clip_predictions.csv``, no control) averaged, the argmax against the label;
- per analyzer kind (``explain/``, ``explain_common/``) and explained step, the border score
  ``B = mean(p[0], p[L-1]) / mean(p[1..L-2])`` of the mean share profile over the clips
  (``frame_relevance.csv``), and the relative border score: ``B`` of ``mean / prior``
  normalised to mean 1, the prior being each clip's share averaged over the re-initialised
  seeds (``frame_relevance_prior.csv``) and then over the clips;
- the pooled (ratio-of-sums) scores: ``p = sum over clips of the relevance per position /
  the sum of all of it``, the prior's ``q`` the same per re-initialised seed over the same
  clips, averaged over the seeds; pooled relative ``B = B(p / q)`` (where the table holds NaN
  because a denominator's interval includes 0, the recomputed point value is printed but
  not compared);
- the test accuracy at the val-selected step and the test gain.

Exits 1 if any value differs by more than 1e-6 (relative).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def video_accuracy(strides: Path, step: int) -> float:
    clips = pd.read_csv(strides / "clip_predictions.csv")
    clips = clips[(clips["control"] == "none") & (clips["step"] == step)]
    probs = [c for c in clips.columns if c.startswith("prob_")]
    per_video = clips.groupby("video_id")[probs + ["label_index"]].mean()
    predicted = per_video[probs].to_numpy().argmax(axis=1)
    return float((predicted == per_video["label_index"].to_numpy()).mean())


def border(profile: np.ndarray) -> float:
    return float((profile[0] + profile[-1]) / 2 / profile[1:-1].mean())


def border_scores(explain: Path, step: int) -> tuple[float, float]:
    frame = pd.read_csv(explain / "frame_relevance.csv")
    frame = frame[frame["step"] == step]
    shares = frame.pivot_table(index=["video_id", "clip_index"], columns="position",
                               values="share")
    mean = shares.to_numpy().mean(axis=0)
    prior_file = explain / "frame_relevance_prior.csv"
    prior = pd.read_csv(prior_file) if prior_file.stat().st_size else pd.DataFrame()
    prior = prior[prior["step"] == step] if len(prior) else prior
    if not len(prior):
        return border(mean), math.nan
    per_clip = prior.groupby(["video_id", "clip_index", "position"])["share"].mean().unstack()
    ratio = mean / np.nanmean(per_clip.reindex(shares.index).to_numpy(), axis=0)
    return border(mean), border(ratio / ratio.mean())


def pooled_relative_border(explain: Path, step: int) -> float:
    frame = pd.read_csv(explain / "frame_relevance.csv")
    frame = frame[frame["step"] == step]
    sums = frame.pivot_table(index=["video_id", "clip_index"], columns="position",
                             values="relevance")
    p = sums.to_numpy().sum(axis=0)
    p = p / p.sum()
    prior_file = explain / "frame_relevance_prior.csv"
    prior = pd.read_csv(prior_file) if prior_file.stat().st_size else pd.DataFrame()
    prior = prior[prior["step"] == step] if len(prior) else prior
    if not len(prior):
        return math.nan
    qs = []
    for _, rows in prior.groupby("seed"):
        per_clip = rows.pivot_table(index=["video_id", "clip_index"], columns="position",
                                    values="relevance").reindex(sums.index)
        q = np.nansum(per_clip.to_numpy(), axis=0)
        qs.append(q / q.sum())
    return border(p / np.mean(qs, axis=0))


def compare(study: Path, seed: int) -> list[tuple[str, float, float]]:
    """``(quantity, table value, recomputed value)`` for one seed."""
    seeds = pd.read_csv(study / "study_seeds.csv").set_index("seed")
    run = study / f"seed{seed}"
    train_step = int(seeds.loc[seed, "train_step"])
    rows = [("test_accuracy_train_step", float(seeds.loc[seed, "test_accuracy_train_step"]),
             video_accuracy(run / "strides", train_step))]
    selected = int(seeds.loc[seed, "selected_step"])
    at_selected = video_accuracy(run / "strides", selected)
    rows.append((f"test_accuracy_selected_step ({selected})",
                 float(seeds.loc[seed, "test_accuracy_selected_step"]), at_selected))
    rows.append(("test_gain", float(seeds.loc[seed, "test_gain"]), at_selected - rows[0][2]))
    folders = json.loads((study / "summary.json").read_text()).get(
        "explain_folders", {"natural": "explain"})
    table = pd.read_csv(study / "study_border.csv")
    if "analyzer_kind" not in table:
        table["analyzer_kind"] = "natural"
    for kind, sub in folders.items():
        mine = table[(table["seed"] == seed) & (table["analyzer_kind"] == kind)]
        for r in mine.itertuples():
            b, rel = border_scores(run / sub, int(r.step))
            rows.append((f"border_score {kind} step {r.step}", float(r.border_score), b))
            rows.append((f"relative_border_score {kind} step {r.step}",
                         float(r.relative_border_score), rel))
            if "pooled_relative_border_score" in table:
                rows.append((f"pooled_relative_border_score {kind} step {r.step}",
                             float(r.pooled_relative_border_score),
                             pooled_relative_border(run / sub, int(r.step))))
    return rows


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or bool(np.isclose(a, b, rtol=1e-6, atol=1e-12))


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__)
        return 2
    out, arch, seed = Path(argv[0]), argv[1], int(argv[2])
    rows = compare(out / arch, seed)
    width = max(len(r[0]) for r in rows)
    print(f"{'quantity':<{width}}  {'table':>12}  {'recomputed':>12}")
    bad = 0
    for name, table, mine in rows:
        undefined = name.startswith("pooled") and math.isnan(table)
        ok = undefined or _same(table, mine)
        bad += not ok
        note = "(NaN in the table: a denominator not clear of 0)" if undefined else ""
        print(f"{name:<{width}}  {table:>12.6g}  {mine:>12.6g}  {note if ok else 'DIFFERS'}")
    print("all match" if not bad else f"{bad} value(s) differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
