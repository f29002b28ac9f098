"""Executor options are checked up front; Ray's absence is a clear, actionable error."""

from __future__ import annotations

import sys

import pytest
import torch

from mesainterp.errors import ConfigError, MesaInterpError
from mesainterp.runs.executor import WorkerSpec, execute
from mesainterp.runs.plan import chunk_plan
from mesainterp.runs.state import open_run


class Squares:
    """A worker whose units square their slice of 0..n-1."""

    def __init__(self, n: int) -> None:
        self.values = torch.arange(float(n))

    def run(self, unit):
        chunk = self.values[unit.payload["start"] : unit.payload["stop"]]
        return {"y": chunk**2}, {"size": len(chunk)}


def test_inprocess_builds_the_worker_from_its_spec(tmp_path):
    spec = WorkerSpec(factory=f"{__name__}:Squares", kwargs={"n": 7})
    plan = chunk_plan("x", list(range(7)), 3)
    state = open_run(tmp_path, identity={}, resume=False)
    stats = execute(spec, plan, state, progress=False)
    assert stats.to_dict()["units_computed"] == 3
    ys = torch.cat([state.load_unit(k)[0]["y"] for k in plan.keys])
    assert torch.equal(ys, torch.arange(7.0) ** 2)


@pytest.mark.parametrize(
    ("kwargs", "field"), [({"executor": "dask"}, "executor"), ({"workers": 0}, "workers")]
)
def test_bad_options_name_the_field(tmp_path, kwargs, field):
    spec = WorkerSpec(factory=f"{__name__}:Squares", kwargs={"n": 2})
    state = open_run(tmp_path, identity={}, resume=False)
    with pytest.raises(ConfigError, match=field):
        execute(spec, chunk_plan("x", [0, 1], 1), state, **kwargs)
    with pytest.raises(ConfigError, match="factory"):
        WorkerSpec(factory="no_colon")


def test_missing_ray_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    spec = WorkerSpec(factory=f"{__name__}:Squares", kwargs={"n": 2})
    state = open_run(tmp_path, identity={}, resume=False)
    with pytest.raises(MesaInterpError, match=r"pip install 'mesainterp\[distributed\]'"):
        execute(spec, chunk_plan("x", [0, 1], 1), state, executor="ray")
