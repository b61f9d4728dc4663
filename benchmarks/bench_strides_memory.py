"""Peak memory of the clips ``kvlrp strides`` cuts from one long video: the whole video decoded
(``video_dataset`` + ``eval_clips``, how strides worked before issue 16) vs only the frames
each step's clips use, cropped before the conversion to float (``video_examples`` +
``example_clips``, what strides does now).

A 3000-frame 112x112 video is written and prepared once; each way is then measured in a fresh
process (resident memory sampled every 2 ms), for 4 clips per video and for every
non-overlapping clip, at steps 1 2 4 8. The table is printed and written to
``benchmarks/results/strides_memory.md``.

    python benchmarks/bench_strides_memory.py            # 3000 frames
    python benchmarks/bench_strides_memory.py --quick    # 600 frames, smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import _machine  # noqa: E402  (chooses TF's CPU kernels before TensorFlow loads)

_machine.setup()

RESULTS = Path(__file__).resolve().parent / "results" / "strides_memory.md"
STEPS = (1, 2, 4, 8)


def make_shards(folder: Path, n_frames: int, size: int) -> Path:
    """One long video (a slowly drifting gradient) beside its manifest, prepared to shards."""
    import numpy as np
    import pandas as pd

    from kvlrp.data.shards.folder import prepare_shards
    from kvlrp.video import write_video

    y, x = np.mgrid[0:size, 0:size]
    frames = np.stack([((x + y + t) % 256).astype(np.uint8) for t in range(n_frames)])
    frames = np.repeat(frames[..., None], 3, axis=-1)
    write_video(folder / "long.mp4", frames)
    pd.DataFrame([{"path": "long.mp4", "label": "a", "split": "test", "video_id": "long"}]
                 ).to_csv(folder / "manifest.csv", index=False)
    return prepare_shards(folder / "manifest.csv", folder / "shards", workers=0,
                          progress=False).out_dir


def measure(shards: str, way: str, n_clips: str) -> dict:
    """In this process: peak RSS growth (MB) while cutting the clips of every step."""
    import tensorflow as tf

    from kvlrp.data.clips.pipeline import (
        eval_clips,
        example_clips,
        video_dataset,
        video_examples,
    )
    from kvlrp.data.clips.spec import ClipSpec

    clips = n_clips if n_clips == "all" else int(n_clips)
    specs = {s: ClipSpec(clip_len=8, step=s, size=56) for s in STEPS}
    if way == "whole video":
        ds = video_dataset(shards, "test")

        def cut(video, spec):
            return eval_clips(video["frames"], spec, clips)
    else:
        ds, encoding = video_examples(shards, "test")

        def cut(video, spec):
            return example_clips(video["frames"], spec, clips, encoding)
    sampler = _RssSampler()
    n = 0
    with sampler:
        video = next(iter(ds))
        for spec in specs.values():
            out = cut(video, spec)
            n += int(tf.shape(out["clip"])[0])
            del out
    return {"way": way, "clips_per_video": n_clips, "n_clips": n,
            "peak_growth_mb": sampler.peak_growth_mb}


class _RssSampler:
    """Samples this process's resident memory every 2 ms inside the block; ``peak_growth_mb``
    is the highest sample minus the value at entry."""

    def __enter__(self):
        import threading

        self.start = self.peak = _rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _rss_mb())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())
        self.peak_growth_mb = self.peak - self.start


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--quick", action="store_true", help="600 frames (smoke run)")
    parser.add_argument("--out", default=None)
    parser.add_argument("--_child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._child:
        print(json.dumps(measure(*args._child)))
        return
    if args.quick:
        args.frames = 600
    out = Path(args.out or (RESULTS.with_name("strides_memory_quick.md") if args.quick
                            else RESULTS))
    with tempfile.TemporaryDirectory() as tmp:
        shards = make_shards(Path(tmp), args.frames, args.size)
        rows = []
        for n_clips in ("4", "all"):
            for way in ("whole video", "needed frames"):
                proc = subprocess.run(
                    [sys.executable, __file__, "--_child", str(shards), way, n_clips],
                    capture_output=True, text=True, check=True, env=os.environ.copy())
                rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    lines = ["# Peak memory of strides' clips from one long video", "",
             f"Video: {args.frames} frames, {args.size}x{args.size}, JPEG shards; clips of 8 "
             f"frames cropped to 56x56, steps {' '.join(map(str, STEPS))}.",
             _machine.machine_line(),
             "Resident memory (sampled every 2 ms) of a fresh process while it reads the video "
             "and cuts every step's clips: highest value minus the value before (MB).", "",
             "| clips per video | clips | whole video decoded (MB) | needed frames only (MB) "
             "| ratio |", "|---|---|---|---|---|"]
    for n_clips in ("4", "all"):
        whole, needed = (next(r for r in rows if r["way"] == w and r["clips_per_video"] ==
                              n_clips) for w in ("whole video", "needed frames"))
        ratio = needed["peak_growth_mb"] / max(whole["peak_growth_mb"], 1e-9)
        lines.append(f"| {n_clips} | {whole['n_clips']} | {whole['peak_growth_mb']:.0f} | "
                     f"{needed['peak_growth_mb']:.0f} | {ratio:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
