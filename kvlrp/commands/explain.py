"""``kvlrp explain``: frame-position relevance, border score, position prior, frame flipping and
heatmaps of a trained model over evaluation clips."""

from __future__ import annotations

import argparse
import sys

HELP = "relevance per frame position (border effect, prior, flipping, heatmaps) of a model"


def clips_arg(value: str) -> int | str:
    """``--clips-per-video``: a positive int or ``all``."""
    if value == "all":
        return value
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int or 'all', got {value!r}")
    return n


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``kvlrp explain`` options to ``parser``."""
    parser.add_argument("--model", required=True, help="model folder (model.keras + kvlrp.json)")
    parser.add_argument("--data", required=True, help="shard folder written by `kvlrp prepare`")
    parser.add_argument("--out", required=True,
                        help="folder for the CSV/JSON/PNG/GIF outputs (and partial/, from "
                             "which an interrupted run resumes)")
    parser.add_argument("--analyzer", default="deep_taylor.bounded",
                        help="analyzers name (default deep_taylor.bounded, bounds from the "
                             "model's input normalisation)")
    parser.add_argument("--steps", type=int, nargs="+", default=None,
                        help="step sizes to explain at (default: the training step)")
    parser.add_argument("--split", default="test", help="split to explain (default test)")
    parser.add_argument("--clips-per-video", type=clips_arg, default=4,
                        help="evaluation clips per video (int or 'all', default 4)")
    parser.add_argument("--prior-seeds", type=int, default=3,
                        help="re-initialised copies for the position prior (0: none)")
    parser.add_argument("--target", default="predicted", choices=["predicted", "label"],
                        help="explain the predicted class (default) or the true label")
    parser.add_argument("--heatmaps", type=int, default=3, help="heatmap clips per step")
    parser.add_argument("--flip-videos", type=int, default=24,
                        help="videos (one clip each) for frame flipping and heatmaps")
    parser.add_argument("--flip-fill", default="mean", choices=["mean", "zero"],
                        help="frame flipping: replace a frame by the clip's mean frame "
                             "(default) or by 0 (mid-grey under symmetric normalisation)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0, help="bootstrap and prior seed")
    parser.add_argument("--allow-unsafe", action="store_true",
                        help="load models with Lambda layers (runs code stored in the file)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run ``kvlrp explain``."""
    from kvlrp.analysis.explain_run import run_explain
    from kvlrp.models import load_model

    try:
        model, info = load_model(args.model, allow_unsafe=args.allow_unsafe)
        summary = run_explain(
            model, info, args.data, args.out, analyzer=args.analyzer, steps=args.steps,
            split=args.split, clips_per_video=args.clips_per_video,
            prior_seeds=args.prior_seeds, target=args.target, n_heatmaps=args.heatmaps,
            flip_videos=args.flip_videos, flip_fill=args.flip_fill,
            batch_size=args.batch_size, seed=args.seed,
            progress=not args.no_progress,
        )
    except (ValueError, FileNotFoundError) as err:  # bad input: say what, no traceback
        print(f"kvlrp explain: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # a damaged shard file: one line, not TensorFlow's traceback
        from kvlrp.data.shard_errors import corrupt_shards_message, is_data_loss

        if not is_data_loss(err):
            raise
        print(f"kvlrp explain: {corrupt_shards_message(err, args.data)}", file=sys.stderr)
        return 2
    print_explain_summary(summary, args.out)
    return 0


def print_explain_summary(summary: dict, out: str) -> None:
    """Print border scores and where the outputs went."""
    print(f"explained {summary['n_clips']} clips with {summary['analyzer']} "
          f"({summary['n_excluded']} excluded: zero total relevance)")
    for b in summary["border"]:
        print(f"  step {b['step']}: border score {b['border_score']:.3f} "
              f"[{b['border_ci_low']:.3f}, {b['border_ci_high']:.3f}], relative "
              f"{b['relative_border_score']:.3f} "
              f"[{b['relative_border_ci_low']:.3f}, {b['relative_border_ci_high']:.3f}]")
    print(f"outputs in {out}:")
    for name, path in summary["files"].items():
        print(f"  {name}: {path}")
    print(f"  summary: {out}/summary.json; heatmaps: {len(summary['heatmaps'])} files in "
          f"{out}/heatmaps")
