"""Generate the committed mechanism cards of the shipped model organisms.

    python circuits/build_mechanism.py tree-path tree-path-brinkmann graph-search maze maze-4x4 \
        icl-regression

runs `mesainterp mechanism NAME` with the settings below (`runs.mechanism_run`) into
circuits/NAME/: mechanism.md (the card), mechanism.json, the evidence tables it points
to (roles.csv, dla.csv, lens.csv, or algorithm.csv) and run.json, so that
`mesainterp report circuits/NAME` renders it. tests/integration/test_mechanism_cards.py
re-runs tree-path and tree-path-brinkmann and requires the committed mechanism.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mesainterp.runs.evidence_run import plan_evidence
from mesainterp.runs.mechanism_run import run_mechanism_run

__all__: list[str] = []

HERE = Path(__file__).resolve().parent
ORGANISMS = (
    "tree-path",
    "tree-path-brinkmann",
    "graph-search",
    "maze",
    "maze-4x4",
    "icl-regression",
)
# The settings every committed card is generated with.
SETTINGS = {"n": 64, "seed": 0, "steps": 3, "n_boot": 500}


def build(name: str, out: Path) -> Path:
    """Write `name`'s card into `out`; returns the Markdown card's path."""
    command = ["mesainterp", "mechanism", name, "--out", f"circuits/{name}"]
    command += ["--n", str(SETTINGS["n"]), "--steps", str(SETTINGS["steps"])]
    done = run_mechanism_run(plan_evidence(name), out, command=command, **SETTINGS)
    return done.paths["markdown"]


def main() -> None:
    parser = argparse.ArgumentParser(description="generate the committed mechanism cards")
    parser.add_argument("names", nargs="*", help=f"any of {', '.join(ORGANISMS)} (default: all)")
    names = parser.parse_args().names or list(ORGANISMS)
    bad = [n for n in names if n not in ORGANISMS]
    if bad:
        parser.error(f"unknown organism {bad[0]!r} (allowed: {', '.join(ORGANISMS)})")
    for name in names:
        print(build(name, HERE / name))


if __name__ == "__main__":
    main()
