"""Test 5, localised mechanism: a small circuit carries the behaviour.

Every edge of the model is scored by EAP-IG on the task's counterfactual pairs
(its default family and metric); the top `circuit_fraction` of all edges by
|score| is kept and every other edge resample-ablated (the corrupted run's
value). Faithfulness is the fraction of the metric's clean - corrupted gap the
circuit recovers (`discovery.faithfulness`), with a bootstrap interval; the same
is reported at each of `curve_fractions`. Control: `n_random` random edge sets of
the same size. Pass: faithfulness >= `faithfulness_threshold`.

A model whose metric does not separate clean from corrupted (the bootstrap
interval of the gap includes 0) has no behaviour to localise and fails.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from mesainterp.attribution.eap import edge_attribution
from mesainterp.attribution.edge_forward import EdgeForward, edge_support_reason
from mesainterp.discovery.circuit import Circuit
from mesainterp.discovery.faithfulness_measure import faithfulness
from mesainterp.evidence.config import EvidenceConfig
from mesainterp.evidence.profile import EvidenceInputs
from mesainterp.evidence.result import EvidenceResult, judged, not_applicable
from mesainterp.evidence.stats import bootstrap_mean

__all__ = ["localised_mechanism"]

NAME = "localised_mechanism"
IG_STEPS = 5


def localised_mechanism(inputs: EvidenceInputs, cfg: EvidenceConfig) -> EvidenceResult:
    """Test 5 (see the module docstring)."""
    criterion = (
        f"faithfulness (resample ablation) of the top {cfg.circuit_fraction:.0%} of edges by"
        f" EAP-IG >= {cfg.faithfulness_threshold:g}"
    )
    reason = edge_support_reason(inputs.model)
    if reason is not None:
        return not_applicable(NAME, criterion, cfg.faithfulness_threshold, reason)
    model, task = inputs.model, inputs.task
    pair = task.counterfactual_pairs(cfg.n_pairs, seed=cfg.seed + 20_000)
    metric = task.default_metric(pair)
    clean, corrupted, batch = pair.clean.inputs, pair.corrupted.inputs, pair.clean
    ef = EdgeForward(model)
    with torch.no_grad():
        tok_c, pos = ef.embed_parts(clean)
        tok_r, _ = ef.embed_parts(corrupted)
        gap = metric(ef.run(tok_c, pos).logits, batch) - metric(ef.run(tok_r, pos).logits, batch)
    gap_ci = bootstrap_mean(gap, n_boot=cfg.n_boot, seed=cfg.seed)
    n_edges = int(ef.graph.valid_mask().sum())
    sizes = {f: max(1, round(f * n_edges)) for f in (cfg.circuit_fraction, *cfg.curve_fractions)}
    k = sizes[cfg.circuit_fraction]
    details = {
        "n_edges": n_edges,
        "k": k,
        "gap": float(gap.mean()),
        "gap_ci": list(gap_ci),
        "family": pair.family,
        "n_pairs": cfg.n_pairs,
        "ablation": "resample",
        "method": f"eap-ig ({IG_STEPS} steps)",
        "ci": "percentile bootstrap over pairs",
    }
    if not gap_ci[0] > 0:
        no_behaviour = judged(
            test=NAME, criterion=criterion, metric="faithfulness of the top edges",
            value=float("nan"), ci=(float("nan"), float("nan")), control=None,
            control_name="random edge sets", threshold=cfg.faithfulness_threshold,
            details=details, compare_to_control=False,
        )  # fmt: skip
        reason = (
            f"no behaviour to localise: the metric's clean - corrupted gap {details['gap']:.3g}"
            f" has a 95% interval [{gap_ci[0]:.3g}, {gap_ci[1]:.3g}] that is not above 0"
        )
        return dataclasses.replace(no_behaviour, reason=reason)
    scores = edge_attribution(
        model, clean=clean, corrupted=corrupted, metric=metric, batch=batch,
        method="eap-ig", ig_steps=IG_STEPS, forward=ef,
    )  # fmt: skip
    ranked = scores.ranked()
    ranking = [e for e, _ in ranked]
    circuit = Circuit.from_edges(dict(ranked[:k]), method="eap-ig", node_order=ef.graph.upstream)

    def measure(curve_k: list[int], ranking: list[tuple[str, str]]) -> list[Any]:
        return faithfulness(
            model, circuit, clean=clean, corrupted=corrupted, metric=metric, batch=batch,
            ablations=("resample",), curve_k=curve_k, ranking=ranking, n_boot=cfg.n_boot,
            seed=cfg.seed, forward=ef,
        )  # fmt: skip

    rows = measure(sorted(set(sizes.values())), ranking)
    curve = {r.k: r for r in rows if r.measure == "curve"}
    main = curve[k]
    gen = torch.Generator().manual_seed(cfg.seed)
    random_values = []
    for _ in range(cfg.n_random):
        perm = [ranking[i] for i in torch.randperm(len(ranking), generator=gen).tolist()]
        rand = measure([k], perm)
        random_values.append(next(r.value for r in rand if r.measure == "curve"))
    control = float(sum(random_values) / len(random_values))
    details |= {
        "curve": [
            {
                "fraction": f,
                "k": s,
                "value": curve[s].value,
                "ci": [curve[s].ci_low, curve[s].ci_high],
            }
            for f, s in sorted(sizes.items())
        ],
        "random_draws": random_values,
    }
    return judged(
        test=NAME,
        criterion=criterion,
        metric=f"faithfulness of the top {k} of {n_edges} edges",
        value=main.value,
        ci=(main.ci_low, main.ci_high),
        control=control,
        control_name="random edge sets of the same size",
        threshold=cfg.faithfulness_threshold,
        details=details,
        compare_to_control=False,
    )
