"""``kvlrp demo``: synthetic videos -> shards -> train ``c3d_small`` at step 1 -> explain ->
strides -> report, end to end on a CPU."""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kvlrp.commands.options import positive_int

HELP = "end-to-end demo on synthetic videos: train, explain, stride table, report"


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of one demo run (``FULL``: about 15 minutes on a laptop CPU; ``QUICK``: ~3)."""

    videos_per_class: int
    video_size: int
    min_frames: int
    max_frames: int
    clip_len: int
    size: int
    widths: tuple[int, ...]
    dense_units: int
    epochs: int
    steps_per_epoch: int | None
    batch_size: int
    explain_steps: tuple[int, ...]
    stride_steps: tuple[int, ...]
    explain_clips: int
    stride_clips: int
    prior_seeds: int
    flip_videos: int
    seed: int = 0
    train_step: int = 1
    extra: dict = field(default_factory=dict)


FULL = DemoConfig(videos_per_class=60, video_size=64, min_frames=64, max_frames=160,
                  clip_len=8, size=56, widths=(16, 32, 64), dense_units=128, epochs=40,
                  steps_per_epoch=40, batch_size=16, explain_steps=(1, 2, 4),
                  stride_steps=(1, 2, 3, 4, 6, 8), explain_clips=2, stride_clips=4,
                  prior_seeds=3, flip_videos=24)
QUICK = DemoConfig(videos_per_class=5, video_size=32, min_frames=40, max_frames=64,
                   clip_len=8, size=28, widths=(8, 16, 16), dense_units=32, epochs=3,
                   steps_per_epoch=None, batch_size=8, explain_steps=(1, 4),
                   stride_steps=(1, 2, 4), explain_clips=2, stride_clips=2, prior_seeds=2,
                   flip_videos=6)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``kvlrp demo`` options to ``parser``."""
    parser.add_argument("--out", required=True, help="folder for everything the demo writes")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes (about 3 minutes; for tests and tox)")
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help="override training epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    """Run ``kvlrp demo``."""
    import dataclasses

    config = QUICK if args.quick else FULL
    overrides = {"seed": args.seed}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    config = dataclasses.replace(config, **overrides)
    run_demo(Path(args.out), config, progress=not args.no_progress)
    return 0


def run_demo(out: Path, config: DemoConfig, progress: bool = True) -> dict[str, Path]:
    """Run every stage; returns the output locations by stage."""
    from kvlrp.analysis.explain_run import run_explain
    from kvlrp.analysis.report import build_report
    from kvlrp.analysis.strides_run import run_strides
    from kvlrp.atomic import write_json
    from kvlrp.commands.explain import print_explain_summary
    from kvlrp.commands.strides import print_strides_summary
    from kvlrp.data.shards import prepare_shards
    from kvlrp.data.synth import write_synthetic_dataset
    from kvlrp.models import load_model
    from kvlrp.training import train

    out.mkdir(parents=True, exist_ok=True)
    paths = {"data": out / "data", "shards": out / "shards", "model": out / "model",
             "explain": out / "explain", "strides": out / "strides"}
    write_json({"config": asdict(config)}, out / "demo.json")
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def stage(n: int, text: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        print(f"\n[{n}/6] {text}", flush=True)
        clock = now

    def done(name: str) -> None:
        timings[name] = round(time.perf_counter() - clock, 1)
        print(f"      ({timings[name]:.0f} s)", flush=True)

    stage(1, f"synthetic dataset: {config.videos_per_class} videos per class -> {paths['data']}")
    manifest = write_synthetic_dataset(
        paths["data"], videos_per_class=config.videos_per_class, seed=config.seed,
        size=config.video_size, min_frames=config.min_frames, max_frames=config.max_frames,
        progress=progress)
    done("synth")
    stage(2, f"decode once into shards -> {paths['shards']}")
    prepared = prepare_shards(manifest, paths["shards"], progress=progress)
    print(f"      {prepared.n_videos} videos, {len(prepared.skipped)} skipped")
    done("prepare")
    stage(3, f"train c3d_small on random clips at step {config.train_step} -> {paths['model']}")
    train(paths["shards"], paths["model"], model="c3d_small", clip_len=config.clip_len,
          step=config.train_step, size=config.size, epochs=config.epochs,
          steps_per_epoch=config.steps_per_epoch, batch_size=config.batch_size,
          seed=config.seed, progress=progress,
          widths=config.widths, dense_units=config.dense_units)
    model, info = load_model(paths["model"])
    done("train")
    stage(4, f"explain (deep_taylor.bounded) at steps {list(config.explain_steps)} -> "
             f"{paths['explain']}")
    summary = run_explain(model, info, paths["shards"], paths["explain"],
                          steps=config.explain_steps, clips_per_video=config.explain_clips,
                          prior_seeds=config.prior_seeds, flip_videos=config.flip_videos,
                          seed=config.seed, progress=progress)
    print_explain_summary(summary, str(paths["explain"]))
    done("explain")
    stage(5, f"accuracy per step {list(config.stride_steps)} -> {paths['strides']}")
    summary = run_strides(model, info, paths["shards"], paths["strides"],
                          steps=config.stride_steps, clips_per_video=config.stride_clips,
                          seed=config.seed, progress=progress)
    print_strides_summary(summary, str(paths["strides"]))
    done("strides")
    stage(6, f"report -> {out / 'report.md'}")
    paths["report"] = build_report(out)
    done("report")
    write_json({"config": asdict(config), "timings_s": timings,
                "paths": {k: str(v) for k, v in paths.items()}}, out / "demo.json")
    print("\nkvlrp demo finished. Outputs:")
    for name, path in paths.items():
        print(f"  {name:8s} {path}")
    print(f"  plots    {out / 'plots'}")
    print(f"  timings  {timings} (s)")
    return paths
