"""Probe claims: does the search's chain climb one layer per step (`mechanism.staircase_rule`)?

At the goal token and at ":" the chain quantities (tree-path: the goal's k-th
ancestor; graph-search: the k-th node back from the goal) are probed at every layer
(`structural_probes`) against the random-init twin, shuffled labels and chance. The
claim at a position is the structural module's own declared rule: every rank with
enough examples there clears somewhere and the first clearing layer strictly rises
with k. Its number is the
probe score of the deepest rank at its first clearing layer, with its interval.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.evidence.profile import declared_positions
from mesainterp.mechanism.claims import Claim
from mesainterp.mechanism.staircase_rule import staircase
from mesainterp.mechanism.structural import structural_probes
from mesainterp.tasks.base import Task

__all__ = ["CHAIN_RANKS", "PROBE_EXAMPLES", "probe_claims"]

# Examples for the chain probes (5-fold held-out predictions) and the ranks probed.
PROBE_EXAMPLES = 300
CHAIN_RANKS = 3
_CHAIN = {"tree-path": "ancestor {k}", "graph-search": "node {k} back"}
_WORDS = {"tree-path": "the goal's ancestors", "graph-search": "the nodes back from the goal"}


def probe_claims(
    model: TransformerBridge, task: Task, twins: Sequence[TransformerBridge], *, seed: int,
    n_boot: int,
) -> tuple[list[Claim], pd.DataFrame]:  # fmt: skip
    """The staircase claim at the goal token and at ":" (empty for other tasks)."""
    if task.name not in _CHAIN:
        return [], pd.DataFrame()
    goal_pos, query_pos, _ = declared_positions(task)
    names = [_CHAIN[task.name].format(k=k) for k in range(1, CHAIN_RANKS + 1)]
    table = structural_probes(
        model, task, twins=list(twins), n_examples=PROBE_EXAMPLES, ranks=CHAIN_RANKS,
        positions=[goal_pos, query_pos], quantities=names, n_boot=n_boot, seed=seed,
        progress=False,
    )  # fmt: skip
    frame = table.to_frame()
    steps = staircase(table)
    claims = []
    for pos in sorted({goal_pos, query_pos}):
        if pos not in set(frame["pos"]):
            continue
        layers = steps.first_layers(pos)
        role = "goal" if pos == goal_pos else ":"
        shown = ", ".join(
            f"{k}: {'never' if v is None else f'layer {v}'}"
            for k, v in zip(steps.ranks, layers, strict=True)
        )
        top = max(steps.ranks)
        deepest = frame[(frame["pos"] == pos) & (frame["rank"] == top)]
        at = deepest[deepest["layer"] == layers[-1]] if layers[-1] is not None else deepest
        best = at.sort_values("value").iloc[-1] if len(at) else None
        rises = steps.is_staircase(pos)
        claims.append(
            Claim(
                text=f"At {role}, {_WORDS[task.name]} (by rank) are first decodable over the"
                f" random-init twin, shuffled labels and chance at {shown}: "
                + ("a staircase, the first layer rises with the rank" if rises else "no staircase")
                + (
                    ""
                    if best is None
                    else f"; rank {top} {best['metric']} {best['value']:.2f}"
                    f" (CI {best['ci_low']:.2f}–{best['ci_high']:.2f}) at layer {int(best['layer'])}"
                ),
                kind="probe",
                evidence=f"probes.csv pos={pos}",
                value=None if best is None else float(best["value"]),
                ci_low=None if best is None else float(best["ci_low"]),
                ci_high=None if best is None else float(best["ci_high"]),
                status="supported" if rises else "failed",
                query_role=role,
                relation="staircase",
            )
        )
    return claims, frame
