"""The decomposed forward on every architecture family, against the bridge and hook oracles.

For each family (HuggingFace-wrapped GPT-2, GPT-NeoX, Llama, Mistral, Qwen2, Gemma;
native GPT-2 and Llama-style): the fast forward's logits equal the bridge's; fast exact
patching equals one `run_with_hooks` per site; edge attribution's shared-input gradients
equal the split-leaves oracle; and cutting single edges (what ACDC and faithfulness run)
equals one hooked bridge forward per edge.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from mesainterp.attribution import EdgeForward, edge_attribution
from mesainterp.discovery import Circuit, ablated_outputs, acdc, cut_run_metric, faithfulness
from mesainterp.errors import MesaInterpError
from mesainterp.patching.engine import run_sweep
from mesainterp.patching.fast import FastForward, unsupported_reason
from mesainterp.patching.metrics import logit_diff
from mesainterp.sites import Site
from tests.unit.attribution.families import (
    FAMILIES,
    REFUSED,
    build_family,
    family_pair,
)
from tests.unit.patching._helpers import naive_sweep

TOL = 1e-4


def _metric(clean: Tensor, corrupted: Tensor) -> Any:
    last = clean.shape[1] - 1
    n = clean.shape[0]
    return logit_diff(torch.full((n,), last), clean[:, 2], corrupted[:, 2])


def _setup(family: str) -> tuple[Any, Tensor, Tensor, Any, EdgeForward]:
    model = build_family(family)
    clean, corrupted = family_pair()
    return model, clean, corrupted, _metric(clean, corrupted), EdgeForward(model)


@pytest.mark.parametrize("family", FAMILIES)
def test_fast_and_edge_forwards_equal_the_bridge(family: str) -> None:
    model = build_family(family)
    clean, _ = family_pair()
    with torch.no_grad():
        expected = model(clean)
        fast = FastForward(model).run_base(clean).logits
        ef = EdgeForward(model)
        edge = ef.run(*ef.embed_parts(clean)).logits
    assert (fast - expected).abs().max() <= TOL
    assert (edge - expected).abs().max() <= TOL
    assert expected.std() > 0.1  # weights at a scale where a wrong forward would show


@pytest.mark.parametrize("family", FAMILIES)
def test_fast_patching_equals_one_hooked_forward_per_site(family: str) -> None:
    model = build_family(family)
    clean, corrupted = family_pair()
    metric = _metric(clean, corrupted)
    kv = int(getattr(model.cfg, "n_key_value_heads", None) or model.cfg.n_heads)
    # A parallel block has no resid_mid hook: its MLP reads the block's input.
    mid = () if getattr(model.cfg, "parallel_attn_mlp", False) else ("resid_mid",)
    sites = [
        Site(kind=kind, layer=layer, pos=pos)
        for kind in ("resid_pre", *mid, "resid_post", "attn_out", "mlp_out")
        for layer in (0, 1)
        for pos in (5, None)
    ] + [
        Site(kind=kind, layer=layer, head=head, pos=pos)
        for kind, n in (("z", 4), ("q", 4), ("k", kv), ("v", kv), ("pattern", 4))
        for layer, pos in ((0, 2), (1, 6))
        for head in (0, n - 1)
    ]
    values = run_sweep(model, sites, clean=clean, corrupted=corrupted, metric=metric, method="fast")
    assert values.method == "fast"
    oracle = naive_sweep(model, sites, base=corrupted, source=clean, metric=metric)
    assert (values.patched - oracle).abs().max() <= TOL
    assert (oracle - values.corrupted).abs().max() > 1e-2  # the patches do something


@pytest.mark.parametrize("family", sorted(REFUSED))
def test_uncovered_families_are_refused_by_name(family: str) -> None:
    model = build_family(family)
    reason = unsupported_reason(model)
    assert reason is not None and REFUSED[family] in reason
    with pytest.raises(MesaInterpError, match=REFUSED[family]):
        EdgeForward(model)


@pytest.mark.parametrize("family", FAMILIES)
def test_edge_gradients_and_scores_equal_the_split_oracle(family: str) -> None:
    model, clean, corrupted, metric, ef = _setup(family)
    tok, pos = ef.embed_parts(corrupted)
    grads = []
    for split in (False, True):
        run = ef.run(tok, pos, leaves=True, split_leaves=split)
        grads.append(ef.leaf_grads(run, metric(run.logits, None).sum()).detach())
    assert (grads[0] - grads[1]).abs().max() <= 1e-5
    assert grads[0].abs().max() > 1e-3
    scores = edge_attribution(model, clean=clean, corrupted=corrupted, metric=metric, forward=ef)
    # Naive: each edge's (clean - corrupted upstream output) . (split gradient at its input).
    with torch.no_grad():
        out_c = ef.run(*ef.embed_parts(clean)).outs
        out_r = ef.run(tok, pos).outs
    g = ef.graph
    naive = torch.zeros(g.n_upstream, g.n_downstream)
    for u, d in g.edges():
        i, j = g.up_index(u), g.down_index(d)
        naive[i, j] = ((out_c[i] - out_r[i]) * grads[1][j]).sum() / clean.shape[0]
    assert (scores.scores - naive).abs().max() <= TOL
    ig = edge_attribution(
        model, clean=clean, corrupted=corrupted, metric=metric, method="eap-ig", ig_steps=2,
        forward=ef,
    )  # fmt: skip
    assert ig.scores.shape == scores.scores.shape and torch.isfinite(ig.scores).all()


# -- single edges cut, against one hooked bridge forward per edge ------------------------


def _hooked_cut(
    model: Any, ef: EdgeForward, edge: tuple[str, str], clean: Tensor, corrupted: Tensor, metric
) -> Tensor:
    """The clean run with `edge` reading the corrupted run's upstream output, by hooks on
    the bridge: the upstream output is read from a hook cache (a head's from its z and
    W_O), and the downstream input is rebuilt in a hook from the model's own norm."""
    u, d = edge
    f = ef.fast
    names = [n for n in model.hook_dict if n.endswith(("hook_z", "hook_mlp_out", "hook_embed",
                                                       "hook_pos_embed"))]  # fmt: skip

    def output_of(inputs: Tensor) -> Tensor:
        _, cache = model.run_with_cache(inputs, names_filter=lambda n: n in names)
        if u == "embed":
            return cache["hook_embed"]
        if u == "pos_embed":
            return cache["hook_pos_embed"]
        if u.startswith("M"):
            return cache[f"blocks.{u[1:]}.hook_mlp_out"]
        layer, head = (int(x) for x in u[1:].split("H"))
        w_o = f.layers[layer].attn.w_o.view(f.d_model, f.n_heads, f.d_head)[:, head]
        return cache[f"blocks.{layer}.attn.hook_z"][:, :, head] @ w_o.T

    delta = output_of(clean) - output_of(corrupted)
    if d == "logits":
        hooks = [("ln_final.hook_in", lambda act, hook: act - delta)]
    elif d.endswith(".in"):
        # The MLP's norm input hook changes what the MLP reads, not the stream.
        hooks = [(f"blocks.{int(d[1:-3])}.ln2.hook_in", lambda act, hook: act - delta)]
    else:
        node, kind = d.split(".")
        layer = int(node[1 : node.index("H" if "H" in node else "K")])
        head = int(node.split("KV" if "KV" in node else "H")[1])
        attn = f.layers[layer].attn
        w, b = {"q": (attn.w_q, attn.b_q), "k": (attn.w_k, attn.b_k), "v": (attn.w_v, attn.b_v)}[
            kind
        ]
        seen: dict[str, Tensor] = {}

        def grab(act: Tensor, hook: Any) -> None:
            seen["x"] = act

        def swap(act: Tensor, hook: Any) -> Tensor:
            new = F.linear(f.layers[layer].ln1(seen["x"] - delta), w, b)
            act = act.clone()
            act[:, :, head] = new.view(*act.shape)[:, :, head]
            return act

        hooks = [(f"blocks.{layer}.ln1.hook_in", grab), (f"blocks.{layer}.attn.hook_{kind}", swap)]
    with torch.no_grad():
        return metric(model.run_with_hooks(clean, fwd_hooks=hooks), None).float()


def _few_edges(ef: EdgeForward) -> list[tuple[str, str]]:
    g = ef.graph
    kv = g.head_input(1, g.kv_heads - 1, "k")
    picks = [("L0H1", "logits"), ("M0", "logits"), ("embed", "L1H2.q"), ("L0H3", kv)]
    if not g.attn_only:
        picks.append(("L0H0", "M1.in" if g.parallel else "M0.in"))
    return picks


@pytest.mark.parametrize("family", FAMILIES)
def test_cut_edges_acdc_and_faithfulness_equal_hooked_forwards(family: str) -> None:
    model, clean, corrupted, metric, ef = _setup(family)
    g = ef.graph
    ablated = ablated_outputs(ef, "resample", corrupted=corrupted)
    tok, pos = ef.embed_parts(clean)
    with torch.no_grad():
        full = metric(ef.run(tok, pos).logits, None).float()
    for edge in _few_edges(ef):
        cut = g.mask_of([edge])
        got = cut_run_metric(ef, metric, None, tok=tok, pos=pos, cut=cut, ablated=ablated)
        oracle = _hooked_cut(model, ef, edge, clean, corrupted, metric)
        assert (got - oracle).abs().max() <= TOL, edge
    # ACDC's first trial (the last edge into the logits) and a one-edge circuit's
    # completeness, from the same oracle.
    edge = (g.upstream[-1], "logits")
    one = _hooked_cut(model, ef, edge, clean, corrupted, metric)
    assert (one - full).abs().max() > 1e-3
    result = acdc(
        model, clean=clean, corrupted=corrupted, metric=metric, threshold=1e9, forward=ef,
        progress=False,
    )  # fmt: skip
    damage = float(result.damages[g.up_index(edge[0]), g.down_index("logits")])
    assert abs(damage - float(full.mean() - one.mean())) <= TOL
    with torch.no_grad():
        empty = metric(model(corrupted), None).float()
    rows = faithfulness(
        model, Circuit.from_edges({edge: 1.0}, method="manual", node_order=g.upstream),
        clean=clean, corrupted=corrupted, metric=metric, ablations=("resample",), n_boot=10,
        forward=ef,
    )  # fmt: skip
    completeness = next(r.value for r in rows if r.measure == "completeness")
    expected = 1 - float((one.mean() - empty.mean()) / (full.mean() - empty.mean()))
    assert abs(completeness - expected) <= 1e-3
