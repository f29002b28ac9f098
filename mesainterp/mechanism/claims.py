"""Claims of a mechanism card, each computed from one measurement against a threshold.

A `Claim` is one sentence in the task's terms with the number it rests on, its
interval, where the evidence lies (table and row) and a status:

- role (`head_role_table`): every assigned (head, query role, relation). Supported
  when the role table's own test holds (mass and ablation drop both clear their
  declared thresholds); failed when the attention is there but the ablation does not
  move the behaviour.
- dla (`direct_logit_attribution`): at each answer position, the part with the
  largest direct effect on the answer's logit against its strongest rival. Supported
  when that effect's interval lies above `MIN_DIRECT` logits.
- lens (`logit_lens`): at each answer position, the first layer from which the
  logit lens reads the answer as its top token on most examples. Supported when that
  layer is before the last (the answer is formed inside the stack, not by the last
  block alone).
- probe (`evidence.algorithmic`): for icl-regression, the closest reference learner
  and its R².

The thresholds are module constants fixed before any model was looked at and pinned
by a test; a status is never set by hand.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import pandas as pd
import torch
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.mechanism.dla import direct_logit_attribution
from mesainterp.mechanism.head_roles import RoleTable
from mesainterp.mechanism.lens import logit_lens
from mesainterp.stats import bootstrap_mean, wilson_interval
from mesainterp.tasks.base import TaskBatch

__all__ = [
    "MIN_DIRECT",
    "MIN_LENS_ACC",
    "Claim",
    "ClaimKind",
    "ClaimStatus",
    "dla_claims",
    "lens_claims",
    "role_claims",
]

ClaimKind = Literal["role", "patching", "dla", "lens", "probe"]
ClaimStatus = Literal["supported", "failed", "not tested"]

# A head or MLP "writes the answer" at a position when the lower end of its mean
# direct effect's interval is at least this many logits (answer minus rival).
MIN_DIRECT = 1.0
# The logit lens "reads the answer" from a layer on when the lower end of the Wilson
# interval of its top-1 accuracy there is at least this.
MIN_LENS_ACC = 0.5


@dataclass(frozen=True, kw_only=True)
class Claim:
    """One claim: text, kind, where its evidence is, its number, interval and status.

    head, query_role, relation, layer: what the claim is about (empty where it does
    not apply), so comparisons read claims by field, never by parsing the text.
    """

    text: str
    kind: ClaimKind
    evidence: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    status: ClaimStatus
    head: str = ""
    query_role: str = ""
    relation: str = ""
    layer: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _status(ok: bool) -> ClaimStatus:
    return "supported" if ok else "failed"


def role_claims(table: RoleTable, *, source: str = "roles.csv") -> list[Claim]:
    """One claim per assigned role, pointing at its row of the role table."""
    out = []
    for i, r in enumerate(table.rows):
        if not r.assigned:
            continue
        if r.drop is None:
            causal, ok = "its ablation check had too few examples", False
        else:
            causal = (
                f"ablating it there lowers the answer log-prob by {r.drop:.2f}"
                f" (CI {r.drop_low:.2f}–{r.drop_high:.2f})"
            )
            ok = r.supported
        out.append(
            Claim(
                text=f"At {r.query_role}, {r.head_name} attends to {r.relation}"
                f" (mass {r.mass:.2f}, CI {r.ci_low:.2f}–{r.ci_high:.2f}); {causal}",
                kind="role",
                evidence=f"{source} row {i}",
                value=r.mass,
                ci_low=r.ci_low,
                ci_high=r.ci_high,
                status=_status(ok),
                head=r.head_name,
                query_role=r.query_role,
                relation=r.relation,
                layer=r.layer,
            )
        )
    return out


def _answer_positions(batch: TaskBatch, steps: int) -> list[tuple[str, Tensor, Tensor]]:
    """(role name, example rows, position) of each answer role with a scored target:
    "answer k" holds path token k at prompt_len - 1 + k ("answer 0" is the ':' token)."""
    out = []
    for k in range(steps + 1):
        pos = batch.prompt_len - 1 + k
        if pos >= batch.seq_len:
            break
        rows = torch.nonzero(batch.answer_mask[:, pos]).squeeze(1)
        if rows.numel() >= 2:
            out.append((":" if k == 0 else f"answer {k}", rows, torch.full_like(rows, pos)))
    return out


@torch.no_grad()
def dla_claims(
    model: TransformerBridge, batch: TaskBatch, steps: int, *, n_boot: int, seed: int
) -> tuple[list[Claim], pd.DataFrame]:
    """At each answer position, the part with the largest direct effect, and the table."""
    logits = model(batch.inputs).float()
    claims, frames = [], []
    for role, rows, pos in _answer_positions(batch, steps):
        target = batch.targets[rows, pos]
        rival_logits = logits[rows, pos].clone()
        rival_logits[torch.arange(rows.numel()), target] = -torch.inf
        rival = rival_logits.argmax(-1)
        dla = direct_logit_attribution(model, batch.inputs[rows], pos, target, rival)
        frame = dla.to_frame().assign(query_role=role)
        frames.append(frame)
        best = int(dla.values.mean(1).argmax())
        low, high = bootstrap_mean(dla.values[best], n_boot=n_boot, seed=seed)
        mean = float(dla.values[best].mean())
        claims.append(
            Claim(
                text=f"At {role}, {dla.names[best]} has the largest direct effect on the answer"
                f" logit against its strongest rival ({mean:.2f} of {float(dla.total.mean()):.2f}"
                f" logits, CI {low:.2f}–{high:.2f})",
                kind="dla",
                evidence=f"dla.csv query_role={role!r} part={dla.names[best]!r}",
                value=mean,
                ci_low=low,
                ci_high=high,
                status=_status(low >= MIN_DIRECT),
                head=dla.names[best] if "H" in dla.names[best] else "",
                query_role=role,
                layer=_layer_of(dla.names[best]),
            )
        )
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return claims, table


def _layer_of(part: str) -> int | None:
    if part.startswith("L") and "H" in part:
        return int(part[1:].split("H")[0])
    if part.startswith("M"):
        return int(part[1:])
    return None


@torch.no_grad()
def lens_claims(
    model: TransformerBridge, batch: TaskBatch, steps: int
) -> tuple[list[Claim], pd.DataFrame]:
    """At each answer position, the first layer whose logit lens reads the answer."""
    lens = logit_lens(model, batch.inputs)  # [stage, batch, pos, vocab]
    n_stages = lens.shape[0]
    claims, records = [], []
    for role, rows, pos in _answer_positions(batch, steps):
        target = batch.targets[rows, pos]
        top = lens[:, rows, pos].argmax(-1).cpu()  # [stage, rows]
        hits = (top == target[None]).sum(1)
        first = None
        for stage in range(n_stages):
            low, high = wilson_interval(int(hits[stage]), rows.numel())
            acc = float(hits[stage]) / rows.numel()
            records.append({"query_role": role, "stage": stage, "top1_acc": acc,
                            "ci_low": low, "ci_high": high, "n": rows.numel()})  # fmt: skip
            if first is None and low >= MIN_LENS_ACC:
                first = (stage, acc, low, high)
        last = n_stages - 1
        if first is None:
            text = f"At {role}, no layer's logit lens reads the answer as its top token"
            claims.append(
                Claim(text=text, kind="lens", evidence=f"lens.csv query_role={role!r}",
                      value=None, ci_low=None, ci_high=None, status="failed", query_role=role)
            )  # fmt: skip
            continue
        stage, acc, low, high = first
        where = "the final stream" if stage == last else f"the stream entering block {stage}"
        claims.append(
            Claim(
                text=f"At {role}, the logit lens reads the answer from {where} on"
                f" (top-1 {acc:.2f}, CI {low:.2f}–{high:.2f}); the answer is formed"
                + (" before the last block" if stage < last else " by the last block"),
                kind="lens",
                evidence=f"lens.csv query_role={role!r} stage={stage}",
                value=acc,
                ci_low=low,
                ci_high=high,
                status=_status(stage < last),
                query_role=role,
                layer=stage,
            )
        )
    return claims, pd.DataFrame(records)
