"""The run options every resumable command shares: --resume, --executor, --ray-address,
--workers, --chunk-size."""

from __future__ import annotations

import argparse

from mesainterp.errors import ConfigError
from mesainterp.runs.executor import EXECUTORS
from mesainterp.schema import POSITIVE, option

__all__ = ["add_run_options", "check_run_options"]


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
