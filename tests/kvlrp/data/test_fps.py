"""``prepare --fps``: resampling at decode to one frame rate (exact frame indices), on the real
clips (25, 28, 29.97 and 30 fps) arranged as class folders."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pandas as pd
import pytest
from cli_helpers import main

from kvlrp.video.resample import as_fraction, resample_indices


def test_resample_indices_exact():
    down = resample_indices(164, 25, 10)
    assert len(down) == 65 and down[:6] == [0, 2, 5, 7, 10, 12] and down[-1] == 160
    ntsc = resample_indices(300, 29.97, 15)  # 30000/1001 fps: 2000/1001 source frames each
    assert len(ntsc) == 150 and ntsc[:5] == [0, 1, 3, 5, 7]
    assert ntsc == [j * 2000 // 1001 for j in range(150)]
    assert resample_indices(10, 25, 50) == [k // 2 for k in range(20)]  # frames repeated
    assert resample_indices(280, 28, 28) == list(range(280))
    assert resample_indices(3, 30, 1) == [0]  # never empty
    assert as_fraction(29.97002997) == as_fraction(29.97) == as_fraction(30000 / 1001)
    assert as_fraction(29.97) * 1001 == 30000 and as_fraction(25.0) == 25
    for bad in (0, -5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="positive finite"):
            resample_indices(10, 25, bad)


def test_prepare_fps_on_real_clips(realvideos_dir, tmp_path, capsys):
    from kvlrp.data.clips.pipeline import video_dataset
    from kvlrp.data.shards.decode_worker import resize_short_side
    from kvlrp.video import read_video

    root = tmp_path / "myvideos"
    clips = sorted(p for p in realvideos_dir.iterdir() if p.suffix in (".mp4", ".avi", ".mkv"))
    for k, clip in enumerate(clips):
        (root / ("sport" if k % 2 else "household")).mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, root / ("sport" if k % 2 else "household") / clip.name)
    shards = tmp_path / "shards"
    assert main(["prepare", str(root), "--out", str(shards), "--workers", "0", "--fps", "10",
                 "--short-side", "24", "--encoding", "raw", "--no-progress"]) == 0
    capsys.readouterr()
    index = pd.read_csv(shards / "index.csv")
    assert len(index) == len(clips)
    assert sorted(index["fps"].round(2).unique()) == [25.0, 28.0, 29.97, 30.0]  # original rates
    for row in index.itertuples():
        expected = len(resample_indices(int(row.source_frames), row.fps, 10))
        assert row.n_frames == expected
        assert row.n_frames == math.floor(row.source_frames * 10 / as_fraction(row.fps))
    # the frames in the shards are exactly the resampled source frames
    avi = index[index["path"].str.endswith(".avi")].iloc[0]
    source = read_video(root / avi["path"]).frames
    want = resize_short_side(source[resample_indices(len(source), 25, 10)], 24)
    got = next(v for v in video_dataset(shards, None) if v["video_id"].numpy().decode()
               == avi["video_id"])["frames"].numpy()
    np.testing.assert_array_equal(got, want)
    # strides reports spans in seconds at the common rate
    from kvlrp.analysis.runs.timing import clip_fps

    assert clip_fps(shards)[0] == 10.0
    assert main(["prepare", str(root), "--out", str(tmp_path / "bad"), "--fps", "0",
                 "--workers", "0", "--no-progress"]) == 2
    assert "positive finite" in capsys.readouterr().err
