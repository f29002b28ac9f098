"""`mesainterp zoo`: the shipped model organisms."""

from __future__ import annotations

import argparse
import shlex

from mesainterp.cli.output import CommandResult

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("zoo", help="list the shipped models")
    parser.set_defaults(run=run)


def _accuracy(held_out: dict | None) -> str:
    if not held_out:
        return "-"
    metrics = held_out.get("metrics", {})
    for key in ("exact_path", "exact"):
        if key in metrics:
            return f"{metrics[key]:.4f} {key} (n={held_out.get('n')})"
    if "mse" in metrics:
        return f"{metrics['mse']:.4f} mse (n={held_out.get('n')})"
    return "-"


def run(args: argparse.Namespace) -> CommandResult:
    from mesainterp import zoo

    entries = [zoo.describe(name) for name in zoo.list_models()]
    rows = [
        (
            e.name,
            str((e.task or {}).get("name", "-")),
            f"{e.n_params:,}" if e.n_params is not None else "-",
            f"{e.size_bytes / 1e6:.2f} MB",
            _accuracy(e.held_out),
            shlex.join(e.training_command) if e.training_command else "-",
            e.fingerprint[:19],
        )
        for e in entries
    ]
    header = ("name", "task", "params", "size", "held-out", "training command", "fingerprint")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]]
    if not entries:
        lines.append("(no models shipped)")
    return CommandResult(data={"models": [e.to_dict() for e in entries]}, text="\n".join(lines))
