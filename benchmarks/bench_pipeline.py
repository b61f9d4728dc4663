"""Clips per second: the shard pipeline vs what a C3D training step consumes vs PyAV per clip.

Builds (or reuses) a synthetic dataset, prepares JPEG and raw shards, then measures

1. ``train_dataset`` from shards (random clips, crop, flip, normalise, batch), clips/s;
2. a ``c3d_small`` training step (``train_on_batch``) on batches of the same clips, clips/s;
3. decoding the same kind of clips straight from the video files with PyAV each time
   (decode from the first frame to the clip's end, pick frames, crop, normalise), clips/s.

The target is a shard pipeline at least 5x faster than training consumes. The table is printed
and written to ``benchmarks/results/pipeline.md``. ``--quick`` runs a small smoke version.

    python benchmarks/bench_pipeline.py            # full (lead, quiet machine)
    python benchmarks/bench_pipeline.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import _machine  # noqa: E402  (chooses TF's CPU kernels before TensorFlow loads)
import numpy as np  # noqa: E402

_machine.setup()

RESULTS = Path(__file__).resolve().parent / "results" / "pipeline.md"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="existing synthetic dataset folder (with manifest.csv)")
    parser.add_argument("--videos-per-class", type=int, default=24)
    parser.add_argument("--size", type=int, default=64, help="synthetic frame size")
    parser.add_argument("--crop", type=int, default=56, help="clip crop size")
    parser.add_argument("--clip-len", type=int, default=8)
    parser.add_argument("--step", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=60, help="timed pipeline batches")
    parser.add_argument("--train-steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--pyav-clips", type=int, default=200, help="timed PyAV clips")
    parser.add_argument("--out", default=None,
                        help=f"results markdown file (default {RESULTS}; with --quick "
                        f"{RESULTS.with_name('pipeline_quick.md')})")
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.videos_per_class, args.size, args.crop = 3, 32, 28
        args.batch_size, args.batches, args.train_steps, args.pyav_clips = 8, 8, 4, 24
    if args.out is None:
        args.out = str(RESULTS.with_name("pipeline_quick.md") if args.quick else RESULTS)
    return args


def time_pipeline(shard_dir: Path, spec, batch_size: int, batches: int) -> float:
    """Clips per second of ``train_dataset`` after two warm-up batches."""
    from kvlrp.data.clips.pipeline import train_dataset

    iterator = iter(train_dataset(shard_dir, spec, batch_size, seed=0))
    for _ in range(2):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        clips, _ = next(iterator)
    clips.numpy()
    return batches * batch_size / (time.perf_counter() - start)


def build_model(num_classes: int, spec):
    """``kvlrp.models.c3d_small`` (compiled with Adam)."""
    from kvlrp.models import c3d_small

    model = c3d_small(num_classes, frames=spec.clip_len, size=spec.size)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def time_training(shard_dir: Path, spec, batch_size: int, steps: int) -> float:
    """Clips per second one ``train_on_batch`` step consumes (data already in memory)."""
    from kvlrp.data.clips.pipeline import train_dataset
    from kvlrp.data.shards.folder import read_classes

    batches = list(train_dataset(shard_dir, spec, batch_size, seed=1).take(min(steps, 4)))
    model = build_model(len(read_classes(shard_dir)), spec)
    for clips, labels in batches[:2]:
        model.train_on_batch(clips, labels)
    start = time.perf_counter()
    for k in range(steps):
        clips, labels = batches[k % len(batches)]
        model.train_on_batch(clips, labels)
    return steps * batch_size / (time.perf_counter() - start)


def pyav_clip(path: str, spec, rng: np.random.Generator) -> np.ndarray:
    """One random training clip decoded from the file with PyAV (``read_video``, no shards)."""
    from kvlrp.data.clips import clip_sampling
    from kvlrp.video import read_video

    frames = read_video(path).frames
    # the frame count is only known after decoding (mkv/webm declare none)
    n = len(frames)
    start = int(rng.choice(clip_sampling.valid_starts(n, spec.clip_len, spec.step)))
    indices = clip_sampling.clip_indices(n, start, spec.clip_len, spec.step, "loop")
    clip = np.stack([frames[i] for i in indices])
    top = int(rng.integers(0, clip.shape[1] - spec.size + 1))
    left = int(rng.integers(0, clip.shape[2] - spec.size + 1))
    clip = clip[:, top:top + spec.size, left:left + spec.size]
    if rng.random() < 0.5:
        clip = clip[:, :, ::-1]
    return clip.astype(np.float32) * (2 / 255) - 1


def pyav_clip_early_stop(path: str, n_frames: int, spec, rng: np.random.Generator):
    """Like :func:`pyav_clip` but with the frame count known: decode only up to the clip's end."""
    import av
    from av.video.reformatter import VideoReformatter

    from kvlrp.data.clips import clip_sampling
    start = int(rng.choice(clip_sampling.valid_starts(n_frames, spec.clip_len, spec.step)))
    indices = clip_sampling.clip_indices(n_frames, start, spec.clip_len, spec.step, "loop")
    wanted, picked, to_rgb = set(indices), {}, VideoReformatter()
    with av.open(path) as container:
        for t, frame in enumerate(container.decode(video=0)):
            if t in wanted:
                picked[t] = to_rgb.reformat(frame, format="rgb24").to_ndarray()
            if t >= max(indices):
                break
    clip = np.stack([picked[i] for i in indices])
    top = int(rng.integers(0, clip.shape[1] - spec.size + 1))
    left = int(rng.integers(0, clip.shape[2] - spec.size + 1))
    clip = clip[:, top:top + spec.size, left:left + spec.size]
    return clip.astype(np.float32) * (2 / 255) - 1


def time_pyav(index, spec, n_clips: int, early_stop: bool) -> float:
    """Clips per second decoding each clip from its video file with PyAV."""
    rng = np.random.default_rng(0)
    rows = index.sample(n_clips, replace=True, random_state=0)
    pyav_clip(rows["path"].iloc[0], spec, rng)  # warm-up (imports, codec initialisation)
    start = time.perf_counter()
    for path, n_frames in zip(rows["path"], rows["n_frames"]):
        if early_stop:
            pyav_clip_early_stop(path, int(n_frames), spec, rng)
        else:
            pyav_clip(path, spec, rng)
    return n_clips / (time.perf_counter() - start)


def main(argv=None) -> int:
    args = parse_args(argv)

    from kvlrp.data.clips.spec import ClipSpec
    from kvlrp.data.shards.folder import prepare_shards, read_index
    from kvlrp.data.synth import write_synthetic_dataset

    spec = ClipSpec(clip_len=args.clip_len, step=args.step, size=args.crop)
    with tempfile.TemporaryDirectory(prefix="bench_pipeline_") as tmp:
        tmp = Path(tmp)
        if args.data:
            manifest = Path(args.data) / "manifest.csv"
        else:
            t0 = time.perf_counter()
            manifest = write_synthetic_dataset(tmp / "synth", args.videos_per_class,
                                               size=args.size)
            print(f"synthetic dataset: {time.perf_counter() - t0:.1f} s")
        prepare_s, pipeline = {}, {}
        for encoding in ("jpeg", "raw"):
            t0 = time.perf_counter()
            result = prepare_shards(manifest, tmp / encoding, encoding=encoding, workers=2,
                                    progress=False)
            prepare_s[encoding] = time.perf_counter() - t0
            pipeline[encoding] = time_pipeline(tmp / encoding, spec, args.batch_size, args.batches)
            print(f"shards ({encoding}): prepare {prepare_s[encoding]:.1f} s, "
                  f"pipeline {pipeline[encoding]:.0f} clips/s")
        training = time_training(tmp / "jpeg", spec, args.batch_size, args.train_steps)
        print(f"c3d_small training step: {training:.0f} clips/s")
        index = read_index(tmp / "jpeg")
        index = index[index["split"] == "train"]
        pyav_full = time_pyav(index, spec, args.pyav_clips, early_stop=False)
        pyav_stop = time_pyav(index, spec, args.pyav_clips, early_stop=True)
        print(f"PyAV per clip: {pyav_full:.1f} clips/s (whole video), "
              f"{pyav_stop:.1f} clips/s (stop at clip end)")
        n_videos, n_frames = result.n_videos, int(read_index(tmp / "raw")["n_frames"].sum())

    rows = [
        ("shard pipeline, JPEG frames (`train_dataset`)", pipeline["jpeg"]),
        ("shard pipeline, raw frames (`train_dataset`)", pipeline["raw"]),
        ("c3d_small training step consumes (`train_on_batch`)", training),
        ("PyAV per clip, decode whole video", pyav_full),
        ("PyAV per clip, decode up to clip end", pyav_stop),
    ]
    table = ["| source | clips/s | x training |", "|---|---:|---:|"]
    table += [f"| {name} | {rate:.1f} | {rate / training:.2f} |" for name, rate in rows]
    verdict = "met" if min(pipeline.values()) >= 5 * training else "NOT met"
    lines = [
        "# Pipeline benchmark",
        "",
        f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}."
        + (" Smoke run (--quick): small sizes, numbers not representative." if args.quick
           else ""),
        "",
        f"Clips: `{spec}`; batch {args.batch_size}; {n_videos} synthetic videos "
        f"({n_frames} frames, {args.size}x{args.size}); shards prepared with 2 workers in "
        f"{prepare_s['jpeg']:.1f} s (JPEG) / {prepare_s['raw']:.1f} s (raw).",
        _machine.machine_line(),
        "",
        *table,
        "",
        f"Target (shard pipeline >= 5x what training consumes): {verdict} "
        f"({min(pipeline.values()) / training:.1f}x).",
        "",
    ]
    text = "\n".join(lines)
    print("\n" + "\n".join(table))
    print(f"\ntarget >= 5x: {verdict}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
