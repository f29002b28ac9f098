"""AtP*'s QK fix and GradDrop against their slow oracles.

What is exact and is checked to float tolerance:
- the QK fix's patched pattern equals the pattern a hooked forward records when the
  q or k site is patched with its clean value (every architecture family);
- where the metric is linear in the head's pattern (one attention-only layer, no
  norm), QK-fixed node and edge scores equal exact patching, and plain attribution
  does not;
- GradDrop equals its definition computed from hooked forwards in which one layer's
  outputs are replaced by constants (same values, no gradient).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor

from mesainterp.attribution import (
    EdgeForward,
    edge_attribution,
    node_attribution,
    site_slice_sum,
)
from mesainterp.attribution.atp_star import QKFix
from mesainterp.errors import ConfigError, MesaInterpError
from mesainterp.model import ModelConfig, build_model, model_shape
from mesainterp.patching.engine import capture, run_sweep
from mesainterp.patching.hooks import count_hooks, hook_context
from mesainterp.patching.metrics import logit_diff
from mesainterp.patching.setters import apply_site
from mesainterp.sites import Site, head_sites, mlp_sites
from tests.unit.attribution.families import FAMILIES, REFUSED, build_family, family_pair

TOL = 1e-5


def _sharpen(model: Any, factor: float, seed: int = 0) -> Any:
    """Redraw the weights at unit scale, W_Q and W_K `factor` times larger, so attention
    is far from uniform and patching effects are well above float noise."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.original_model.named_parameters():
            if p.ndim != 2:
                continue
            plain = name.replace("._original_component", "")
            scale = 1.0 if "embed" in plain or plain.startswith("pos") else p.shape[-1] ** -0.5
            if plain.endswith(("attn.q.weight", "attn.k.weight")):
                scale *= factor
            p.copy_(scale * torch.randn(p.shape, generator=gen))
    return model


def _inputs(vocab: int, batch: int = 6, seq: int = 7, seed: int = 0) -> tuple[Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    clean = torch.randint(0, vocab, (batch, seq), generator=gen)
    corrupted = clean.clone()
    for p in (1, 4):
        corrupted[:, p] = (clean[:, p] + torch.randint(1, vocab, (batch,), generator=gen)) % vocab
    return clean, corrupted


def _one_layer() -> tuple[Any, Tensor, Tensor, Any]:
    """Attention only, no norm: the metric is linear in every head's pattern."""
    config = ModelConfig(
        n_layers=1, d_model=16, n_heads=2, d_head=8, d_vocab=11, n_ctx=8,
        attn_only=True, normalization_type=None, seed=3,
    )  # fmt: skip
    model = _sharpen(build_model(config), 4.0)
    clean, corrupted = _inputs(11)
    metric = logit_diff(torch.full((6,), 6), clean[:, 1], corrupted[:, 1])
    return model, clean, corrupted, metric


def _qk_sites(shape: Any, seq: int) -> list[Site]:
    return [
        site
        for kind in ("q", "k")
        for site in head_sites(shape, kind=kind) + head_sites(shape, seq_len=seq, kind=kind, by_pos=True)
    ]  # fmt: skip


def _pattern_under_patch(model: Any, site: Site, clean: Tensor, corrupted: Tensor) -> Tensor:
    """The site's layer's pattern in a corrupted forward with the site patched to clean."""
    _, acts = capture(model, clean, [site.hook_name])
    store: dict[str, Tensor] = {}

    def patch(act: Tensor, *, hook: Any) -> Tensor:
        return apply_site(site, act, acts[site.hook_name])

    def read(act: Tensor, *, hook: Any) -> None:
        store["pattern"] = act.detach().clone()

    pattern = Site(kind="pattern", layer=site.layer, head=0).hook_name
    with torch.no_grad(), hook_context(model, fwd=[(site.hook_name, patch), (pattern, read)]):
        model(corrupted)
    return store["pattern"]


@pytest.mark.parametrize("family", FAMILIES)
def test_qk_fix_pattern_equals_the_pattern_of_exact_patching(family: str) -> None:
    model = build_family(family)
    clean, corrupted = family_pair(diff_at=(1, 3))
    kv = int(getattr(model.cfg, "n_key_value_heads", None) or model.cfg.n_heads)
    sites = [
        Site(kind=kind, layer=layer, head=head, pos=pos)
        for kind, n in (("q", model.cfg.n_heads), ("k", kv))
        for layer in (0, 1)
        for head in (0, n - 1)
        for pos in (1, 3, None)
    ]
    fix = QKFix(model)
    names = fix.hook_names(sites)
    _, clean_acts = capture(model, clean, names)
    _, corrupted_acts = capture(model, corrupted, names)
    fix.prepare(clean_acts, corrupted_acts)
    moved = 0.0
    for site in sites:
        heads, rows, new, old = fix.patched_pattern(site)
        exact = _pattern_under_patch(model, site, clean, corrupted)[:, heads][:, :, rows]
        assert (new - exact).abs().max() <= 1e-4, site.label()
        moved = max(moved, float((exact - old).abs().max()))
    assert moved > 1e-2  # the patches move the pattern


def test_qk_fixed_node_scores_equal_exact_patching_when_linear_in_the_pattern() -> None:
    model, clean, corrupted, metric = _one_layer()
    sites = _qk_sites(model_shape(model), clean.shape[1])
    before = count_hooks(model)
    fixed = node_attribution(
        model, sites, clean=clean, corrupted=corrupted, metric=metric, qk_fix=True
    )
    plain = node_attribution(model, sites, clean=clean, corrupted=corrupted, metric=metric)
    assert count_hooks(model) == before
    sweep = run_sweep(model, sites, clean=clean, corrupted=corrupted, metric=metric)
    exact = sweep.patched - sweep.corrupted
    assert exact.abs().max() > 0.1
    assert (fixed.per_example - exact).abs().max() <= TOL
    assert (plain.per_example - exact).abs().max() > 1e-2  # the linearisation is not exact


def test_qk_fixed_edge_scores_equal_exact_edge_patching_when_linear_in_the_pattern() -> None:
    model, clean, corrupted, metric = _one_layer()
    fixed = edge_attribution(model, clean=clean, corrupted=corrupted, metric=metric, qk_fix=True)
    plain = edge_attribution(model, clean=clean, corrupted=corrupted, metric=metric)
    assert fixed.params == {"qk_fix": True, "grad_drop": False}
    ef = EdgeForward(model)
    g = ef.graph
    tok_c, pos = ef.embed_parts(clean)
    tok_r, _ = ef.embed_parts(corrupted)
    with torch.no_grad():
        out_c = ef.run(tok_c, pos).outs
        base = metric(ef.run(tok_r, pos).logits, None)
        worst_fixed, worst_plain, largest = 0.0, 0.0, 0.0
        for u, d in g.edges():
            i, j = g.up_index(u), g.down_index(d)
            cut = torch.zeros(g.n_upstream, g.n_downstream)
            cut[i, j] = 1
            exact = metric(ef.run(tok_r, pos, cut=cut, ablated=out_c).logits, None) - base
            worst_fixed = max(worst_fixed, float((fixed.per_example[i, j] - exact).abs().max()))
            worst_plain = max(worst_plain, float((plain.per_example[i, j] - exact).abs().max()))
            largest = max(largest, float(exact.abs().max()))
    assert largest > 0.1
    assert worst_fixed <= TOL
    assert worst_plain > 1e-2


def _mlp_model() -> tuple[Any, Tensor, Tensor, Any]:
    config = ModelConfig(
        n_layers=3, d_model=16, n_heads=2, d_head=8, d_mlp=32, d_vocab=11, n_ctx=8, seed=1
    )
    model = _sharpen(build_model(config), 3.0)
    clean, corrupted = _inputs(11, seed=2)
    metric = logit_diff(torch.full((6,), 6), clean[:, 1], corrupted[:, 1])
    return model, clean, corrupted, metric


def _frozen_grads(
    model: Any, names: list[str], corrupted: Tensor, metric: Any, layer: int
) -> dict[str, Tensor]:
    """dM/d(activation at `names`) with block `layer`'s attention and MLP outputs replaced
    by constants equal to their values (the oracle of dropping their gradient)."""
    _, consts = capture(model, corrupted, [f"blocks.{layer}.hook_{k}_out" for k in ("attn", "mlp")])
    leaves: dict[str, Tensor] = {}

    def leaf(name: str) -> Any:
        def fn(act: Tensor, *, hook: Any) -> Tensor:
            leaves[name] = torch.zeros_like(act, requires_grad=True)
            return act + leaves[name]

        return fn

    def const(name: str) -> Any:
        return lambda act, *, hook: consts[name]

    hooks = [(n, leaf(n)) for n in names] + [(n, const(n)) for n in consts]
    with torch.enable_grad(), hook_context(model, fwd=hooks):
        value = metric(model(corrupted), None).sum()
        grads = torch.autograd.grad(value, [leaves[n] for n in names], allow_unused=True)
    return {
        n: torch.zeros_like(leaves[n]) if gr is None else gr
        for n, gr in zip(names, grads, strict=True)
    }


def test_grad_drop_node_scores_equal_the_frozen_layer_oracle() -> None:
    model, clean, corrupted, metric = _mlp_model()
    shape = model_shape(model)
    sites = (
        head_sites(shape, seq_len=7, by_pos=True)
        + mlp_sites(shape, seq_len=7)
        + [Site(kind="resid_pre", layer=layer, pos=4) for layer in range(3)]
    )
    before = count_hooks(model)
    scores = node_attribution(
        model, sites, clean=clean, corrupted=corrupted, metric=metric, grad_drop=True
    )
    assert count_hooks(model) == before
    names = sorted({s.hook_name for s in sites})
    _, clean_acts = capture(model, clean, names)
    _, corrupted_acts = capture(model, corrupted, names)
    total = torch.zeros(len(sites), clean.shape[0])
    for layer in range(3):
        grads = _frozen_grads(model, names, corrupted, metric, layer)
        total += torch.stack([
            site_slice_sum(s, (clean_acts[s.hook_name] - corrupted_acts[s.hook_name])
                           * grads[s.hook_name]).abs()
            for s in sites
        ])  # fmt: skip
    oracle = total / 2
    assert oracle.abs().max() > 0.05
    assert (scores.per_example - oracle).abs().max() <= TOL
    assert (scores.per_example >= 0).all()


def test_grad_drop_edge_scores_equal_the_frozen_layer_oracle() -> None:
    """MLP-input receivers (their gradient is that at the MLP norm's input) and the logits."""
    model, clean, corrupted, metric = _mlp_model()
    scores = edge_attribution(
        model, clean=clean, corrupted=corrupted, metric=metric, grad_drop=True
    )
    plain = edge_attribution(model, clean=clean, corrupted=corrupted, metric=metric)
    ef = EdgeForward(model)
    g = ef.graph
    with torch.no_grad():
        tok_c, pos = ef.embed_parts(clean)
        tok_r, _ = ef.embed_parts(corrupted)
        diffs = torch.stack(ef.run(tok_c, pos).outs) - torch.stack(ef.run(tok_r, pos).outs)
    names = [f"blocks.{j}.ln2.hook_in" for j in range(3)]  # what the MLP reads
    total = torch.zeros(g.n_upstream, 3, clean.shape[0])
    for layer in range(3):
        grads = _frozen_grads(model, names, corrupted, metric, layer)
        for j, name in enumerate(names):
            total[:, j] += torch.einsum("ubpd,bpd->ub", diffs, grads[name]).abs()
    cols = [g.down_index(f"M{j}.in") for j in range(3)]
    valid = g.valid_mask()[:, cols].unsqueeze(-1)
    oracle = total / 2 * valid
    assert oracle.abs().max() > 0.05
    assert (scores.per_example[:, cols] - oracle).abs().max() <= TOL
    # The logits' gradient never passes a dropped layer: |EAP| * L / (L - 1).
    logits = g.down_index("logits")
    expected = plain.per_example[:, logits].abs() * 1.5
    assert (scores.per_example[:, logits] - expected).abs().max() <= TOL


@pytest.mark.usefixtures("no_runtime_check")
def test_atp_star_flags_are_checked() -> None:
    model, clean, corrupted, metric = _one_layer()
    inputs = dict(clean=clean, corrupted=corrupted, metric=metric)
    sites = [Site(kind="k", layer=0, head=0)]
    with pytest.raises(ConfigError, match="qk_fix: expected a bool"):
        node_attribution(model, sites, qk_fix="yes", **inputs)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="grad_drop: needs a model with >= 2 layers"):
        node_attribution(model, sites, grad_drop=True, **inputs)
    with pytest.raises(ConfigError, match="method: qk_fix and grad_drop need 'eap'"):
        edge_attribution(model, method="eap-ig", qk_fix=True, **inputs)
    with pytest.raises(ConfigError, match="grad_drop: needs a model with >= 2 layers"):
        edge_attribution(model, grad_drop=True, **inputs)


@pytest.mark.parametrize("family", FAMILIES)
def test_edge_qk_fix_from_the_embedding_equals_the_node_qk_fix(family: str) -> None:
    """Patching embed -> a layer-0 q/k input gives that input its clean value, which is
    patching the q/k site itself: two independent routes (the edge path's own norm,
    projection, rotary and dM/dA from downstream gradients; the node path's hooks and
    pattern gradient) must agree, on every family (grouped-query k/v included)."""
    model = build_family(family)
    clean, corrupted = family_pair(diff_at=(1, 3))
    n = clean.shape[0]
    metric = logit_diff(torch.full((n,), clean.shape[1] - 1), clean[:, 1], corrupted[:, 1])
    ef = EdgeForward(model)
    g = ef.graph
    receivers = [g.head_input(0, h, "q") for h in range(g.n_heads)]
    receivers += [g.head_input(0, h, "k") for h in range(g.kv_heads)]
    sites = [Site(kind="q", layer=0, head=h) for h in range(g.n_heads)]
    sites += [Site(kind="k", layer=0, head=h) for h in range(g.kv_heads)]
    nodes = node_attribution(
        model, sites, clean=clean, corrupted=corrupted, metric=metric, qk_fix=True
    )
    edges = edge_attribution(
        model, clean=clean, corrupted=corrupted, metric=metric, qk_fix=True, forward=ef
    )
    from_embed = edges.per_example[g.up_index("embed"), [g.down_index(r) for r in receivers]]
    assert nodes.per_example.abs().max() > 1e-2
    assert (from_embed - nodes.per_example).abs().max() <= 1e-4


@pytest.mark.parametrize("family", sorted(REFUSED))
def test_qk_fix_refuses_models_the_fast_forward_does_not_cover(family: str) -> None:
    model = build_family(family)
    clean, corrupted = family_pair()
    metric = logit_diff(torch.full((4,), 6), clean[:, 2], corrupted[:, 2])
    site = Site(kind="k", layer=0, head=0)
    with pytest.raises(
        MesaInterpError, match=f"qk_fix cannot run on this model: .*{REFUSED[family]}"
    ):
        node_attribution(
            model, [site], clean=clean, corrupted=corrupted, metric=metric, qk_fix=True
        )


@pytest.mark.parametrize("family", FAMILIES)
def test_grad_drop_matches_the_frozen_layer_oracle_on_every_family(family: str) -> None:
    model = build_family(family)
    clean, corrupted = family_pair()
    metric = logit_diff(torch.full((4,), 6), clean[:, 2], corrupted[:, 2])
    sites = [Site(kind="z", layer=0, head=h, pos=p) for h in (0, 3) for p in (2, 6)]
    sites += [Site(kind="mlp_out", layer=0, pos=6)]
    scores = node_attribution(
        model, sites, clean=clean, corrupted=corrupted, metric=metric, grad_drop=True
    )
    names = sorted({s.hook_name for s in sites})
    _, clean_acts = capture(model, clean, names)
    _, corrupted_acts = capture(model, corrupted, names)
    n_layers = model.cfg.n_layers
    total = torch.zeros(len(sites), clean.shape[0])
    for layer in range(n_layers):
        grads = _frozen_grads(model, names, corrupted, metric, layer)
        diffs = {n: clean_acts[n] - corrupted_acts[n] for n in names}
        total += torch.stack(
            [site_slice_sum(s, diffs[s.hook_name] * grads[s.hook_name]) for s in sites]
        ).abs()
    oracle = total / (n_layers - 1)
    assert oracle.max() > 1e-2
    assert (scores.per_example - oracle).abs().max() <= 1e-4
