"""Head roles: where each head attends at each query role, and whether it matters there.

`head_role_table(model, source)` takes a path task (examples sampled from it) or a
user's `PromptPairs`, and for every head and query role measures the attention mass
on every relation (`attention.role_mass`). A head is *assigned* a relation at a role
when the lower end of the mass's bootstrap interval clears `MIN_MASS` and the relation
is specific: uniform attention over the visible keys would put at most `MAX_CHANCE`
on it. Every assigned
(head, role) then gets its causal check (`ablate.HeadAblator`): the head is ablated
at the role's query positions only, and the behaviour the role serves must drop by
more than `MIN_DROP` at the lower end of its interval. A role is *supported* only
when both hold.

The behaviour: for a task, the mean log-probability of the answer tokens at and
after the query positions (teacher-forced); for prompt pairs, their default metric
(the answer logit difference at the last position). The thresholds were fixed before
any model was looked at and are pinned by a test; the intervals are per cell (no
correction for the many heads x roles x relations scanned), which the high mass
threshold, far above the chance level of small relations, is there to absorb.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
import torch
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.errors import ConfigError
from mesainterp.mechanism.ablate import (
    Behaviour,
    HeadAblation,
    HeadAblator,
    answer_logprob_after,
)
from mesainterp.mechanism.attention import attention_patterns, grouped, role_mass
from mesainterp.mechanism.relations import QueryRole, Relation, relation_masks
from mesainterp.mechanism.task_relations import (
    prompt_query_roles,
    prompt_relations,
    task_query_roles,
    task_relations,
)
from mesainterp.stats import bootstrap_mean
from mesainterp.tasks.base import TaskBatch

__all__ = ["MAX_CHANCE", "MIN_DROP", "MIN_MASS", "RoleRow", "RoleTable", "head_role_table"]

# A head is assigned a relation when its mass's CI lower bound is at least this...
MIN_MASS = 0.5
# ...and the relation is specific: uniform attention over the visible keys would put
# at most this much mass on it. A relation naming most of the prompt (in a 3x3 maze,
# "connections within 6 steps of the target") is met by a head that attends to
# nothing in particular, so it can name no role.
MAX_CHANCE = 0.25
# A role is supported when ablating the head there lowers the behaviour by at least
# this much (nats of answer log-probability, or logits for prompt pairs) at the CI's
# lower bound.
MIN_DROP = 0.1


@dataclass(frozen=True, kw_only=True)
class RoleRow:
    """One head at one query role on one relation (or group of coinciding relations)."""

    layer: int
    head: int
    query_role: str
    relation: str
    mass: float
    ci_low: float
    ci_high: float
    chance: float
    n: int
    assigned: bool
    drop: float | None = None
    drop_low: float | None = None
    drop_high: float | None = None
    supported: bool = False

    @property
    def head_name(self) -> str:
        return f"L{self.layer}H{self.head}"


@dataclass(frozen=True, kw_only=True)
class RoleTable:
    """Every assigned role plus, per head and query role, its highest-mass relation.

    `settings` records the thresholds, ablation, behaviour and sample size.
    """

    rows: list[RoleRow]
    settings: dict[str, Any] = field(default_factory=dict)

    def assigned(self) -> list[RoleRow]:
        return [r for r in self.rows if r.assigned]

    def supported(self) -> list[RoleRow]:
        return [r for r in self.rows if r.supported]

    def labels(self, *, supported: bool = False) -> set[tuple[str, str, str]]:
        """{(head, query role, relation)} of the assigned (or supported) rows."""
        rows = self.supported() if supported else self.assigned()
        return {(r.head_name, r.query_role, r.relation) for r in rows}

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(r) for r in self.rows])

    def to_dict(self) -> dict[str, Any]:
        return {"settings": dict(self.settings), "rows": [asdict(r) for r in self.rows]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    def summary(self) -> str:
        """One line per assigned role: head, role, relation, mass [CI], drop [CI]."""
        lines = []
        for r in sorted(self.assigned(), key=lambda r: (r.layer, r.head, r.query_role)):
            drop = (
                ""
                if r.drop is None
                else f"  drop {r.drop:.3f} [{r.drop_low:.3f}, {r.drop_high:.3f}]"
            )
            mark = "supported" if r.supported else "not supported"
            lines.append(
                f"{r.head_name} @ {r.query_role}: {r.relation}  mass {r.mass:.3f}"
                f" [{r.ci_low:.3f}, {r.ci_high:.3f}]{drop}  {mark}"
            )
        return "\n".join(lines)


@dataclass(frozen=True)
class _Source:
    batch: TaskBatch
    relations: list[Relation]
    roles: list[QueryRole]
    behaviour: Behaviour
    resample_from: torch.Tensor | None
    what: str


def _source(
    source: Any, n: int, seed: int, steps: int | None,
    relations: Sequence[Relation] | None, roles: Sequence[QueryRole] | None,
) -> _Source:  # fmt: skip
    if hasattr(source, "to_pair") and hasattr(source, "roles"):
        pair = source.to_pair()
        metric = source.default_metric(pair)
        batch = pair.clean

        def behaviour(logits: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
            return metric(logits, batch).float().cpu()

        return _Source(
            batch=batch,
            relations=list(relations or prompt_relations(source)),
            roles=list(roles or prompt_query_roles(source)),
            behaviour=behaviour,
            resample_from=pair.corrupted.inputs,
            what="the pairs' default metric (answer logit difference)",
        )
    if hasattr(source, "sample") and hasattr(source, "name"):
        batch = source.sample(n, seed=seed)
        return _Source(
            batch=batch,
            relations=list(relations or task_relations(source)),
            roles=list(roles or task_query_roles(source, steps=steps)),
            behaviour=answer_logprob_after(batch),
            resample_from=None,
            what="mean answer log-prob at and after the query positions",
        )
    raise ConfigError(
        "source", f"got a {type(source).__name__}", "a path task or a PromptPairs dataset"
    )


def head_role_table(
    model: TransformerBridge,
    source: Any,
    *,
    n: int = 64,
    seed: int = 0,
    steps: int | None = None,
    relations: Sequence[Relation] | None = None,
    query_roles: Sequence[QueryRole] | None = None,
    ablation: HeadAblation = "mean",
    n_boot: int = 1000,
    confidence: float = 0.95,
) -> RoleTable:
    """Head roles of `model` on a path task or `PromptPairs` (see the module docstring).

    n, seed: examples sampled from a task (prompt pairs use all their rows).
    steps: answer steps given query roles (default: every step the task has).
    relations, query_roles: replace the built-in ones of the source.
    """
    src = _source(source, n, seed, steps, relations, query_roles)
    model.eval()
    logits, patterns = attention_patterns(model, src.batch.inputs)
    ablator = HeadAblator(model, src.batch.inputs, ablation, src.resample_from)
    clean_logits = logits.detach().float().cpu()
    names = [r.name for r in src.relations]
    rows: list[RoleRow] = []
    for role in src.roles:
        masks = relation_masks(src.batch, role, src.relations)
        if not bool(masks.query.any()):
            continue
        mass = role_mass(patterns, masks, n_boot=n_boot, confidence=confidence, seed=seed)
        groups = grouped(masks, names)
        within = _nested(masks, groups)
        for layer in range(patterns.shape[0]):
            for head in range(patterns.shape[2]):
                cells = [
                    RoleRow(
                        layer=layer,
                        head=head,
                        query_role=role.name,
                        relation=label,
                        mass=float(mass.mean[r, layer, head]),
                        ci_low=float(mass.low[r, layer, head]),
                        ci_high=float(mass.high[r, layer, head]),
                        chance=float(mass.chance[r]),
                        n=int(mass.n[r]),
                        assigned=_assigned(mass, r, layer, head),
                    )
                    for label, (r, *_) in groups
                ]
                if not cells:
                    continue
                kept = _most_specific([c for c in cells if c.assigned], within) or [
                    max(cells, key=lambda c: c.mass)
                ]
                if any(c.assigned for c in kept):
                    where = {label: mass.per_example[r, layer, head] for label, (r, *_) in groups}
                    kept = _with_causal(kept, where, ablator, src, masks.query, clean_logits,
                                        n_boot=n_boot, confidence=confidence, seed=seed)  # fmt: skip
                rows.extend(kept)
    settings = {
        "min_mass": MIN_MASS,
        "max_chance": MAX_CHANCE,
        "min_drop": MIN_DROP,
        "confidence": confidence,
        "n_boot": n_boot,
        "ablation": ablation,
        "n_examples": src.batch.batch_size,
        "seed": seed,
        "behaviour": src.what,
        "query_roles": [r.name for r in src.roles],
        "relations": names,
    }
    return RoleTable(rows=rows, settings=settings)


def _assigned(mass: Any, r: int, layer: int, head: int) -> bool:
    low, chance = mass.low[r, layer, head], mass.chance[r]
    return bool(low >= MIN_MASS and chance <= MAX_CHANCE)


def _nested(masks: Any, groups: list[tuple[str, list[int]]]) -> set[tuple[str, str]]:
    """{(a, b)}: relation group a names a subset of b's keys at every query of the role,
    and is defined wherever b is (so their masses are over the same examples)."""
    at_role = masks.keys & masks.query[None, :, :, None]
    out = set()
    for a, (first_a, *_) in groups:
        for b, (first_b, *_) in groups:
            narrower = not bool((at_role[first_a] & ~at_role[first_b]).any())
            covers = not bool((masks.defined[first_b] & ~masks.defined[first_a]).any())
            if a != b and narrower and covers:
                out.add((a, b))
    return out


def _most_specific(rows: list[RoleRow], within: set[tuple[str, str]]) -> list[RoleRow]:
    """Drop an assigned relation when a narrower assigned one (a subset of its keys) holds
    as much mass within its CI: "previous token" over "edge into current", not both."""
    return [
        r
        for r in rows
        if not any((o.relation, r.relation) in within and o.ci_high >= r.mass for o in rows)
    ]


def _with_causal(
    rows: list[RoleRow], per_example: dict[str, torch.Tensor], ablator: HeadAblator,
    src: _Source, query: torch.Tensor, clean_logits: torch.Tensor, *, n_boot: int,
    confidence: float, seed: int,
) -> list[RoleRow]:  # fmt: skip
    """The rows of one (head, role) with the drop in behaviour when the head is ablated
    there, averaged over the examples where the head does what the row says (its mass
    on the relation is at least MIN_MASS in that example): a head that attends to a
    no-op sink on some examples and to a real key on others gets the sink's drop from
    the first and the key's from the second."""
    layer, head = rows[0].layer, rows[0].head
    ablated = ablator.logits_without(layer, head, query).detach().float().cpu()
    drop = src.behaviour(clean_logits, query) - src.behaviour(ablated, query)
    out = []
    for r in rows:
        chosen = drop[query.any(1) & (per_example[r.relation].nan_to_num(0.0) >= MIN_MASS)]
        if chosen.numel() < 2:
            out.append(r)
            continue
        low, high = bootstrap_mean(chosen, n_boot=n_boot, confidence=confidence, seed=seed)
        out.append(RoleRow(**{**asdict(r), "drop": float(chosen.mean()), "drop_low": low,
                              "drop_high": high, "supported": r.assigned and low >= MIN_DROP}))  # fmt: skip
    return out
