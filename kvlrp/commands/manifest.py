"""``kvlrp manifest``: a manifest CSV from a dataset folder in one of the field's layouts."""

from __future__ import annotations

import argparse

from kvlrp.commands.shared import preflight
from kvlrp.commands.shared.errors import bad_input_is_a_command_error
from kvlrp.commands.shared.options import fraction, positive_int

HELP = "write a manifest CSV from a dataset folder (class-folders, ucf101, hmdb51, kinetics, " \
       "mmaction)"

LAYOUT_NAMES = ("class-folders", "ucf101", "hmdb51", "kinetics", "mmaction")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``kvlrp manifest``."""
    parser.add_argument("layout", choices=LAYOUT_NAMES, help="how ROOT is organised")
    parser.add_argument("root", help="the dataset folder")
    parser.add_argument("--out", required=True, help="manifest CSV to write (skipped.csv goes "
                                                     "beside it)")
    parser.add_argument("--split", type=positive_int, default=1,
                        help="official split number for ucf101 / hmdb51 (1-3, default 1)")
    parser.add_argument("--group-regex", default=None,
                        help="group key from each file name (first regex group), e.g. "
                             "'_g(\\d+)_' or '^(.*)_seg\\d+'; videos of a group share a split")
    parser.add_argument("--val-fraction", type=fraction, default=0.2,
                        help="share of each class for val (carved from train where the layout "
                             "has no val; 0: none; default 0.2)")
    parser.add_argument("--test-fraction", type=fraction, default=0.2,
                        help="share of each class for test where the layout has no splits")
    parser.add_argument("--annotations", nargs="+", default=None,
                        help="kinetics: annotation CSV(s) (default: *.csv in ROOT)")
    parser.add_argument("--list", action="append", default=None, metavar="SPLIT=FILE",
                        help="mmaction: a video list per split (default: *train*.txt, "
                             "*val*.txt, *test*.txt in ROOT)")
    parser.add_argument("--classes-file", default=None,
                        help="mmaction: class names, one per line, in label-index order")
    parser.add_argument("--seed", type=int, default=0, help="seed of the automatic splits")


def layout_options(args: argparse.Namespace) -> dict:
    """Reader options of ``args.layout`` from the command line (raises ValueError if bad)."""
    from pathlib import Path

    if args.layout in ("ucf101", "hmdb51"):
        return {"split": args.split}
    if args.layout == "kinetics":
        return {"annotations": args.annotations}
    if args.layout == "mmaction":
        lists = {}
        for item in args.list or []:
            split, sep, file = item.partition("=")
            if not sep or not file:
                raise ValueError(f"--list expects SPLIT=FILE (e.g. train=train_list.txt), got "
                                 f"{item!r}")
            lists[split] = file
        classes = None
        if args.classes_file:
            path = Path(args.classes_file)
            if not path.is_file():
                raise ValueError(f"--classes-file not found: {path}")
            classes = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        return {"lists": lists or None, "classes": classes}
    return {}


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse a manifest path whose folder cannot be written, before any work."""
    preflight.out_file(args.out)


def run(args: argparse.Namespace) -> int:
    """Build and write the manifest; print counts per split and where it went."""
    from pathlib import Path

    from kvlrp.data.manifests.layouts import build_manifest, write_manifest

    with bad_input_is_a_command_error():
        result = build_manifest(args.layout, args.root, group_regex=args.group_regex,
                                val_fraction=args.val_fraction,
                                test_fraction=args.test_fraction, seed=args.seed,
                                **layout_options(args))
        manifest, skipped = write_manifest(result, args.out)
    table = result.table
    counts = table["split"].value_counts()
    per_split = ", ".join(f"{counts.get(s, 0)} {s}" for s in ("train", "val", "test"))
    groups = table.loc[table["group"] != "", "group"].nunique()
    print(f"{len(table)} videos of {table['label'].nunique()} classes ({per_split}); "
          f"{groups} groups; {len(result.skipped)} listed but missing")
    for note in result.notes:
        print(f"  {note}")
    print(f"manifest: {manifest}")
    print(f"skipped list: {skipped}")
    if _outside(table["path"], Path(manifest).parent):
        print(f"note: the manifest lies outside {args.root}, so `kvlrp prepare` reads its videos "
              "only with --allow-outside-root (or write the manifest inside the dataset folder)")
    return 0


def _outside(paths, folder) -> bool:
    """Whether any of ``paths`` lies outside ``folder`` (as ``kvlrp prepare`` checks)."""
    from kvlrp.data.manifests.path_policy import outside_root_reason

    return any(outside_root_reason(p, folder) for p in paths)
