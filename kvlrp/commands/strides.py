"""``kvlrp strides``: accuracy per step size without retraining, with a frame-shuffled control."""

from __future__ import annotations

import argparse
import sys

from kvlrp.commands.explain import clips_arg

HELP = "clip and video accuracy per step size (test-time tuning, resumable)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``kvlrp strides`` options to ``parser``."""
    parser.add_argument("--model", required=True, help="model folder (model.keras + kvlrp.json)")
    parser.add_argument("--data", required=True, help="shard folder written by `kvlrp prepare`")
    parser.add_argument("--out", required=True, help="folder for the outputs (and partial/)")
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 2, 3, 4, 6, 8],
                        help="step sizes (default 1 2 3 4 6 8)")
    parser.add_argument("--split", default="test", help="split to evaluate (default test)")
    parser.add_argument("--clips-per-video", type=clips_arg, default=4,
                        help="evaluation clips per video (int or 'all', default 4)")
    parser.add_argument("--select-on", default=None,
                        help="split the step is chosen on (default: val when the shards have "
                             "one, else --split, which marks the gain as optimistic)")
    parser.add_argument("--no-control", action="store_true",
                        help="skip the frame-shuffled control row")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0, help="bootstrap and shuffle seed")
    parser.add_argument("--allow-unsafe", action="store_true",
                        help="load models with Lambda layers (runs code stored in the file)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run ``kvlrp strides``."""
    from kvlrp.analysis.strides_run import run_strides
    from kvlrp.models import load_model

    if min(args.steps) < 1:
        print(f"kvlrp strides: steps must be positive ints; got {args.steps}", file=sys.stderr)
        return 2
    try:
        model, info = load_model(args.model, allow_unsafe=args.allow_unsafe)
        summary = run_strides(
            model, info, args.data, args.out, steps=args.steps, split=args.split,
            clips_per_video=args.clips_per_video, control=not args.no_control,
            control_seed=args.seed, batch_size=args.batch_size, seed=args.seed,
            progress=not args.no_progress, select_on=args.select_on,
        )
    except (ValueError, FileNotFoundError) as err:  # bad input: say what, no traceback
        print(f"kvlrp strides: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # a damaged shard file: one line, not TensorFlow's traceback
        from kvlrp.data.shard_errors import corrupt_shards_message, is_data_loss

        if not is_data_loss(err):
            raise
        print(f"kvlrp strides: {corrupt_shards_message(err, args.data)}", file=sys.stderr)
        return 2
    print_strides_summary(summary, args.out)
    return 0


def print_strides_summary(summary: dict, out: str) -> None:
    """Print the stride table and where the outputs went."""
    import pandas as pd

    table = pd.DataFrame(summary["table"])
    cols = ["step", "control", "span_frames", "n_videos", "clip_accuracy", "video_accuracy",
            "ci_low", "ci_high", "n_short_clips"]
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
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
