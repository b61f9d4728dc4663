"""Options shared by ``explain`` and ``strides`` that say which model to run and how:
a kvlrp model folder, or your own ``.keras`` file with its classes and input normalisation,
and where its custom layers are defined (``--custom-objects``)."""

from __future__ import annotations

import argparse

from kvlrp.data.clips.normalization import NORMALIZATIONS


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--model`` and the options describing a bare ``.keras`` file."""
    parser.add_argument("--model", required=True,
                        help="a kvlrp model folder (model.keras + kvlrp.json), or your own "
                             "Keras video model FILE.keras (then give --normalization)")
    own = parser.add_argument_group(
        "your own model (a .keras file without kvlrp.json)",
        "clip length and crop size are read from the model's input shape; "
        "--clip-len/--size only where it leaves them open")
    own.add_argument("--classes", nargs="+", default=None, metavar="NAME",
                     help="class names in output order (space- or comma-separated; default: "
                          "the shards' class list)")
    own.add_argument("--classes-file", default=None, metavar="FILE",
                     help="class names in output order: one per line, classInd.txt-style "
                          "'<index> <name>' lines, or a JSON list")
    own.add_argument("--normalization", default=None, choices=list(NORMALIZATIONS),
                     help="input normalisation the model was trained with: "
                          + "; ".join(f"{n}: {v.description}" for n, v in
                                      NORMALIZATIONS.items()))
    own.add_argument("--clip-len", type=int, default=None,
                     help="frames per clip (only if the model's input leaves it open)")
    own.add_argument("--size", type=int, default=None,
                     help="crop size in pixels (only if the model's input leaves it open)")
    own.add_argument("--train-step", type=int, default=None,
                     help="step size the model was trained at (default 1): the reference "
                          "step of the tables")
    parser.add_argument("--allow-unsafe", action="store_true",
                        help="load models with Lambda layers (runs code stored in the file; "
                             "only the gradient analyzers explain a Lambda)")
    add_custom_objects_argument(parser)


def add_custom_objects_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--custom-objects FILE_OR_MODULE`` (every command that loads a model)."""
    parser.add_argument("--custom-objects", default=None, metavar="FILE_OR_MODULE",
                        help="a Python file or importable module that defines (and registers) "
                             "the model's custom layers or model class; imported before "
                             "loading (runs its code)")


def split_classes(values: list[str] | None) -> list[str] | None:
    """``--classes a b`` and ``--classes a,b`` alike -> ``["a", "b"]``."""
    if values is None:
        return None
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def load_from_args(args: argparse.Namespace):
    """The ``(model, info)`` the options name, checked against ``args.data`` before any work
    (a model with more classes than the shards, or the same in another order, scores the
    shards' classes; see :func:`kvlrp.models.wrap.match_shard_classes`).

    Raises
    ------
    ValueError, FileNotFoundError
        Bad or contradictory options, with one-line messages.
    """
    from kvlrp.models.custom_objects import load_custom_objects
    from kvlrp.models.wrap import load_any_model, match_shard_classes

    for flag in ("clip_len", "size", "train_step"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be a positive int, got {value}")
    model, info = load_any_model(
        args.model, classes=split_classes(args.classes), classes_file=args.classes_file,
        normalization=args.normalization, clip_len=args.clip_len, size=args.size,
        step=args.train_step, shard_dir=args.data, allow_unsafe=args.allow_unsafe,
        custom_objects=load_custom_objects(args.custom_objects))
    model, info, note = match_shard_classes(model, info, args.data)
    if note:
        print(f"kvlrp: {note}")
    return model, info
