"""``kvlrp prepare``: decode every video of a manifest once into TFRecord shards."""

from __future__ import annotations

import argparse

from kvlrp.commands.shared import preflight
from kvlrp.commands.shared.errors import BAD_INPUT, bad_input_is_a_command_error
from kvlrp.commands.shared.options import non_negative_int, positive_float, positive_int

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
    parser.add_argument("--jpeg-quality", type=positive_int, default=95)
    parser.add_argument("--short-side", type=positive_int, default=None,
                        help="resize frames so the shorter side has this many pixels")
    parser.add_argument("--fps", type=positive_float, default=None,
                        help="resample every video to this frame rate at decode (frames "
                             "dropped or repeated), so one step spans the same time in every "
                             "video; index.csv keeps each file's own rate")
    parser.add_argument("--videos-per-shard", type=positive_int, default=32)
    parser.add_argument("--workers", type=non_negative_int, default=2,
                        help="decoding processes (0: decode in this process)")
    parser.add_argument("--allow-truncated", action="store_true",
                        help="keep the decodable part of truncated videos instead of skipping")
    parser.add_argument("--allow-outside-root", action="store_true",
                        help="read files outside the manifest's folder (absolute paths, ../, "
                             "symlinks out); by default such a manifest is refused")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--runner", choices=["local", "beam"], default="local",
                        help="local: decoding processes on this machine (default); beam: an "
                             "Apache Beam pipeline (pip install 'kvlrp[beam]')")
    parser.add_argument("--beam-options", default="",
                        help="Beam pipeline options in one string, given with '=' (it starts "
                             "with --): --beam-options=\"--runner=DirectRunner "
                             "--direct_num_workers=2\" or --beam-options=\"--runner="
                             "DataflowRunner --project=P --region=R --temp_location="
                             "gs://B/tmp\"")


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse a missing manifest and a shard folder that cannot be written, before any
    work."""
    preflight.existing(args.manifest, "MANIFEST", "a manifest CSV or a class-folder tree")
    preflight.out_dir(args.out)


def run(args: argparse.Namespace) -> int:
    """Prepare the shards; print counts and where everything went."""
    from kvlrp.data.manifests.manifest import ManifestError
    from kvlrp.data.shards.folder import prepare_shards

    with bad_input_is_a_command_error((ManifestError, *BAD_INPUT)):
        manifest = _manifest(args)
        # the options both runners take (each checks them through kvlrp.data.shards.prepare_inputs)
        common = {"encoding": args.encoding, "jpeg_quality": args.jpeg_quality,
                  "short_side": args.short_side, "videos_per_shard": args.videos_per_shard,
                  "allow_truncated": args.allow_truncated, "fps": args.fps,
                  "allow_outside_root": args.allow_outside_root}
        if args.runner == "beam":
            import shlex

            from kvlrp.data.shards.beam_prepare import prepare_shards_beam

            result = prepare_shards_beam(manifest, args.out, **common,
                                         beam_args=shlex.split(args.beam_options))
        else:
            result = prepare_shards(manifest, args.out, **common, workers=args.workers,
                                    progress=not args.no_progress)
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

    from kvlrp.infra.fs import is_url

    if is_url(args.manifest) or not Path(args.manifest).is_dir():
        return args.manifest
    from kvlrp.data.manifests.layouts import build_manifest
    from kvlrp.data.manifests.manifest import manifest_from_table

    result = build_manifest("class-folders", args.manifest, group_regex=args.group_regex)
    for note in result.notes:
        print(f"{args.manifest} read as class folders: {note}")
    return manifest_from_table(result.table, base_dir=Path(args.manifest))
