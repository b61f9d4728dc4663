"""The stride table: accuracy per step size without retraining.

Writes a tiny synthetic dataset (real H.264 files), decodes it once into shards, trains a small
``c3d_small`` for a few epochs at step 1, then evaluates it at steps 1, 2 and 4 (each video
decoded once for all steps), with the frame-shuffled control. Sizes are tiny so this runs in a
minute or two; the numbers say little about the method (see ``kvlrp demo`` for that).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from kvlrp.analysis.strides.run import run_strides
from kvlrp.data.shards.folder import prepare_shards
from kvlrp.data.synth import write_synthetic_dataset
from kvlrp.models import load_model
from kvlrp.training import train


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        manifest = write_synthetic_dataset(root / "data", videos_per_class=4, size=32,
                                           min_frames=32, max_frames=48)
        shards = prepare_shards(manifest, root / "shards", workers=0, progress=False).out_dir
        train(shards, root / "model", clip_len=6, size=24, epochs=2, batch_size=8,
              progress=False, widths=(4, 8), dense_units=16)
        model, info = load_model(root / "model")
        summary = run_strides(model, info, shards, root / "strides", steps=[1, 2, 4],
                              clips_per_video=2, progress=False)
        print(pd.DataFrame(summary["table"]).round(3).to_string(index=False))
        print("best step:", summary["best"])


if __name__ == "__main__":
    main()
