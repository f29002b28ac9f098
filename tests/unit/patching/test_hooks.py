"""Hooks never outlive a call: exceptions anywhere, KeyboardInterrupt, fwd and bwd."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mesainterp.errors import MesaInterpError
from mesainterp.patching import count_hooks, hook_context, run_sweep
from mesainterp.sites import Site
from tests.unit.patching._helpers import make_inputs, make_model

MODEL = make_model(n_layers=1)
CLEAN, CORRUPTED, METRIC = make_inputs(batch=2)
NAMES = ["blocks.0.hook_resid_pre", "blocks.0.attn.hook_z", "blocks.0.hook_mlp_out", "hook_embed"]


class Boom(Exception):
    pass


def _raiser(kind: str):
    def fn(act, *, hook):
        if kind == "interrupt":
            raise KeyboardInterrupt
        raise Boom(hook.name)

    return fn


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    fwd_names=st.lists(st.sampled_from(NAMES), max_size=3),
    bwd_names=st.lists(st.sampled_from(NAMES), max_size=3),
    fail_at=st.sampled_from(["none", "fwd_hook", "bwd_hook", "body", "interrupt"]),
    fail_index=st.integers(min_value=0, max_value=2),
)
def test_hook_context_removes_exactly_its_hooks(fwd_names, bwd_names, fail_at, fail_index):
    model = MODEL
    user_calls: list[str] = []
    user_fwd = model.hook_dict["blocks.0.hook_resid_pre"].add_hook(
        lambda act, hook: user_calls.append("fwd")
    )
    user_bwd = model.hook_dict["blocks.0.hook_mlp_out"].add_hook(
        lambda grad, hook: user_calls.append("bwd"), dir="bwd"
    )
    before = count_hooks(model)
    fwd = [(n, lambda act, hook: None) for n in fwd_names]
    bwd = [(n, lambda grad, hook: None) for n in bwd_names]
    if fail_at in ("fwd_hook", "interrupt") and fwd:
        i = fail_index % len(fwd)
        fwd[i] = (fwd[i][0], _raiser("interrupt" if fail_at == "interrupt" else "boom"))
    if fail_at == "bwd_hook" and bwd:
        i = fail_index % len(bwd)
        bwd[i] = (bwd[i][0], _raiser("boom"))
    try:
        with hook_context(model, fwd=fwd, bwd=bwd):
            assert count_hooks(model) != before or not (fwd or bwd)
            embed = model.embed(CLEAN).detach().requires_grad_(True)
            logits = model(embed)
            if fail_at == "body":
                raise Boom("body")
            logits.sum().backward()
    except (Boom, KeyboardInterrupt):
        pass
    try:
        assert count_hooks(model) == before
        # The user's own hooks are still installed and still fire.
        user_calls.clear()
        embed = model.embed(CLEAN).detach().requires_grad_(True)
        model(embed).sum().backward()
        assert "fwd" in user_calls and "bwd" in user_calls
    finally:
        user_fwd.hook.remove()
        user_bwd.hook.remove()
        model.hook_dict["blocks.0.hook_resid_pre"].fwd_hooks.remove(user_fwd)
        model.hook_dict["blocks.0.hook_mlp_out"].bwd_hooks.remove(user_bwd)
    assert all(v == (0, 0, 0, 0) for v in count_hooks(model).values())


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    fail_after=st.integers(min_value=1, max_value=9),
    method=st.sampled_from(["fast", "hooks"]),
    interrupt=st.booleans(),
)
def test_a_failing_metric_mid_sweep_leaves_no_hooks(fail_after, method, interrupt):
    model = MODEL
    before = count_hooks(model)
    calls = {"n": 0}

    def metric(logits, batch):
        calls["n"] += 1
        if calls["n"] >= fail_after:
            raise KeyboardInterrupt if interrupt else Boom("metric")
        return METRIC(logits, batch)

    sites = [Site(kind="resid_mid", layer=0, pos=p) for p in range(5)]
    sites += [Site(kind="z", layer=0, head=h) for h in range(2)]
    with pytest.raises(KeyboardInterrupt if interrupt else Boom):
        run_sweep(model, sites, clean=CLEAN, corrupted=CORRUPTED, metric=metric, method=method)
    assert count_hooks(model) == before


def test_unknown_hook_name_installs_nothing():
    before = count_hooks(MODEL)
    with (
        pytest.raises(MesaInterpError, match="does not exist"),
        hook_context(
            MODEL, fwd=[("hook_embed", lambda a, hook: None), ("blocks.0.hook_resid_typo", print)]
        ),
    ):
        pass
    assert count_hooks(MODEL) == before


def test_reset_hooks_inside_the_context_does_not_break_exit():
    # Another tool calling reset_hooks() mid-context rebuilds the HookPoint lists;
    # exit must still remove our torch hooks without raising.
    before = count_hooks(MODEL)
    with hook_context(MODEL, fwd=[("hook_embed", lambda a, hook: None)]):
        MODEL.reset_hooks()
    assert count_hooks(MODEL) == before
    with torch.no_grad():
        MODEL(CLEAN)
