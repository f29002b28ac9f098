"""Path patching on every architecture family agrees with a naive two-run hooks oracle.

The oracle is written out with `run_with_hooks` alone: a frozen run on the corrupted
input where every head output (z) and MLP output is pinned to the corrupted run except
the sender, which takes its clean value, records the receiver's input; a second
corrupted run writes only that input in. Bridges have unit-scale weights
(`build_family`) so path effects are far above the tolerance.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor

from mesainterp.patching.engine import run_sweep
from mesainterp.patching.path import run_path_sweep
from mesainterp.sites import Site
from tests.families import ALL_FAMILIES, pair_inputs
from tests.unit.attribution.families import build_family

TOL = 1e-4
SEQ = 5


def _kv_heads(model: Any) -> int:
    return int(getattr(model.cfg, "n_key_value_heads", None) or model.cfg.n_heads)


def _parallel(model: Any) -> bool:
    return bool(getattr(model.cfg, "parallel_attn_mlp", False))


def naive_path(
    model: Any, sender: Site, receiver: Site, clean: Tensor, corrupted: Tensor, metric: Any
) -> Tensor:
    """Metric per example after patching `sender` (clean) into `receiver` only."""
    n = model.cfg.n_layers
    frozen = [f"blocks.{i}.attn.hook_z" for i in range(n)] + [
        f"blocks.{i}.hook_mlp_out" for i in range(n)
    ]
    if receiver.kind == "logits":
        into = "ln_final.hook_in"
    elif receiver.kind == "mlp_in":
        into = f"blocks.{receiver.layer}.hook_mlp_out"
    else:
        into = f"blocks.{receiver.layer}.attn.hook_{receiver.kind}"
    sender_hook = (
        f"blocks.{sender.layer}.attn.hook_z"
        if sender.kind == "z"
        else f"blocks.{sender.layer}.hook_mlp_out"
    )
    with torch.no_grad():
        _, c = model.run_with_cache(clean, names_filter=lambda name: name in frozen)
        _, r = model.run_with_cache(corrupted, names_filter=lambda name: name in frozen)
    seen: dict[str, Tensor] = {}

    def pin(name: str) -> Any:  # hook.name is the bridge's own name, not the alias
        def fn(act: Tensor, hook: Any) -> Tensor:
            if name == into:  # an MLP receiver: what its input made it compute
                seen["v"] = act.clone()
            out = r[name].clone()
            if name == sender_hook:
                if sender.head is None:
                    out = c[name].clone()
                else:
                    out[:, :, sender.head] = c[name][:, :, sender.head]
            return out

        return fn

    def grab(act: Tensor, hook: Any) -> None:
        seen["v"] = act.clone()

    hooks = [(name, pin(name)) for name in frozen]
    if into not in frozen:
        hooks.append((into, grab))
    with torch.no_grad():
        model.run_with_hooks(corrupted, fwd_hooks=hooks)
        recorded = seen["v"]
        base_final = model.run_with_cache(
            corrupted, names_filter=lambda name: name == "ln_final.hook_in"
        )[1]["ln_final.hook_in"]

    def write(act: Tensor, hook: Any) -> Tensor:
        if receiver.kind == "logits":
            return act + recorded - base_final
        if receiver.kind == "mlp_in":
            return recorded
        out = act.clone()
        out[:, :, receiver.head] = recorded[:, :, receiver.head]
        return out

    with torch.no_grad():
        return metric(model.run_with_hooks(corrupted, fwd_hooks=[(into, write)]), None).float()


def _pairs(model: Any) -> list[tuple[Site, Site]]:
    kv = _kv_heads(model)
    pairs = [
        (Site(kind="z", layer=0, head=1), Site(kind="q", layer=1, head=2)),
        (Site(kind="z", layer=0, head=3), Site(kind="k", layer=1, head=kv - 1)),
        (Site(kind="z", layer=0, head=0), Site(kind="v", layer=1, head=0)),
        (Site(kind="mlp_out", layer=0), Site(kind="k", layer=1, head=0)),
        (Site(kind="z", layer=0, head=2), Site(kind="mlp_in", layer=1)),
        (Site(kind="z", layer=1, head=1), Site(kind="logits")),
        (Site(kind="mlp_out", layer=1), Site(kind="logits")),
    ]
    if not _parallel(model):
        pairs.append((Site(kind="z", layer=0, head=0), Site(kind="mlp_in", layer=0)))
    return pairs


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_path_patching_matches_the_naive_oracle(family: str) -> None:
    model = build_family(family)
    clean, corrupted, metric = pair_inputs(batch=3, seq=SEQ, differ_at=(1, 3))
    effects = []
    for sender, receiver in _pairs(model):
        got = run_path_sweep(
            model, [sender], [receiver], clean=clean, corrupted=corrupted, metric=metric
        )
        oracle = naive_path(model, sender, receiver, clean, corrupted, metric)
        assert (got.patched[0] - oracle).abs().max() <= TOL, (sender.label(), receiver.label())
        effects.append(float((oracle - got.corrupted).abs().max()))
    assert min(effects) > 1e-3  # every path moves the metric: a wrong one would show


@pytest.mark.parametrize("family", ["llama", "native-llama"])
def test_the_oracle_tells_key_value_heads_apart(family: str) -> None:
    """Grouped-query k/v receivers name KV heads: KV head 1 is not KV head 0."""
    model = build_family(family)
    clean, corrupted, metric = pair_inputs(batch=3, seq=SEQ, differ_at=(1, 3))
    sender = Site(kind="z", layer=0, head=2)
    for kind in ("k", "v"):
        got = run_path_sweep(model, [sender], [Site(kind=kind, layer=1, head=1)], clean=clean,
                             corrupted=corrupted, metric=metric)  # fmt: skip
        other = naive_path(model, sender, Site(kind=kind, layer=1, head=0), clean, corrupted,
                           metric)  # fmt: skip
        assert (got.patched[0] - other).abs().max() > 10 * TOL


def test_a_parallel_block_has_no_head_to_own_mlp_path() -> None:
    """NeoX's MLP reads the block input, so a head reaches its own block's MLP by no path."""
    model = build_family("neox")
    clean, corrupted, metric = pair_inputs(batch=3, seq=SEQ, differ_at=(1, 3))
    got = run_path_sweep(model, [Site(kind="z", layer=0, head=0)], [Site(kind="mlp_in", layer=0)],
                         clean=clean, corrupted=corrupted, metric=metric)  # fmt: skip
    assert (got.patched[0] - got.corrupted).abs().max() <= 1e-6


@pytest.mark.parametrize("family", ["gpt2", "neox", "native-llama"])
def test_last_mlp_into_the_logits_is_plain_patching(family: str) -> None:
    """The last MLP reaches the logits only directly: its path patch is its exact patch."""
    model = build_family(family)
    clean, corrupted, metric = pair_inputs(batch=3, seq=SEQ, differ_at=(1, 3))
    sender = Site(kind="mlp_out", layer=1)
    got = run_path_sweep(model, [sender], [Site(kind="logits")], clean=clean,
                         corrupted=corrupted, metric=metric)  # fmt: skip
    exact = run_sweep(model, [sender], clean=clean, corrupted=corrupted, metric=metric)
    assert (got.patched - exact.patched).abs().max() <= TOL
    assert (got.patched - got.corrupted).abs().max() > 1e-3
