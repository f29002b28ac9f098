"""The saturated-attention planted model: where each attribution method lands on it.

A head is scored by its query and key sites (node attribution: max |score| over its
q and k sites; edge attribution: max |score| over edges into its q and k inputs),
because that is where a saturated softmax sits. Exact patching of the same sites is
the ground truth.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from mesainterp.attribution import EdgeForward, edge_attribution, node_attribution
from mesainterp.discovery import (
    SATURATED_DISTRACTORS,
    SATURATED_NECESSARY,
    saturated_model,
    saturated_pair,
)
from mesainterp.model import model_shape
from mesainterp.patching.engine import capture, run_sweep
from mesainterp.sites import Site, head_sites


def _qk_sites(model: Any) -> list[Site]:
    shape = model_shape(model)
    return head_sites(shape, kind="q") + head_sites(shape, kind="k")


def _per_head(sites: list[Site], values: Tensor) -> dict[str, float]:
    out: dict[str, float] = {}
    for site, value in zip(sites, values, strict=True):
        name = f"L{site.layer}H{site.head}"
        out[name] = max(out.get(name, 0.0), abs(float(value)))
    return out


def _separates(scores: dict[str, float]) -> bool:
    """Every necessary head strictly above every distractor."""
    return min(scores[h] for h in SATURATED_NECESSARY) > max(
        scores[h] for h in SATURATED_DISTRACTORS
    )


def _node_scores(model: Any, case: Any, **flags: bool) -> dict[str, float]:
    sites = _qk_sites(model)
    scores = node_attribution(
        model, sites, clean=case.clean, corrupted=case.corrupted, metric=case.metric, **flags
    )
    return _per_head(sites, scores.scores)


def _exact(model: Any, case: Any) -> dict[str, float]:
    sites = _qk_sites(model)
    sweep = run_sweep(model, sites, clean=case.clean, corrupted=case.corrupted, metric=case.metric)
    return _per_head(sites, (sweep.patched - sweep.corrupted).mean(dim=1))


def test_necessary_heads_attend_one_hot_and_the_task_is_solved() -> None:
    model, case = saturated_model(), saturated_pair()
    names = [Site(kind="pattern", layer=layer, head=0).hook_name for layer in (0, 1)]
    for tokens in (case.clean, case.corrupted):
        _, acts = capture(model, tokens, names)
        for name in names:
            top = acts[name][:, 0, -1].max(dim=-1).values  # head 0, last query position
            assert (top > 1 - 1e-6).all()
    # Each answer's logit difference is +-1 from its necessary head, plus the leaks.
    assert (case.metric(model(case.clean), None) > 1.5).all()
    assert (case.metric(model(case.corrupted), None) < -1.5).all()


def test_plain_attribution_scores_the_necessary_heads_near_zero() -> None:
    model, case = saturated_model(), saturated_pair()
    exact = _exact(model, case)
    plain = _node_scores(model, case)
    print(f"exact {exact}\nplain AtP {plain}")
    for head in SATURATED_NECESSARY:
        assert exact[head] > 1.9  # patching its keys moves its answer from -1 to +1
        assert plain[head] < 1e-6
    assert _separates(exact)
    assert not _separates(plain)  # a soft distractor outranks both necessary heads


def test_plain_attribution_finds_the_heads_when_attention_is_soft() -> None:
    """The control: the same circuit with a small gap is ranked right by plain AtP, so
    the failure above is the saturation's."""
    model, case = saturated_model(gap=2.0, leak=0.1), saturated_pair()
    assert _separates(_exact(model, case))
    assert _separates(_node_scores(model, case))


def test_atp_star_ranks_every_necessary_head_above_every_distractor() -> None:
    model, case = saturated_model(), saturated_pair()
    exact = _exact(model, case)
    for flags in ({"qk_fix": True}, {"qk_fix": True, "grad_drop": True}):
        star = _node_scores(model, case, **flags)
        print(f"{flags}: {star}")
        assert _separates(star)
        # Downstream of the patterns this model is linear: the fix is exact here.
        assert max(abs(star[h] - exact[h]) for h in exact) <= 1e-4
    # GradDrop alone keeps the linearised softmax: it misses them too.
    assert not _separates(_node_scores(model, case, grad_drop=True))


def _edge_heads(scores: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for (_, down), value in scores.as_dict().items():
        if down.endswith((".q", ".k")):
            head = down.rpartition(".")[0]
            out[head] = max(out.get(head, 0.0), abs(value))
    return out


def _exact_edges(model: Any, case: Any) -> dict[str, float]:
    ef = EdgeForward(model)
    g = ef.graph
    with torch.no_grad():
        tok_c, pos = ef.embed_parts(case.clean)
        tok_r, _ = ef.embed_parts(case.corrupted)
        out_c = ef.run(tok_c, pos).outs
        base = case.metric(ef.run(tok_r, pos).logits, None)
        out: dict[str, float] = {}
        for u, d in g.edges():
            if not d.endswith((".q", ".k")):
                continue
            cut = torch.zeros(g.n_upstream, g.n_downstream)
            cut[g.up_index(u), g.down_index(d)] = 1
            effect = case.metric(ef.run(tok_r, pos, cut=cut, ablated=out_c).logits, None) - base
            head = d.rpartition(".")[0]
            out[head] = max(out.get(head, 0.0), abs(float(effect.mean())))
    return out


def test_where_edge_methods_land() -> None:
    """EAP misses the necessary heads; EAP-IG ranks them right but, with its default 5
    steps, scores them about 3x their exact effect (its interpolation crosses the
    saturated softmax in one step); EAP with the QK fix (and GradDrop) is exact."""
    model, case = saturated_model(), saturated_pair()
    inputs = dict(clean=case.clean, corrupted=case.corrupted, metric=case.metric)
    exact = _exact_edges(model, case)
    eap = _edge_heads(edge_attribution(model, **inputs))
    eap_ig = _edge_heads(edge_attribution(model, method="eap-ig", **inputs))
    fixed = _edge_heads(edge_attribution(model, qk_fix=True, **inputs))
    star = _edge_heads(edge_attribution(model, qk_fix=True, grad_drop=True, **inputs))
    print(f"exact {exact}\nEAP {eap}\nEAP-IG {eap_ig}\nEAP+QK {fixed}\nAtP* {star}")
    assert _separates(exact)
    assert not _separates(eap)
    assert max(eap[h] for h in SATURATED_NECESSARY) < 1e-6
    assert _separates(eap_ig)
    assert min(eap_ig[h] / exact[h] for h in SATURATED_NECESSARY) > 2.5
    for scores in (fixed, star):
        assert _separates(scores)
        assert max(abs(scores[h] - exact[h]) for h in exact) <= 1e-4
