"""EAP-IG on every architecture family against an explicit integrated-gradients oracle.

The variant `edge_attribution(method="eap-ig")` computes (attribution/eap.py): the
token embeddings are interpolated from corrupted to clean at the midpoints
alpha = (k + 1/2) / steps, the gradient at each downstream input is averaged over
the steps, and every edge scores (out_u(clean) - out_u(corrupted)) . mean gradient.

The oracle here uses hooks and autograd only. The interpolation is written into the
first residual (positions are the same in both runs, so this interpolates the token
embeddings); a downstream node's own input is a zero leaf added where only it reads:
`ln_final.hook_in` (logits), `ln2.hook_in` (an MLP), or `ln1.hook_in` with every other
head input of the layer detached at hook_q/k/v (one head's query, key or value).
Upstream outputs come from hook caches: a head's from the attention output with only
that head's z clean.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import torch
from torch import Tensor

from mesainterp.attribution import EdgeForward, edge_attribution
from mesainterp.errors import MesaInterpError
from tests.families import ALL_FAMILIES, pair_inputs
from tests.unit.attribution.families import REFUSED, build_family

TOL = 1e-4
SEQ = 5
STEPS = 3
EDGE_FAMILIES = tuple(f for f in ALL_FAMILIES if f not in REFUSED)
FIRST = "blocks.0.hook_resid_pre"  # embeddings (+ positions): what is interpolated
_HEAD_INPUT = re.compile(r"L(\d+)(H|KV)(\d+)\.([qkv])$")


def _layer(node: str) -> int:
    return int(re.match(r"[LM](\d+)", node).group(1))  # type: ignore[union-attr]


def _cache(model: Any, tokens: Tensor, names: set[str], hooks=()) -> dict[str, Tensor]:
    found: dict[str, Tensor] = {}

    def keep(name: str) -> Any:
        def fn(act: Tensor, hook: Any) -> None:
            found[name] = act.detach().clone()

        return fn

    with torch.no_grad():
        model.run_with_hooks(tokens, fwd_hooks=[*hooks, *((n, keep(n)) for n in names)])
    return found


def upstream_deltas(model: Any, ups: tuple[str, ...], clean: Tensor, corrupted: Tensor):
    """out_u(clean) - out_u(corrupted) [b, p, d_model] for every upstream node."""
    n = model.cfg.n_layers
    names = {FIRST}
    for i in range(n):
        names |= {
            f"blocks.{i}.attn.hook_z",
            f"blocks.{i}.hook_mlp_out",
            f"blocks.{i}.hook_attn_out",
        }
    c, r = _cache(model, clean, names), _cache(model, corrupted, names)
    out: list[Tensor] = []
    for u in ups:
        if u == "embed":
            out.append(c[FIRST] - r[FIRST])
        elif u == "pos_embed":  # the same positions in both runs
            out.append(torch.zeros_like(c[FIRST]))
        elif u.startswith("M"):
            out.append(
                c[f"blocks.{_layer(u)}.hook_mlp_out"] - r[f"blocks.{_layer(u)}.hook_mlp_out"]
            )
        else:
            layer, head = (int(x) for x in u[1:].split("H"))
            z = f"blocks.{layer}.attn.hook_z"

            def one_clean(act: Tensor, hook: Any, head: int = head, z: str = z) -> Tensor:
                act = act.clone()
                act[:, :, head] = c[z][:, :, head]
                return act

            attn = f"blocks.{layer}.hook_attn_out"
            patched = _cache(model, corrupted, {attn}, hooks=[(z, one_clean)])
            out.append(patched[attn] - r[attn])
    return torch.stack(out)


def input_grad(model: Any, down: str, ends: tuple[Tensor, Tensor], alpha: float, tokens, metric):
    """dM/dx_down [b, p, d_model] on the run whose first residual is `alpha` of the way
    from the corrupted one to the clean one (`ends`: clean, corrupted)."""
    c, r = ends
    leaf = torch.zeros_like(c, requires_grad=True)

    def interpolate(act: Tensor, hook: Any) -> Tensor:
        return r + alpha * (c - r)

    def add_leaf(act: Tensor, hook: Any) -> Tensor:
        return act + leaf

    hooks: list[tuple[str, Any]] = [(FIRST, interpolate)]
    head_input = _HEAD_INPUT.match(down)
    if down == "logits":
        hooks.append(("ln_final.hook_in", add_leaf))
    elif down.endswith(".in"):
        hooks.append((f"blocks.{_layer(down)}.ln2.hook_in", add_leaf))
    else:
        assert head_input is not None, down
        layer, head, kind = int(head_input[1]), int(head_input[3]), head_input[4]
        hooks.append((f"blocks.{layer}.ln1.hook_in", add_leaf))
        for k in "qkv":

            def only(act: Tensor, hook: Any, k: str = k) -> Tensor:
                out = act.detach().clone()
                if k == kind:
                    out[:, :, head] = act[:, :, head]
                return out

            hooks.append((f"blocks.{layer}.attn.hook_{k}", only))
    with torch.enable_grad():
        logits = model.run_with_hooks(tokens, fwd_hooks=hooks)
        (grad,) = torch.autograd.grad(metric(logits, None).sum(), [leaf])
    return grad


def _edges(model: Any, ups: tuple[str, ...], downs: tuple[str, ...]) -> set[tuple[str, str]]:
    """Which upstream output reaches which input, from the architecture alone."""
    parallel = bool(getattr(model.cfg, "parallel_attn_mlp", False))
    edges = set()
    for d in downs:
        for u in ups:
            if u in ("embed", "pos_embed") or d == "logits":
                edges.add((u, d))
                continue
            a, b = _layer(u), _layer(d)
            same_block_mlp = d.endswith(".in") and u.startswith("L") and not parallel
            if a < b or (a == b and same_block_mlp):
                edges.add((u, d))
    return edges


def oracle(model: Any, graph: Any, clean: Tensor, corrupted: Tensor, metric, alphas) -> Tensor:
    deltas = upstream_deltas(model, graph.upstream, clean, corrupted)
    scores = torch.zeros(graph.n_upstream, graph.n_downstream, clean.shape[0])
    valid = _edges(model, graph.upstream, graph.downstream)
    ends = (_cache(model, clean, {FIRST})[FIRST], _cache(model, corrupted, {FIRST})[FIRST])
    for j, d in enumerate(graph.downstream):
        grads = [input_grad(model, d, ends, a, corrupted, metric) for a in alphas]
        grad = torch.stack(grads).mean(0)
        for i, u in enumerate(graph.upstream):
            if (u, d) in valid:
                scores[i, j] = (deltas[i] * grad).sum(dim=(1, 2))
    return scores


def _midpoints(steps: int) -> list[float]:
    return [(k + 0.5) / steps for k in range(steps)]


@pytest.mark.parametrize("family", EDGE_FAMILIES)
def test_eap_ig_matches_the_integrated_gradients_oracle(family: str) -> None:
    model = build_family(family)
    clean, corrupted, metric = pair_inputs(batch=2, seq=SEQ, differ_at=(1, 3))
    got = edge_attribution(model, clean=clean, corrupted=corrupted, metric=metric,
                           method="eap-ig", ig_steps=STEPS)  # fmt: skip
    g = got.graph
    assert set(g.edges()) == _edges(model, g.upstream, g.downstream)
    expected = oracle(model, g, clean, corrupted, metric, _midpoints(STEPS))
    assert (got.per_example - expected).abs().max() <= TOL
    assert expected.abs().max() > 1e-2


def test_the_oracle_tells_integration_rules_apart() -> None:
    """The check can fail: left endpoints (0, 1/3, 2/3) or plain EAP are other numbers."""
    model = build_family("llama")
    clean, corrupted, metric = pair_inputs(batch=2, seq=SEQ, differ_at=(1, 3))
    got = edge_attribution(model, clean=clean, corrupted=corrupted, metric=metric,
                           method="eap-ig", ig_steps=STEPS)  # fmt: skip
    left = oracle(model, got.graph, clean, corrupted, metric, [k / STEPS for k in range(STEPS)])
    assert (got.per_example - left).abs().max() > 10 * TOL
    eap = edge_attribution(model, clean=clean, corrupted=corrupted, metric=metric)
    assert (
        eap.per_example - oracle(model, got.graph, clean, corrupted, metric, [0.0])
    ).abs().max() <= TOL


@pytest.mark.parametrize("method", ["eap", "eap-ig"])
def test_gemma2_is_refused_in_one_line(method: str) -> None:
    model = build_family("gemma2")
    clean, corrupted, metric = pair_inputs(batch=2, seq=SEQ)
    with pytest.raises(MesaInterpError) as err:
        edge_attribution(model, clean=clean, corrupted=corrupted, metric=metric, method=method)
    message = str(err.value)
    assert "\n" not in message and REFUSED["gemma2"] in message
    with pytest.raises(MesaInterpError, match=REFUSED["gemma2"]):
        EdgeForward(model)
