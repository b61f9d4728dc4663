"""Choosing the step on one split and reporting it on another, with paired tests.

Pure functions of per-video prediction tables (``video_predictions.csv``: ``step, control,
video_id, correct, ...``). The step is chosen on the *selection* split (normally ``val``) by
video accuracy with the tie rule of :func:`kvlrp.analysis.measures.accuracy.best_step`; the
*reported*
split (normally ``test``) then gives the accuracy at the training step and at the chosen step,
their paired difference over the same videos with a bootstrap interval, and the exact McNemar
p-value. Choosing on the reported split itself biases that gain upwards; the summary says so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kvlrp.analysis.measures.accuracy import best_step
from kvlrp.analysis.measures.bootstrap import N_BOOT
from kvlrp.analysis.measures.paired import discordant_counts, mcnemar_exact, paired_difference

#: Columns appended to ``stride_accuracy.csv``: each row against the training step's ordinary
#: row, paired over the videos both evaluated.
PAIRED_COLUMNS = ["n_paired_videos", "diff_vs_train_step", "diff_ci_low", "diff_ci_high",
                  "mcnemar_p"]
#: Keys of the selection part of the strides ``summary.json``.
SELECTION_KEYS = ["selected_step", "selected_on", "test_accuracy_train_step",
                  "test_accuracy_selected_step", "test_gain", "test_gain_ci_low",
                  "test_gain_ci_high", "mcnemar_p"]


def _correct(videos: pd.DataFrame, step: int, control: str = "none") -> pd.Series:
    rows = videos[(videos["step"] == step) & (videos["control"] == control)]
    return rows.set_index(rows["video_id"].astype(str))["correct"].astype(bool)


def paired_comparison(videos: pd.DataFrame, step: int, reference_step: int,
                      control: str = "none", n_boot: int = N_BOOT, seed: int = 0,
                      level: float = 0.95) -> dict:
    """Video accuracy at ``(step, control)`` minus the reference step's (ordinary clips),
    paired over the videos both have.

    Returns
    -------
    dict
        ``n_paired_videos, accuracy, reference_accuracy, diff, ci_low, ci_high, n_gained,
        n_lost, mcnemar_p`` (``n_gained``: right only at ``step``).
    """
    ref, cur = _correct(videos, reference_step).align(_correct(videos, step, control),
                                                      join="inner")
    if ref.empty:
        raise ValueError(f"no video evaluated at both step {reference_step} and step {step} "
                         f"({control})")
    diff, low, high = paired_difference(ref.to_numpy(), cur.to_numpy(), n_boot, seed, level)
    lost, gained = discordant_counts(ref.to_numpy(), cur.to_numpy())
    return {"n_paired_videos": len(ref), "accuracy": float(cur.mean()),
            "reference_accuracy": float(ref.mean()), "diff": diff, "ci_low": low,
            "ci_high": high, "n_gained": gained, "n_lost": lost,
            "mcnemar_p": mcnemar_exact(lost, gained)}


def add_paired_columns(table: pd.DataFrame, videos: pd.DataFrame, train_step: int,
                       n_boot: int = N_BOOT, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """``table`` (``stride_accuracy.csv``) with :data:`PAIRED_COLUMNS` appended; NaN where the
    training step was not evaluated."""
    has_train = ((videos["step"] == train_step) & (videos["control"] == "none")).any()
    rows = []
    for r in table.itertuples(index=False):
        if not has_train:
            rows.append({c: np.nan for c in PAIRED_COLUMNS})
            continue
        p = paired_comparison(videos, int(r.step), train_step, r.control, n_boot, seed, level)
        rows.append({"n_paired_videos": p["n_paired_videos"], "diff_vs_train_step": p["diff"],
                     "diff_ci_low": p["ci_low"], "diff_ci_high": p["ci_high"],
                     "mcnemar_p": p["mcnemar_p"]})
    return pd.concat([table.reset_index(drop=True),
                      pd.DataFrame(rows, columns=PAIRED_COLUMNS)], axis=1)


def step_accuracy(videos: pd.DataFrame) -> pd.DataFrame:
    """``step, control, video_accuracy`` per step of a per-video table."""
    return (videos.groupby(["step", "control"], sort=True)["correct"].mean()
            .rename("video_accuracy").reset_index())


def select_and_report(
    selection_videos: pd.DataFrame,
    report_videos: pd.DataFrame,
    train_step: int,
    selected_on: str,
    reported_split: str,
    n_boot: int = N_BOOT,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """Choose the step on ``selection_videos`` and report it on ``report_videos``.

    Parameters
    ----------
    selection_videos, report_videos
        Per-video tables of the two splits (the same table when the choice is made on the
        reported split).
    selected_on, reported_split
        Split names, written to the summary; equal names mark the gain as optimistic.

    Returns
    -------
    dict
        :data:`SELECTION_KEYS` plus ``reported_split``, ``selection_accuracy`` (the selected
        step's accuracy on the selection split), ``selection_tied_steps``, ``n_gained``,
        ``n_lost``, ``n_paired_videos``, ``gain_optimistic`` and a ``selection_note``.
    """
    choice = best_step(step_accuracy(selection_videos), train_step=train_step)
    chosen = int(choice["best_step"])
    optimistic = selected_on == reported_split
    out = {"selected_step": chosen, "selected_on": selected_on,
           "reported_split": reported_split,
           "selection_accuracy": choice["best_video_accuracy"],
           "selection_tied_steps": choice["tied_steps"], "gain_optimistic": optimistic}
    evaluated = set(report_videos.loc[report_videos["control"] == "none", "step"].astype(int))
    if train_step not in evaluated or chosen not in evaluated:
        missing = sorted({train_step, chosen} - evaluated)
        out.update({k: None for k in SELECTION_KEYS[2:]})
        out.update(n_gained=None, n_lost=None, n_paired_videos=None,
                   selection_note=f"step(s) {missing} not evaluated on {reported_split!r}: "
                                  f"no gain reported")
        return out
    p = paired_comparison(report_videos, chosen, train_step, n_boot=n_boot, seed=seed,
                          level=level)
    out.update({
        "test_accuracy_train_step": p["reference_accuracy"],
        "test_accuracy_selected_step": p["accuracy"], "test_gain": p["diff"],
        "test_gain_ci_low": p["ci_low"], "test_gain_ci_high": p["ci_high"],
        "mcnemar_p": p["mcnemar_p"], "n_gained": p["n_gained"], "n_lost": p["n_lost"],
        "n_paired_videos": p["n_paired_videos"],
        "selection_note": (
            f"step chosen on {selected_on!r} and reported on the same split: the gain is "
            f"optimistic (biased upwards by the choice itself)" if optimistic else
            f"step chosen on {selected_on!r}, accuracy reported on {reported_split!r} "
            f"(held out from the choice)"),
    })
    return out
