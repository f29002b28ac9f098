"""The run options every resumable command shares: --resume, --executor, --ray-address,
--workers, --chunk-size."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from mesainterp.errors import ConfigError, allowed
from mesainterp.prompts.task import PromptData, prompt_data
from mesainterp.runs.executor import EXECUTORS, ExecutorName
from mesainterp.schema import POSITIVE, option

__all__ = [
    "RunOptions",
    "add_data_options",
    "add_run_options",
    "check_run_options",
    "data_from_args",
]


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """Where and how a resumable run computes its units (the same for every pipeline)."""

    resume: bool = False
    executor: ExecutorName = "inprocess"
    workers: int = 1
    address: str | None = None

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise ConfigError("executor", f"got {self.executor!r}", allowed(EXECUTORS))
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise ConfigError("workers", f"expected an int >= 1, got {self.workers!r}")
        if self.address is not None and self.executor != "ray":
            raise ConfigError("address", "only applies with executor 'ray'")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RunOptions:
        """The options `add_run_options` parsed (checked as `check_run_options` does)."""
        check_run_options(args)
        return cls(
            resume=args.resume, executor=args.executor, workers=args.workers,
            address=args.ray_address,
        )  # fmt: skip

    def execute_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of `runs.executor.execute` these options set."""
        return {"executor": self.executor, "workers": self.workers, "address": self.address}


def add_run_options(
    parser: argparse.ArgumentParser, *, chunk_help: str | None = None, chunk_default: int = 1
) -> None:
    """Add the run options; --chunk-size only where the work splits (`chunk_help` given)."""
    group = parser.add_argument_group("run control")
    group.add_argument(
        "--resume",
        action="store_true",
        help="continue the run saved in --out, computing only the missing units",
    )
    group.add_argument("--executor", default="inprocess", choices=EXECUTORS, help="where units run")
    group.add_argument(
        "--ray-address",
        default=None,
        help="Ray cluster to join ('auto' or HOST:PORT); default: start a local one",
    )
    group.add_argument(
        "--workers", type=option(POSITIVE), default=2, help="Ray actors (and local-cluster CPUs)"
    )
    if chunk_help is not None:
        group.add_argument(
            "--chunk-size", type=option(POSITIVE), default=chunk_default, help=chunk_help
        )


def check_run_options(args: argparse.Namespace) -> None:
    """Refuse bad run options before anything is loaded or written."""
    if args.workers < 1:
        raise ConfigError("--workers", f"expected an int >= 1, got {args.workers}")
    if getattr(args, "chunk_size", 1) < 1:
        raise ConfigError("--chunk-size", f"expected an int >= 1, got {args.chunk_size}")
    if args.ray_address is not None and args.executor != "ray":
        raise ConfigError("--ray-address", "only applies with --executor ray")


def add_data_options(parser: argparse.ArgumentParser, *, uses: str) -> None:
    """--data FILE, --tokenizer DIR, --roles COLS: run on the researcher's own pairs."""
    group = parser.add_argument_group("your own prompt pairs")
    group.add_argument(
        "--data",
        metavar="FILE",
        default=None,
        help="a .csv or .jsonl of prompt pairs (columns clean, corrupted, clean_answer, "
        f"corrupted_answer; other columns are labels) {uses}; text needs a tokenizer, "
        "else the cells are token ids",
    )
    group.add_argument(
        "--tokenizer",
        metavar="DIR",
        default=None,
        help="tokenizer directory for --data (default: MODEL's own, if it holds one)",
    )
    group.add_argument(
        "--roles",
        metavar="COLS",
        default="",
        help="comma-separated columns of --data that hold a token position per row "
        "(e.g. S2,IO,END); they name the positions in tables, figures and the report",
    )


def data_from_args(args: argparse.Namespace) -> PromptData | None:
    """The `PromptData` the data options name (None without --data)."""
    roles = tuple(r.strip() for r in args.roles.split(",") if r.strip())
    if args.data is None:
        for flag, value in (("--tokenizer", args.tokenizer), ("--roles", roles)):
            if value:
                raise ConfigError(flag, "only applies with --data")
        return None
    # search names its model in the config: its tokenizer default is resolved there.
    model = getattr(args, "model", None)
    return prompt_data(args.data, model=model, tokenizer=args.tokenizer, roles=roles)
