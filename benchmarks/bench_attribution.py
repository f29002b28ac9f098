"""Attribution and pruning against the exact sweeps they replace.

Three comparisons, each timed in this one process with the two sides interleaved
(A, B, A, B, ...), reported as medians and a ratio, one JSON line each:

    nodes  all-node attribution over heads x positions (2 forwards + 1 backward)
           vs the exact heads-by-position sweep, one hooked forward per site
           (TransformerLens-style; target ratio <= 0.02)
    eap    EAP over every edge vs an exact sweep of one forward per edge
           (target ratio <= 0.01)
    acdc   ACDC (restarting each trial at the edge's layer, skipping dead-end nodes)
           vs that same one-forward-per-edge sweep
    atp*   AtP* (QK fix + GradDrop) vs plain attribution on the same sites: every head's
           q and k by position (nodes), and every edge (EAP); the cost of the fixes

Run:  python benchmarks/bench_attribution.py [--layers 4 --d-model 128 --batch 32 --seq 32]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from mesainterp.attribution import EdgeForward, edge_attribution, node_attribution
from mesainterp.discovery import ablated_outputs, acdc, cut_run_metric
from mesainterp.model import ModelConfig, build_model, model_shape
from mesainterp.patching.engine import run_sweep
from mesainterp.patching.metrics import logit_diff
from mesainterp.sites import head_sites

__all__: list[str] = []


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _compare(name: str, fast: Callable[[], object], anchor: Callable[[], object], reps: int,
             target: float | None, **extra: object) -> None:  # fmt: skip
    fast()  # warm-up
    fast_times: list[float] = []
    anchor_times: list[float] = []
    for _ in range(reps):
        fast_times.append(_timed(fast))
        anchor_times.append(_timed(anchor))
    f, a = statistics.median(fast_times), statistics.median(anchor_times)
    line = {"comparison": name, "fast_s": round(f, 4), "anchor_s": round(a, 4),
            "ratio": round(f / a, 5), "target": target, "reps": reps, **extra}  # fmt: skip
    print(json.dumps(line), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=32)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", choices=("nodes", "eap", "acdc", "atp*"), default=None)
    args = parser.parse_args()

    torch.manual_seed(0)
    config = ModelConfig(
        n_layers=args.layers, d_model=args.d_model, n_heads=args.heads,
        d_head=args.d_model // args.heads, d_mlp=4 * args.d_model, d_vocab=50, n_ctx=args.seq,
    )  # fmt: skip
    model = build_model(config)
    gen = torch.Generator().manual_seed(0)
    clean = torch.randint(0, 50, (args.batch, args.seq), generator=gen)
    corrupted = clean.clone()
    corrupted[:, args.seq // 4] = (clean[:, args.seq // 4] + 1) % 50
    answer = torch.full((args.batch,), args.seq - 1)
    metric = logit_diff(answer, clean[:, args.seq // 4], corrupted[:, args.seq // 4])
    shape = model_shape(model)
    info = {"layers": args.layers, "d_model": args.d_model, "heads": args.heads,
            "batch": args.batch, "seq": args.seq, "threads": torch.get_num_threads()}  # fmt: skip

    if args.only in (None, "nodes"):
        sites = head_sites(shape, seq_len=args.seq, kind="z", by_pos=True)
        _compare(
            "nodes: all-node attribution vs exact heads-by-position sweep (hooks)",
            lambda: node_attribution(model, sites, clean=clean, corrupted=corrupted, metric=metric),
            lambda: run_sweep(
                model, sites, clean=clean, corrupted=corrupted, metric=metric, method="hooks"
            ),
            args.reps,
            0.02,
            n_sites=len(sites),
            **info,
        )

    ef = EdgeForward(model)
    g = ef.graph
    edges = g.edges()

    def exact_edge_sweep() -> None:
        # One full forward per edge (no restart): the naive exact edge sweep.
        ablated = ablated_outputs(ef, "resample", corrupted=clean)
        tok, pos = ef.embed_parts(corrupted)
        cut = torch.zeros(g.n_upstream, g.n_downstream, dtype=torch.bool)
        for u, d in edges:
            i, j = g.up_index(u), g.down_index(d)
            cut[i, j] = True
            cut_run_metric(ef, metric, None, tok=tok, pos=pos, cut=cut, ablated=ablated)
            cut[i, j] = False

    if args.only in (None, "eap"):
        _compare(
            "eap: EAP over all edges vs exact one-forward-per-edge sweep",
            lambda: edge_attribution(
                model, clean=clean, corrupted=corrupted, metric=metric, forward=ef
            ),
            exact_edge_sweep,
            args.reps,
            0.01,
            n_edges=len(edges),
            **info,
        )
    if args.only in (None, "acdc"):
        result = acdc(model, clean=clean, corrupted=corrupted, metric=metric, threshold=0.05,
                      forward=ef)  # fmt: skip
        _compare(
            "acdc: ACDC (threshold 0.05, layer restarts) vs exact one-forward-per-edge sweep",
            lambda: acdc(
                model, clean=clean, corrupted=corrupted, metric=metric, threshold=0.05, forward=ef
            ),
            exact_edge_sweep,
            args.reps,
            None,
            n_edges=len(edges),
            acdc_runs=result.n_runs,
            kept=len(result.kept),
            **info,
        )

    if args.only in (None, "atp*"):
        qk = [
            site
            for kind in ("q", "k")
            for site in head_sites(shape, seq_len=args.seq, kind=kind, by_pos=True)
        ]
        inputs: dict[str, Any] = {"clean": clean, "corrupted": corrupted, "metric": metric}
        variants = ({"qk_fix": True}, {"grad_drop": True}, {"qk_fix": True, "grad_drop": True})
        for flags in variants:
            what = " + ".join(flags)
            _compare(
                f"atp*: node attribution with {what} vs plain, heads' q/k by position",
                lambda flags=flags: node_attribution(model, qk, **flags, **inputs),
                lambda: node_attribution(model, qk, **inputs),
                args.reps,
                None,
                n_sites=len(qk),
                **info,
            )
            _compare(
                f"atp*: EAP with {what} vs plain EAP over all edges",
                lambda flags=flags: edge_attribution(model, forward=ef, **flags, **inputs),
                lambda: edge_attribution(model, forward=ef, **inputs),
                args.reps,
                None,
                n_edges=len(edges),
                **info,
            )


if __name__ == "__main__":
    main()
