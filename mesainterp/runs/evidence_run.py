"""One model's internal-search evidence battery into a directory: what `mesainterp
evidence` runs.

`plan_evidence` checks the model argument, its task, the role and the output
directory without reading any weights, so bad input writes nothing;
`run_evidence_run` loads the model under test and its control twins, runs the
battery and writes:

    scorecard.json      every test's number, interval, control, threshold and verdict,
                        the settings and the provenance block (schema-versioned)
    scorecard.csv       the same, one row per test
    positions_TEST.csv  per probe test: the model's score at every position and layer
    run.json            the manifest `mesainterp report DIR` reads (a "scorecard" result)

The model under test, by role (the seeds are `zoo.controls`' one rule):

    trained       the model as `zoo.load_model` loads it
    random-init   its random-init twin (`zoo.random_init_model`)
    planted       the task's planted search model (`evidence.planted_registry`)

Its controls are `config.n_twins` random-init twins, from the control seed of that
role on, so the first is `zoo.control_twin` of the model under test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.errors import ConfigError, MesaInterpError, allowed
from mesainterp.evidence.config import EvidenceConfig
from mesainterp.evidence.planted_registry import planted_builder, planted_model
from mesainterp.evidence.profile import profile_for
from mesainterp.evidence.scorecard import Scorecard, run_battery, twin_controls
from mesainterp.model.config import ModelConfig
from mesainterp.provenance_stamp import provenance
from mesainterp.report.rundir import write_run
from mesainterp.tasks.base import Task
from mesainterp.tasks.registry import task_from_config
from mesainterp.zoo.controls import ROLES, Role, control_seed, random_init_model
from mesainterp.zoo.loader import load_model, model_document, resolve_model

__all__ = [
    "EvidencePlan",
    "EvidenceRun",
    "EvidenceSubject",
    "evidence_subject",
    "plan_evidence",
    "run_evidence_run",
]


@dataclass(frozen=True, kw_only=True)
class EvidencePlan:
    """What an evidence run scores, checked before any weights are read."""

    model: str
    name: str
    role: Role
    task: Task
    config: ModelConfig


@dataclass(frozen=True, kw_only=True)
class EvidenceSubject:
    """The model under test, its control twins, its name in tables and its
    fingerprint when a checkpoint records it."""

    model: TransformerBridge
    controls: list[TransformerBridge]
    name: str
    fingerprint: str | None


@dataclass(frozen=True, kw_only=True)
class EvidenceRun:
    """The scorecard and the files written."""

    scorecard: Scorecard
    paths: dict[str, Path]


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise MesaInterpError(f"out: {out} exists and is not an empty directory")


def plan_evidence(model: str, *, role: Role = "trained") -> EvidencePlan:
    """Check `model` (a zoo name or checkpoint directory that records its task) and
    `role`; refuses in one line, reading no weights."""
    if role not in ROLES:
        raise ConfigError("role", f"got {role!r}", allowed(ROLES))
    name = resolve_model(model).name
    document = model_document(model)
    if document is None or document.get("task") is None:
        raise MesaInterpError(
            f"{model}: the model records no task to run the battery on"
            " (allowed: a zoo model or a checkpoint saved with its task)"
        )
    task = task_from_config(document["task"])
    profile_for(task)
    if role == "planted":
        config = planted_builder(task.name).config(task)
    else:
        config = ModelConfig.from_dict(document["model"])
    return EvidencePlan(model=model, name=name, role=role, task=task, config=config)


def evidence_subject(plan: EvidencePlan, *, n_twins: int = 5) -> EvidenceSubject:
    """Load or build `plan`'s model under test and its `n_twins` control twins."""
    controls = twin_controls(
        plan.config, n=n_twins, first_seed=control_seed(plan.config, role=plan.role)
    )
    if plan.role == "planted":
        planted = planted_model(plan.task)
        return EvidenceSubject(
            model=planted.model, controls=controls, name=planted.name, fingerprint=None
        )
    if plan.role == "random-init":
        return EvidenceSubject(
            model=random_init_model(plan.config),
            controls=controls,
            name=f"{plan.name} (random-init twin)",
            fingerprint=None,
        )
    loaded = load_model(plan.model)
    return EvidenceSubject(
        model=loaded.model, controls=controls, name=plan.name, fingerprint=loaded.fingerprint
    )


def run_evidence_run(
    plan: EvidencePlan,
    out: str | Path,
    *,
    config: EvidenceConfig | None = None,
    tests: Sequence[str] | None = None,
    command: Sequence[str] | None = None,
) -> EvidenceRun:
    """Score `plan`'s model into the empty (or new) directory `out`; `command` is the
    argv recorded in the provenance and run.json."""
    out = Path(out)
    _check_out(out)
    cfg = config or EvidenceConfig()
    subject = evidence_subject(plan, n_twins=cfg.n_twins)
    recorded = list(command or [])
    stamp = provenance(
        model=subject.model if subject.fingerprint is None else None,
        model_fingerprint=subject.fingerprint,
        model_name=subject.name,
        config={"task": plan.task.config_dict(), "evidence": cfg.to_dict()},
        seed=cfg.seed,
        command=recorded,
    )
    card = run_battery(
        subject.model,
        plan.task,
        control=subject.controls,
        config=cfg,
        model_name=subject.name,
        provenance=stamp,
        tests=tests,
    )
    return EvidenceRun(scorecard=card, paths=_write(card, out, recorded, stamp))


def _write(
    card: Scorecard, out: Path, command: list[str], stamp: dict[str, Any]
) -> dict[str, Path]:
    paths = {"scorecard": card.save(out), "table": out / "scorecard.csv"}
    pd.DataFrame(card.table()).to_csv(paths["table"], index=False)
    for t in card.tests:
        rows = t.details.get("positions")
        if isinstance(rows, list) and rows:
            paths[f"positions_{t.test}"] = out / f"positions_{t.test}.csv"
            pd.DataFrame(rows).to_csv(paths[f"positions_{t.test}"], index=False)
    paths["run"] = write_run(
        out,
        command=command,
        provenance=stamp,
        results=[
            {
                "name": "scorecard",
                "kind": "scorecard",
                "path": "scorecard.json",
                "title": f"Internal-search evidence: {card.model_name}",
            },
        ],
        title=f"Internal-search evidence scorecard: {card.model_name}",
    )
    return paths
