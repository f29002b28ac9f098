"""`mesainterp search CONFIG.toml --out DIR`: find a circuit and measure its faithfulness.

The config is validated whole, and the model and task are loaded, before any work
or any file is written; a bad config exits with one line naming the dotted field.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from mesainterp.cli.output import CommandResult
from mesainterp.runs.options import add_run_options, check_run_options

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "search", help="find a circuit (EAP, EAP-IG, ACDC or node attribution) from a TOML config"
    )
    parser.add_argument("config", help="a search config (TOML)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument(
        "--no-report", action="store_true", help="skip the HTML report (write the data only)"
    )
    add_run_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> CommandResult:
    from mesainterp.discovery.config import load_config
    from mesainterp.discovery.search import prepare, write_outputs
    from mesainterp.runs.executor import execute
    from mesainterp.runs.search_job import (
        SearchJob,
        SearchWorker,
        faithfulness_plan,
        outcome_from_units,
        search_plan,
        stage1_result,
    )
    from mesainterp.runs.state import open_run

    check_run_options(args)
    config = load_config(args.config)
    plan = prepare(config)
    command = ["mesainterp", "search", str(args.config), "--out", str(args.out)]
    identity = {"command": "search", "model_fingerprint": plan.fingerprint,
                "config": config.to_dict()}  # fmt: skip
    state = open_run(args.out, identity=identity, resume=args.resume)
    job = SearchJob(config_path=str(Path(args.config).resolve()), command=tuple(command))
    where = {"executor": args.executor, "workers": args.workers, "address": args.ray_address,
             "local_worker": SearchWorker.from_plan(plan, command)}  # fmt: skip
    # Stage 1 finds the circuit (one unit per chunk of examples scored, or one for
    # acdc); stage 2 measures it, one unit per ablation.
    stage1 = search_plan(state.identity, config)
    first = execute(job.worker_spec(), stage1, state, **where)
    circuit_meta = stage1_result(state, stage1, plan, command)
    stage2 = faithfulness_plan(state.identity, circuit_meta, list(config.faithfulness_ablations))
    second = execute(job.worker_spec(), stage2, state, **where)
    stats = dataclasses.replace(
        second,
        total=first.total + second.total,
        computed=first.computed + second.computed,
        reused=first.reused + second.reused,
    )
    outcome = outcome_from_units(state, circuit_meta, stage2)
    paths = write_outputs(outcome, args.out, command=command, report=not args.no_report)
    state.mark_complete()
    circuit = outcome.circuit
    headline = [
        r for r in outcome.rows if r.measure in ("faithfulness", "completeness") and r.k is None
    ]
    lines = [
        f"{circuit.method}: {len(circuit.nodes)} nodes, {len(circuit.edges)} edges "
        f"on {plan.model_name}",
        *(
            f"  {r.measure:<12} {r.ablation:<8} {r.value:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]"
            for r in headline
        ),
        *(f"wrote {p}" for p in paths.values()),
        stats.describe(),
    ]
    data = {
        "method": circuit.method,
        "n_nodes": len(circuit.nodes),
        "n_edges": len(circuit.edges),
        "faithfulness": [r.to_dict() for r in outcome.rows],
        "files": {k: str(v) for k, v in paths.items()},
        **stats.to_dict(),
    }
    return CommandResult(data=data, text="\n".join(lines))
