"""`mesainterp demo --out DIR`: the default analysis of a shipped model, as one report."""

from __future__ import annotations

import argparse
from typing import Any

from mesainterp.cli.output import CommandResult
from mesainterp.schema import NON_NEGATIVE, option

__all__ = ["add_parser", "run"]

# Steps that save their work in units and take --resume.
RESUMABLE = ("patch", "probe", "search")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from mesainterp.demo.pipeline import STEPS

    parser = subparsers.add_parser(
        "demo", help="patching, probes, a circuit and overlays of a zoo model, in one report"
    )
    parser.add_argument("--out", default="runs/demo", help="run directory (default: runs/demo)")
    parser.add_argument("--model", default="tree-path", help="zoo model (default: tree-path)")
    parser.add_argument("--quick", action="store_true", help="small sample sizes (for tests)")
    parser.add_argument("--seed", type=option(NON_NEGATIVE), default=0)
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted demo in --out; finished steps are reused",
    )
    parser.add_argument(
        "--step", choices=STEPS, default=None, help="run only this step (no report)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> CommandResult:
    from mesainterp.cli.main import run_subcommand
    from mesainterp.demo import DemoPlan, run_demo
    from mesainterp.zoo import list_models

    known = list_models()
    if args.model not in known:
        from mesainterp.errors import ConfigError, allowed

        raise ConfigError("--model", f"unknown zoo model {args.model!r}", allowed(known))
    plan = DemoPlan.quick(args.model) if args.quick else DemoPlan(model=args.model)
    plan = DemoPlan(**(plan.__dict__ | {"seed": args.seed}))
    demo_command: list[str] = args.command_line

    def step(name: str, argv: list[str]) -> Any:
        if args.resume and argv[0] in RESUMABLE:
            argv = [*argv, "--resume"]
        print("$ mesainterp " + " ".join(argv), flush=True)
        # The step records the demo's command plus its name: the command that reruns it.
        recorded = demo_command if args.step else [*demo_command, "--step", name]
        return run_subcommand(argv, command=recorded)

    files = run_demo(plan, args.out, run_command=step, only=args.step, command=demo_command)
    text = f"report: {files['report']}" if "report" in files else f"{args.step}: {files[args.step]}"
    return CommandResult(data={k: str(v) for k, v in files.items()}, text=text)
