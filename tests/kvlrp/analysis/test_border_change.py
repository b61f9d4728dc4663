"""Paired change of the border score between steps (border_changes.csv), by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kvlrp.analysis.measures.bootstrap import bootstrap_indices
from kvlrp.analysis.measures.border_change import CHANGE_COLUMNS, border_changes
from kvlrp.analysis.measures.shares import border_score

FLAT = [0.25, 0.25, 0.25, 0.25]
U = [0.4, 0.1, 0.1, 0.4]  # B = 0.4 / 0.1 = 4


def _long(profiles: dict[tuple[int, str], list[list[float]]], seed=None) -> pd.DataFrame:
    rows = []
    for (step, vid), clips in profiles.items():
        for c, shares in enumerate(clips):
            rows += [{"step": step, "video_id": vid, "clip_index": c, "position": t,
                      "share": s, **({} if seed is None else {"seed": seed})}
                     for t, s in enumerate(shares)]
    return pd.DataFrame(rows)


def test_same_change_in_every_video_has_a_point_interval():
    frame = _long({(1, "a"): [FLAT], (1, "b"): [FLAT, FLAT], (2, "a"): [U], (2, "b"): [U],
                   (2, "only_at_2"): [FLAT]})
    prior = _long({(1, "a"): [FLAT], (1, "b"): [FLAT], (2, "a"): [U], (2, "b"): [U]}, seed=0)
    table = border_changes(frame, prior, reference_step=1, n_boot=100)
    assert list(table.columns) == CHANGE_COLUMNS and len(table) == 1
    row = table.iloc[0]
    assert (row["step"], row["reference_step"], row["n_videos"]) == (2, 1, 2)
    assert row["border_change"] == pytest.approx(3.0)
    assert row["border_change_ci_low"] == row["border_change_ci_high"] == pytest.approx(3.0)
    # the prior moved exactly as the trained profile did: no relative change
    assert row["relative_border_change"] == pytest.approx(0.0, abs=1e-12)


def test_change_and_interval_match_a_hand_bootstrap():
    p1 = {"a": [0.3, 0.2, 0.2, 0.3], "b": FLAT, "c": [0.2, 0.3, 0.3, 0.2]}
    p2 = {"a": U, "b": [0.3, 0.2, 0.2, 0.3], "c": FLAT}
    frame = _long({**{(1, v): [p] for v, p in p1.items()},
                   **{(2, v): [p] for v, p in p2.items()}})
    row = border_changes(frame, None, 1, n_boot=300, seed=5).iloc[0]
    a, b = np.array(list(p1.values())), np.array(list(p2.values()))
    assert row["border_change"] == pytest.approx(border_score(b.mean(0))
                                                 - border_score(a.mean(0)))
    boot = [border_score(b[i].mean(0)) - border_score(a[i].mean(0))
            for i in bootstrap_indices(3, 300, 5)]
    assert row["border_change_ci_low"] == pytest.approx(np.percentile(boot, 2.5))
    assert row["border_change_ci_high"] == pytest.approx(np.percentile(boot, 97.5))
    assert np.isnan(row["relative_border_change"])


def test_no_reference_step_gives_an_empty_table():
    frame = _long({(2, "a"): [U]})
    assert border_changes(frame, None, reference_step=1).empty
