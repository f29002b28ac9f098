"""All-sites probe sweep (one batched torch fit) against a loop of sklearn fits.

Same process, interleaved A/B repeats, medians; each timed call starts after a
pause that lets the other library's thread pool go idle. Prints one JSON line per
comparison: the two median times, their ratio, the target ratio and the largest
per-site disagreement in held-out accuracy (logistic) or R² (ridge), plus the
1-minute load average before and after (the machine may be shared).

Two sweeps: one train/test fit per site, and the k-fold cross-validated sweep
the toolkit runs (`cross_validate` against StandardScaler + fit per fold and site).

`--width 768` / `--width 2048` are the real-width shapes (d_model, n = 400
examples, 192 sites at 768 and 96 at 2048, every site in the CV sweep too): fewer
rows than features, the regime of a GPT-2-sized model probed on a few hundred
prompts. `--memory` adds each torch call's peak resident-memory growth, measured
once in a fresh child process (freed pages stay resident), beside the features'
own size; `--chunk-sites` caps the sites per batch.

    python benchmarks/bench_probes.py [--sites 160 --n 2000 --d 128 --repeats 3]
                                      [--cv-sites 40 --folds 5 --threads N --only ridge]
    python benchmarks/bench_probes.py --width 768 --threads 1 --memory
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from _peak_rss import PeakRss  # benchmarks/ is on sys.path when run as a script
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from mesainterp.probes.cv import ProbeKind, cross_validate, kfold_indices
from mesainterp.probes.linear import fit_logistic, fit_ridge, standardize


def _data(sites: int, n: int, d: int, classes: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(sites, n, d, generator=gen)
    y = torch.randint(0, classes, (n,), generator=gen)
    # Signal strength varies by site, so accuracies spread from chance to high.
    strength = torch.linspace(0.0, 0.6, sites)[:, None, None]
    x += strength * torch.randn(classes, d, generator=gen)[y][None]
    w = torch.randn(n, 4, generator=gen)
    w_target = x[:, :, :4].mean(0) + 0.5 * w
    return x, y, w_target


# OpenBLAS's worker threads (numpy's and scipy's, under sklearn) busy-wait for
# about 0.1 s after each call; a torch fit timed straight after a sklearn loop
# shares the two cores with them and ran 0.05-0.06 s slower in this benchmark.
# Both sides wait this long before their clock starts.
SETTLE_S = 0.3


def _timed(fn: Callable[[], object]) -> tuple[float, object]:
    time.sleep(SETTLE_S)
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _interleave(a: Callable[[], object], b: Callable[[], object], repeats: int):
    ta, tb, out_a, out_b = [], [], None, None
    for _ in range(repeats):
        t, out_a = _timed(a)
        ta.append(t)
        t, out_b = _timed(b)
        tb.append(t)
    return statistics.median(ta), statistics.median(tb), out_a, out_b


# d_model: (sites, n, CV sites). At 2048 half the sites keep the sklearn loop to
# minutes on a shared two-core machine.
WIDTHS = {768: (192, 400, 192), 2048: (96, 400, 96)}


@dataclass(frozen=True)
class Case:
    name: str
    fields: dict
    ours: Callable[[], np.ndarray]
    theirs: Callable[[], np.ndarray]
    target: float
    diff_name: str


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sites", type=int, default=None, help="default 160 (presets: see WIDTHS)")
    p.add_argument("--n", type=int, default=None, help="default 2000")
    p.add_argument("--d", type=int, default=128)
    p.add_argument("--width", type=int, choices=sorted(WIDTHS), default=None,
                   help="real-width preset: sets --d, and --n, --sites, --cv-sites unless given")  # fmt: skip
    p.add_argument("--classes", type=int, default=8)
    p.add_argument("--C", type=float, default=1.0)
    p.add_argument("--alpha", type=float, default=1.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--cv-sites", type=int, default=None, help="sites in the CV sweep (0: skip; default 40)"
    )
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--only", choices=["ridge", "binary", "multinomial"], default=None)
    p.add_argument("--chunk-sites", type=int, default=None, help="sites per batch (default: by memory budget)")  # fmt: skip
    p.add_argument("--memory", action="store_true", help="peak RSS of each torch call, in a child")  # fmt: skip
    p.add_argument("--mem-child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    defaults = (160, 2000, 40)
    if args.width is not None:  # the preset's shape, where not given explicitly
        args.d = args.width
        defaults = WIDTHS[args.width]
    for name, value in zip(("sites", "n", "cv_sites"), defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def main() -> None:
    args = _args()
    if args.threads:
        # Both sides get the same thread count (torch's pool and sklearn's BLAS):
        # on a machine shared past its core count, fewer threads wait less.
        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)
    os.environ.setdefault("MESAINTERP_NO_PROGRESS", "1")
    cases = _cases(args)
    if args.mem_child is not None:
        case = next(c for c in cases if c.name == args.mem_child)
        with PeakRss() as peak:
            case.ours()
        print(json.dumps({"kb": peak.growth_kb}))
        return
    for case in cases:
        load = _load()
        timed = _interleave(case.ours, case.theirs, args.repeats)
        extra = {}
        if args.memory:
            sites, n, d = case.fields["sites"], case.fields.get("n", args.n), case.fields["d"]
            extra = {
                "ours_peak_mb": round(_peak_kb_child(case.name) / 1024, 1),
                "features_mb": round(sites * n * d * 4 / 2**20, 1),
            }
        _report(case.name, case.fields, timed, case.target, case.diff_name, load, extra)


def _peak_kb_child(name: str) -> int:
    """Peak growth of one case's torch call, in a fresh process with the same arguments."""
    argv = [sys.executable, __file__, *sys.argv[1:], "--mem-child", name]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return int(json.loads(out.strip().splitlines()[-1])["kb"])


def _cases(args: argparse.Namespace) -> list[Case]:
    x, y, w = _data(args.sites, args.n, args.d, args.classes)
    n_train = int(0.8 * args.n)
    std = standardize(x[:, :n_train])
    xs = std(x).to(torch.float32)
    x_tr, x_te = xs[:, :n_train], xs[:, n_train:]
    np_tr = x_tr.double().numpy()
    np_te = x_te.double().numpy()
    shape = {"sites": args.sites, "n_train": n_train, "d": args.d}
    chunk = args.chunk_sites

    # Ridge (multi-output), closed form.
    w_tr, w_te = w[:n_train].double(), w[n_train:].double()

    def ours_ridge() -> np.ndarray:
        probe = fit_ridge(x_tr, w_tr, alpha=args.alpha, chunk_sites=chunk)
        pred = probe.predict(x_te)
        ss_res = (pred - w_te[None]).pow(2).sum(1)
        ss_tot = (w_te - w_te.mean(0)).pow(2).sum(0)
        return (1 - ss_res / ss_tot).mean(-1).numpy()

    def sk_ridge() -> np.ndarray:
        return np.array(
            [
                Ridge(alpha=args.alpha).fit(np_tr[s], w_tr.numpy()).score(np_te[s], w_te.numpy())
                for s in range(args.sites)
            ]
        )

    cases = []
    if args.only in (None, "ridge"):
        cases.append(
            Case(
                "ridge_closed_form_vs_sklearn_loop",
                {**shape, "outputs": 4, "n": n_train},
                ours_ridge,
                sk_ridge,
                0.05,
                "max_r2_diff",
            )
        )
    if args.cv_sites and args.only in (None, "ridge"):
        cases.append(_cv_case(args, x[: args.cv_sites], w.double(), "ridge", 0.05))
    kinds = [("binary", (y % 2).long(), 2), ("multinomial", y, args.classes)]
    for kind_name, labels, k in kinds:
        if args.only not in (None, kind_name):
            continue
        cases.append(_single_logistic(args, x_tr, x_te, np_tr, np_te, labels, n_train, k, shape))
        if args.cv_sites:
            cases.append(_cv_case(args, x[: args.cv_sites], labels, "logistic", 0.3))
    return cases


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _report(
    name: str,
    fields: dict,
    timed: tuple,
    target: float,
    diff_name: str,
    load: float | None = None,
    extra: dict | None = None,
) -> None:
    t_ours, t_sk, a_ours, a_sk = timed
    diff = float(np.abs(np.asarray(a_ours) - np.asarray(a_sk)).max())
    print(
        json.dumps(
            {
                "comparison": name,
                **fields,
                "ours_s": round(t_ours, 4),
                "sklearn_s": round(t_sk, 4),
                "ratio": round(t_ours / t_sk, 4),
                "target_ratio": target,
                diff_name: diff,
                **(extra or {}),
                "threads": torch.get_num_threads(),
                "load_before": load,
                "load_after": _load(),
            }
        ),
        flush=True,
    )


def _cv_case(
    args: argparse.Namespace, x: torch.Tensor, y: torch.Tensor, kind: ProbeKind, target: float
) -> Case:
    """cross_validate over every site against sklearn's scaler + model per fold and site."""
    sites, n = x.shape[0], x.shape[1]
    classes = int(y.max()) + 1 if kind == "logistic" else 0
    folds = kfold_indices(n, k=args.folds, seed=0, stratify=y if kind == "logistic" else None)
    x_np, y_np = x.double().numpy(), y.numpy()

    def ours() -> np.ndarray:
        scores = cross_validate(
            x,
            y,
            kind=kind,
            C=args.C,
            alpha=args.alpha,
            k=args.folds,
            seed=0,
            progress=False,
            chunk_sites=args.chunk_sites,
        )
        return scores.mean.numpy()

    def theirs() -> np.ndarray:
        out = np.zeros(sites)
        for s in range(sites):
            for train, test in folds:
                scaler = StandardScaler().fit(x_np[s, train])
                model = (
                    Ridge(alpha=args.alpha)
                    if kind == "ridge"
                    else LogisticRegression(C=args.C, max_iter=1000)
                )
                model.fit(scaler.transform(x_np[s, train]), y_np[train])
                out[s] += model.score(scaler.transform(x_np[s, test]), y_np[test]) / len(folds)
        return out

    name = "ridge" if kind == "ridge" else ("binary" if classes == 2 else f"multinomial_{classes}")
    return Case(
        f"cv{args.folds}_{name}_vs_sklearn_loop",
        {"sites": sites, "n": n, "d": x.shape[2]},
        ours,
        theirs,
        target,
        "max_r2_diff" if kind == "ridge" else "max_acc_diff",
    )


def _single_logistic(args, x_tr, x_te, np_tr, np_te, labels, n_train, k, shape) -> Case:
    y_tr, y_te = labels[:n_train], labels[n_train:]

    def ours() -> np.ndarray:
        probe = fit_logistic(x_tr, y_tr, C=args.C, n_classes=k, chunk_sites=args.chunk_sites)
        pred = probe.predict(x_te)
        if probe.kind == "binary":
            pred = pred[..., 0].long()
        return (pred == y_te[None]).double().mean(1).numpy()

    def theirs() -> np.ndarray:
        return np.array(
            [
                LogisticRegression(C=args.C, max_iter=1000)
                .fit(np_tr[s], y_tr.numpy())
                .score(np_te[s], y_te.numpy())
                for s in range(args.sites)
            ]
        )

    name = "logistic_binary" if k == 2 else f"logistic_multinomial_{k}"
    return Case(
        f"{name}_lbfgs_vs_sklearn_loop",
        {**shape, "classes": k, "n": n_train},
        ours,
        theirs,
        0.3,
        "max_acc_diff",
    )


if __name__ == "__main__":
    main()
