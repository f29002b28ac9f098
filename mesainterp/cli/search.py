"""`mesainterp search CONFIG.toml --out DIR`: find a circuit and measure its faithfulness.

The config is validated whole, and the model and task are loaded, before any work
or any file is written; a bad config exits with one line naming the dotted field.
"""

from __future__ import annotations

import argparse

from mesainterp.cli.output import CommandResult
from mesainterp.runs.options import RunOptions, add_data_options, add_run_options, data_from_args
from mesainterp.schema import POSITIVE, POSITIVE_NUMBER, option

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
    budget = parser.add_argument_group(
        "budget (of this call; --resume continues a search it stopped)"
    )
    budget.add_argument(
        "--max-runs", type=option(POSITIVE), default=None, metavar="N",
        help="stop after N runs (acdc: trial forwards; eap/eap-ig/node-attribution: score "
        "chunks) with a partial circuit (default: the config's search.max_runs, else none)",
    )  # fmt: skip
    budget.add_argument(
        "--max-seconds", type=option(POSITIVE_NUMBER), default=None, metavar="S",
        help="stop after S seconds with a partial circuit (default: the config's "
        "search.max_seconds, else none)",
    )  # fmt: skip
    add_data_options(parser, uses="to search on instead of the config's [data] or task")
    add_run_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> CommandResult:
    from mesainterp.discovery.budget import Budget
    from mesainterp.runs.search_run import run_search_run

    # A flag left out keeps the config's search.max_runs / search.max_seconds.
    budget = Budget(max_runs=args.max_runs, max_seconds=args.max_seconds)
    done = run_search_run(
        args.config, args.out, options=RunOptions.from_args(args), command=args.command_line,
        report=not args.no_report, data=data_from_args(args), budget=budget,
    )  # fmt: skip
    outcome, paths, stats = done.outcome, done.paths, done.stats
    circuit = outcome.circuit
    headline = [
        r for r in outcome.rows if r.measure in ("faithfulness", "completeness") and r.k is None
    ]
    lines = [
        f"{circuit.method}: {len(circuit.nodes)} nodes, {len(circuit.edges)} edges "
        f"on {done.plan.model_name}"
        + (
            " (partial: stopped by the budget; --resume continues)"
            if done.status != "complete"
            else ""
        ),
        *(
            f"  {r.measure:<12} {r.ablation:<8} {r.value:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]"
            for r in headline
        ),
        *(f"wrote {p}" for p in paths.values()),
        stats.describe(),
    ]
    data = {
        "method": circuit.method,
        "status": done.status,
        "n_nodes": len(circuit.nodes),
        "n_edges": len(circuit.edges),
        "faithfulness": [r.to_dict() for r in outcome.rows],
        "files": {k: str(v) for k, v in paths.items()},
        **stats.to_dict(),
    }
    return CommandResult(data=data, text="\n".join(lines))
