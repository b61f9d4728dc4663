"""Matplotlib (Agg) figures of the reports: relevance profiles, accuracy per step, flipping,
the across-seed study and the comparison across architectures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kvlrp.infra.atomic import atomic_write


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _fmt_ci(value: float, low: float, high: float) -> str:
    return f"{value:.2f} [{low:.2f}, {high:.2f}]"


def plot_profiles(summary: pd.DataFrame, borders: pd.DataFrame, path: str | Path,
                  cls: str = "all") -> Path:
    """Share per frame position (mean, 95 % interval, prior) and the relative profile, one
    column per step."""
    plt = _pyplot()
    data = summary[summary["class"].astype(str) == cls]
    steps = sorted(data["step"].unique())
    fig, axes = plt.subplots(2, len(steps), figsize=(3.6 * len(steps), 5.6), squeeze=False,
                             sharey="row")
    for j, step in enumerate(steps):
        d = data[data["step"] == step].sort_values("position")
        b = borders[(borders["step"] == step) & (borders["class"].astype(str) == cls)].iloc[0]
        ax = axes[0, j]
        ax.plot(d["position"], d["mean_share"], "o-", color="C3", label="trained")
        ax.fill_between(d["position"], d["ci_low"], d["ci_high"], color="C3", alpha=0.25,
                        label="95% interval")
        if d["prior_share"].notna().any():
            ax.plot(d["position"], d["prior_share"], "s--", color="0.4", label="prior (re-init)")
        ax.set_title(f"step {step}: B = "
                     f"{_fmt_ci(b.border_score, b.border_ci_low, b.border_ci_high)}", fontsize=9)
        ax.set_xlabel("frame position")
        ax = axes[1, j]
        if d["relative_share"].notna().any():
            ax.plot(d["position"], d["relative_share"], "o-", color="C0")
            ax.set_title(f"relative B = {_fmt_ci(b.relative_border_score, b.relative_border_ci_low, b.relative_border_ci_high)}", fontsize=9)  # noqa: E501
        else:
            ax.set_title("no prior computed", fontsize=9)
        ax.axhline(1.0, color="0.6", lw=0.8)
        ax.set_xlabel("frame position")
    axes[0, 0].set_ylabel("relevance share")
    axes[1, 0].set_ylabel("share / prior (mean 1)")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"Where in the clip the model looks (class: {cls})", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_temporal(summary: pd.DataFrame, path: str | Path) -> Path:
    """Share of each position's relevance that is temporal (selective relevance), all clips
    with its 95 % interval and each class, one panel per step."""
    plt = _pyplot()
    steps = sorted(summary["step"].unique())
    fig, axes = plt.subplots(1, len(steps), figsize=(3.8 * len(steps), 3.6), squeeze=False,
                             sharey="row")
    for ax, step in zip(axes[0], steps):
        d = summary[summary["step"] == step]
        for k, (cls, g) in enumerate(d.groupby(d["class"].astype(str), sort=False)):
            g = g.sort_values("position")
            if cls == "all":
                ax.plot(g["position"], g["temporal_share"], "o-", color="k", label="all")
                ax.fill_between(g["position"], g["temporal_ci_low"], g["temporal_ci_high"],
                                color="k", alpha=0.15)
            else:
                ax.plot(g["position"], g["temporal_share"], ".--", lw=0.9, color=f"C{k}",
                        label=cls)
        ax.set_title(f"temporal share, step {step}", fontsize=9)
        ax.set_xlabel("frame position")
    axes[0, 0].set_ylabel("temporal relevance / relevance")
    axes[0, -1].legend(fontsize=6, loc="best")
    fig.tight_layout()
    return _save(fig, path)


def plot_strides(table: pd.DataFrame, path: str | Path, best: dict | None = None) -> Path:
    """Video accuracy (95 % interval) and clip accuracy per step; the shuffled control."""
    plt = _pyplot()
    rows = table[table["control"] == "none"].sort_values("step")
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    err = np.vstack([rows["video_accuracy"] - rows["ci_low"],
                     rows["ci_high"] - rows["video_accuracy"]])
    ax.errorbar(rows["step"], rows["video_accuracy"], yerr=err, fmt="o-", capsize=3,
                color="C0", label="video accuracy (95% interval)")
    ax.plot(rows["step"], rows["clip_accuracy"], "s--", color="C1", label="clip accuracy")
    for _, c in table[table["control"] != "none"].iterrows():
        ax.plot([c["step"]], [c["video_accuracy"]], "x", ms=10, mew=2, color="C3",
                label=f"frames shuffled (step {c['step']})")
    if best is not None:
        ax.axvline(best["best_step"], color="0.7", ls=":", label=f"best step {best['best_step']}")
    ax.set_xlabel("step (frames between a clip's frames)")
    ax.set_ylabel("accuracy")
    ax.set_xticks(rows["step"])
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return _save(fig, path)


def plot_flipping(curves: pd.DataFrame, path: str | Path) -> Path:
    """Mean probability of the explained class while frames are removed (deletion) or
    restored (insertion), per ordering: one panel per step and curve.

    The y axis is the whole probability range [0, 1], so that curves a few thousandths apart
    look as close as they are; each title states the spread of the curves (max - min over
    all points and orderings) and the largest AUC difference.
    """
    plt = _pyplot()
    if "curve" not in curves.columns:
        curves = curves.assign(curve="deletion")
    steps = sorted(curves["step"].unique())
    kinds = [c for c in ("deletion", "insertion") if c in set(curves["curve"])]
    fig, axes = plt.subplots(len(kinds), len(steps), figsize=(4.8 * len(steps),
                                                              4.0 * len(kinds)), squeeze=False)
    for row, kind in zip(axes, kinds):
        for ax, step in zip(row, steps):
            sel = curves[(curves["step"] == step) & (curves["curve"] == kind)]
            for method, d in sel.groupby("method", sort=False):
                ax.plot(d["fraction_flipped"], d["mean_score"], "o-", ms=3,
                        label=f"{method} (AUC {d['auc'].iloc[0]:.3f})")
            spread = float(sel["mean_score"].max() - sel["mean_score"].min())
            aucs = sel.groupby("method")["auc"].first()
            verb = "removed" if kind == "deletion" else "restored"
            ax.set_ylim(-0.02, 1.02)
            ax.set_title(f"{kind}, step {step}\ncurves span {spread:.3f} in probability; "
                         f"AUCs differ by up to {float(aucs.max() - aucs.min()):.3f}",
                         fontsize=9)
            ax.set_xlabel(f"fraction of frames {verb} (most relevant first)")
            ax.set_ylabel("probability of explained class")
            ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def plot_study(seeds_df: pd.DataFrame, border_df: pd.DataFrame, path: str | Path) -> Path:
    """Left: relative border score per explained step, one line per seed. Right: the
    val-selected test gain per seed with its paired 95 % interval."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    ax = axes[0]
    if "analyzer_kind" in border_df:  # the study's own analyzer (not the common one)
        border_df = border_df[border_df["analyzer_kind"] == "natural"]
    column = ("relative_border_score" if border_df["relative_border_score"].notna().any()
              else "border_score")
    for seed, g in border_df.groupby("seed"):
        g = g.sort_values("step")
        ax.plot(g["step"], g[column], "o-", label=f"seed {seed}")
    means = border_df.groupby("step")[column].mean()
    ax.plot(means.index, means.to_numpy(), "k--", lw=2, label="mean")
    ax.axhline(1.0, color="0.6", lw=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel(column.replace("_", " "))
    ax.set_xticks(sorted(border_df["step"].unique()))
    ax.legend(fontsize=7)
    ax = axes[1]
    x = range(len(seeds_df))
    gain = seeds_df["test_gain"].astype(float)
    err = [gain - seeds_df["test_gain_ci_low"].astype(float),
           seeds_df["test_gain_ci_high"].astype(float) - gain]
    ax.errorbar(list(x), gain, yerr=err, fmt="o", capsize=3)
    ax.axhline(0.0, color="0.6", lw=0.8)
    ax.set_xticks(list(x))
    ax.set_xticklabels([f"seed {s}\nstep {k}" for s, k in zip(seeds_df["seed"],
                                                            seeds_df["selected_step"])],
                       fontsize=7)
    ax.set_ylabel("test gain (val-selected step)")
    fig.tight_layout()
    return _save(fig, path)


def _seed_interval(values: pd.Series) -> tuple[float, float, float]:
    """Mean and 95 % t-interval over seeds (the bounds NaN for one seed)."""
    from kvlrp.analysis.measures.seeds import t_interval

    mean, _, low, high = t_interval([float(x) for x in values])
    return mean, low, high


def plot_architectures(border: pd.DataFrame, seeds: pd.DataFrame, profiles: pd.DataFrame,
                       models: list[str], path: str | Path) -> Path:
    """Small multiples, one column per architecture. Top: the pooled relative border score per
    explained step (the per-clip one where explain wrote no pooled scores, raw where no prior
    was computed), mean over seeds with its 95 % t-interval, for the natural and the common
    analyzer. Middle: the val-selected test gain per seed with its paired interval, and the
    mean over seeds with its t-interval. Bottom: the pooled (else mean) share per frame
    position at the training step (mean over seeds) and the prior's shares."""
    plt = _pyplot()
    n = len(models)
    fig, axes = plt.subplots(3, n, figsize=(2.8 * n + 0.6, 7.2), squeeze=False)
    column = next(c for c in ("pooled_relative_border_score", "relative_border_score",
                              "border_score")
                  if c in border.columns and border[c].notna().any())
    styles = {"natural": ("o-", "C0"), "common": ("s--", "C1")}
    for j, model in enumerate(models):
        ax = axes[0, j]
        b = border[border["model"] == model]
        for kind, g in b.groupby("analyzer_kind"):
            stats = [(step, *_seed_interval(gs[column])) for step, gs in g.groupby("step")]
            steps, mean, low, high = (np.array(v, dtype=float) for v in zip(*stats))
            fmt, color = styles.get(str(kind), ("^:", "C2"))
            ax.errorbar(steps, mean, yerr=[mean - low, high - mean], fmt=fmt, color=color,
                        capsize=3, label=f"{kind} ({g['analyzer'].iloc[0]})")
        ax.axhline(1.0, color="0.6", lw=0.8)
        ax.set_title(model, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        if len(b):
            ax.set_xticks(sorted(b["step"].unique()))
        ax.legend(fontsize=6)
        ax = axes[1, j]
        s = seeds[seeds["model"] == model]
        gain = s["test_gain"].astype(float).to_numpy()
        x = np.arange(len(s))
        ax.errorbar(x, gain, yerr=[gain - s["test_gain_ci_low"].astype(float),
                                   s["test_gain_ci_high"].astype(float) - gain],
                    fmt="o", capsize=3, color="C0")
        mean, low, high = _seed_interval(s["test_gain"])
        ax.errorbar([len(s)], [mean], yerr=[[mean - low], [high - mean]], fmt="D", capsize=4,
                    color="k")
        ax.axhline(0.0, color="0.6", lw=0.8)
        ax.set_xticks(list(x) + [len(s)])
        ax.set_xticklabels([f"s{a}\nk={k}" for a, k in zip(s["seed"], s["selected_step"])]
                           + ["mean"], fontsize=6)
        ax = axes[2, j]
        p = profiles[profiles["model"] == model]
        for kind, g in p.groupby("analyzer_kind"):
            fmt, color = styles.get(str(kind), ("^:", "C2"))
            pooled = "pooled_share" in g.columns and g["pooled_share"].notna().any()
            share, prior = (("pooled_share", "pooled_prior_share") if pooled
                            else ("mean_share", "prior_share"))
            means = g.groupby("position")[[share, prior]].mean()
            ax.plot(means.index, means[share], fmt, color=color, ms=3, label=str(kind))
            if means[prior].notna().any():
                ax.plot(means.index, means[prior], ":", color=color, lw=1,
                        label=f"{kind} prior")
        ax.set_xlabel("frame position", fontsize=8)
        ax.legend(fontsize=6)
    axes[0, 0].set_ylabel(column.replace("_", " "), fontsize=8)
    axes[1, 0].set_ylabel("test gain (val-selected step)", fontsize=8)
    pooled = "pooled_share" in profiles.columns and profiles["pooled_share"].notna().any()
    axes[2, 0].set_ylabel(f"{'pooled' if pooled else 'mean'} share (training step)", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_layer_profiles(profiles: pd.DataFrame, path: str | Path) -> Path:
    """Depth x input frame position: the share of each layer's relevance per input frame
    (``layer_profiles.csv``), the input at the top, one column per step; a second row of
    panels relative to the prior where one was computed."""
    plt = _pyplot()
    steps = sorted(profiles["step"].unique())
    relative = profiles["relative_share"].notna().any()
    rows = 2 if relative else 1
    n_layers = profiles[["depth", "layer"]].drop_duplicates().shape[0]
    fig, axes = plt.subplots(rows, len(steps), squeeze=False,
                             figsize=(3.2 + 2.4 * len(steps), 1.2 + 0.32 * n_layers * rows))
    for j, step in enumerate(steps):
        d = profiles[profiles["step"] == step]
        order = d[["depth", "layer"]].drop_duplicates().sort_values("depth")
        for i, (column, label, cmap) in enumerate(
                [("share", "share of the layer's relevance", "viridis"),
                 ("relative_share", "relative to the prior (mean 1)", "coolwarm")][:rows]):
            grid = (d.pivot_table(index="depth", columns="position", values=column)
                    .reindex(order["depth"]))
            ax = axes[i, j]
            values = grid.to_numpy(dtype=float)
            if column == "relative_share":
                spread = np.nanmax(np.abs(values - 1.0)) if np.isfinite(values).any() else 1.0
                image = ax.imshow(values, aspect="auto", cmap=cmap, vmin=1 - spread,
                                  vmax=1 + spread, interpolation="nearest")
            else:
                image = ax.imshow(values, aspect="auto", cmap=cmap, interpolation="nearest")
            ax.set_yticks(range(len(order)))
            ax.set_yticklabels([f"{r.depth}: {r.layer}" for r in order.itertuples()]
                               if j == 0 else [], fontsize=7)
            ax.set_xticks(list(range(grid.shape[1])))
            ax.set_xticklabels([str(c) for c in grid.columns], fontsize=7)
            ax.set_xlabel("input frame position", fontsize=8)
            ax.set_title(f"step {step}: {label}", fontsize=8)
            fig.colorbar(image, ax=ax, fraction=0.05, pad=0.02)
    axes[0, 0].set_ylabel("depth: layer", fontsize=8)
    fig.suptitle("Where the preference arises: frame-position relevance per layer",
                 fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    """Save ``fig`` atomically (local or any tf.io.gfile URL, see :mod:`kvlrp.infra.atomic`)."""

    fmt = str(path).rsplit(".", 1)[-1]
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format=fmt))
    finally:
        _pyplot().close(fig)
