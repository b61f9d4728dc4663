"""``kvlrp prepare``: decode every video of a manifest once into TFRecord shards."""

from __future__ import annotations

import argparse
import sys

HELP = "decode every video of a manifest once into TFRecord shards"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``kvlrp prepare``."""
    parser.add_argument("manifest", help="CSV with path,label[,split,video_id,group], or a "
                                         "class-folder tree ROOT/<class>/<video>")
    parser.add_argument("--group-regex", default=None,
                        help="class-folder tree: group key from each file name (see `kvlrp "
                             "manifest`)")
    parser.add_argument("--out", required=True, help="shard folder")
    parser.add_argument("--encoding", choices=["jpeg", "raw"], default="jpeg",
                        help="frame storage: jpeg (small) or raw (lossless, fast to read)")
    parser.add_argument("--jpeg-quality", type=int, default=95)
    parser.add_argument("--short-side", type=int, default=None,
                        help="resize frames so the shorter side has this many pixels")
    parser.add_argument("--videos-per-shard", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="decoding processes")
    parser.add_argument("--allow-truncated", action="store_true",
                        help="keep the decodable part of truncated videos instead of skipping")
    parser.add_argument("--allow-outside-root", action="store_true",
                        help="read files outside the manifest's folder (absolute paths, ../, "
                             "symlinks out); by default such a manifest is refused")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Prepare the shards; print counts and where everything went."""
    from kvlrp.data.manifest import ManifestError
    from kvlrp.data.shards import prepare_shards

    try:
        manifest = _manifest(args)
        result = prepare_shards(
            manifest, args.out, encoding=args.encoding, jpeg_quality=args.jpeg_quality,
            short_side=args.short_side, videos_per_shard=args.videos_per_shard,
            workers=args.workers, allow_truncated=args.allow_truncated,
            progress=not args.no_progress, allow_outside_root=args.allow_outside_root,
        )
    except (ManifestError, ValueError) as err:
        print(f"kvlrp prepare: {err}", file=sys.stderr)
        return 2
    reused = f" ({result.n_reused_shards} shard(s) reused from an earlier run)" \
        if result.n_reused_shards else ""
    print(f"{result.n_videos} videos in shards{reused}; {len(result.skipped)} skipped")
    for path, reason in result.skipped.head(10).itertuples(index=False):
        print(f"  skipped {path}: {reason}")
    print(f"shards: {result.out_dir}")
    print(f"index: {result.out_dir / 'index.csv'}")
    print(f"skipped list: {result.out_dir / 'skipped.csv'}")
    return 0 if result.n_videos else 1


def _manifest(args: argparse.Namespace):
    """The manifest CSV path, or for a folder the manifest of its class-folder tree."""
    from pathlib import Path

    if not Path(args.manifest).is_dir():
        return args.manifest
    from kvlrp.data.layouts import build_manifest
    from kvlrp.data.manifest import manifest_from_table

    result = build_manifest("class-folders", args.manifest, group_regex=args.group_regex)
    for note in result.notes:
        print(f"{args.manifest} read as class folders: {note}")
    return manifest_from_table(result.table, base_dir=Path(args.manifest))
