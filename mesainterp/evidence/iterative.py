"""Test 4, iterative computation: the search state is built up layer by layer.

The search state is probed at the position that predicts the first answer token
in every layer: for tree-path the goal's ancestors 1..k (backward chaining
climbs one level per layer, Brinkmann et al. 2024), for maze and graph-search
the path steps 1..k, for icl-regression the query's target itself (the answer
read out of the residual stream, a linear logit lens). The curve is the mean
held-out score over those labels per layer.

Statistic: the rise = best score after layer 0 minus the score at layer 0 (what
more than one layer of computation adds). Control: the random-init twin's rise
on the same labels. Pass: rise - twin's rise >= `iterative_margin`.
The interval is a bootstrap over examples of the rise (both layers resampled together).
"""

from __future__ import annotations

import torch
from torch import Tensor

from mesainterp.evidence.config import EvidenceConfig
from mesainterp.evidence.layer_probe import LayerProbe, label_for, probe_by_layer
from mesainterp.evidence.profile import EvidenceInputs
from mesainterp.evidence.result import EvidenceResult, judged, not_applicable

__all__ = ["iterative_computation"]

NAME = "iterative_computation"


def _columns(inputs: EvidenceInputs, cfg: EvidenceConfig) -> list[int | None]:
    profile = inputs.profile
    y = inputs.data.labels[profile.state_label]
    if profile.kind == "regression":
        return [inputs.query_pos]
    out: list[int | None] = []
    for c in range(profile.state_first, min(y.shape[1], profile.state_first + cfg.state_ranks)):
        col = y[:, c]
        if int((col >= 0).sum()) >= 4 * cfg.folds and col[col >= 0].unique().numel() > 1:
            out.append(c)
    return out


def _probes(
    inputs: EvidenceInputs, columns: list[int | None], cfg: EvidenceConfig
) -> list[tuple[LayerProbe, Tensor]]:
    """Each label's probe over layers, with its usable-row mask."""
    label = inputs.profile.state_label
    labels = inputs.data.labels
    return [
        (
            probe_by_layer(inputs, label, label_column=c, pos=inputs.query_pos, cfg=cfg),
            label_for(labels, label, c)[0],
        )
        for c in columns
    ]


def _rise(curve: Tensor) -> tuple[float, int]:
    later = curve[1:]
    best = int(later.argmax()) + 1
    return float(curve[best] - curve[0]), best


def _bootstrap_rise(
    probes: list[tuple[LayerProbe, Tensor]], n: int, best: int, cfg: EvidenceConfig
) -> tuple[float, float]:
    """Bootstrap interval of mean-over-labels score(best layer) - score(layer 0)."""
    idx = torch.randint(0, n, (cfg.n_boot, n), generator=torch.Generator().manual_seed(cfg.seed))
    stats = torch.zeros(cfg.n_boot, dtype=torch.float64)
    for probe, keep in probes:
        rows = torch.nonzero(keep).squeeze(1)
        where = torch.full((n,), -1, dtype=torch.long)
        where[rows] = torch.arange(rows.numel())
        sel = where[idx]  # [boot, n], -1 where the example has no label
        w = (sel >= 0).double()
        safe = sel.clamp_min(0)
        y = probe.y[safe]
        per_layer = []
        for layer in (0, best):
            pred = probe.predictions[layer][safe]
            if probe.metric == "r2":
                cnt = w.sum(1, keepdim=True).clamp_min(1)
                mean = (y * w).sum(1, keepdim=True) / cnt
                ss_tot = ((y - mean) ** 2 * w).sum(1).clamp_min(1e-300)
                per_layer.append(1 - ((y - pred) ** 2 * w).sum(1) / ss_tot)
            else:
                per_layer.append(((pred == y).double() * w).sum(1) / w.sum(1).clamp_min(1))
        stats += per_layer[1] - per_layer[0]
    stats /= len(probes)
    q = torch.quantile(stats, torch.tensor([0.025, 0.975], dtype=torch.float64))
    return float(q[0]), float(q[1])


def iterative_computation(inputs: EvidenceInputs, cfg: EvidenceConfig) -> EvidenceResult:
    """Test 4 (see the module docstring)."""
    profile = inputs.profile
    criterion = (
        f"rise of the {profile.state_label!r} probe score after layer 0 (mean over"
        f" {'the query target' if profile.kind == 'regression' else f'up to {cfg.state_ranks} steps'})"
        f" minus the random-init twin's rise >= {cfg.iterative_margin:g}"
    )
    if inputs.n_layers < 2:
        return not_applicable(
            NAME, criterion, cfg.iterative_margin, "a one-layer model has no depth"
        )
    columns = _columns(inputs, cfg)
    if not columns:
        return not_applicable(
            NAME, criterion, cfg.iterative_margin, "no search-state label with enough examples"
        )
    probes = _probes(inputs, columns, cfg)
    model_curves = torch.tensor([p.values for p, _ in probes], dtype=torch.float64)
    twin_curves = torch.tensor([p.random_init for p, _ in probes], dtype=torch.float64)
    metric = probes[0][0].metric
    curve, twin_curve = model_curves.mean(0), twin_curves.mean(0)
    rise, best = _rise(curve)
    twin_rise, _ = _rise(twin_curve)
    ci = _bootstrap_rise(probes, inputs.data.n, best, cfg)
    return judged(
        test=NAME,
        criterion=criterion,
        metric=f"rise of mean held-out {metric} from layer 0 to layer {best}",
        value=rise,
        ci=ci,
        control=twin_rise,
        control_name="random-init twin's rise",
        threshold=cfg.iterative_margin,
        details={
            "label": profile.state_label,
            "columns": columns,
            "metric": metric,
            "by_layer": curve.tolist(),
            "random_init_by_layer": twin_curve.tolist(),
            "per_label_by_layer": model_curves.tolist(),
            "best_layer": best,
            "ci": "percentile bootstrap over examples",
        },
    )
