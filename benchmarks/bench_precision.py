"""Training precision on this machine: float32 against bfloat16 (Keras ``mixed_bfloat16``) for
the demo's ``c3d_small``, speed and accuracy.

Data: the demo's synthetic set (``kvlrp demo``'s full sizes: 60 videos per class, 64 px,
64-160 frames), written and decoded once (or ``--data SHARDS``). Model: the demo's
``c3d_small`` (widths 16 32 64, dense 128, Flatten head), 8-frame clips at step 1, 56 px crops,
batches of 16, Adam 1e-3.

* Speed: both models (same initial weights) in one process, each with the training loop's
  own compiled step (``kvlrp.training.loop``), timed round by round in alternating order
  (``_interleave``), ``--steps`` steps per round and setting after a warm-up: (a) the step
  alone on one fixed batch, (b) the step fed by the training pipeline (a fresh
  ``train_dataset`` per round, decoding and augmenting clips, as ``clips_per_second`` of
  ``kvlrp train`` counts it). Reported: clips/s per setting and the bfloat16 / float32 ratio
  (median of the per-round ratios).
* Accuracy (``--accuracy``): ``kvlrp.training.train`` for seeds 0 1 2, each in float32 and
  bfloat16 (alternating order), ``--epochs`` epochs of 40 batches, the weights of the epoch of
  lowest validation loss kept (the training defaults). Reported per run: validation video
  and clip accuracy and loss of the kept epoch, the best validation video accuracy of any
  epoch, test video accuracy at step 1 (4 clips per video), training clips/s.

The tables are printed and written to ``benchmarks/results/precision.md``.

    python benchmarks/bench_precision.py                 # speed
    python benchmarks/bench_precision.py --accuracy      # speed and the 6 training runs
    python benchmarks/bench_precision.py --accuracy --no-speed --epochs 30 --work DIR
                                                         # the demo's 30 epochs; resumable
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import _machine  # noqa: E402  (chooses TF's CPU kernels before TensorFlow loads)

_machine.setup()

from _interleave import round_orders  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "precision.md"
PRECISIONS = ("float32", "bfloat16")
#: The demo's model (kvlrp.commands.demo.FULL).
MODEL = {"widths": (16, 32, 64), "dense_units": 128}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="existing shard folder (default: the demo's set)")
    parser.add_argument("--work", help="folder for data and models (default: a temporary one)")
    parser.add_argument("--rounds", type=int, default=6, help="timed rounds (speed)")
    parser.add_argument("--steps", type=int, default=20, help="steps per round and setting")
    parser.add_argument("--accuracy", action="store_true", help="also the 6 training runs")
    parser.add_argument("--no-speed", action="store_true",
                        help="skip the speed rounds (e.g. to finish an interrupted --accuracy "
                        "run: with the same --work, each training resumes from its last epoch)")
    parser.add_argument("--epochs", type=int, default=12, help="epochs per training run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default=str(RESULTS), help="results markdown file")
    return parser.parse_args(argv)


def demo_shards(work: Path) -> Path:
    """The demo's synthetic set (full sizes) decoded into shards under ``work``."""
    from kvlrp.commands.demo import FULL
    from kvlrp.data.shards.folder import prepare_shards
    from kvlrp.data.synth import write_synthetic_dataset

    if (work / "shards" / "index.csv").is_file():
        return work / "shards"
    manifest = write_synthetic_dataset(
        work / "data", videos_per_class=FULL.videos_per_class, seed=0, size=FULL.video_size,
        min_frames=FULL.min_frames, max_frames=FULL.max_frames, progress=False)
    return prepare_shards(manifest, work / "shards", progress=False).out_dir


def measure_speed(shards: Path, rounds: int, steps: int) -> dict[str, list[float]]:
    """Clips/s per round of ``{mode}/{precision}`` (mode: ``step`` or ``pipeline``)."""
    import keras
    import numpy as np
    import tensorflow as tf

    from kvlrp.data.clips.pipeline import train_dataset
    from kvlrp.data.clips.spec import ClipSpec
    from kvlrp.models import build_model
    from kvlrp.models.precision import precision_scope
    from kvlrp.training.loop import _make_train_step

    spec, batch = ClipSpec(clip_len=8, step=1, size=56), 16
    strategy = tf.distribute.get_strategy()
    rng = np.random.default_rng(0)
    fixed = tf.data.Dataset.from_tensors(
        (rng.uniform(-1, 1, (batch, 8, 56, 56, 3)).astype("float32"),
         rng.integers(0, 4, batch))).repeat()
    steps_of = {}
    for precision in PRECISIONS:
        keras.utils.set_random_seed(0)
        with precision_scope(precision):
            model = build_model("c3d_small", 4, frames=8, size=56, **MODEL)
        model.compile(optimizer=keras.optimizers.Adam(1e-3),
                      loss="sparse_categorical_crossentropy")
        model.optimizer.build(model.trainable_variables)
        steps_of[precision] = _make_train_step(model, strategy, batch)

    def run(setting: str, seed: int) -> float:
        mode, precision = setting.split("/")
        start = time.perf_counter()
        data = fixed if mode == "step" else train_dataset(shards, spec, batch, seed=seed)
        iterator = iter(strategy.experimental_distribute_dataset(data))
        for _ in range(steps):
            values = steps_of[precision](iterator)
        float(values[0])
        return steps * batch / (time.perf_counter() - start)

    settings = [f"{mode}/{p}" for mode in ("step", "pipeline") for p in PRECISIONS]
    for setting in settings:  # trace and warm up
        run(setting, seed=10_000)
    rates: dict[str, list[float]] = {s: [] for s in settings}
    for index, order in enumerate(round_orders(settings, rounds)):
        for setting in order:
            rates[setting].append(run(setting, seed=index))
        print(f"round {index + 1}/{rounds}: " + ", ".join(
            f"{s} {rates[s][-1]:.1f}" for s in settings) + f" clips/s; load "
            f"{os.getloadavg()[0]:.1f}", flush=True)
    return rates


def speed_table(rates: dict[str, list[float]]) -> list[str]:
    lines = ["| setting | float32 clips/s (median) | bfloat16 clips/s (median) | "
             "bfloat16 / float32 (median of per-round ratios) | range of per-round ratios |",
             "|---|---|---|---|---|"]
    for mode, label in (("step", "training step alone (one fixed batch)"),
                        ("pipeline", "training step + tf.data pipeline")):
        f32, bf16 = rates[f"{mode}/float32"], rates[f"{mode}/bfloat16"]
        ratios = [b / f for b, f in zip(bf16, f32)]
        lines.append(f"| {label} | {statistics.median(f32):.1f} | {statistics.median(bf16):.1f}"
                     f" | **{statistics.median(ratios):.2f}** | {min(ratios):.2f}-"
                     f"{max(ratios):.2f} |")
    return lines


def bf16_line() -> str:
    """One line: the CPU's bfloat16 flags and the precision ``kvlrp train --precision bfloat16``
    would get in this process (with its reason where it falls back)."""
    from kvlrp.infra.tfsetup import cpu_flags
    from kvlrp.training.precision import BF16_CPU_FLAGS, resolve_precision

    flags = sorted(BF16_CPU_FLAGS & cpu_flags()) or ["none"]
    got = resolve_precision("bfloat16")
    why = f" ({got.note})" if got.note else ""
    return (f"bfloat16 CPU flags: {', '.join(flags)}; `kvlrp train --precision bfloat16` "
            f"here trains in {got.used}{why}. The speed rows build both models directly "
            "(`precision_scope`), whatever that choice.")


def measure_accuracy(shards: Path, work: Path, seeds: list[int], epochs: int) -> list[dict]:
    """One training run per seed and precision (alternating order); their scores."""
    from kvlrp.data.clips.pipeline import eval_dataset
    from kvlrp.data.clips.spec import ClipSpec
    from kvlrp.training import evaluate_clips, train

    rows = []
    for index, seed in enumerate(seeds):
        for precision in PRECISIONS if index % 2 == 0 else PRECISIONS[::-1]:
            start = time.perf_counter()
            result = train(shards, work / f"model_{precision}_seed{seed}", model="c3d_small",
                           clip_len=8, size=56, epochs=epochs, steps_per_epoch=40,
                           batch_size=16, seed=seed, precision=precision, progress=False,
                           **MODEL)
            history = result.history
            kept = history.loc[history["epoch"] == result.info.extra["weights_from_epoch"]]
            test = evaluate_clips(result.model, eval_dataset(shards, ClipSpec(clip_len=8, size=56),
                                                             split="test", n_clips=4))
            rows.append({
                "seed": seed, "precision": result.info.extra["precision"],
                "kept epoch": int(kept["epoch"].iloc[0]),
                "val video acc.": float(kept["val_video_accuracy"].iloc[0]),
                "val clip acc.": float(kept["val_clip_accuracy"].iloc[0]),
                "val loss": float(kept["val_loss"].iloc[0]),
                "best val video acc. (any epoch)": float(history["val_video_accuracy"].max()),
                "test video acc. (step 1)": test["video_accuracy"],
                # over every epoch of the run (clips / seconds: the harmonic mean, as kvlrp
                # train reports it; a resumed run's info counts only the epochs after resuming)
                "train clips/s": float(len(history) / (1.0 / history["clips_per_second"]).sum()),
                "wall min": (time.perf_counter() - start) / 60,
            })
            print(rows[-1], flush=True)
    return rows


def accuracy_table(rows: list[dict]) -> list[str]:
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in sorted(rows, key=lambda r: (r["precision"], r["seed"])):
        lines.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v)
                                       for v in row.values()) + " |")
    for precision in PRECISIONS:
        mine = [r for r in rows if r["precision"] == precision]
        if mine:
            lines.append(f"| mean {precision} | | | " + " | ".join(
                f"{statistics.mean(r[c] for r in mine):.3f}" for c in cols[3:]) + " |")
            lines.append(f"| spread (max - min) {precision} | | | " + " | ".join(
                f"{max(r[c] for r in mine) - min(r[c] for r in mine):.3f}" for c in cols[3:])
                + " |")
    return lines


def main(argv=None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kvlrp_bench_precision_") as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        shards = Path(args.data) if args.data else demo_shards(work)
        load_before = os.getloadavg()
        lines = [
            "# Training precision: float32 against bfloat16 (mixed_bfloat16), c3d_small",
            "",
            f"Written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. The demo's "
            "c3d_small (widths 16 32 64, dense 128), 8x56x56 clips, batches of 16, Adam. "
            f"Load average before: {load_before[0]:.1f}.",
            _machine.machine_line(),
            bf16_line(),
        ]
        if not args.no_speed:
            rates = measure_speed(shards, args.rounds, args.steps)
            lines += ["", f"{args.rounds} interleaved rounds of {args.steps} steps per setting "
                      "after a warm-up, in one process:", "", *speed_table(rates)]
        if args.accuracy:
            rows = measure_accuracy(shards, work, args.seeds, args.epochs)
            lines += ["", f"## Accuracy: {args.epochs} epochs x 40 batches of 16, seeds "
                      f"{args.seeds}, the demo's synthetic set (validation: weights of the "
                      "epoch of lowest validation loss)", "", *accuracy_table(rows),
                      "", _machine.load_note()]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
