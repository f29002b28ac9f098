"""ACDC under a budget: a partial result marked as such, and a state file that continues
the search to exactly the uninterrupted result."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from mesainterp.discovery import acdc, planted_model, planted_pair
from mesainterp.discovery.acdc_checkpoint import load_progress
from mesainterp.discovery.budget import Budget
from mesainterp.errors import ConfigError, MesaInterpError
from mesainterp.model import ModelConfig, build_model
from mesainterp.patching.metrics import logit_diff


def _random():
    model = build_model(
        ModelConfig(
            n_layers=2, d_model=16, n_heads=2, d_head=8, d_mlp=32, d_vocab=11, n_ctx=8, seed=2
        )
    )
    gen = torch.Generator().manual_seed(1)
    clean = torch.randint(0, 11, (12, 6), generator=gen)
    corrupted = clean.clone()
    corrupted[:, 1] = (clean[:, 1] + 1 + torch.randint(0, 10, (12,), generator=gen)) % 11
    metric = logit_diff(torch.full((12,), 5), clean[:, 1], corrupted[:, 1])
    return model, {"clean": clean, "corrupted": corrupted, "metric": metric, "threshold": 0.02}


def _same(a, b) -> None:
    assert a.kept == b.kept or all(
        (x == y) or (x != x and y != y)
        for x, y in zip(a.kept.values(), b.kept.values(), strict=True)
    )
    assert list(a.kept) == list(b.kept)
    assert torch.equal(a.damages.isnan(), b.damages.isnan())
    assert torch.equal(a.damages.nan_to_num(), b.damages.nan_to_num())
    assert (a.n_runs, a.n_skipped, a.final_metric, a.status) == (
        b.n_runs, b.n_skipped, b.final_metric, b.status
    )  # fmt: skip


@pytest.mark.parametrize("max_runs", [1, 4, 17])
def test_budgeted_calls_on_a_state_file_equal_one_uninterrupted_search(
    tmp_path: Path, max_runs: int
) -> None:
    model, kw = _random()
    whole = acdc(model, progress=False, **kw)
    assert whole.status == "complete" and whole.n_undecided == 0
    state = tmp_path / "acdc.safetensors"
    calls = 0
    while True:
        part = acdc(model, progress=False, budget=Budget(max_runs=max_runs), state=state, **kw)
        calls += 1
        assert calls <= whole.n_runs, "a call that does not continue from the state never ends"
        if part.status == "complete":
            break
        # Stopped: undecided edges are kept (damage NaN), and each call runs its budget.
        assert part.n_runs == min(calls * max_runs, whole.n_runs)
        assert part.n_undecided > 0
        assert all(e in part.kept for e, v in whole.kept.items())
        assert sum(v != v for v in part.kept.values()) == part.n_undecided
    assert calls == -(-whole.n_runs // max_runs)  # the clock stops only before a run
    _same(part, whole)
    # A finished state file answers again without a run.
    again = acdc(model, progress=False, budget=Budget(max_runs=1), state=state, **kw)
    _same(again, whole)


def test_a_partial_result_without_a_state_file_is_a_prefix_of_the_decisions() -> None:
    model, kw = _random()
    whole = acdc(model, progress=False, **kw)
    part = acdc(model, progress=False, budget=Budget(max_runs=5), **kw)
    assert (part.status, part.n_runs) == ("partial", 5)
    decided = ~part.damages.isnan()
    assert torch.equal(part.damages[decided], whole.damages[decided])


def test_max_seconds_stops_between_runs() -> None:
    model, case = planted_model(), planted_pair()

    def slow(logits, batch=None):
        time.sleep(0.05)
        return case.metric(logits, batch)

    kw = {"clean": case.clean, "corrupted": case.corrupted, "threshold": 1e-3}
    part = acdc(model, metric=slow, progress=False, budget=Budget(max_seconds=0.12), **kw)
    assert part.status == "partial" and 1 <= part.n_runs <= 4


def test_a_state_file_of_another_search_is_refused(tmp_path: Path) -> None:
    model, kw = _random()
    state = tmp_path / "acdc.safetensors"
    acdc(model, progress=False, budget=Budget(max_runs=3), state=state, **kw)
    with pytest.raises(MesaInterpError, match="another search"):
        acdc(model, progress=False, state=state, **{**kw, "threshold": 0.5})
    other, _ = _random()
    with torch.no_grad():
        next(other.parameters()).add_(0.1)  # other weights: another full metric
    with pytest.raises(MesaInterpError, match="another search"):
        acdc(other, progress=False, state=state, **kw)
    state.write_bytes(b"not a state file")
    with pytest.raises(MesaInterpError, match="unreadable ACDC state"):
        load_progress(state, key="x")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"max_runs": 0}, "max_runs"), ({"max_runs": 2.5}, "max_runs"),
     ({"max_runs": True}, "max_runs"), ({"max_seconds": 0}, "max_seconds"),
     ({"max_seconds": "1"}, "max_seconds")],
)  # fmt: skip
def test_bad_budgets_name_the_field(kwargs, field) -> None:
    with pytest.raises(ConfigError) as info:
        Budget(**kwargs)
    assert info.value.field == field
