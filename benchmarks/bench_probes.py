"""All-sites probe sweep (one batched torch fit) against a loop of sklearn fits.

Same process, interleaved A/B repeats, medians. Prints one JSON line per
comparison: the two median times, their ratio, the target ratio and the largest
per-site disagreement in held-out accuracy (logistic) or R² (ridge).

    python benchmarks/bench_probes.py [--sites 160 --n 2000 --d 128 --repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression, Ridge

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


def _timed(fn: Callable[[], object]) -> tuple[float, object]:
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sites", type=int, default=160)
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--d", type=int, default=128)
    p.add_argument("--classes", type=int, default=8)
    p.add_argument("--C", type=float, default=1.0)
    p.add_argument("--alpha", type=float, default=1.0)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()

    x, y, w = _data(args.sites, args.n, args.d, args.classes)
    n_train = int(0.8 * args.n)
    std = standardize(x[:, :n_train])
    xs = std(x).to(torch.float32)
    x_tr, x_te = xs[:, :n_train], xs[:, n_train:]
    np_tr = x_tr.double().numpy()
    np_te = x_te.double().numpy()
    shape = {"sites": args.sites, "n_train": n_train, "d": args.d}

    # Ridge (multi-output), closed form.
    w_tr, w_te = w[:n_train].double(), w[n_train:].double()

    def ours_ridge() -> np.ndarray:
        probe = fit_ridge(x_tr, w_tr, alpha=args.alpha)
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

    t_ours, t_sk, r_ours, r_sk = _interleave(ours_ridge, sk_ridge, args.repeats)
    print(
        json.dumps(
            {
                "comparison": "ridge_closed_form_vs_sklearn_loop",
                **shape,
                "outputs": 4,
                "ours_s": round(t_ours, 4),
                "sklearn_s": round(t_sk, 4),
                "ratio": round(t_ours / t_sk, 4),
                "target_ratio": 0.05,
                "max_r2_diff": float(np.abs(np.asarray(r_ours) - np.asarray(r_sk)).max()),
            }
        ),
        flush=True,
    )

    for name, labels, k in (
        ("logistic_binary_irls", (y % 2).long(), 2),
        (f"logistic_multinomial_{args.classes}_lbfgs", y, args.classes),
    ):
        y_tr, y_te = labels[:n_train], labels[n_train:]

        def ours_logistic(
            y_tr: torch.Tensor = y_tr, y_te: torch.Tensor = y_te, k: int = k
        ) -> np.ndarray:
            probe = fit_logistic(x_tr, y_tr, C=args.C, n_classes=k)
            pred = probe.predict(x_te)
            if probe.kind == "binary":
                pred = pred[..., 0].long()
            return (pred == y_te[None]).double().mean(1).numpy()

        def sk_logistic(y_tr: torch.Tensor = y_tr, y_te: torch.Tensor = y_te) -> np.ndarray:
            return np.array(
                [
                    LogisticRegression(C=args.C, max_iter=1000)
                    .fit(np_tr[s], y_tr.numpy())
                    .score(np_te[s], y_te.numpy())
                    for s in range(args.sites)
                ]
            )

        t_ours, t_sk, a_ours, a_sk = _interleave(ours_logistic, sk_logistic, args.repeats)
        print(
            json.dumps(
                {
                    "comparison": f"{name}_vs_sklearn_loop",
                    **shape,
                    "classes": k,
                    "ours_s": round(t_ours, 4),
                    "sklearn_s": round(t_sk, 4),
                    "ratio": round(t_ours / t_sk, 4),
                    "target_ratio": 0.3,
                    "max_acc_diff": float(np.abs(np.asarray(a_ours) - np.asarray(a_sk)).max()),
                    "mean_acc": float(np.mean(a_ours)),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
