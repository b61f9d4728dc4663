"""``kvlrp synth``: write the synthetic video dataset (real encoded videos + manifest.csv)."""

from __future__ import annotations

import argparse
import sys

from kvlrp.commands.shared.options import positive_int

HELP = "write the synthetic video dataset (classes differ only in slow temporal dynamics)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``kvlrp synth``."""
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0,
                        help="everything follows from it, the files' bytes included")
    parser.add_argument("--videos-per-class", type=positive_int, default=24)
    parser.add_argument("--size", type=positive_int, default=64,
                        help="frame height and width (even)")
    parser.add_argument("--min-frames", type=positive_int, default=64)
    parser.add_argument("--max-frames", type=positive_int, default=160)
    parser.add_argument("--format", default=".mp4", choices=[".mp4", ".mkv", ".avi", ".webm"],
                        help="container (codec: the first available encoder for it; every "
                        "format is written reproducibly, see synth.json)")


def run(args: argparse.Namespace) -> int:
    """Write the dataset and print where it went and which codec encoded it."""
    import pandas as pd

    from kvlrp.data.synth import CLASSES, read_synth_info, write_synthetic_dataset
    from kvlrp.infra.safe_paths import check_out_dir

    try:
        check_out_dir(args.out)
        manifest = write_synthetic_dataset(
            args.out, videos_per_class=args.videos_per_class, seed=args.seed, size=args.size,
            min_frames=args.min_frames, max_frames=args.max_frames, suffix=args.format,
            progress=True,
        )
    except ValueError as err:  # bad arguments: say what, no traceback
        print(f"kvlrp synth: {err}", file=sys.stderr)
        return 2
    info = read_synth_info(manifest.parent)
    splits = pd.read_csv(manifest)["split"].value_counts().to_dict()
    codec = info["codec"] + (" (H.264)" if info["codec"] == "libx264" else "")
    print(f"wrote {info['n_videos']} videos ({', '.join(CLASSES)}), codec {codec}, "
          f"{info['total_frames']} frames; splits {splits}")
    print(f"manifest: {manifest}")
    print(f"parameters and checksums: {manifest.parent / 'synth.json'}")
    return 0
