"""``kvlrp explain``: frame-position relevance, border score, position prior, frame flipping and
heatmaps of a trained model over evaluation clips."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from kvlrp.commands.shared import evaluation
from kvlrp.commands.shared.options import (
    non_negative_int,
    positive_float,
    positive_int,
)
from kvlrp.commands.shared.scaleout import scale_kwargs

if TYPE_CHECKING:
    from kvlrp.analysis.explain.config import ExplainConfig

HELP = "relevance per frame position (border effect, prior, flipping, heatmaps) of a model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``kvlrp explain`` options to ``parser``."""
    evaluation.add_data_arguments(
        parser, out_help="folder for the CSV/JSON/PNG/GIF outputs (and partial/, from which an "
                         "interrupted run resumes)")
    parser.add_argument("--analyzer", default="deep_taylor.bounded",
                        help="analyzers name (default deep_taylor.bounded, bounds from the "
                             "model's input normalisation)")
    parser.add_argument("--steps", type=positive_int, nargs="+", default=None,
                        help="step sizes to explain at (default: the training step)")
    evaluation.add_clip_arguments(parser, "explain",
                                  crops_note="); each crop is explained as a clip")
    parser.add_argument("--prior-seeds", type=non_negative_int, default=3,
                        help="re-initialised copies for the position prior (0: none)")
    parser.add_argument("--target", default="predicted", choices=["predicted", "label"],
                        help="explain the predicted class (default) or the true label")
    parser.add_argument("--heatmaps", type=non_negative_int, default=3,
                        help="heatmap clips per step")
    parser.add_argument("--flip-videos", type=non_negative_int, default=24,
                        help="videos (one clip each) for frame flipping and heatmaps")
    parser.add_argument("--flip-fill", default="mean", choices=["mean", "zero", "freeze"],
                        help="frame flipping: replace a frame by the clip's mean frame "
                             "(default), by 0 (mid-grey under symmetric normalisation) or by "
                             "its predecessor (freeze: appearance kept, motion removed)")
    parser.add_argument("--temporal-sigma", type=positive_float, default=1.0,
                        help="selective relevance: voxels whose temporal derivative of "
                             "relevance exceeds this many standard deviations are temporal")
    parser.add_argument("--layers", nargs="+", default=[], metavar="auto|NAME",
                        help="also measure relevance per input frame at intermediate layers "
                             "(layer_profiles.csv, layer_profiles.png): 'auto' for every layer "
                             "that still resolves time, or layer names (LRP / deep Taylor "
                             "analyzers only)")
    parser.add_argument("--layer-profiles", dest="layers", action="store_const",
                        const=["auto"], help="the same as --layers auto")
    parser.add_argument("--channels-layer", "--concepts", default=None, metavar="NAME",
                        help="also measure this layer's relevance per channel and input frame "
                             "(concept_profiles.csv: which channels carry the border relevance)")
    evaluation.add_run_arguments(parser, batch_size=8, seed_help="bootstrap and prior seed")


def config_from_args(args: argparse.Namespace) -> ExplainConfig:
    """The :class:`~kvlrp.analysis.explain.config.ExplainConfig` of ``kvlrp explain``'s
    options (ValueError on a bad value or bad worker options)."""
    from kvlrp.analysis.explain.config import ExplainConfig

    return ExplainConfig(
        analyzer=args.analyzer, steps=args.steps, split=args.split,
        clips_per_video=args.clips_per_video, prior_seeds=args.prior_seeds,
        target=args.target, n_heatmaps=args.heatmaps, flip_videos=args.flip_videos,
        flip_fill=args.flip_fill, temporal_sigma=args.temporal_sigma,
        batch_size=args.batch_size, seed=args.seed, progress=not args.no_progress,
        crops=args.crops, layers=tuple(args.layers), channels_layer=args.channels_layer,
        **scale_kwargs(args))


#: Checks before TensorFlow starts: the model, data and output paths.
check_arguments = evaluation.check_arguments


def run(args: argparse.Namespace) -> int:
    """Run ``kvlrp explain``."""
    from kvlrp.analysis.explain.run import run_explain

    return evaluation.run_command("explain", args, config_from_args, run_explain,
                                  print_explain_summary)


def throughput_line(summary: dict) -> str:
    """One line: clips explained per second at each step, and without the first batch (what
    it includes is in the summary's ``throughput_note``)."""
    def rate(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1f}"

    rates = "; ".join(f"step {t['step']}: {rate(t['clips_per_second'])} clips/s "
                      f"({rate(t['clips_per_second_after_first_batch'])} after the first "
                      f"batch)" for t in summary.get("throughput", []))
    return (f"explanation throughput ({summary['analyzer']} on the trained model, its "
            f"analyze() calls only): {rates or 'n/a'}")


def print_explain_summary(summary: dict, out: str) -> None:
    """Print border scores and where the outputs went."""
    print(f"explained {summary['n_clips']} clips with {summary['analyzer']} "
          f"({summary['n_excluded']} excluded: zero total relevance)")
    spans = ", ".join(f"step {s['step']}: {s['span_frames']} frames"
                      + ("" if s["span_seconds"] != s["span_seconds"]
                         else f" = {s['span_seconds']:.2f} s") for s in summary["spans"])
    print(f"clip spans: {spans} ({summary['fps_note']})")
    print(throughput_line(summary))
    for b in summary["border"]:
        print(f"  step {b['step']}: border score {b['border_score']:.3f} "
              f"[{b['border_ci_low']:.3f}, {b['border_ci_high']:.3f}], relative "
              f"{b['relative_border_score']:.3f} "
              f"[{b['relative_border_ci_low']:.3f}, {b['relative_border_ci_high']:.3f}]"
              + ("" if "pooled_relative_border_score" not in b else
                 f", pooled relative {b['pooled_relative_border_score']:.3f} "
                 f"[{b['pooled_relative_border_ci_low']:.3f}, "
                 f"{b['pooled_relative_border_ci_high']:.3f}]"))
    for b in summary.get("layer_border", []):
        print(f"  step {b['step']} layer {b['depth']} {b['layer']}: border score "
              f"{b['border_score']:.3f}, relative {b['relative_border_score']:.3f}"
              + ("" if "pooled_relative_border_score" not in b else
                 f", pooled relative {b['pooled_relative_border_score']:.3f}"))
    top = summary.get("layer_channels_top", [])
    if top:
        print("  channels carrying most border relevance: " + "; ".join(
            f"step {t['step']} channel {t['channel']} {t['border_share']:.1%}" for t in top))
    print(f"outputs in {out}:")
    for name, path in summary["files"].items():
        print(f"  {name}: {path}")
    print(f"  summary: {out}/summary.json; heatmaps: {len(summary['heatmaps'])} files in "
          f"{out}/heatmaps")
