"""Shared pieces for the patching tests: tiny models, inputs and the slow oracle."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from mesainterp.model import ModelConfig, build_model
from mesainterp.patching.metrics import logit_diff
from mesainterp.sites import Site

__all__ = ["SEQ", "make_inputs", "make_model", "naive_sweep"]

SEQ = 6
VOCAB = 11


def make_model(**overrides: Any):
    fields: dict[str, Any] = dict(
        n_layers=2, d_model=24, n_heads=2, d_head=12, d_mlp=48, d_vocab=VOCAB, n_ctx=8, seed=5
    )
    fields.update(overrides)
    if fields.get("attn_only"):
        fields["d_mlp"] = None
    return build_model(ModelConfig(**fields))


def make_inputs(batch: int = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    clean = torch.randint(0, VOCAB, (batch, SEQ), generator=g)
    corrupted = torch.randint(0, VOCAB, (batch, SEQ), generator=g)
    answer_pos = torch.full((batch,), SEQ - 1)
    metric = logit_diff(
        answer_pos,
        torch.randint(0, VOCAB, (batch,), generator=g),
        torch.randint(0, VOCAB, (batch,), generator=g),
    )
    return clean, corrupted, metric


def _slice_set(site: Site, act: Tensor, value: Tensor) -> Tensor:
    act = act.clone()
    p = slice(None) if site.pos is None else site.pos
    if site.kind == "pattern":
        act[:, site.head, p] = value[:, site.head, p]
    elif site.head is not None:
        act[:, p, site.head] = value[:, p, site.head]
    else:
        act[:, p] = value[:, p]
    return act


@torch.no_grad()
def naive_sweep(model, sites, *, base: Tensor, source: Tensor, metric) -> Tensor:
    """One `run_with_hooks` per site, written independently of the engine."""
    names = sorted({s.hook_name for s in sites})
    _, cache = model.run_with_cache(source, names_filter=lambda n: n in names)
    rows = []
    for site in sites:
        value = cache[site.hook_name]
        if site.kind == "resid_mid":
            # Patch the stream itself: the MLP's input and the skip connection.
            held: dict[str, Tensor] = {}

            def mid(act, hook, site=site, value=value, held=held):
                new = _slice_set(site, act, value)
                held["delta"] = new - act
                return new

            def post(act, hook, held=held):
                return act + held["delta"]

            hooks = [(site.hook_name, mid), (f"blocks.{site.layer}.hook_resid_post", post)]
        else:
            hooks = [
                (
                    site.hook_name,
                    lambda act, hook, site=site, value=value: _slice_set(site, act, value),
                )
            ]
        logits = model.run_with_hooks(base, fwd_hooks=hooks)
        rows.append(metric(logits, None))
    return torch.stack(rows)
