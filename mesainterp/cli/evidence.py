"""`mesainterp evidence MODEL --out DIR`: the internal-search evidence battery on one model.

MODEL is a zoo name or a checkpoint directory. `--random-init` scores the
model's random-init twin instead (its own control twin then gets the next
seed); `--planted` scores the hand-built model with a planted search algorithm
for MODEL's task (icl-regression: one step of gradient descent; tree-path:
backward chaining, one tree level per layer).

Writes to DIR:
    scorecard.json   every test's number, interval, control, threshold and verdict,
                     the settings, and the provenance block (schema-versioned)
    scorecard.csv    the same, one row per test (with the corrected p, the best
                     search-free baseline and the random-init distribution)
    positions_TEST.csv  per probe test: the model's score at every position and layer
    run.json         the manifest `mesainterp report DIR` reads (a "scorecard" result)

Every argument, the model and the task are checked before any model runs; on
bad input nothing is written.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from mesainterp.cli.output import CommandResult
from mesainterp.errors import MesaInterpError
from mesainterp.evidence.config import EvidenceConfig
from mesainterp.evidence.planted import (
    planted_chain_config,
    planted_chain_model,
    planted_gd_config,
    planted_gd_model,
)
from mesainterp.evidence.planted_graph import planted_reach_config, planted_reach_model
from mesainterp.evidence.planted_maze import planted_flood_config, planted_flood_model
from mesainterp.evidence.profile import profile_for
from mesainterp.evidence.scorecard import TESTS, Scorecard, run_battery, twin_controls
from mesainterp.model.checkpoint import read_checkpoint_document
from mesainterp.model.config import ModelConfig
from mesainterp.provenance_stamp import provenance
from mesainterp.schema import NON_NEGATIVE, Range, option
from mesainterp.tasks.base import Task

__all__ = ["PLANTED", "add_parser", "run"]

# Task name -> (planted model builder, its architecture, label).
PLANTED: dict[str, tuple[Callable[[Any], Any], Callable[[Any], ModelConfig], str]] = {
    "graph-search": (planted_reach_model, planted_reach_config, "planted-reach"),
    "icl-regression": (planted_gd_model, planted_gd_config, "planted-gd"),
    "maze": (planted_flood_model, planted_flood_config, "planted-flood"),
    "tree-path": (planted_chain_model, planted_chain_config, "planted-chain"),
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evidence", help="the internal-search evidence battery: a scorecard for one model"
    )
    p.add_argument("model", help="a zoo model name or a checkpoint directory")
    p.add_argument("--out", required=True, help="output directory (created; must be empty)")
    p.add_argument("--n", type=option(Range(lo=20)), default=600, help="examples per probe")
    p.add_argument("--pairs", type=option(Range(lo=2)), default=32, help="counterfactual pairs")
    p.add_argument("--seed", type=option(NON_NEGATIVE), default=0)
    p.add_argument("--tests", default="all", help=f"comma-separated subset of: {', '.join(TESTS)}")
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--random-init", action="store_true", help="score the model's random-init twin instead"
    )
    which.add_argument(
        "--planted", action="store_true", help="score the hand-built planted model for the task"
    )
    p.set_defaults(run=run)


def _resolve(name: str) -> tuple[dict[str, Any], str | None]:
    """(checkpoint document, zoo name or None), without reading any weights."""
    from mesainterp import zoo

    if Path(name).is_dir():
        return read_checkpoint_document(name), None
    if name in zoo.list_models():
        from importlib import resources

        doc = json.loads(
            resources.files("mesainterp.zoo")
            .joinpath("checkpoints", name, "config.json")
            .read_text()
        )
        return doc, name
    raise MesaInterpError(
        f"model: {name!r} is neither a checkpoint directory nor a zoo model"
        f" (zoo: {', '.join(zoo.list_models()) or 'none shipped'})"
    )


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise MesaInterpError(f"--out: {out} exists and is not an empty directory")


def _tests(spec: str) -> list[str] | None:
    if spec == "all":
        return None
    names = [s.strip() for s in spec.split(",") if s.strip()]
    bad = [n for n in names if n not in TESTS]
    if bad or not names:
        raise MesaInterpError(
            f"--tests: unknown test {bad[0] if bad else spec!r} (allowed: all, {', '.join(TESTS)})"
        )
    return names


def run(args: argparse.Namespace) -> CommandResult:
    from mesainterp.tasks.registry import task_from_config

    # Everything that can fail on bad input, before any model is built or run.
    out = Path(args.out)
    _check_out(out)
    tests = _tests(args.tests)
    document, zoo_name = _resolve(args.model)
    if document.get("task") is None:
        raise MesaInterpError(f"{args.model}: the checkpoint records no task")
    task: Task = task_from_config(document["task"])
    profile_for(task)
    config = ModelConfig.from_dict(document["model"])
    if args.planted and task.name not in PLANTED:
        raise MesaInterpError(
            f"--planted: no planted search model for task {task.name!r}"
            f" (allowed: {', '.join(repr(k) for k in PLANTED)})"
        )
    cfg = EvidenceConfig(n_examples=args.n, n_pairs=args.pairs, seed=args.seed)

    model, control, label, fingerprint = _models(args, document, zoo_name, config, task)
    command = getattr(args, "command_line", ["mesainterp", "evidence", args.model])
    stamp = provenance(
        model=model if fingerprint is None else None,
        model_fingerprint=fingerprint,
        model_name=label,
        config={"task": task.config_dict(), "evidence": cfg.to_dict()},
        seed=args.seed,
        command=command,
    )
    card = run_battery(
        model, task, control=control, config=cfg, model_name=label, provenance=stamp, tests=tests
    )
    return CommandResult(data=_write(card, out, command, stamp), text=_text(card, out))


def _models(
    args: argparse.Namespace,
    document: dict[str, Any],
    zoo_name: str | None,
    config: ModelConfig,
    task: Task,
) -> tuple[Any, Any, str, str | None]:
    """(model, its control twin, label, fingerprint if known)."""
    if args.planted:
        build, shape, label = PLANTED[task.name]
        return build(task), twin_controls(shape(task), first_seed=1), f"{label} ({task.name})", None
    if args.random_init:
        model, *twins = twin_controls(config, n=6)
        return model, twins, f"{args.model} (random-init twin)", None
    if zoo_name is not None:
        from mesainterp import zoo

        ckpt = zoo.load(zoo_name)
    else:
        from mesainterp.model.checkpoint import load_checkpoint

        ckpt = load_checkpoint(args.model)
    return ckpt.model, twin_controls(config), args.model, ckpt.fingerprint


def _write(card: Scorecard, out: Path, command: list[str], stamp: dict[str, Any]) -> dict[str, Any]:
    from mesainterp.report.rundir import write_run

    path = card.save(out)
    pd.DataFrame(card.table()).to_csv(out / "scorecard.csv", index=False)
    for t in card.tests:
        rows = t.details.get("positions")
        if isinstance(rows, list) and rows:
            pd.DataFrame(rows).to_csv(out / f"positions_{t.test}.csv", index=False)
    write_run(
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
    return {"scorecard": str(path), "summary": card.to_dict()["summary"], "tests": card.table()}


def _fmt(x: float | None) -> str:
    return "   n/a" if x is None else f"{x:6.3f}"


def _text(card: Scorecard, out: Path) -> str:
    lines = [
        f"{card.model_name} on {card.task.get('name')}: passed {card.n_pass} of"
        f" {len(card.applicable)} applicable tests (score {card.score:.3f})",
        f"{'test':24s} {'value':>6s} {'95% CI':>17s} {'control':>7s} {'margin':>6s}"
        f" {'low':>6s} {'thresh':>6s}  verdict",
    ]
    for t in card.tests:
        ci = "" if t.ci_low is None else f"[{_fmt(t.ci_low)}, {_fmt(t.ci_high)}]"
        lines.append(
            f"{t.test:24s} {_fmt(t.value)} {ci:>17s} {_fmt(t.control)} {_fmt(t.margin)}"
            f" {_fmt(t.margin_low)} {t.threshold:6.2f}  {t.verdict}: {t.reason}"
        )
        row = {r["test"]: r for r in card.table()}[t.test]
        extra = [f"best baseline {row['best_baseline']}"] if row["best_baseline"] else []
        extra += [f"random-init {row['random_init']}"] if row["random_init"] else []
        if extra:
            lines.append(f"{'':24s} " + "; ".join(extra))
    lines.append(f"correction: {card.to_dict()['correction']}")
    lines.append(f"wrote {out / 'scorecard.json'}, {out / 'scorecard.csv'}, {out / 'run.json'}")
    return "\n".join(lines)
