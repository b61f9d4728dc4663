"""``kvlrp study``: one model per training seed on the same shards, each explained and evaluated
per step (chosen on val, reported on test), and the findings across seeds; with ``--models A B
...`` such a study per architecture (``OUT/A/seed<N>/``) and the tables across architectures.

Each architecture is explained with its natural analyzer
(:func:`kvlrp.analysis.study_architectures.natural_analyzer`) and, with ``--models`` (or
``--common-analyzer``), also with one common analyzer (default ``cp_lrp``). ``--widths``,
``--dense-units`` and the other builder options go only to the architectures whose builder takes
them (a log line names the others)."""

from __future__ import annotations

import argparse

from kvlrp.commands.shared import preflight
from kvlrp.commands.shared.errors import CommandError, bad_input_is_a_command_error
from kvlrp.commands.shared.options import (
    add_precision_option,
    count_or_all,
    non_negative_int,
    positive_int,
)
from kvlrp.commands.train import MODELS, model_kwargs

#: ``kvlrp.analysis.study_architectures.COMMON_ANALYZER`` (not imported: it would import the
#: analysis package while building the parser).
COMMON_ANALYZER = "cp_lrp"

HELP = "several training seeds: train, explain, strides per seed; per-seed and across-seed tables"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``kvlrp study`` options to ``parser``."""
    parser.add_argument("--data", required=True, help="shard folder written by `kvlrp prepare`")
    parser.add_argument("--out", required=True,
                        help="study folder (seed<N>/ per seed; ARCH/seed<N>/ with --models)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="training seeds (default 0 1 2)")
    parser.add_argument("--model", default=None, choices=MODELS,
                        help="the architecture (default c3d_small)")
    parser.add_argument("--models", nargs="+", default=None, choices=MODELS, metavar="MODEL",
                        help="several architectures, each studied on the same shards and "
                             "settings into OUT/MODEL/, compared in study_architectures.csv "
                             "and study_architecture_pairs.csv")
    parser.add_argument("--common-analyzer", default=None, metavar="NAME",
                        help="analyzer every architecture is also explained with, into "
                             f"explain_common/ (default with --models: {COMMON_ANALYZER}; "
                             "with --model: none)")
    parser.add_argument("--clip-len", type=positive_int, default=8)
    parser.add_argument("--step", type=positive_int, default=1, help="training step")
    parser.add_argument("--size", type=positive_int, default=56)
    parser.add_argument("--epochs", type=positive_int, default=40)
    parser.add_argument("--batch-size", type=positive_int, default=16)
    parser.add_argument("--steps-per-epoch", type=positive_int, default=40)
    parser.add_argument("--model-option", action="append", default=[], metavar="MODEL.NAME=VALUE",
                        type=model_option,
                        help="a builder option of one architecture (repeatable), e.g. "
                             "c3d_small.widths=8,16,32 or cnn_gru_small.frame_features=average; "
                             "it overrides --widths / --dense-units for that architecture")
    parser.add_argument("--widths", type=positive_int, nargs="+", default=None)
    parser.add_argument("--dense-units", type=positive_int, default=None)
    parser.add_argument("--explain-steps", type=positive_int, nargs="+", default=None,
                        help="steps explained (default: the training step and the largest of "
                             "--steps)")
    parser.add_argument("--steps", type=positive_int, nargs="+", default=[1, 2, 3, 4, 6, 8],
                        help="steps of the accuracy table")
    parser.add_argument("--explain-clips", type=count_or_all, default=2,
                        help="clips per video for explain")
    parser.add_argument("--stride-clips", type=count_or_all, default=4,
                        help="clips per video for strides")
    parser.add_argument("--prior-seeds", type=non_negative_int, default=3)
    parser.add_argument("--flip-videos", type=positive_int, default=24)
    parser.add_argument("--flip-fill", default="freeze", choices=["mean", "zero", "freeze"])
    parser.add_argument("--n-boot", type=positive_int, default=1000)
    add_precision_option(parser)
    parser.add_argument("--no-progress", action="store_true")


def model_option(text: str) -> tuple[str, str, object]:
    """``MODEL.NAME=VALUE`` as ``(model, name, value)``; the value is a Python literal where it
    reads as one (``8,16,32`` a tuple, ``64`` an int), else the text (``grid``)."""
    import ast

    head, sep, value = text.partition("=")
    model, dot, name = head.partition(".")
    if not (sep and dot and model and name and value):
        raise argparse.ArgumentTypeError(f"expected MODEL.NAME=VALUE (e.g. "
                                         f"c3d_small.widths=8,16,32), got {text!r}")
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = value
    return model, name, parsed


def per_model_kwargs(args: argparse.Namespace) -> dict[str, dict[str, object]]:
    """``--model-option`` values grouped by architecture."""
    grouped: dict[str, dict[str, object]] = {}
    for model, name, value in args.model_option:
        grouped.setdefault(model, {})[name] = value
    return grouped


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse a missing shard folder and a study folder that cannot be written, before any
    work."""
    if args.model is not None and args.models is not None:
        raise CommandError("give --model (one architecture) or --models (several), not both")
    if args.models is not None and len(set(args.models)) != len(args.models):
        raise CommandError(f"--models must name distinct architectures; got {args.models}")
    if args.model_option and (args.models is None or len(args.models) < 2):
        raise CommandError("--model-option is for --models A B ...; with one architecture "
                           "give its options directly (--widths, --dense-units, ...)")
    preflight.existing(args.data, "--data", "a shard folder written by `kvlrp prepare`")
    preflight.out_dir(args.out)


def run(args: argparse.Namespace) -> int:
    """Run ``kvlrp study``."""
    from kvlrp.analysis.report.markdown import build_report
    from kvlrp.analysis.study import run_study
    from kvlrp.analysis.study_architectures import natural_analyzer, run_architectures_study

    train_kwargs = {"clip_len": args.clip_len, "step": args.step, "size": args.size,
                    "epochs": args.epochs, "batch_size": args.batch_size,
                    "steps_per_epoch": args.steps_per_epoch}
    if args.precision != "float32":  # float32 runs keep their resume settings unchanged
        train_kwargs["precision"] = args.precision
    explain_kwargs = {"clips_per_video": args.explain_clips, "prior_seeds": args.prior_seeds,
                      "flip_videos": args.flip_videos, "flip_fill": args.flip_fill}
    shared = {"seeds": args.seeds, "explain_steps": args.explain_steps,
              "stride_steps": args.steps, "strides_kwargs": {"clips_per_video": args.stride_clips},
              "n_boot": args.n_boot, "progress": not args.no_progress}
    with bad_input_is_a_command_error():
        if args.models is not None and len(args.models) > 1:
            summary = run_architectures_study(
                args.data, args.out, models=args.models, train_kwargs=train_kwargs,
                model_kwargs=model_kwargs(args), per_model_kwargs=per_model_kwargs(args),
                explain_kwargs=explain_kwargs,
                common_analyzer=args.common_analyzer or COMMON_ANALYZER, **shared)
        else:
            model = (args.models or [args.model or "c3d_small"])[0]
            summary = run_study(
                args.data, args.out, train_kwargs={**train_kwargs, "model": model,
                                                   **model_kwargs(args)},
                explain_kwargs={**explain_kwargs, "analyzer": natural_analyzer(model)},
                common_analyzer=args.common_analyzer, **shared)
    report = build_report(args.out)
    if summary["kind"] == "study_architectures":
        print_architectures_summary(summary)
    else:
        print_study_summary(summary)
    print(f"report: {report}")
    return 0


def print_architectures_summary(summary: dict) -> None:
    """Print each architecture's analyzers and where the tables went."""
    print(f"study of {len(summary['models'])} architectures over seeds {summary['seeds']} "
          f"(common analyzer {summary['common_analyzer']}):")
    for model in summary["models"]:
        names = summary["analyzers"][model]
        print(f"  {model}: natural {names['natural']}, common {names.get('common')}; "
              f"study in {summary['studies'][model]}")
    for name, path in summary["files"].items():
        print(f"  {name}: {path}")


def print_study_summary(summary: dict) -> None:
    """Print the across-seed gain and where the tables went."""
    sign = summary["test_gain_sign"]
    print(f"study over seeds {summary['seeds']}: val-selected test gain mean "
          f"{summary['test_gain_mean']:+.3f} [{summary['test_gain_ci_low']:+.3f}, "
          f"{summary['test_gain_ci_high']:+.3f}] (95 % t over seeds); {sign['positive']} "
          f"positive, {sign['negative']} negative, {sign['zero']} zero; "
          f"{summary['n_test_videos']} test videos (a seed detects about "
          f"{summary['detectable_gain_per_seed']:.3f})")
    for name, path in summary["files"].items():
        print(f"  {name}: {path}")
