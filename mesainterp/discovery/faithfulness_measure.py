"""How faithful a circuit is, under named ablations, with seeded bootstrap intervals.

All values are normalised with the patching package's ratio of means:

    (metric - metric(empty)) / (metric(full model) - metric(empty))

where "empty" cuts every edge (with resample ablation this is the corrupted run).

faithfulness  every edge outside the circuit ablated: the fraction of the metric the
              circuit alone recovers (1 = all of it).
completeness  the circuit's own edges ablated inside the full model: 1 - the fraction
              left (1 = removing the circuit removes everything).
curve         the top-k edges (by |score|) as the circuit, for several k.

A circuit found per position or per role is measured at that granularity: an edge
u@g -> d@g outside it is ablated at g's positions only (`EdgeForward.run`'s
`cut_groups`), so "empty" is the same corrupted run and the values compare with the
position-agnostic ones. A circuit by role needs the roles' positions in these inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.attribution.edge_forward import EdgeForward
from mesainterp.attribution.graph import EdgeGraph
from mesainterp.attribution.positions import PositionalGraph, PositionGroups, position_groups
from mesainterp.discovery.ablated import ablated_outputs, cut_run_metric
from mesainterp.discovery.circuit import Circuit
from mesainterp.errors import ConfigError, allowed
from mesainterp.patching.ablation import ABLATIONS
from mesainterp.patching.metric_call import AnyMetric, as_batch_metric
from mesainterp.patching.stats import bootstrap_normalised, normalised_effect
from mesainterp.progress import progress_bar
from mesainterp.shapes import ModelInput, ReferenceInput, shape_checked

__all__ = ["FaithfulnessRow", "faithfulness", "rows_to_frame"]


@dataclass(frozen=True, kw_only=True)
class FaithfulnessRow:
    measure: str  # "faithfulness", "completeness" or "curve"
    ablation: str
    k: int | None  # curve only: number of top edges kept
    n_edges: int
    value: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "measure": self.measure,
            "ablation": self.ablation,
            "k": self.k,
            "n_edges": self.n_edges,
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
        }


@torch.no_grad()
@shape_checked
def faithfulness(
    model: TransformerBridge,
    circuit: Circuit,
    *,
    clean: ModelInput,
    corrupted: ModelInput,
    metric: AnyMetric,
    batch: Any = None,
    ablations: Sequence[str] = ("resample", "mean", "zero"),
    curve_k: Sequence[int] = (),
    ranking: Sequence[tuple[str, str]] | None = None,
    reference: ReferenceInput | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    forward: EdgeForward | None = None,
    progress: bool | None = None,
    roles: Mapping[str, Any] | None = None,
) -> list[FaithfulnessRow]:
    """Faithfulness, completeness and the top-k curve of `circuit` (see the module docstring).

    ranking:   edges in decreasing importance for the curve (default: the circuit's
               edges by |score|).
    reference: inputs for mean ablation (default: clean and corrupted together).
    progress:  a bar over the size curve (None: on unless MESAINTERP_NO_PROGRESS).
    roles:     for a circuit found by role, {role: positions} in these inputs (the
               mapping given to the search); its role names must be the circuit's.

    >>> model = mesainterp.build_model(mesainterp.ModelConfig(
    ...     n_layers=1, d_model=16, n_heads=2, d_head=8, d_mlp=32, d_vocab=11, n_ctx=8, seed=0))
    >>> pairs = mesainterp.PromptPairs.from_token_ids(
    ...     [[5, 1, 2], [6, 1, 2], [7, 3, 2], [8, 3, 2]],  # clean prompts
    ...     [[6, 1, 2], [5, 1, 2], [8, 3, 2], [7, 3, 2]],  # corrupted: first token swapped
    ...     [5, 6, 7, 8], [6, 5, 8, 7])                     # clean and corrupted answers
    >>> pair = pairs.to_pair()
    >>> inputs = dict(clean=pair.clean.inputs, corrupted=pair.corrupted.inputs,
    ...     metric=pairs.default_metric(), batch=pair.clean)
    >>> scores = mesainterp.edge_attribution(model, **inputs)
    >>> circuit = mesainterp.Circuit.from_edges(mesainterp.top_edges(scores, top_n=3), method="eap")
    >>> rows = mesainterp.faithfulness(model, circuit, ablations=("resample",), curve_k=(3,),
    ...     n_boot=100, progress=False, **inputs)
    >>> [(row.measure, row.k, row.n_edges, round(row.value, 2)) for row in rows]
    [('faithfulness', None, 3, 0.93), ('completeness', None, 3, 1.05), ('curve', 3, 3, 0.93)]
    >>> sorted(rows[0].to_dict())
    ['ablation', 'ci_high', 'ci_low', 'k', 'measure', 'n_edges', 'value']
    """
    metric = as_batch_metric(metric)  # metric(logits) or metric(logits, batch)
    for i, a in enumerate(ablations):
        if a not in ABLATIONS:
            raise ConfigError(f"ablations[{i}]", f"got {a!r}", allowed(ABLATIONS))
    for i, k in enumerate(curve_k):
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ConfigError(f"curve_k[{i}]", f"expected an int >= 0, got {k!r}")
    ef = forward or EdgeForward(model)
    g: EdgeGraph | PositionalGraph = ef.graph
    cut_groups = None
    if circuit.positions is not None:
        groups = _circuit_groups(circuit.positions, roles, clean)
        g, cut_groups = PositionalGraph.of(ef.graph, groups), groups.index
    elif roles is not None:
        raise ConfigError("roles", "given for a position-agnostic circuit", "None")
    valid = g.valid_mask()
    unknown = [e for e in circuit.edges if not _in_graph(g, e)]
    if unknown:
        raise ConfigError("circuit.edges", f"edge {unknown[0]} is not in this model's graph")
    in_circuit = g.mask_of(set(circuit.edges)) & valid
    order = (
        list(ranking)
        if ranking is not None
        else [e for e, _ in sorted(circuit.edges.items(), key=lambda kv: -abs(kv[1]))]
    )
    ref = reference if reference is not None else torch.cat([clean, corrupted])
    tok, pos = ef.embed_parts(clean)
    full = metric(ef.run(tok, pos).logits, batch).detach().float()
    rows: list[FaithfulnessRow] = []
    for ablation in ablations:
        abl = ablated_outputs(ef, ablation, corrupted=corrupted, reference=ref)

        def value(cut: Tensor, abl: list[Tensor] = abl) -> Tensor:
            return cut_run_metric(
                ef, metric, batch, tok=tok, pos=pos, cut=cut, ablated=abl, cut_groups=cut_groups
            )

        empty = value(valid)
        cases: list[tuple[str, int | None, int, Tensor, bool]] = [
            ("faithfulness", None, int(in_circuit.sum()), value(valid & ~in_circuit), False),
            ("completeness", None, int(in_circuit.sum()), value(in_circuit), True),
        ]
        for k in progress_bar(
            curve_k, desc=f"size curve ({ablation})", total=len(curve_k), progress=progress
        ):
            top = g.mask_of(set(order[:k])) & valid
            cases.append(("curve", k, int(top.sum()), value(valid & ~top), False))
        patched = torch.stack([c[3] for c in cases])
        point = normalised_effect(patched, full, empty)
        low, high = bootstrap_normalised(patched, full, empty, n_boot=n_boot, seed=seed)
        for (measure, size, n_edges, _, flip), v, lo, hi in zip(
            cases, point, low, high, strict=True
        ):
            if flip:  # completeness = 1 - fraction left
                v, lo, hi = 1 - v, 1 - hi, 1 - lo
            rows.append(
                FaithfulnessRow(
                    measure=measure, ablation=ablation, k=size, n_edges=n_edges,
                    value=float(v), ci_low=float(lo), ci_high=float(hi),
                )
            )  # fmt: skip
    return rows


def _in_graph(g: EdgeGraph | PositionalGraph, edge: tuple[str, str]) -> bool:
    if isinstance(g, EdgeGraph):
        return edge[0] in g.upstream and edge[1] in g.downstream
    try:
        g.index(edge)
    except ConfigError:
        return False
    return True


def _circuit_groups(
    spec: Mapping[str, Any], roles: Mapping[str, Any] | None, clean: Tensor
) -> PositionGroups:
    """The circuit's groups in these inputs; a role circuit's roles must be given."""
    batch, seq = int(clean.shape[0]), int(clean.shape[1])
    labels = list(spec["labels"])
    if spec["granularity"] == "each":
        if roles is not None:
            raise ConfigError("roles", "given for a circuit found per position", "None")
        groups = position_groups("each", batch=batch, seq=seq)
        if list(groups.labels) != labels:
            raise ConfigError(
                "clean", f"{seq} positions; the circuit was found on {len(labels)}",
                f"inputs of {len(labels)} positions",
            )  # fmt: skip
        return groups
    if roles is None:
        raise ConfigError(
            "roles", f"the circuit was found by role ({', '.join(labels)})",
            "{role: positions} in these inputs",
        )  # fmt: skip
    groups = position_groups(roles, batch=batch, seq=seq)
    if list(groups.labels) != labels:
        raise ConfigError(
            "roles", f"name {', '.join(groups.labels)}", f"the circuit's: {', '.join(labels)}"
        )
    return groups


def rows_to_frame(rows: Sequence[FaithfulnessRow]) -> Any:
    """The rows as a pandas DataFrame (for CSV / Parquet)."""
    import pandas as pd

    return pd.DataFrame([r.to_dict() for r in rows])
