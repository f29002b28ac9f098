"""One model's mechanism card into a directory: what `mesainterp mechanism` runs.

`plan_evidence` (shared with the evidence run) checks the model argument, its task
and the role without reading weights; `run_mechanism_run` loads the model (or builds
the task's planted model) and its control twin, builds the card
(`mechanism.mechanism_card`) and writes:

    mechanism.md        the card: claims, the literature table, the thresholds
    mechanism.json      the same with every number, the settings and the provenance
    roles.csv, patching.csv, probes.csv, dla.csv, lens.csv / algorithm.csv
                        the tables the claims point to
    mechanism_tree.png  tree-path: where each head that matters attends, on one tree
    attention.json      path tasks: those heads' attention on the same example, positions
                        labelled with their roles and tokens (circuitsvis in the report)
    run.json            the manifest `mesainterp report DIR` reads (a "mechanism" result)
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mesainterp.atomic import atomic_write_text
from mesainterp.mechanism.card import MechanismCard, mechanism_card
from mesainterp.mechanism.instance import attention_view
from mesainterp.provenance_stamp import provenance
from mesainterp.report.rundir import Result, write_run
from mesainterp.runs.evidence_run import EvidencePlan, evidence_subject
from mesainterp.viz.export import save_static
from mesainterp.viz.tree import tree_small_multiples

__all__ = ["MechanismRun", "run_mechanism_run"]


def _tree_figure(instance: dict[str, Any], stem: Path) -> Path:
    panels: dict[str, Mapping[Hashable, float]] = {
        name: {int(node): float(mass) for node, mass in values.items()}
        for name, values in instance["panels"].items()
    }
    edges = [tuple(e) for e in instance["edges"]]
    fig = tree_small_multiples(
        edges, panels, root=instance["root"], goal=instance["goal"], path=instance["path"],
        title="Attention of the heads that matter, per answer step",
    )  # fmt: skip
    return save_static(fig, stem, formats=("png",))[0]


def _heads_that_matter(card: MechanismCard) -> list[str]:
    """Heads with a supported patching claim, in layer order."""
    heads = {c.head for c in card.claims if c.kind == "patching" and c.status == "supported"}
    return sorted((h for h in heads if h), key=lambda h: tuple(int(x) for x in h[1:].split("H")))


@dataclass(frozen=True, kw_only=True)
class MechanismRun:
    """The card and the files written."""

    card: MechanismCard
    paths: dict[str, Path]


def run_mechanism_run(
    plan: EvidencePlan,
    out: str | Path,
    *,
    n: int = 64,
    seed: int = 0,
    steps: int | None = 3,
    n_boot: int = 500,
    command: Sequence[str] | None = None,
) -> MechanismRun:
    """Build `plan`'s card into `out` (created; files already there are replaced)."""
    subject = evidence_subject(plan, n_twins=1)
    recorded = list(command or [])
    settings = {"n": n, "seed": seed, "steps": steps, "n_boot": n_boot}
    stamp = provenance(
        model=subject.model if subject.fingerprint is None else None,
        model_fingerprint=subject.fingerprint,
        model_name=subject.name,
        config={"task": plan.task.config_dict(), "mechanism": settings},
        seed=seed,
        command=recorded,
    )
    card = mechanism_card(
        subject.model, plan.task, control=subject.controls[0], model_name=subject.name,
        provenance=stamp, n=n, seed=seed, steps=steps, n_boot=n_boot,
    )  # fmt: skip
    out = Path(out)
    paths = card.write(out)
    results: list[Result | dict[str, Any]] = [
        {
            "name": "mechanism",
            "kind": "mechanism",
            "path": "mechanism.json",
            "title": f"Mechanism: {card.model_name}",
        }
    ]
    if card.instance and card.instance["panels"]:
        paths["tree"] = _tree_figure(card.instance, out / "mechanism_tree")
        results.append(
            {
                "name": "mechanism-tree",
                "kind": "figure",
                "path": paths["tree"].name,
                "title": "Where the heads that matter attend, on one tree",
                "caption": "One panel per head whose ablation at a query role lowers the"
                " answers (a supported patching claim): its attention there, summed per node"
                " (an edge's tokens count for its child). Goal and root-to-goal path marked.",
            }
        )
    heads = _heads_that_matter(card)
    if heads and getattr(plan.task, "vocab", None):
        batch = plan.task.sample(n, seed=seed)  # the card's examples; the figure's example 0
        view = attention_view(subject.model, plan.task, batch, 0, heads)
        paths["attention"] = out / "attention.json"
        atomic_write_text(paths["attention"], json.dumps(view) + "\n")
        results.append(
            {
                "name": "mechanism-attention",
                "kind": "attention",
                "path": "attention.json",
                "title": "Attention of the heads that matter, on the same example",
                "caption": "Every head with a supported patching claim, on example 0 of the"
                " card's batch; positions are labelled with their role and token.",
            }
        )
    paths["run"] = write_run(
        out,
        command=recorded,
        provenance=stamp,
        results=results,
        title=f"Mechanism card: {card.model_name}",
    )
    return MechanismRun(card=card, paths=paths)
