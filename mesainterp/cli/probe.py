"""`mesainterp probe MODEL --target NAME --out DIR`: goal probes with controls and causal tests.

Writes to DIR:
    probes.parquet/.csv/.json   one row per layer × position: held-out score ± se,
                                random-init twin, shuffled labels, majority, selectivity
    causal.parquet/.csv/.json   goal retargeting per layer: steer / ablate along the
                                probe subspace vs random subspaces (token tasks with
                                a counterfactual family that changes the target)
    probes.png                  accuracy by layer × position, control curves, retargeting
    probes_heatmap.png          the layer × position grid (mesainterp.viz.probes)
    probes_curves.png           score by layer at the most selective position, with controls

The pipeline is `mesainterp.runs.probe_pipeline.run_probe_pipeline`; this module only
parses the options and prints the summary.
"""

from __future__ import annotations

import argparse

from mesainterp.cli.output import CommandResult
from mesainterp.errors import ConfigError
from mesainterp.runs.options import (
    add_data_options,
    add_run_options,
    check_run_options,
    data_from_args,
)
from mesainterp.runs.probe_job import ProbeJob
from mesainterp.runs.probe_pipeline import CausalOptions, ProbeRun, run_probe_pipeline
from mesainterp.schema import NON_NEGATIVE, POSITIVE, POSITIVE_NUMBER, Range, option
from mesainterp.sites.site import PROBE_KINDS

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "probe", help="linear probes per layer × position, controls, causal tests"
    )
    p.add_argument(
        "model", help="a zoo model name, a checkpoint or run directory, or a HuggingFace directory"
    )
    p.add_argument(
        "--target",
        required=True,
        help="label to probe for (e.g. goal, depth, on_path); with --data, a numeric label "
        "column of the file",
    )
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--kind", default="auto", choices=("auto", "logistic", "ridge", "multilabel"))
    p.add_argument(
        "--label-column", type=option(NON_NEGATIVE), default=None, help="one column of a 2-D label"
    )
    p.add_argument("--site-kind", default="resid_post", choices=PROBE_KINDS)
    p.add_argument("--positions", default="all", help="comma-separated positions, or 'all'")
    p.add_argument(
        "--n-examples",
        type=option(Range(lo=2)),
        default=None,
        help="examples to probe on (default 2000; with --data, every row, in file order)",
    )
    p.add_argument("--batch-size", type=option(POSITIVE), default=250)
    p.add_argument(
        "--C", type=option(POSITIVE_NUMBER), default=1.0, help="inverse L2 strength (logistic)"
    )
    p.add_argument("--alpha", type=option(POSITIVE_NUMBER), default=1.0, help="L2 strength (ridge)")
    p.add_argument("--folds", type=option(Range(lo=2)), default=5)
    p.add_argument("--seed", type=option(NON_NEGATIVE), default=0, help="data and fold seed")
    p.add_argument("--no-causal", action="store_true", help="skip the causal tests")
    p.add_argument("--causal-pairs", type=option(Range(lo=2)), default=256)
    p.add_argument(
        "--causal-positions", default=None, help="positions to edit (default: goal onward)"
    )
    p.add_argument("--n-random", type=option(POSITIVE), default=5, help="random-direction draws")
    p.add_argument("--max-memory-mb", type=option(POSITIVE), default=1024)
    add_data_options(p, uses="whose clean prompts are probed instead of the task's examples")
    add_run_options(p, chunk_help="probe sites per resumable unit", chunk_default=8)
    p.set_defaults(run=run)


def _positions(text: str | None) -> tuple[int, ...] | None:
    """'all' -> () (every position), None -> None (the default), else the listed ints."""
    if text is None:
        return None
    if text == "all":
        return ()
    try:
        out = tuple(sorted({int(t) for t in text.split(",") if t.strip()}))
    except ValueError:
        raise ConfigError("positions", f"got {text!r}", "'all' or comma-separated ints") from None
    if not out:
        raise ConfigError("positions", f"got {text!r}", "'all' or comma-separated ints")
    return out


def run(args: argparse.Namespace) -> CommandResult:
    check_run_options(args)
    prompts = data_from_args(args)
    n_examples = args.n_examples or (2000 if prompts is None else prompts.n_rows)
    job = ProbeJob(
        model=args.model,
        target=args.target,
        positions=_positions(args.positions) or (),
        site_kind=args.site_kind,
        kind=args.kind,
        label_column=args.label_column,
        n_examples=n_examples,
        batch_size=args.batch_size,
        C=args.C,
        alpha=args.alpha,
        folds=args.folds,
        seed=args.seed,
        max_memory_mb=args.max_memory_mb,
        data=None if prompts is None else prompts.to_dict(),
    )
    causal = None if args.no_causal else CausalOptions(
        pairs=args.causal_pairs, positions=_positions(args.causal_positions),
        n_random=args.n_random,
    )  # fmt: skip
    result = run_probe_pipeline(
        job,
        args.out,
        causal=causal,
        resume=args.resume,
        executor=args.executor,
        workers=args.workers,
        ray_address=args.ray_address,
        chunk_size=args.chunk_size,
        command=list(args.command_line),
    )
    data_out = {
        "probes": result.table.to_dict(orient="records"),
        "causal": None if result.causal is None else result.causal.to_dict(orient="records"),
        "causal_note": result.causal_note,
        **result.stats.to_dict(),
        "files": {k: str(v) for k, v in result.files.items()},
    }
    return CommandResult(data=data_out, text="\n".join(_summary(args.model, job, result)))


def _summary(model: str, job: ProbeJob, result: ProbeRun) -> list[str]:
    table, causal = result.table, result.causal
    best = table.loc[table["selectivity"].idxmax()]
    lines = [
        f"{model}: probe for {job.target!r} ({table['kind'].iloc[0]}, {table['metric'].iloc[0]}),"
        f" {len(table)} sites, n={int(table['n'].iloc[0])}, {job.folds}-fold",
        f"most selective: layer {int(best['layer'])} pos {int(best['pos'])}: {best['value']:.3f}"
        f" ± {best['se']:.3f} (random-init {best['random_init']:.3f}, shuffled {best['shuffled']:.3f},"
        f" majority {best['majority']:.3f})",
        "best position per layer:",
    ]
    per_layer = table.loc[table.groupby("layer")["value"].idxmax()].sort_values("layer")
    for _, r in per_layer.iterrows():
        lines.append(
            f"  L{int(r['layer'])} pos {int(r['pos'])}: {r['value']:.3f} ± {r['se']:.3f}"
            f"  random-init {r['random_init']:.3f}  shuffled {r['shuffled']:.3f}  selectivity {r['selectivity']:.3f}"
        )
    lines.append(f"causal tests: {result.causal_note}")
    lines.append(result.stats.describe())
    if causal is not None:
        steer = causal[(causal["intervention"] == "steer") & (causal["metric"] == "to_b")]
        for layer, g in steer.groupby("layer"):
            pr = g[g["direction"] == "probe"].iloc[0]
            rd = g[g["direction"] == "random"]
            rtxt = (
                f"random {rd['value'].iloc[0]:.3f} [{rd['ci_low'].iloc[0]:.3f}, {rd['ci_high'].iloc[0]:.3f}]"
                if len(rd)
                else ""
            )
            lines.append(
                f"  L{layer} steer to B: probe {pr['value']:.3f} [{pr['ci_low']:.3f}, {pr['ci_high']:.3f}]  {rtxt}"
            )
    lines.append(f"wrote {', '.join(str(p) for p in result.files.values())}")
    return lines
