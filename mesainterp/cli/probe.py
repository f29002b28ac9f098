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
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mesainterp.cli.output import CommandResult
from mesainterp.errors import ConfigError, MesaInterpError
from mesainterp.model.build import model_shape, random_init_twin
from mesainterp.model.checkpoint import Checkpoint, load_checkpoint
from mesainterp.probes.causal import probe_subspaces, retarget
from mesainterp.probes.controls import ProbeSpec, save_table
from mesainterp.probes.dataset import collect_activations, probe_sites, task_batches
from mesainterp.provenance import provenance
from mesainterp.runs.atomic import atomic_write
from mesainterp.runs.executor import execute
from mesainterp.runs.options import add_run_options, check_run_options
from mesainterp.runs.plan import stable_hash
from mesainterp.runs.probe_job import ProbeJob, assemble_probe_table, probe_plan
from mesainterp.runs.state import open_run
from mesainterp.schema import NON_NEGATIVE, POSITIVE, POSITIVE_NUMBER, Range, option
from mesainterp.tasks.base import Task

__all__ = ["add_parser", "run"]

SITE_KINDS = ("resid_pre", "resid_mid", "resid_post")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "probe", help="linear probes per layer × position, controls, causal tests"
    )
    p.add_argument("model", help="a checkpoint directory or a zoo model name")
    p.add_argument("--target", required=True, help="label to probe for (e.g. goal, depth, on_path)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--kind", default="auto", choices=("auto", "logistic", "ridge", "multilabel"))
    p.add_argument(
        "--label-column", type=option(NON_NEGATIVE), default=None, help="one column of a 2-D label"
    )
    p.add_argument("--site-kind", default="resid_post", choices=SITE_KINDS)
    p.add_argument("--positions", default="all", help="comma-separated positions, or 'all'")
    p.add_argument("--n-examples", type=option(Range(lo=2)), default=2000)
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
    add_run_options(p, chunk_help="probe sites per resumable unit", chunk_default=8)
    p.set_defaults(run=run)


@dataclass(frozen=True, kw_only=True)
class ProbeResultView:
    """The assembled probe table and its provenance (what the figures and files read)."""

    table: pd.DataFrame
    provenance: dict[str, Any] = field(default_factory=dict)


def _load(name: str) -> tuple[Checkpoint, Task, Any]:
    """Checkpoint, its task and a random-init twin, from a directory or the zoo."""
    from mesainterp.tasks.registry import task_from_config

    if Path(name).is_dir():
        ckpt = load_checkpoint(name)
        if ckpt.task is None:
            raise MesaInterpError(f"{name}: checkpoint records no task to generate examples from")
        return ckpt, task_from_config(ckpt.task), random_init_twin(ckpt.config)
    try:
        zoo = importlib.import_module("mesainterp.zoo")
    except ImportError:
        raise MesaInterpError(f"{name}: not a checkpoint directory") from None
    ckpt = zoo.load(name)
    return ckpt, zoo.load_task(name), zoo.random_init(name)


def _positions(text: str | None, seq_len: int, default: list[int]) -> list[int]:
    if text is None:
        return default
    if text == "all":
        return list(range(seq_len))
    try:
        out = sorted({int(t) for t in text.split(",") if t.strip()})
    except ValueError:
        raise ConfigError("positions", f"got {text!r}", "'all' or comma-separated ints") from None
    bad = [p for p in out if not 0 <= p < seq_len]
    if bad or not out:
        raise ConfigError("positions", f"{bad or text!r} outside 0..{seq_len - 1}")
    return out


def _figure(table: pd.DataFrame, causal: pd.DataFrame | None) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.6), layout="constrained")
    axes = fig.subplots(1, 3 if causal is not None and len(causal) else 2)
    grid = table.pivot_table(index="layer", columns="pos", values="value")
    metric = str(table["metric"].iloc[0])
    im = axes[0].imshow(grid.to_numpy(), aspect="auto", origin="lower", cmap="viridis")
    axes[0].set_yticks(range(len(grid.index)), [str(v) for v in grid.index])
    step = max(1, len(grid.columns) // 12)
    axes[0].set_xticks(range(0, len(grid.columns), step), [str(v) for v in grid.columns[::step]])
    axes[0].set_xlabel("position")
    axes[0].set_ylabel("layer")
    axes[0].set_title(f"{table['target'].iloc[0]}: held-out {metric}")
    fig.colorbar(im, ax=axes[0])
    best = table.loc[table.groupby("layer")["value"].idxmax()].sort_values("layer")
    ax = axes[1]
    ax.errorbar(
        best["layer"], best["value"], yerr=1.96 * best["se"], marker="o", label="probe (best pos)"
    )
    for col, style in (("random_init", "--"), ("shuffled", ":"), ("majority", "-.")):
        ax.plot(best["layer"], best[col], style, label=col.replace("_", "-"))
    ax.set_xlabel("layer")
    ax.set_ylabel(metric)
    ax.set_title("best position per layer, with controls")
    ax.legend(frameon=False, fontsize=7)
    if causal is not None and len(causal):
        ax = axes[2]
        rows = causal[(causal["metric"] == "to_b") & (causal["intervention"] == "steer")]
        for direction, style in (("probe", "-o"), ("random", "--s")):
            r = rows[rows["direction"] == direction].sort_values("layer")
            err = [r["value"] - r["ci_low"], r["ci_high"] - r["value"]]
            ax.errorbar(r["layer"], r["value"], yerr=err, fmt=style, label=f"steer {direction}")
        base = causal[(causal["intervention"] == "none") & (causal["metric"] == "to_b")]
        ax.plot(base["layer"], base["value"], ":", label="no edit")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("layer")
        ax.set_ylabel("fraction decoding goal B's path")
        ax.set_title("goal retargeting")
        ax.legend(frameon=False, fontsize=7)
    return fig


def _causal(
    model: Any, task: Task, data: Any, spec: ProbeSpec, args: argparse.Namespace, n_layers: int
) -> tuple[pd.DataFrame | None, str]:
    """Per-layer retargeting table, or None and the reason it does not apply."""
    if args.no_causal:
        return None, "skipped (--no-causal)"
    y = data.labels.get(spec.target)
    if y is None or y.ndim != 1 or y.dtype.is_floating_point or spec.label_column is not None:
        return None, "skipped: target is not a 1-D class label"
    families = getattr(task, "counterfactual_families", ())
    if not families:
        return None, "skipped: task has no counterfactual family"
    pair = task.counterfactual_pairs(args.causal_pairs, seed=args.seed + 10_000)
    if pair.clean.inputs.dtype.is_floating_point:
        return None, "skipped: not a token task"
    if spec.target not in pair.corrupted.labels or bool(
        (pair.clean.labels[spec.target] == pair.corrupted.labels[spec.target]).any()
    ):
        return None, f"skipped: family {pair.family!r} does not change {spec.target!r}"
    goal_pos = int(getattr(task, "goal_pos", pair.clean.prompt_len - 1))
    default = list(range(goal_pos, pair.clean.seq_len))
    wanted = _positions(args.causal_positions, pair.clean.seq_len, default)
    tables = []
    for layer in range(n_layers):
        idx = [i for i, s in enumerate(data.sites) if s.layer == layer and s.pos in wanted]
        if not idx:
            continue
        subs = probe_subspaces(data, spec.target, site_indices=idx, C=spec.C)
        tables.append(
            retarget(model, pair, subs, target=spec.target, n_random=args.n_random, seed=args.seed)
        )
    if not tables:
        return None, "skipped: no probed site at the causal positions"
    return pd.concat(
        tables, ignore_index=True
    ), f"family {pair.family!r}, {args.causal_pairs} pairs"


def run(args: argparse.Namespace) -> CommandResult:
    ckpt, task, _twin = _load(args.model)  # workers build their own twin
    model = ckpt.model
    shape = model_shape(model)
    spec = ProbeSpec(
        target=args.target,
        kind=args.kind,
        label_column=args.label_column,
        C=args.C,
        alpha=args.alpha,
        folds=args.folds,
        seed=args.seed,
    )
    labels = task.sample(2, seed=args.seed).labels
    if spec.target not in labels:
        raise ConfigError(
            "target", f"the task has no label {spec.target!r}", ", ".join(sorted(labels))
        )
    positions = _positions(args.positions, task.seq_len, list(range(task.seq_len)))
    sites = probe_sites(shape, positions, kind=args.site_kind)
    limit = args.max_memory_mb * (1 << 20)
    meta = {"task": task.config_dict(), "n_examples": args.n_examples, "seed": args.seed}

    def collect(m: Any) -> Any:
        batches = task_batches(task, args.n_examples, batch_size=args.batch_size, seed=args.seed)
        return collect_activations(m, batches, sites, max_memory_bytes=limit, metadata=meta)

    check_run_options(args)
    # Workers rebuild the sweep from this job (model by name or absolute path).
    job = ProbeJob(
        model=str(Path(args.model).resolve()) if Path(args.model).is_dir() else args.model,
        target=args.target,
        positions=tuple(positions),
        site_kind=args.site_kind,
        kind=args.kind,
        label_column=args.label_column,
        n_examples=args.n_examples,
        batch_size=args.batch_size,
        C=args.C,
        alpha=args.alpha,
        folds=args.folds,
        seed=args.seed,
        max_memory_mb=args.max_memory_mb,
    )
    causal_args = {"pairs": args.causal_pairs, "positions": args.causal_positions,
                   "n_random": args.n_random}  # fmt: skip
    state = open_run(
        args.out,
        identity={
            "command": "probe",
            "model_fingerprint": ckpt.fingerprint,
            "job": job.to_dict(),
            "causal": None if args.no_causal else causal_args,
        },
        resume=args.resume,
    )
    plan = probe_plan(job, sites, args.chunk_size)
    stats = execute(
        job.worker_spec(),
        plan,
        state,
        executor=args.executor,
        workers=args.workers,
        address=args.ray_address,
    )
    table, dataset_meta = assemble_probe_table(plan, state)
    prov = provenance(
        model_fingerprint=ckpt.fingerprint,
        model_name=args.model,
        config={
            "task": task.config_dict(),
            "args": {k: v for k, v in vars(args).items() if k != "run"},
        },
        seed=args.seed,
        command=["mesainterp", *sys.argv[1:]],
    )
    prov["run"] = stats.to_dict()
    result = ProbeResultView(
        table=table, provenance=prov | {"probe_spec": asdict(spec), "dataset": dataset_meta}
    )
    out = Path(args.out)
    files = save_table(result.table, out, stem="probes", provenance=result.provenance)
    # The causal tests are one more unit: saved once, reused on --resume.
    causal_key = f"causal-{stable_hash(state.identity)}"
    if state.has(causal_key):
        saved = state.load_unit(causal_key)[1]
        causal = (
            None if saved["rows"] is None else pd.DataFrame(saved["rows"], columns=saved["columns"])
        )
        causal_note = saved["note"]
    else:
        data = collect(model) if not args.no_causal else None
        causal, causal_note = _causal(model, task, data, spec, args, shape.n_layers)
        state.save_unit(causal_key, {}, {
            "rows": None if causal is None else causal.to_dict(orient="records"),
            "columns": None if causal is None else list(causal.columns),
            "note": causal_note,
        })  # fmt: skip
    if causal is not None:
        files |= {
            f"causal_{k}": v
            for k, v in save_table(causal, out, stem="causal", provenance=prov).items()
        }
    fig = _figure(result.table, causal)
    atomic_write(out / "probes.png", lambda t: fig.savefig(t, dpi=130))
    files["figure"] = out / "probes.png"
    # The shared probe figures: the layer × position grid and the control curves
    # at the most selective position.
    from mesainterp.viz.probes import probe_curves_mpl, probe_heatmap_mpl

    best_pos = int(result.table.loc[result.table["selectivity"].idxmax(), "pos"])
    heatmap = probe_heatmap_mpl(result.table)
    curves = probe_curves_mpl(result.table, pos=best_pos)
    atomic_write(out / "probes_heatmap.png", lambda t: heatmap.savefig(t, dpi=130))
    atomic_write(out / "probes_curves.png", lambda t: curves.savefig(t, dpi=130))
    state.mark_complete()
    files["heatmap"] = out / "probes_heatmap.png"
    files["curves"] = out / "probes_curves.png"

    table = result.table
    best = table.loc[table["selectivity"].idxmax()]
    lines = [
        f"{args.model}: probe for {spec.target!r} ({table['kind'].iloc[0]}, {table['metric'].iloc[0]}),"
        f" {len(table)} sites, n={int(table['n'].iloc[0])}, {spec.folds}-fold",
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
    lines.append(f"causal tests: {causal_note}")
    lines.append(stats.describe())
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
    lines.append(f"wrote {', '.join(str(p) for p in files.values())}")
    data_out = {
        "probes": table.to_dict(orient="records"),
        "causal": None if causal is None else causal.to_dict(orient="records"),
        "causal_note": causal_note,
        **stats.to_dict(),
        "files": {k: str(v) for k, v in files.items()},
    }
    return CommandResult(data=data_out, text="\n".join(lines))
