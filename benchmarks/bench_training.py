"""Training speed of ``c3d_small``: one device vs ``MirroredStrategy`` on two logical CPUs.

Builds (or reuses) a synthetic dataset and its shards, then trains ``c3d_small`` through
``kvlrp.training.train`` twice, each in a fresh subprocess (logical devices must be set up
before TensorFlow starts): once on the default single device, once with
``strategy="mirrored"`` over two logical CPU devices. Reported per setting: training steps/s
and clips/s (epochs after the first, which includes tracing), seconds per epoch without and
with validation, the first epoch, and wall time. On one physical CPU the two logical devices
share the same cores, so this measures the strategy's overhead, not a speed-up; on a machine
with several GPUs the same command scales out. The table is printed and written to
``benchmarks/results/training.md``. ``--quick`` runs a small smoke version.

    python benchmarks/bench_training.py            # full (lead, quiet machine)
    python benchmarks/bench_training.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import _machine  # noqa: E402  (chooses TF's CPU kernels before TensorFlow loads)

_machine.setup()

RESULTS = Path(__file__).resolve().parent / "results" / "training.md"
SETTINGS = [
    ("single device", "default", 1),
    ("MirroredStrategy, 2 logical CPUs", "mirrored", 2),
]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="existing shard folder (from `kvlrp prepare`)")
    parser.add_argument("--videos-per-class", type=int, default=24)
    parser.add_argument("--size", type=int, default=64, help="synthetic frame size")
    parser.add_argument("--crop", type=int, default=56, help="clip crop size")
    parser.add_argument("--clip-len", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=16, help="global batch size")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--steps-per-epoch", type=int, default=20)
    parser.add_argument("--out", default=None,
                        help=f"results markdown file (default {RESULTS}; with --quick "
                        f"{RESULTS.with_name('training_quick.md')})")
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: one timed run
    args = parser.parse_args(argv)
    if args.quick:
        args.videos_per_class, args.size, args.crop = 3, 32, 28
        args.batch_size, args.epochs, args.steps_per_epoch = 8, 2, 4
    if args.out is None:
        args.out = str(RESULTS.with_name("training_quick.md") if args.quick else RESULTS)
    return args


def run_worker(spec: dict) -> None:
    """One timed training run (in its own process); prints a RESULT line of JSON."""
    import tensorflow as tf

    if spec["logical_cpus"] > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * spec["logical_cpus"]
        )
    from kvlrp.training import train

    start = time.perf_counter()
    result = train(
        spec["shards"], spec["out"], strategy=spec["strategy"], clip_len=spec["clip_len"],
        size=spec["crop"], epochs=spec["epochs"], batch_size=spec["batch_size"],
        steps_per_epoch=spec["steps_per_epoch"], seed=0, progress=False,
    )
    history = result.history
    print("RESULT " + json.dumps({
        "replicas": result.info.extra["replicas"],
        "train_seconds": history["train_seconds"].tolist(),
        "epoch_seconds": history["epoch_seconds"].tolist(),
        "wall_seconds": time.perf_counter() - start,
    }), flush=True)


def prepare_data(args, workdir: Path) -> Path:
    """Shard folder of a synthetic dataset (reused if ``--data`` is given)."""
    if args.data:
        return Path(args.data)
    from kvlrp.data.shards.folder import prepare_shards
    from kvlrp.data.synth import write_synthetic_dataset

    manifest = write_synthetic_dataset(
        workdir / "synthetic", videos_per_class=args.videos_per_class, seed=0, size=args.size
    )
    return prepare_shards(manifest, workdir / "shards", progress=False).out_dir


def measure(args, shards: Path, workdir: Path) -> list[dict]:
    """Run every setting in a subprocess and summarise its timings."""
    rows = []
    for label, strategy, cpus in SETTINGS:
        spec = {"shards": str(shards), "out": str(workdir / f"model_{strategy}"),
                "strategy": strategy, "logical_cpus": cpus, "clip_len": args.clip_len,
                "crop": args.crop, "epochs": args.epochs, "batch_size": args.batch_size,
                "steps_per_epoch": args.steps_per_epoch}
        proc = subprocess.run(
            [sys.executable, __file__, "--worker", json.dumps(spec)],
            capture_output=True, text=True, timeout=3600,
        )
        lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"{label} run failed:\n{proc.stderr[-3000:]}")
        res = json.loads(lines[-1][len("RESULT "):])
        later = res["train_seconds"][1:] or res["train_seconds"]
        later_full = res["epoch_seconds"][1:] or res["epoch_seconds"]
        per_epoch = sum(later) / len(later)
        steps_per_s = args.steps_per_epoch / per_epoch
        rows.append({
            "setting": label, "replicas": res["replicas"],
            "steps/s": steps_per_s, "clips/s": steps_per_s * args.batch_size,
            "s/epoch (train)": per_epoch, "s/epoch (+val)": sum(later_full) / len(later_full),
            "first epoch s": res["epoch_seconds"][0], "wall s": res["wall_seconds"],
        })
    return rows


def to_markdown(rows: list[dict], args) -> str:
    """Results table with the settings and the machine it ran on."""
    cols = list(rows[0])
    lines = [
        "# Training speed: c3d_small, single device vs MirroredStrategy",
        "",
        f"clip_len {args.clip_len}, crop {args.crop}, global batch {args.batch_size}, "
        f"{args.steps_per_epoch} steps/epoch, {args.epochs} epochs"
        + (" (--quick smoke run)" if args.quick else "") + "; steps/s and s/epoch average the "
        "epochs after the first (the first includes tracing).",
        _machine.machine_line(),
        "Two logical CPU devices share the same physical cores: this shows the strategy's "
        "overhead, not a speed-up.",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    for row in rows:
        cells = [f"{v:.2f}" if isinstance(v, float) else str(v) for v in row.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        run_worker(json.loads(args.worker))
        return 0
    with tempfile.TemporaryDirectory(prefix="kvlrp_bench_training_") as tmp:
        workdir = Path(tmp)
        shards = prepare_data(args, workdir)
        rows = measure(args, shards, workdir)
    text = to_markdown(rows, args)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
