"""`mesainterp report RUN_DIR`: RUN_DIR/report.html plus RUN_DIR/figures/.

The page is self-contained (no network requests); the figures folder holds
every static figure as PNG, SVG and PDF for papers. The run-directory layout
is described in `mesainterp.report.rundir`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mesainterp.cli.output import CommandResult
from mesainterp.errors import ConfigError, allowed
from mesainterp.report import write_report
from mesainterp.viz.export import STATIC_FORMATS

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="build a self-contained HTML report and static figures from a run directory"
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (holds run.json)")
    parser.add_argument("--out", help="where to write the HTML (default RUN_DIR/report.html)")
    parser.add_argument("--figures", help="folder for static figures (default RUN_DIR/figures)")
    parser.add_argument(
        "--static",
        action="store_true",
        help="static figures only: no plotly.js on the page (about 5 MB smaller)",
    )
    parser.add_argument(
        "--formats",
        default=",".join(STATIC_FORMATS),
        help=f"comma-separated static formats (default {','.join(STATIC_FORMATS)})",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> CommandResult:
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = [f for f in formats if f not in STATIC_FORMATS]
    if unknown or not formats:
        raise ConfigError(
            "--formats", f"unknown format(s) {allowed(unknown)}", allowed(STATIC_FORMATS)
        )
    page, figures = write_report(
        Path(args.run_dir),
        out=args.out,
        figures_dir=args.figures,
        interactive=not args.static,
        formats=formats,
    )
    data = {
        "report": str(page),
        "bytes": page.stat().st_size,
        "figures": [str(f) for f in figures],
    }
    text = f"wrote {page} ({page.stat().st_size / 1e6:.1f} MB) and {len(figures)} figure files"
    if figures:
        text += f" in {figures[0].parent}"
    return CommandResult(data=data, text=text)
