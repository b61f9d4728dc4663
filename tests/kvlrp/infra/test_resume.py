"""kvlrp.infra.resume: reuse a saved state written with the same settings, otherwise recompute and
say why (which setting changed, from what to what; no file; an unreadable file); state files
written atomically, locally and on a tf.io.gfile URL."""

from __future__ import annotations

import json
import uuid

import keras
import numpy as np
import pytest

from kvlrp.infra import atomic, fs, resume

SETTINGS = {"shards": "abc", "clip_len": 8, "size": 32, "model": "f00", "step": 2}


def test_a_state_written_with_the_same_settings_is_reused(tmp_path):
    path = resume.save(tmp_path / "s.json", SETTINGS, complete=True, videos_done=["a", "b"])
    decision = resume.check(path, dict(SETTINGS))
    assert decision.reuse and decision.changed == [] and decision.differences == ()
    assert decision.state == {"settings": SETTINGS, "complete": True, "videos_done": ["a", "b"]}
    assert "same settings" in decision.reason


@pytest.mark.parametrize("key", sorted(SETTINGS))
def test_each_changed_setting_is_named_with_both_values(tmp_path, key):
    resume.save(tmp_path / "s.json", SETTINGS)
    current = {**SETTINGS, key: "other"}
    decision = resume.check(tmp_path / "s.json", current)
    assert not decision.reuse and decision.state is None
    assert decision.changed == [key]
    assert decision.differences == ((key, SETTINGS[key], "other"),)
    assert f"{key}: {SETTINGS[key]!r} -> 'other'" in decision.reason
    assert decision.saved["settings"] == SETTINGS  # still there, e.g. to settle files


def test_added_or_dropped_settings_count_as_changed_and_keys_restrict_the_check(tmp_path):
    resume.save(tmp_path / "s.json", SETTINGS)
    grown = {**SETTINGS, "crops": 3}
    shrunk = {k: v for k, v in SETTINGS.items() if k != "size"}
    assert resume.check(tmp_path / "s.json", grown).changed == ["crops"]
    assert resume.check(tmp_path / "s.json", shrunk).changed == ["size"]
    several = {**SETTINGS, "step": 3, "clip_len": 4}
    assert resume.check(tmp_path / "s.json", several).changed == ["clip_len", "step"]  # sorted
    # only the given keys must match, reported in the given order
    decision = resume.check(tmp_path / "s.json", {**several, "crops": 3},
                            keys=["step", "clip_len", "size"])
    assert decision.changed == ["step", "clip_len"]
    assert decision.describe() == "step: 2 -> 3, clip_len: 8 -> 4"
    assert resume.check(tmp_path / "s.json", grown, keys=["step"]).reuse


def test_a_missing_state_file_is_recomputed_with_a_reason(tmp_path):
    decision = resume.check(tmp_path / "nothing.json", SETTINGS)
    assert not decision.reuse and decision.saved is None and decision.changed == []
    assert "no state file" in decision.reason and "nothing.json" in decision.reason
    assert resume.read(tmp_path / "nothing.json") is None


@pytest.mark.parametrize("content", ['{"settings": {"step": 2', "[1, 2]", "", "\udcff"])
def test_an_unreadable_state_file_is_recomputed_with_a_reason(tmp_path, content):
    path = tmp_path / "s.json"
    path.write_bytes(content.encode("utf-8", "surrogateescape"))
    decision = resume.check(path, SETTINGS)
    assert not decision.reuse and decision.unreadable and decision.saved is None
    assert decision.changed == [resume.UNREADABLE]
    assert str(path) in decision.reason and "state file" in decision.reason
    with pytest.raises(resume.UnreadableStateError, match="s.json"):
        resume.read(path)


def test_upgrade_reads_a_state_of_an_older_layout(tmp_path):
    def settings_were_config(state):
        if "settings" in state or "config" not in state:
            return state
        return {"settings": state["config"], **{k: v for k, v in state.items() if k != "config"}}

    path = tmp_path / "old.json"
    path.write_text(json.dumps({"config": SETTINGS, "shards": {"a": 1}}))
    assert not resume.check(path, SETTINGS).reuse  # read as is, it has no settings
    decision = resume.check(path, SETTINGS, upgrade=settings_were_config)
    assert decision.reuse and decision.state == {"settings": SETTINGS, "shards": {"a": 1}}
    changed = resume.check(path, {**SETTINGS, "size": 64}, upgrade=settings_were_config)
    assert changed.differences == (("size", 32, 64),)
    resume.save(path, SETTINGS, shards={})  # a current file goes through unchanged
    assert resume.check(path, SETTINGS, upgrade=settings_were_config).state == {
        "settings": SETTINGS, "shards": {}}


def test_the_weight_fingerprint_changes_with_the_weights():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    before = resume.fingerprint(model)
    assert before == resume.fingerprint(model)
    model.set_weights([w + 1e-3 for w in model.get_weights()])
    assert resume.fingerprint(model) != before
    resume_settings = {**SETTINGS, "model": before}
    decision = resume.compare({"settings": resume_settings},
                              {**SETTINGS, "model": resume.fingerprint(model)})
    assert decision.changed == ["model"]


def test_a_state_file_is_written_atomically(tmp_path, monkeypatch):
    path = resume.save(tmp_path / "s.json", SETTINGS, epoch=1)
    real = atomic.os.replace

    def killed(src, dst):  # the process dies before the new file replaces the old one
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        resume.save(path, {**SETTINGS, "step": 3}, epoch=2)
    monkeypatch.setattr(atomic.os, "replace", real)
    assert json.loads(path.read_text()) == {"settings": SETTINGS, "epoch": 1}  # the old file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json"]  # no temporary left
    with pytest.raises(TypeError, match="settings"):
        resume.save(path, SETTINGS, settings={})


def test_state_files_on_a_url(tmp_path):
    root = fs.path(f"ram://kvlrp-resume-{uuid.uuid4().hex}")
    path = resume.save(root / "partial" / "s.json", SETTINGS, rows=np.arange(3))
    assert isinstance(path, fs.GPath)
    assert resume.check(path, SETTINGS).state == {"settings": SETTINGS, "rows": [0, 1, 2]}
    assert resume.check(str(path), {**SETTINGS, "size": 64}).changed == ["size"]
    assert "no state file" in resume.check(root / "none.json", SETTINGS).reason


# --- the callers keep their files and say why they recompute ---

def test_strides_key_state_reuses_a_match_and_recomputes_a_corrupt_file(tmp_path, caplog):
    from kvlrp.analysis.strides.predictions import _KeyState

    first = _KeyState(tmp_path, 2, "none", SETTINGS)
    first.rows, first.done, first.dirty = [{"video_id": "007", "clip_index": 0}], ["007"], True
    first.flush(complete=True)
    saved = json.loads((tmp_path / "none_step2.json").read_text())
    assert saved == {"settings": SETTINGS, "videos_done": ["007"], "complete": True}
    again = _KeyState(tmp_path, 2, "none", dict(SETTINGS))
    assert again.complete and again.done == ["007"] and again.rows[0]["video_id"] == "007"
    with caplog.at_level("WARNING", logger="kvlrp.analysis.strides.predictions"):
        other = _KeyState(tmp_path, 2, "none", {**SETTINGS, "size": 64})
        assert not other.complete and other.rows == [] and "size: 32 -> 64" in caplog.text
        caplog.clear()
        (tmp_path / "none_step2.json").write_text('{"settings": ')
        corrupt = _KeyState(tmp_path, 2, "none", SETTINGS)
    assert not corrupt.complete and corrupt.done == []
    assert "unreadable" in caplog.text and "none_step2.json" in caplog.text


def test_train_refuses_a_corrupt_state_when_resuming_and_clears_it_otherwise(tmp_path):
    from kvlrp.training.checks import TrainingSetupError
    from kvlrp.training.run_state import RunState
    from kvlrp.training.train import _resume_state

    run = RunState(tmp_path)
    run.checkpoint_dir.mkdir(parents=True)
    run.state_path.write_text("{not json")
    run.history_path.write_text("epoch,loss\n1,0.5\n")
    with pytest.raises(TrainingSetupError, match=r"state\.json is unreadable.*--no-resume"):
        _resume_state(run, SETTINGS, resume=True, chief=True)
    assert run.state_path.exists()  # nothing deleted when the user asked to resume
    assert _resume_state(run, SETTINGS, resume=False, chief=True) is None
    assert not run.state_path.exists() and not run.history_path.exists()
