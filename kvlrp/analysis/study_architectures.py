"""``run_architectures_study``: :func:`kvlrp.analysis.study.run_study` for several
architectures on the same shards, and the comparison across architectures.

Per architecture ``A`` the folder ``out/A`` is a study of its own (``seed<N>/`` per seed and
``study_*.csv``), trained with the same clip length, step, size and budget as the others. Each
seed is explained twice over the same clips: with the architecture's *natural* analyzer
(:func:`natural_analyzer`, in ``explain/``) and with one *common* analyzer every architecture
supports (default ``cp_lrp``, in ``explain_common/``; when the two are the same, ``explain/``
serves both).

Tables in ``out``:

- ``study_architectures.csv``: one row per architecture and analyzer kind (``natural`` /
  ``common``): the mean over seeds and a 95 % Student-t interval over seeds
  (:func:`~kvlrp.analysis.study.t_interval`) of the test video accuracy at the training step,
  of the frame-shuffled control's accuracy, of the val-selected step's paired test gain (with
  the per-seed selected steps, their mode and the seeds gaining / losing), and per explained
  step ``K`` (column suffix ``_stepK``) of the border score, the relative border score, its
  paired change against the training step and, where explain wrote them, the pooled relative
  border score and change (NaN otherwise). Accuracies do not depend on the analyzer: both rows
  of an architecture repeat them.
- ``study_architecture_pairs.csv``: one row per pair of architectures (``model_a`` before
  ``model_b`` in the order given), quantity, analyzer kind and step: the per-seed difference
  ``A - B`` and its mean with a t-interval over seeds. ``test_accuracy_train_step`` is
  computed from the per-video predictions over the same test videos (the shards are shared),
  with each seed's discordant counts and exact McNemar p; ``test_gain`` is the difference of
  the val-selected gains; ``relative_border_score`` (and ``border_score``,
  ``pooled_relative_border_score``) per analyzer kind and explained step.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kvlrp.analysis.measures.paired import discordant_counts, mcnemar_exact
from kvlrp.analysis.measures.seeds import t_interval
from kvlrp.infra.atomic import write_csv, write_json

logger = logging.getLogger(__name__)

__all__ = ["COMMON_ANALYZER", "ArchitectureData", "architecture_kwargs", "architecture_pairs",
           "architecture_rows", "natural_analyzer", "read_architecture",
           "run_architectures_study"]

#: The analyzer every architecture of ``kvlrp train`` supports (checked on every ``_small``).
COMMON_ANALYZER = "cp_lrp"
#: Natural analyzer by architecture family (the name's prefix); others: the explain default.
_NATURAL = {"vivit": "attnlrp", "timesformer": "attnlrp", "cnn_gru": "lrp.epsilon"}
KINDS = ("natural", "common")
#: Border quantities per explained step in ``study_architectures.csv`` (with interval columns
#: ``_ci_low`` / ``_ci_high`` except ``border_score``).
STEP_QUANTITIES = ("border_score", "relative_border_score", "relative_border_change",
                   "pooled_relative_border_score", "pooled_relative_border_change")
#: Per-step quantities compared between architectures.
PAIR_STEP_QUANTITIES = ("border_score", "relative_border_score", "pooled_relative_border_score")
PAIR_COLUMNS = ["model_a", "model_b", "quantity", "analyzer_kind", "step", "n_seeds", "mean",
                "std", "ci_low", "ci_high", "n_a_higher", "n_b_higher", "per_seed",
                "per_seed_n_videos", "per_seed_n_a_only", "per_seed_n_b_only",
                "per_seed_mcnemar_p"]


def natural_analyzer(model: str) -> str:
    """The analyzer an architecture is explained with by default: ``attnlrp`` for the
    transformers (ViViT, TimeSformer), ``lrp.epsilon`` for the recurrent CNN + GRU, and
    ``deep_taylor.bounded`` (explain's default) for the 3D CNNs."""
    from kvlrp.analysis.explain.config import DEFAULT_ANALYZER

    for prefix, name in _NATURAL.items():
        if model.startswith(prefix):
            return name
    return DEFAULT_ANALYZER


def architecture_kwargs(model: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The model options ``model``'s builder takes; the others are left out with a log line
    (``--widths`` of ``c3d_small`` means nothing to ``vivit_small``)."""
    from kvlrp.models import ARCHITECTURES

    accepted = inspect.signature(ARCHITECTURES[model]).parameters
    kept = {k: v for k, v in kwargs.items() if k in accepted}
    dropped = sorted(set(kwargs) - set(kept))
    if dropped:
        logger.info("study: %s takes no %s; not passed to it", model, ", ".join(dropped))
    return kept


def per_model_options(models: Sequence[str],
                      options: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``options`` per architecture of ``models`` (empty for the others), refused in one line
    where it names an architecture not studied or an option its builder does not take."""
    from kvlrp.models import ARCHITECTURES

    unknown = sorted(set(options) - set(models))
    if unknown:
        raise ValueError(f"model options for {', '.join(unknown)}, which the study does not "
                         f"train; give options only for {', '.join(models)}")
    per_model = {}
    for model in models:
        given = dict(options.get(model, {}))
        accepted = set(inspect.signature(ARCHITECTURES[model]).parameters) - {"num_classes"}
        wrong = sorted(set(given) - accepted)
        if wrong:
            raise ValueError(f"{model} takes no option {', '.join(wrong)}; its options: "
                             f"{', '.join(sorted(accepted))}")
        per_model[model] = given
    return per_model


@dataclass
class ArchitectureData:
    """One architecture's study, as read back from its folder."""

    model: str
    analyzers: dict[str, str]
    seeds: pd.DataFrame
    border: pd.DataFrame
    #: ``seed, video_id, label_index, correct`` at the training step (test split, no control).
    videos: pd.DataFrame
    #: ``seed, control, video_accuracy`` of the control rows (``control != "none"``).
    controls: pd.DataFrame
    #: ``seed, analyzer_kind, step, position, mean_share, prior_share, pooled_share,
    #: pooled_prior_share`` (class ``all``).
    profiles: pd.DataFrame


def read_architecture(arch_dir: str | Path, model: str | None = None) -> ArchitectureData:
    """Read an architecture's study folder (written by :func:`kvlrp.analysis.study.run_study`
    with a common analyzer) back for the tables across architectures."""
    import json

    arch_dir = Path(arch_dir)
    summary = json.loads((arch_dir / "summary.json").read_text())
    seeds = pd.read_csv(arch_dir / "study_seeds.csv")
    border = pd.read_csv(arch_dir / "study_border.csv")
    folders = summary.get("explain_folders", {"natural": "explain"})
    analyzers = dict(summary.get("analyzers", {}))
    videos, controls, profiles = [], [], []
    for seed, train_step in zip(seeds["seed"], seeds["train_step"]):
        run = arch_dir / f"seed{seed}"
        v = pd.read_csv(run / "strides" / "video_predictions.csv")
        v = v[(v["control"] == "none") & (v["step"] == train_step)]
        videos.append(v[["video_id", "label_index", "correct"]].assign(seed=seed))
        table = pd.read_csv(run / "strides" / "stride_accuracy.csv")
        c = table[table["control"] != "none"]
        controls.append(c[["control", "video_accuracy"]].assign(seed=seed))
        for kind, sub in folders.items():
            p = pd.read_csv(run / sub / "frame_relevance_summary.csv")
            p = p[p["class"].astype(str) == "all"]
            profiles.append(_with_pooled_shares(
                p[["step", "position", "mean_share", "prior_share"]], run / sub).assign(
                seed=seed, analyzer_kind=kind))
    return ArchitectureData(
        model=model or str(summary.get("train", {}).get("model", arch_dir.name)),
        analyzers=analyzers, seeds=seeds, border=border,
        videos=pd.concat(videos, ignore_index=True),
        controls=pd.concat(controls, ignore_index=True),
        profiles=pd.concat(profiles, ignore_index=True))


def _with_pooled_shares(profile: pd.DataFrame, explain_dir: Path) -> pd.DataFrame:
    """``profile`` with ``pooled_share`` and ``pooled_prior_share`` per step and position
    (:func:`~kvlrp.analysis.measures.pooled.pooled_profiles`; NaN without per-clip relevance)."""
    from kvlrp.analysis.measures.pooled import pooled_profiles

    profile = profile.assign(pooled_share=np.nan, pooled_prior_share=np.nan)
    frame = pd.read_csv(explain_dir / "frame_relevance.csv")
    if "relevance" not in frame.columns:
        return profile
    prior_file = explain_dir / "frame_relevance_prior.csv"
    prior = pd.read_csv(prior_file) if prior_file.exists() and prior_file.stat().st_size \
        else None
    for step in profile["step"].unique():
        p, q = pooled_profiles(frame, prior, int(step))
        rows = profile.index[profile["step"] == step]
        positions = profile.loc[rows, "position"].to_numpy(int)
        if len(p) > positions.max(initial=-1):
            profile.loc[rows, "pooled_share"] = p[positions]
            if q is not None:
                profile.loc[rows, "pooled_prior_share"] = q[positions]
    return profile


def _interval(row: dict, name: str, values: Sequence[float], bounds: bool = True) -> None:
    mean, _, low, high = t_interval([float(x) for x in values])
    row[name] = mean
    if bounds:
        row[f"{name}_ci_low"], row[f"{name}_ci_high"] = low, high


def _mode(values: Sequence[Any]) -> Any:
    """The most frequent value (the smallest among ties); NaN for none."""
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return math.nan
    counts = pd.Series(vals).value_counts()
    return min(counts[counts == counts.max()].index)


def architecture_rows(data: ArchitectureData) -> list[dict]:
    """The ``study_architectures.csv`` rows of one architecture (one per analyzer kind in its
    border table)."""
    seeds = data.seeds
    base: dict[str, Any] = {"model": data.model, "n_seeds": len(seeds),
                            "seeds": " ".join(str(s) for s in seeds["seed"]),
                            "train_step": _mode(list(seeds["train_step"])),
                            "n_test_videos": int(seeds["n_test_videos"].max())}
    _interval(base, "test_accuracy_train_step", seeds["test_accuracy_train_step"])
    controls = data.controls
    base["control"] = " ".join(sorted(set(controls["control"].astype(str)))) or "none"
    per_seed_control = controls.groupby("seed")["video_accuracy"].mean() if len(controls) \
        else pd.Series(dtype=float)
    _interval(base, "control_accuracy", per_seed_control.to_numpy())
    base["selected_steps"] = " ".join(str(s) for s in seeds["selected_step"])
    base["selected_step_mode"] = _mode(list(seeds["selected_step"]))
    _interval(base, "test_gain", seeds["test_gain"])
    gains = seeds["test_gain"].astype(float)
    base["n_seeds_gaining"], base["n_seeds_losing"] = int((gains > 0).sum()), int(
        (gains < 0).sum())
    rows = []
    border = data.border
    for kind in [k for k in KINDS if k in set(border["analyzer_kind"])]:
        b = border[border["analyzer_kind"] == kind]
        row = {**base, "analyzer_kind": kind,
               "analyzer": data.analyzers.get(kind, str(b["analyzer"].iloc[0]))}
        row["explained_steps"] = " ".join(str(s) for s in sorted(b["step"].unique()))
        for step, g in b.groupby("step", sort=True):
            for q in STEP_QUANTITIES:
                values = g[q] if q in g else [math.nan] * len(g)
                _interval(row, f"{q}_step{step}", values, bounds=q != "border_score")
        rows.append(row)
    return rows


def architectures_table(datas: Sequence[ArchitectureData]) -> pd.DataFrame:
    """``study_architectures.csv``: the rows of every architecture, identity columns first."""
    table = pd.DataFrame([r for d in datas for r in architecture_rows(d)])
    first = ["model", "analyzer_kind", "analyzer"]
    return table[first + [c for c in table.columns if c not in first]]


def _pair_row(a: str, b: str, quantity: str, kind: str, step: Any,
              diffs: Mapping[int, float]) -> dict:
    vals = [float(diffs[s]) for s in sorted(diffs)]
    mean, std, low, high = t_interval(vals)
    finite = [x for x in vals if np.isfinite(x)]
    return {"model_a": a, "model_b": b, "quantity": quantity, "analyzer_kind": kind,
            "step": step, "n_seeds": len(finite), "mean": mean, "std": std, "ci_low": low,
            "ci_high": high, "n_a_higher": sum(x > 0 for x in finite),
            "n_b_higher": sum(x < 0 for x in finite),
            "per_seed": " ".join(f"{x:.4g}" for x in vals)}


def _accuracy_pair(a: ArchitectureData, b: ArchitectureData) -> dict:
    """Test accuracy at the training step, A - B, paired per seed over the same videos."""
    diffs, n_videos, a_only, b_only, p = {}, [], [], [], []
    for seed in sorted(set(a.videos["seed"]) & set(b.videos["seed"])):
        va = a.videos[a.videos["seed"] == seed]
        vb = b.videos[b.videos["seed"] == seed]
        both = va.merge(vb, on="video_id", suffixes=("_a", "_b"))
        if len(both) != max(len(va), len(vb)):
            logger.warning("study: %s and %s share %d of %d / %d test videos (seed %s); "
                           "compared on the shared ones", a.model, b.model, len(both),
                           len(va), len(vb), seed)
        if not len(both):
            continue
        ca, cb = both["correct_a"].astype(bool), both["correct_b"].astype(bool)
        diffs[seed] = float(ca.mean() - cb.mean())
        first, second = discordant_counts(ca.to_numpy(), cb.to_numpy())
        n_videos.append(len(both))
        a_only.append(first)
        b_only.append(second)
        p.append(mcnemar_exact(first, second))
    row = _pair_row(a.model, b.model, "test_accuracy_train_step", "", math.nan, diffs)
    row.update(per_seed_n_videos=" ".join(map(str, n_videos)),
               per_seed_n_a_only=" ".join(map(str, a_only)),
               per_seed_n_b_only=" ".join(map(str, b_only)),
               per_seed_mcnemar_p=" ".join(f"{x:.4g}" for x in p))
    return row


def _seed_values(frame: pd.DataFrame, column: str) -> dict[int, float]:
    return {int(s): float(v) for s, v in zip(frame["seed"], frame[column])} \
        if column in frame else {}


def _paired(va: Mapping[int, float], vb: Mapping[int, float]) -> dict[int, float]:
    return {s: va[s] - vb[s] for s in sorted(set(va) & set(vb))}


def architecture_pairs(datas: Sequence[ArchitectureData]) -> pd.DataFrame:
    """``study_architecture_pairs.csv`` (see the module docstring)."""
    rows = []
    for a, b in itertools.combinations(datas, 2):
        rows.append(_accuracy_pair(a, b))
        rows.append(_pair_row(a.model, b.model, "test_gain", "", math.nan,
                              _paired(_seed_values(a.seeds, "test_gain"),
                                      _seed_values(b.seeds, "test_gain"))))
        for kind in KINDS:
            ba = a.border[a.border["analyzer_kind"] == kind]
            bb = b.border[b.border["analyzer_kind"] == kind]
            for step in sorted(set(ba["step"]) & set(bb["step"])):
                sa, sb = ba[ba["step"] == step], bb[bb["step"] == step]
                for q in PAIR_STEP_QUANTITIES:
                    diffs = _paired(_seed_values(sa, q), _seed_values(sb, q))
                    if any(np.isfinite(v) for v in diffs.values()):
                        rows.append(_pair_row(a.model, b.model, q, kind, int(step), diffs))
    pairs = pd.DataFrame(rows, columns=PAIR_COLUMNS)
    pairs["step"] = pairs["step"].astype("Int64")  # empty for the per-seed quantities
    return pairs


def run_architectures_study(
    shard_dir: str | Path,
    out_dir: str | Path,
    models: Sequence[str],
    seeds: Sequence[int] = (0, 1, 2),
    train_kwargs: Mapping[str, Any] | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    per_model_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    common_analyzer: str = COMMON_ANALYZER,
    explain_kwargs: Mapping[str, Any] | None = None,
    **study_kwargs: Any,
) -> dict:
    """A study (:func:`~kvlrp.analysis.study.run_study`) per architecture into ``out/MODEL``
    and the tables across them (see the module docstring) with ``summary.json`` (``kind:
    study_architectures``).

    Parameters
    ----------
    models
        Architectures (keys of :data:`kvlrp.models.ARCHITECTURES`), at least two, distinct.
    train_kwargs
        Training settings shared by every architecture (``clip_len``, ``step``, ``size``,
        ``epochs``, ...; no ``model`` nor ``seed``).
    model_kwargs
        Builder options (``widths``, ``dense_units``, ...), each passed only to the
        architectures whose builder takes it (:func:`architecture_kwargs`).
    per_model_kwargs
        Builder options of one architecture each (``{"c3d_small": {"widths": (8, 16, 32)}}``);
        they override ``model_kwargs`` for that architecture (:func:`per_model_options`).
    common_analyzer
        The analyzer every architecture is also explained with.
    explain_kwargs
        As for ``run_study``; its ``analyzer`` is each architecture's :func:`natural_analyzer`.
    study_kwargs
        ``explain_steps``, ``stride_steps``, ``strides_kwargs``, ``n_boot``, ``progress``.
    """
    from kvlrp.analysis.explain.frames import check_analyzer_name
    from kvlrp.analysis.runs.provenance import run_provenance
    from kvlrp.analysis.study import run_study

    models = [str(m) for m in models]
    if len(models) < 2 or len(set(models)) != len(models):
        raise ValueError(f"models must be at least two distinct architectures; got {models}")
    train_kwargs = dict(train_kwargs or {})
    if {"model", "seed"} & set(train_kwargs):
        raise ValueError("train_kwargs must not hold 'model' or 'seed': the study sets them")
    check_analyzer_name(common_analyzer)
    per_model = per_model_options(models, per_model_kwargs or {})
    explain_kwargs = {k: v for k, v in dict(explain_kwargs or {}).items() if k != "analyzer"}
    out = Path(out_dir)
    studies, datas = {}, []
    for i, model in enumerate(models):
        logger.info("study: architecture %s (%d/%d) -> %s", model, i + 1, len(models),
                    out / model)
        studies[model] = run_study(
            shard_dir, out / model, seeds=seeds,
            train_kwargs={**train_kwargs, "model": model,
                          **architecture_kwargs(model, model_kwargs or {}),
                          **per_model[model]},
            explain_kwargs={**explain_kwargs, "analyzer": natural_analyzer(model)},
            common_analyzer=common_analyzer, **study_kwargs)
        datas.append(read_architecture(out / model, model))
    table = architectures_table(datas)
    pairs = architecture_pairs(datas)
    files = {"study_architectures": write_csv(table, out / "study_architectures.csv"),
             "study_architecture_pairs": write_csv(pairs, out / "study_architecture_pairs.csv")}
    summary = {
        "kind": "study_architectures", "models": models, "seeds": [int(s) for s in seeds],
        "shards": str(shard_dir), "train": train_kwargs,
        "train_per_model": {m: studies[m]["train"] for m in models},
        "analyzers": {m: studies[m]["analyzers"] for m in models},
        "common_analyzer": common_analyzer,
        "n_test_videos": int(table["n_test_videos"].max()),
        "across_seed_interval": "95 % Student-t interval of the mean over seeds",
        "studies": {m: str(out / m) for m in models},
        "files": {k: str(v) for k, v in files.items()},
        "provenance": run_provenance(None, shard_dir),
    }
    write_json(summary, out / "summary.json")
    return summary
