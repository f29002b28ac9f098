"""Edges per position and per role: EAP scores against the position-agnostic ones, and
exact per-position edge cuts against one hooked bridge forward per edge."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from mesainterp.attribution import EdgeForward, edge_attribution, position_groups
from mesainterp.attribution.positions import PositionalGraph, at
from mesainterp.discovery import ablated_outputs, cut_run_metric, drop_dangling, top_edges
from mesainterp.errors import ConfigError
from mesainterp.patching.metrics import logit_diff
from tests.unit.attribution.families import build_family, family_pair

TOL = 1e-4
ROLES = {"first diff": 2, "second diff": [5, 5, 4, 5], "last": -1}


def _metric(clean: Tensor, corrupted: Tensor) -> Any:
    n, last = clean.shape[0], clean.shape[1] - 1
    return logit_diff(torch.full((n,), last), clean[:, 2], corrupted[:, 2])


@pytest.mark.parametrize("method", ["eap", "eap-ig"])
@pytest.mark.parametrize("positions", ["each", "roles"])
def test_scores_per_position_sum_to_the_agnostic_scores(method: str, positions: str) -> None:
    model = build_family("native-gpt2")
    clean, corrupted = family_pair()
    metric, ef = _metric(clean, corrupted), EdgeForward(model)
    spec: Any = ROLES if positions == "roles" else "each"
    common = dict(clean=clean, corrupted=corrupted, metric=metric, method=method, ig_steps=2)
    plain = edge_attribution(model, forward=ef, **common)  # type: ignore[arg-type]
    split = edge_attribution(model, forward=ef, positions=spec, **common)  # type: ignore[arg-type]
    assert split.scores.shape == (*plain.scores.shape, len(split.graph.labels))
    assert (split.total() - plain.scores).abs().max() <= 1e-5
    assert (split.per_example.sum(dim=2) - plain.per_example).abs().max() <= 1e-5
    # More than one position carries score: the split is not trivial.
    assert (split.scores.abs().amax(dim=(0, 1)) > 1e-3).sum() > 1
    if positions == "roles":
        assert split.graph.labels == ("first diff", "second diff", "last", "other")


def test_a_position_score_is_its_own_products_sum() -> None:
    """Each (u@p, d@p) score against the split-leaves gradient at d's input at p."""
    model = build_family("native-gpt2")
    clean, corrupted = family_pair()
    metric, ef = _metric(clean, corrupted), EdgeForward(model)
    scores = edge_attribution(
        model, clean=clean, corrupted=corrupted, metric=metric, positions="each", forward=ef
    )
    tok, pos = ef.embed_parts(corrupted)
    run = ef.run(tok, pos, leaves=True, split_leaves=True)
    grads = ef.leaf_grads(run, metric(run.logits, None).sum()).detach()
    with torch.no_grad():
        out_c = ef.run(*ef.embed_parts(clean)).outs
    for u, d, p in [("embed", "L0H1.v", 2), ("L0H2", "L1H0.k", 5), ("M1", "logits", 6)]:
        i, j = ef.graph.up_index(u), ef.graph.down_index(d)
        naive = ((out_c[i] - run.outs[i].detach())[:, p] * grads[j][:, p]).sum() / clean.shape[0]
        assert abs(float(scores.scores[i, j, p]) - float(naive)) <= TOL
        assert scores.as_dict()[(at(u, str(p)), at(d, str(p)))] == float(scores.scores[i, j, p])


# -- exact cuts against hooks --------------------------------------------------------


def _hooked_cut(
    model: Any, ef: EdgeForward, edge: tuple[str, str], mask: Tensor, clean: Tensor,
    corrupted: Tensor, metric: Any,
) -> Tensor:  # fmt: skip
    """The clean run in which only `edge`'s sender output at the positions set in `mask`
    [b, p] is replaced by the corrupted run's, in its receiver's input only: one hooked
    bridge forward. The sender's output comes from a hook cache (a head's from its z and
    W_O); the receiver's input is rebuilt in a hook from the model's own norm."""
    u, d = edge
    f = ef.fast
    names = [n for n in model.hook_dict if n.endswith(("hook_z", "hook_mlp_out", "hook_embed",
                                                       "hook_pos_embed"))]  # fmt: skip

    def output_of(inputs: Tensor) -> Tensor:
        _, cache = model.run_with_cache(inputs, names_filter=lambda n: n in names)
        if u in ("embed", "pos_embed"):
            return cache[f"hook_{u}"]
        if u.startswith("M"):
            return cache[f"blocks.{u[1:]}.hook_mlp_out"]
        layer, head = (int(x) for x in u[1:].split("H"))
        w_o = f.layers[layer].attn.w_o.view(f.d_model, f.n_heads, f.d_head)[:, head]
        return cache[f"blocks.{layer}.attn.hook_z"][:, :, head] @ w_o.T

    with torch.no_grad():
        delta = (output_of(clean) - output_of(corrupted)) * mask[:, :, None].to(torch.float32)
    if d == "logits":
        hooks = [("ln_final.hook_in", lambda act, hook: act - delta)]
    elif d.endswith(".in"):
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


@pytest.mark.parametrize("family", ["native-gpt2", "gpt2", "llama"])
def test_cutting_one_edge_at_one_position_equals_a_hooked_forward(family: str) -> None:
    model = build_family(family)
    clean, corrupted = family_pair()
    metric, ef = _metric(clean, corrupted), EdgeForward(model)
    g = ef.graph
    ablated = ablated_outputs(ef, "resample", corrupted=corrupted)
    tok, pos = ef.embed_parts(clean)
    kv = g.head_input(1, g.kv_heads - 1, "v")
    cases = [("L0H1", "logits", 6), ("embed", "L1H2.q", 6), ("embed", kv, 2), ("L0H3", kv, 5),
             ("M0", "L1H0.q", 6), ("L0H0", "M0.in", 5)]  # fmt: skip
    each = position_groups("each", batch=clean.shape[0], seq=clean.shape[1])
    pg = PositionalGraph.of(g, each)
    with torch.no_grad():
        full = metric(ef.run(tok, pos).logits, None).float()
    moved = 0.0
    for u, d, p in cases:
        cut = pg.mask_of([(at(u, str(p)), at(d, str(p)))])
        got = cut_run_metric(
            ef, metric, None, tok=tok, pos=pos, cut=cut, ablated=ablated, cut_groups=each.index
        )
        mask = torch.zeros(clean.shape, dtype=torch.bool)
        mask[:, p] = True
        oracle = _hooked_cut(model, ef, (u, d), mask, clean, corrupted, metric)
        assert (got - oracle).abs().max() <= TOL, (u, d, p)
        moved = max(moved, float((got - full).abs().max()))
    assert moved > 1e-2
    # At position 0, before the first difference, every sender's output is the same in
    # both runs: cutting there changes nothing, cutting at every position does.
    edge = ("L0H1", "logits")
    at0 = cut_run_metric(
        ef, metric, None, tok=tok, pos=pos, cut=pg.mask_of([(at(edge[0], "0"), "logits@0")]),
        ablated=ablated, cut_groups=each.index,
    )  # fmt: skip
    everywhere = cut_run_metric(ef, metric, None, tok=tok, pos=pos, cut=g.mask_of([edge]),
                                ablated=ablated)  # fmt: skip
    assert (at0 - full).abs().max() <= 1e-6 < (everywhere - full).abs().max()
    # Per role: a role's position differs between examples.
    roles = position_groups(ROLES, batch=clean.shape[0], seq=clean.shape[1])
    rg = PositionalGraph.of(g, roles)
    edge = (at("L0H3", "second diff"), at(kv, "second diff"))
    got = cut_run_metric(
        ef, metric, None, tok=tok, pos=pos, cut=rg.mask_of([edge]), ablated=ablated,
        cut_groups=roles.index,
    )  # fmt: skip
    oracle = _hooked_cut(model, ef, ("L0H3", kv), roles.index == 1, clean, corrupted, metric)
    assert (got - oracle).abs().max() <= TOL


def test_groups_are_checked_by_name() -> None:
    with pytest.raises(ConfigError, match=r"positions.b.*also role 'a'"):
        position_groups({"a": 1, "b": [0, 1]}, batch=2, seq=4)
    with pytest.raises(ConfigError, match=r"positions.a.*3 positions for 2 examples"):
        position_groups({"a": [0, 1, 2]}, batch=2, seq=4)
    with pytest.raises(ConfigError, match=r"positions.a.*\[-4, 4\)"):
        position_groups({"a": 4}, batch=2, seq=4)
    with pytest.raises(ConfigError, match=r"positions.*'each'"):
        position_groups("every", batch=2, seq=4)  # type: ignore[arg-type]
    roles = position_groups({"a": -1}, batch=2, seq=3)
    assert roles.labels == ("a", "other") and roles.index.tolist() == [[1, 1, 0], [1, 1, 0]]


def test_dangling_keys_stay_while_a_later_query_reads_them() -> None:
    model = build_family("native-gpt2")
    ef = EdgeForward(model)
    pg = PositionalGraph.of(ef.graph, position_groups("each", batch=1, seq=4))
    assert pg.owners("L1H0.k@2") == ("L1H0@2", "L1H0@3")
    assert pg.owners("L1H0.q@2") == ("L1H0@2",)
    kept = {("embed@1", "L1H0.v@1"): 1.0, ("L1H0@3", "logits@3"): 1.0,
            ("embed@3", "L1H0.q@1"): 1.0}  # fmt: skip
    # The value at 1 is read by the head at 3, which reaches the logits; the query at 1
    # feeds only the head at 1, which reaches nothing.
    assert set(drop_dangling(pg, kept)) == {("embed@1", "L1H0.v@1"), ("L1H0@3", "logits@3")}
    clean, corrupted = family_pair()
    scores = edge_attribution(
        model, clean=clean, corrupted=corrupted, metric=_metric(clean, corrupted),
        positions="each", forward=ef,
    )  # fmt: skip
    top = top_edges(scores, top_n=20)
    assert top and all(u.split("@")[1] == d.split("@")[1] for u, d in top)


def test_a_users_named_roles_group_their_prompts() -> None:
    from mesainterp.prompts import PromptPairs

    pairs = PromptPairs.from_token_ids(
        [[5, 1, 2, 3], [6, 1, 3, 2], [7, 3, 2, 1]], [[6, 1, 2, 3], [5, 1, 3, 2], [8, 3, 2, 1]],
        [5, 6, 7], [6, 5, 8], roles={"S": [0, 0, 0], "X": [2, 1, 2], "END": [-1, -1, -1]},
    )  # fmt: skip
    pair = pairs.to_pair()
    model = build_family("native-gpt2")
    inputs = dict(clean=pair.clean.inputs, corrupted=pair.corrupted.inputs,
                  metric=pairs.default_metric(), batch=pair.clean)  # fmt: skip
    plain = edge_attribution(model, **inputs)
    split = edge_attribution(model, positions=pairs.roles, **inputs)
    assert split.graph.labels == ("S", "X", "END", "other")
    assert (split.total() - plain.scores).abs().max() <= 1e-5
    # Only the first token differs, so everything starts at S.
    s = split.graph.labels.index("S")
    assert split.scores[:, :, s].abs().max() > 1e-3
    assert split.scores[0, :, 1:].abs().max() == 0  # no token-embedding difference elsewhere
