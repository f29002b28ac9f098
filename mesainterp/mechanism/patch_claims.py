"""Patching claims: which heads matter at each of the task's query roles.

Every head is mean-ablated at one query role's positions only (`ablate.HeadAblator`,
the same intervention as the role table's causal check, but over every head, with or
without a named relation), and the drop in the answer log-probability at and after
those positions is averaged over the examples with that role, with a bootstrap
interval. A head *matters* at a role when the interval's lower end clears
`head_roles.MIN_DROP`. The card states, per role, the heads that matter (at most
`MAX_PER_ROLE`, largest first), or that none does, naming the largest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import torch
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.mechanism.ablate import HeadAblator, answer_logprob_after
from mesainterp.mechanism.claims import Claim
from mesainterp.mechanism.head_roles import MIN_DROP
from mesainterp.mechanism.relations import QueryRole
from mesainterp.stats import bootstrap_mean
from mesainterp.tasks.base import TaskBatch

__all__ = ["MAX_PER_ROLE", "patching_claims"]

# A card stays short: at most this many heads per query role.
MAX_PER_ROLE = 3


def _query_mask(batch: TaskBatch, role: QueryRole) -> torch.Tensor:
    mask = torch.zeros(batch.batch_size, batch.seq_len, dtype=torch.bool)
    for b in range(batch.batch_size):
        for q in role.positions(batch, b):
            mask[b, q] = True
    return mask


@torch.no_grad()
def patching_claims(
    model: TransformerBridge, batch: TaskBatch, roles: Sequence[QueryRole], *, n_boot: int,
    seed: int,
) -> tuple[list[Claim], pd.DataFrame]:  # fmt: skip
    """Per role, the heads whose ablation there lowers the answers (see module doc)."""
    behaviour = answer_logprob_after(batch)
    ablator = HeadAblator(model, batch.inputs, "mean")
    clean = ablator.logits.detach().float().cpu()
    n_layers, n_heads = int(model.cfg.n_layers), int(model.cfg.n_heads)
    records: list[dict[str, Any]] = []
    claims: list[Claim] = []
    for role in roles:
        query = _query_mask(batch, role)
        rows = query.any(1)
        if int(rows.sum()) < 2:
            continue
        base = behaviour(clean, query)
        cells: list[tuple[int, dict[str, Any]]] = []
        for layer in range(n_layers):
            for head in range(n_heads):
                ablated = ablator.logits_without(layer, head, query).detach().float().cpu()
                drop = (base - behaviour(ablated, query))[rows]
                low, high = bootstrap_mean(drop, n_boot=n_boot, seed=seed)
                cell: dict[str, Any] = {"query_role": role.name, "layer": layer, "head": head,
                        "head_name": f"L{layer}H{head}", "drop": float(drop.mean()),
                        "ci_low": low, "ci_high": high, "n": int(rows.sum()),
                        "matters": low >= MIN_DROP}  # fmt: skip
                cells.append((len(records), cell))
                records.append(cell)
        ranked = sorted(cells, key=lambda ic: -ic[1]["drop"])
        chosen = [ic for ic in ranked if ic[1]["matters"]][:MAX_PER_ROLE] or ranked[:1]
        for i, c in chosen:
            verb = "lowers" if c["matters"] else "does not clearly lower"
            claims.append(
                Claim(
                    text=f"At {role.name}, mean-ablating {c['head_name']} there {verb} the"
                    f" answer log-prob: {c['drop']:.2f} nats (CI {c['ci_low']:.2f}–"
                    f"{c['ci_high']:.2f})" + ("" if c["matters"] else "; no head clears it"),
                    kind="patching",
                    evidence=f"patching.csv row {i}",
                    value=c["drop"],
                    ci_low=c["ci_low"],
                    ci_high=c["ci_high"],
                    status="supported" if c["matters"] else "failed",
                    head=c["head_name"],
                    query_role=role.name,
                    layer=c["layer"],
                )
            )
    return claims, pd.DataFrame(records)
