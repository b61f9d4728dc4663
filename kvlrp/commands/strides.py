"""``kvlrp strides``: accuracy per step size without retraining, with a frame-shuffled control."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from kvlrp.commands.shared import evaluation
from kvlrp.commands.shared.options import positive_int
from kvlrp.commands.shared.scaleout import scale_kwargs

if TYPE_CHECKING:
    from kvlrp.analysis.strides.config import StridesConfig

HELP = "clip and video accuracy per step size (test-time tuning, resumable)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``kvlrp strides`` options to ``parser``."""
    evaluation.add_data_arguments(parser, out_help="folder for the outputs (and partial/)")
    parser.add_argument("--steps", type=positive_int, nargs="+", default=[1, 2, 3, 4, 6, 8],
                        help="step sizes (default 1 2 3 4 6 8)")
    evaluation.add_clip_arguments(parser, "evaluate",
                                  crops_note=", as MMAction2's ThreeCrop); probabilities are "
                                             "averaged over clips x crops per video")
    parser.add_argument("--distinct-clips", action="store_true",
                        help="drop repeated clip starts (short videos then give fewer clips at "
                             "large steps); default: every video gets --clips-per-video clips "
                             "at every step, repeating starts where it has fewer")
    parser.add_argument("--select-on", default=None,
                        help="split the step is chosen on (default: val when the shards have "
                             "one, else --split, which marks the gain as optimistic)")
    parser.add_argument("--no-control", action="store_true",
                        help="skip the frame-shuffled control row")
    evaluation.add_run_arguments(parser, batch_size=32, seed_help="bootstrap and shuffle seed")


def config_from_args(args: argparse.Namespace) -> StridesConfig:
    """The :class:`~kvlrp.analysis.strides.config.StridesConfig` of ``kvlrp strides``'s
    options (ValueError on a bad value or bad worker options)."""
    from kvlrp.analysis.strides.config import StridesConfig

    return StridesConfig(
        steps=args.steps, split=args.split, clips_per_video=args.clips_per_video,
        control=not args.no_control, control_seed=args.seed, batch_size=args.batch_size,
        seed=args.seed, progress=not args.no_progress, select_on=args.select_on,
        crops=args.crops, equal_counts=not args.distinct_clips, **scale_kwargs(args))


def run(args: argparse.Namespace) -> int:
    """Run ``kvlrp strides``."""
    from kvlrp.analysis.strides.run import run_strides

    return evaluation.run_command("strides", args, config_from_args, run_strides,
                                  print_strides_summary)


def print_strides_summary(summary: dict, out: str) -> None:
    """Print the stride table and where the outputs went."""
    import pandas as pd

    table = pd.DataFrame(summary["table"])
    cols = ["step", "control", "span_frames", "span_seconds", "n_videos", "clips_per_video",
            "clip_accuracy", "video_accuracy", "ci_low", "ci_high", "n_short_clips"]
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"(span_seconds: {summary['fps_note']})")
    best = summary["best"]
    gain = "n/a" if best["gain"] is None else f"{best['gain']:+.3f}"
    print(f"best step {best['best_step']} (video accuracy {best['best_video_accuracy']:.3f}; "
          f"gain over training step {best['train_step']}: {gain})")
    if summary.get("test_gain") is not None:
        print(f"step {summary['selected_step']} chosen on {summary['selected_on']}; on "
              f"{summary['reported_split']}: {summary['test_accuracy_train_step']:.3f} at the "
              f"training step -> {summary['test_accuracy_selected_step']:.3f}, paired gain "
              f"{summary['test_gain']:+.3f} [{summary['test_gain_ci_low']:+.3f}, "
              f"{summary['test_gain_ci_high']:+.3f}], McNemar p = {summary['mcnemar_p']:.3g}")
    if summary.get("selection_note"):
        print(f"({summary['selection_note']})")
    print(f"outputs in {out}:")
    for name, path in summary["files"].items():
        print(f"  {name}: {path}")
    print(f"  summary: {out}/summary.json")
