"""The cost of resolving edges per position or per role, against the plain edge set.

Each comparison is timed in this one process with the two sides interleaved (A, B,
A, B, ...), reported as medians and a ratio, one JSON line each:

    eap-each    EAP with positions="each" vs position-agnostic EAP (same 2 forwards
                and 1 backward; only the scoring contraction is per position)
    acdc-each   ACDC over the per-position edge set vs plain ACDC, with the number
                of trial runs each makes (per position: about n_positions times the
                edges, fewer trials than that because inert and dangling ones are cut
                without a run)
    acdc-roles  ACDC over three roles (first difference, second, last) plus "other"

Run:  python benchmarks/bench_positions.py [--layers 2 --d-model 64 --batch 16 --seq 12]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from mesainterp.attribution import EdgeForward, edge_attribution
from mesainterp.discovery import acdc
from mesainterp.model import ModelConfig, build_model
from mesainterp.patching.metrics import logit_diff

__all__: list[str] = []


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _compare(name: str, split: Callable[[], object], plain: Callable[[], object], reps: int,
             **extra: object) -> None:  # fmt: skip
    split()  # warm-up
    split_times: list[float] = []
    plain_times: list[float] = []
    for _ in range(reps):
        split_times.append(_timed(split))
        plain_times.append(_timed(plain))
    s, p = statistics.median(split_times), statistics.median(plain_times)
    line = {"comparison": name, "split_s": round(s, 4), "plain_s": round(p, 4),
            "ratio": round(s / p, 3), "reps": reps, **extra}  # fmt: skip
    print(json.dumps(line), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=12)
    parser.add_argument("--threshold", type=float, default=0.01)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()

    config = ModelConfig(
        n_layers=args.layers, d_model=args.d_model, n_heads=args.heads,
        d_head=args.d_model // args.heads, d_mlp=4 * args.d_model, d_vocab=50, n_ctx=args.seq,
        seed=0,
    )  # fmt: skip
    model = build_model(config)
    gen = torch.Generator().manual_seed(0)
    clean = torch.randint(0, 50, (args.batch, args.seq), generator=gen)
    corrupted = clean.clone()
    first, second = args.seq // 4, args.seq // 2
    for p in (first, second):
        corrupted[:, p] = (clean[:, p] + 1) % 50
    metric = logit_diff(torch.full((args.batch,), args.seq - 1), clean[:, first],
                        corrupted[:, first])  # fmt: skip
    ef = EdgeForward(model)
    info = {"layers": args.layers, "d_model": args.d_model, "heads": args.heads,
            "batch": args.batch, "seq": args.seq, "threads": torch.get_num_threads()}  # fmt: skip
    common: dict[str, Any] = dict(clean=clean, corrupted=corrupted, metric=metric, forward=ef)
    roles = {"first": first, "second": second, "last": -1}

    _compare(
        "eap-each: EAP per position vs position-agnostic EAP",
        lambda: edge_attribution(model, positions="each", **common),
        lambda: edge_attribution(model, **common),
        args.reps,
        **info,
    )
    for name, positions in (("acdc-each", "each"), ("acdc-roles", roles)):
        split = acdc(model, threshold=args.threshold, positions=positions, progress=False, **common)
        plain = acdc(model, threshold=args.threshold, progress=False, **common)
        _compare(
            f"{name}: ACDC per {'position' if positions == 'each' else 'role'} vs plain ACDC",
            lambda p=positions: acdc(
                model, threshold=args.threshold, positions=p, progress=False, **common
            ),
            lambda: acdc(model, threshold=args.threshold, progress=False, **common),
            args.reps,
            split_runs=split.n_runs,
            plain_runs=plain.n_runs,
            split_kept=len(split.kept),
            plain_kept=len(plain.kept),
            **info,
        )


if __name__ == "__main__":
    main()
