"""Entry point of the `mesainterp` command.

Each subcommand lives in its own module under `mesainterp.cli` and exposes
`add_parser(subparsers)`; the parser's `run` default returns a `CommandResult`.
Bad input ends with one line on stderr and exit status 2.

The command a result records in its provenance is set here, once, from the argv
the user ran (`args.command_line`), and handed down to the library; nothing below
the command line reads `sys.argv`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from mesainterp._version import __version__
from mesainterp.cli.output import CommandResult, to_json
from mesainterp.errors import MesaInterpError

__all__ = ["build_parser", "main", "recorded_command", "run_subcommand"]

# Subcommand modules, in the order `--help` lists them.
SUBCOMMANDS: tuple[str, ...] = (
    "demo",
    "info",
    "train",
    "eval",
    "zoo",
    "probe",
    "search",
    "report",
    "patch",
    "evidence",
    "mechanism",
)

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mesainterp",
        description="Find internal search in transformers.",
    )
    parser.add_argument("--version", action="version", version=f"mesainterp {__version__}")
    _add_global_flags(parser, default=False)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"mesainterp.cli.{name.replace('-', '_')}")
        module.add_parser(subparsers)
    # The global flags are taken after the subcommand too (`mesainterp eval M --json`);
    # SUPPRESS keeps a subcommand that omits them from resetting a flag given before it.
    for sub in subparsers.choices.values():
        _add_global_flags(sub, default=argparse.SUPPRESS)
    return parser


def _add_global_flags(parser: argparse.ArgumentParser, *, default: object) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        default=default,
        help="print one machine-readable JSON line on stdout",
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        default=default,
        help="turn progress bars off (for batch logs)",
    )


def recorded_command(argv: Sequence[str]) -> list[str]:
    """The command a result records: `mesainterp ARGV`, as the user ran it."""
    return ["mesainterp", *argv]


def run_subcommand(argv: Sequence[str], *, command: Sequence[str] | None = None) -> CommandResult:
    """Run one subcommand in-process (errors propagate); used to compose commands.

    `command` is what its results record (default: `recorded_command(argv)`); a
    composed command passes its own, naming the step.
    """
    args = build_parser().parse_args(list(argv))
    args.command_line = recorded_command(argv) if command is None else list(command)
    return args.run(args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:
        # argparse refuses a bad option (status 2, its message on stderr) or answers
        # --help / --version (status 0) by exiting; return the status like any refusal.
        return stop.code if isinstance(stop.code, int) else EXIT_BAD_INPUT
    # The exact command line, recorded in every result's provenance.
    args.command_line = recorded_command(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.no_progress:
        import os

        os.environ["MESAINTERP_NO_PROGRESS"] = "1"
    try:
        result: CommandResult = args.run(args)
    except MesaInterpError as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        if args.json:
            print(to_json({"error": message}))
        print(f"mesainterp {args.command}: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"mesainterp {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(to_json(result.data) if args.json else result.text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
