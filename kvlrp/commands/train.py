"""``kvlrp train``: train a video classifier (C3D, R3D, R(2+1)D, I3D, X3D) on random clips
from a shard folder."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from kvlrp.commands.shared.errors import bad_input_is_a_command_error
from kvlrp.commands.shared.options import count_or_all, positive_float, positive_int
from kvlrp.data.clips.normalization import NORMALIZATIONS
from kvlrp.data.clips.spec import SHORT_POLICIES

if TYPE_CHECKING:  # pragma: no cover
    from kvlrp.training import TrainConfig

HELP = "train a video classifier on random clips from shards (resumes an interrupted run)"

#: Architectures ``--model`` accepts (the keys of ``kvlrp.models.ARCHITECTURES``, listed here
#: so that building the argument parser does not import Keras).
MODELS = ("c3d_small", "c3d", "r3d_small", "r3d", "r2plus1d_small", "r2plus1d", "i3d_small",
          "i3d", "x3d_small", "x3d")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``kvlrp train`` options to ``parser``."""
    parser.add_argument("--data", required=True, help="shard folder written by `kvlrp prepare`")
    parser.add_argument("--out", required=True, help="model folder to write (or resume)")
    parser.add_argument("--model", default="c3d_small", choices=MODELS,
                        help="architecture (default c3d_small; NAME_small variants train on a CPU)")
    parser.add_argument("--clip-len", type=positive_int, default=8,
                        help="frames per clip (default 8)")
    parser.add_argument("--step", type=positive_int, default=1,
                        help="stride between a clip's frames")
    parser.add_argument("--size", type=positive_int, default=56, help="square crop size in pixels")
    parser.add_argument("--epochs", type=positive_int, default=40)
    parser.add_argument("--batch-size", type=positive_int, default=16, help="global batch size")
    parser.add_argument("--steps-per-epoch", type=positive_int, default=40,
                        help="batches per epoch (default 40)")
    parser.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--normalization", default="symmetric", choices=list(NORMALIZATIONS),
                        help="input normalisation (default symmetric; see kvlrp explain "
                             "--help for the list)")
    parser.add_argument("--short-policy", default="loop", choices=SHORT_POLICIES)
    parser.add_argument("--val-clips", type=count_or_all, default=4,
                        help="evaluation clips per validation video (int or 'all')")
    parser.add_argument("--widths", type=positive_int, nargs="+", default=None,
                        help="c3d_small: filters per convolution block (default 16 32 64); "
                             "r3d_small, r2plus1d_small: 4 stage widths (default 8 16 32 64)")
    parser.add_argument("--dense-units", type=positive_int, default=None, help="hidden dense width")
    parser.add_argument("--batch-norm", action="store_true", help="BatchNorm after convolutions")
    parser.add_argument("--temporal-padding", default=None, choices=["same", "valid"],
                        help="c3d_small: 'valid' avoids temporal zero padding")
    parser.add_argument("--head", default=None, choices=["flatten", "global_average"],
                        help="c3d_small: Flatten (as C3D) or global average pooling before fc")
    parser.add_argument("--strategy", default="default",
                        choices=["default", "mirrored", "multiworker"],
                        help="tf.distribute strategy (multiworker reads TF_CONFIG)")
    parser.add_argument("--no-resume", action="store_true",
                        help="start over even if --out holds an interrupted run")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def model_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The architecture options given on the command line (``kvlrp train`` and ``study``;
    options a command does not have count as not given)."""
    kwargs: dict[str, Any] = {}
    if getattr(args, "widths", None) is not None:
        kwargs["widths"] = tuple(args.widths)
    if getattr(args, "dense_units", None) is not None:
        kwargs["dense_units"] = args.dense_units
    if getattr(args, "batch_norm", False):
        kwargs["batch_norm"] = True
    for name in ("temporal_padding", "head"):
        if getattr(args, name, None) is not None:
            kwargs[name] = getattr(args, name)
    return kwargs


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The :class:`~kvlrp.training.TrainConfig` of ``kvlrp train``'s options."""
    from kvlrp.training import TrainConfig

    return TrainConfig.from_keywords(
        args.data, args.out, model=args.model, clip_len=args.clip_len, step=args.step,
        size=args.size, normalization=args.normalization, short_policy=args.short_policy,
        epochs=args.epochs, batch_size=args.batch_size, steps_per_epoch=args.steps_per_epoch,
        seed=args.seed, learning_rate=args.lr, val_clips=args.val_clips,
        resume=not args.no_resume, strategy=args.strategy, **model_kwargs(args),
    )


def run(args: argparse.Namespace) -> int:
    """Run ``kvlrp train``."""
    from kvlrp.training import TrainingSetupError, train

    with bad_input_is_a_command_error((TrainingSetupError,), shards=args.data):
        result = train(config=train_config(args), progress=not args.no_progress)
    if result.initial_epoch:
        print(f"resumed after epoch {result.initial_epoch}")
    last = result.history.iloc[-1].to_dict() if len(result.history) else {}
    scores = {k: round(v, 4) for k, v in last.items() if "acc" in k or "loss" in k}
    print(f"final epoch {int(last.get('epoch', 0))}: {json.dumps(scores)}")
    print(throughput_line(result.info.extra, len(result.history) - result.initial_epoch))
    print(f"model: {result.model_dir / 'model.keras'} (+ kvlrp.json)")
    print(f"history: {result.model_dir / 'history.csv'}")
    return 0


def throughput_line(extra: dict[str, Any], epochs_run: int) -> str:
    """``training throughput: N clips/s ...`` from a trained model's ``ModelInfo.extra``."""
    rate = extra.get("clips_per_second")
    if rate is None:
        return "training throughput: no epochs trained in this run"
    replicas = extra.get("replicas", 1)
    return (f"training throughput: {rate:.1f} clips/s over {epochs_run} epoch(s) on {replicas} "
            "replica(s) (input pipeline + training steps; not validation or checkpoints)")
