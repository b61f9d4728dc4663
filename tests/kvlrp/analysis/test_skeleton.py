"""The run skeleton: one order of phases for every run kind (config -> output folder -> classes
-> plan -> resume -> compute -> summarise), the final tables of the only worker or one
worker's ``worker.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from kvlrp.analysis.explain.run import ExplainKind
from kvlrp.analysis.runs.partition import Worker
from kvlrp.analysis.runs.skeleton import Run, WorkerPart, run_evaluation, shared_context
from kvlrp.analysis.strides.config import StridesConfig
from kvlrp.analysis.strides.run import StridesKind


@dataclass
class _Recorder:
    """A run kind that records its phases (options: those of strides)."""

    calls: list[str] = field(default_factory=list)
    name = "probe"
    config_type = StridesConfig

    def plan(self, run: Run[StridesConfig]) -> str:
        self.calls.append("plan")
        return "plan"

    def resume(self, run: Run[StridesConfig], plan: str) -> str:
        self.calls.append(f"resume({plan})")
        return "saved"

    def compute(self, run: Run[StridesConfig], plan: str, saved: str) -> str:
        self.calls.append(f"compute({plan}, {saved})")
        return "result"

    def context(self, run: Run[StridesConfig], plan: str) -> dict[str, Any]:
        self.calls.append("context")
        return {**shared_context(run, run.config.steps), "extra": 1}

    def worker_part(self, run: Run[StridesConfig], plan: str, result: str) -> WorkerPart:
        self.calls.append(f"worker_part({result})")
        return WorkerPart(settings={"s": 1}, videos=["v"], states={"k": result})

    def write_reports(self, run: Run[StridesConfig], result: str,
                      context: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(f"write_reports({result})")
        return {"kind": self.name, "context": context}


def test_phases_run_in_one_order(small_model, synthetic_shards, tmp_path):
    model, info = small_model
    kind = _Recorder()
    summary = run_evaluation(kind, model, info, synthetic_shards, tmp_path / "one", None,
                             {"steps": [1, 2], "n_boot": 10})
    assert kind.calls == ["plan", "resume(plan)", "compute(plan, saved)", "context",
                          "write_reports(result)"]
    context = summary["context"]
    assert context["steps"] == [1, 2] and context["n_boot"] == 10 and context["extra"] == 1
    assert context["clip_len"] == info.clip_len and context["config"]["steps"] == [1, 2]


def test_a_worker_writes_its_part_instead_of_the_reports(small_model, synthetic_shards,
                                                         tmp_path):
    model, info = small_model
    kind = _Recorder()
    out = tmp_path / "worker"
    summary = run_evaluation(kind, model, info, synthetic_shards, out, None,
                             {"worker": Worker(2, 1)})
    assert kind.calls[-2:] == ["context", "worker_part(result)"]
    record = json.loads((out / "worker.json").read_text())
    assert record["kind"] == "probe" and record["states"] == {"k": "result"}
    assert summary == {"kind": "probe-worker", "worker": [2, 1], "n_videos": 1,
                       "out": str(out)}


def test_checks_come_before_the_plan(small_model, synthetic_shards, tmp_path):
    model, info = small_model
    kind = _Recorder()
    with pytest.raises(TypeError, match="run_probe: unknown option"):
        run_evaluation(kind, model, info, synthetic_shards, tmp_path, None, {"step": 1})
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is a file"):
        run_evaluation(kind, model, info, synthetic_shards, tmp_path / "file", None, {})
    assert kind.calls == []


def test_explain_and_strides_are_kinds_of_the_skeleton():
    assert (ExplainKind.name, StridesKind.name) == ("explain", "strides")
    assert StridesKind().on_video is None
