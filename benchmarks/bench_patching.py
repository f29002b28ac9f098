"""Patching sweeps: mesainterp's engine against `transformer_lens.patching`.

Prints one JSON line per comparison:
    {"comparison", "ours_s", "tl_s", "ratio", "max_abs_diff", "peak_mem_ratio", ...}

Timings are medians of interleaved runs in one process (TL, ours, TL, ours, ...).
Peak memory is measured in fresh child processes: resident memory is sampled every
millisecond during one operation and its peak growth over the set-up baseline is
reported, for a sweep and for a single full `run_with_cache` on the same inputs;
`peak_mem_ratio` is sweep / run_with_cache. torch runs single-threaded by default
(`--threads`): on a shared 2-core machine, intra-op threads spin against the other
processes and small ops slow down by two orders of magnitude, for both sides alike.

    python benchmarks/bench_patching.py                  # zoo model on its task pairs,
                                                         # else random 4L d128, batch 32 x seq 32
    python benchmarks/bench_patching.py --repeats 5 --batch 32 --seq 32
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

import torch
from transformer_lens import patching as tl_patching

from mesainterp.model import ModelConfig, build_model, model_shape
from mesainterp.patching import logit_diff, run_sweep
from mesainterp.sites import head_sites, resid_sites

COMPARISONS = {
    "resid_pre": tl_patching.get_act_patch_resid_pre,
    "attn_head_out_by_pos": tl_patching.get_act_patch_attn_head_out_by_pos,
}


def setup(args: argparse.Namespace) -> tuple[Any, torch.Tensor, torch.Tensor, Any, str]:
    """Model, clean/corrupted inputs and a logit-difference metric."""
    name = "random-4L-d128"
    model = None
    if args.zoo:
        try:
            from mesainterp import zoo

            names = zoo.list_models()
            if names:
                name = args.zoo if args.zoo in names else names[0]
                model = zoo.load(name).model
                task = zoo.load_task(name)
        except Exception as err:  # no zoo yet: fall back to the random model
            print(f"# zoo unavailable ({err}); using a random model", file=sys.stderr)
    if model is not None:
        # The model's own task: counterfactual pairs and its default metric.
        pair = task.counterfactual_pairs(args.batch, seed=0)
        task_metric = task.default_metric(pair)

        def bound(logits: torch.Tensor, batch: Any = None) -> torch.Tensor:
            return task_metric(logits, pair.clean)

        return model, pair.clean.inputs, pair.corrupted.inputs, bound, f"{name} (task pairs)"
    if model is None:
        config = ModelConfig(
            n_layers=4, d_model=128, n_heads=4, d_head=32, d_mlp=512, d_vocab=64, n_ctx=64
        )
        model = build_model(config)
    shape = model_shape(model)
    seq = min(args.seq, shape.n_ctx)
    g = torch.Generator().manual_seed(0)
    clean = torch.randint(0, shape.d_vocab, (args.batch, seq), generator=g)
    corrupted = torch.randint(0, shape.d_vocab, (args.batch, seq), generator=g)
    answer_pos = torch.full((args.batch,), seq - 1)
    metric = logit_diff(
        answer_pos,
        torch.randint(0, shape.d_vocab_out, (args.batch,), generator=g),
        torch.randint(0, shape.d_vocab_out, (args.batch,), generator=g),
    )
    return model, clean, corrupted, metric, name


def sites_for(comparison: str, model: Any, seq: int) -> list:
    shape = model_shape(model)
    if comparison == "resid_pre":
        return resid_sites(shape, seq_len=seq)
    return head_sites(shape, seq_len=seq, by_pos=True)


def ours_as_tl(values: torch.Tensor, comparison: str, model: Any, seq: int) -> torch.Tensor:
    """Our [sites] means in TL's layout (heads by pos: layer × pos × head)."""
    shape = model_shape(model)
    if comparison == "resid_pre":
        return values.view(shape.n_layers, seq)
    return values.view(shape.n_layers, shape.n_heads, seq).transpose(1, 2)


def _rss_kb() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def child(args: argparse.Namespace) -> None:
    """Peak resident-memory growth of one operation, sampled in this fresh process."""
    model, clean, corrupted, metric, _ = setup(args)
    seq = clean.shape[1]
    with torch.no_grad():
        model(clean)  # warm up allocations common to every operation
    baseline = _rss_kb()
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_kb())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    if args.mem_child == "run_with_cache":
        with torch.no_grad():
            _, cache = model.run_with_cache(clean)
        del cache
    else:
        sites = sites_for(args.mem_child, model, seq)
        run_sweep(model, sites, clean=clean, corrupted=corrupted, metric=metric)
    done.set()
    sampler.join()
    peak[0] = max(peak[0], _rss_kb())
    print(json.dumps({"kb": peak[0] - baseline}))


def peak_kb(args: argparse.Namespace, what: str) -> int:
    argv = [sys.executable, __file__, "--mem-child", what, "--batch", str(args.batch)]
    argv += ["--seq", str(args.seq), "--threads", str(args.threads)]
    argv += ["--zoo", args.zoo] if args.zoo else ["--no-zoo"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return int(json.loads(out.strip().splitlines()[-1])["kb"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=32)
    parser.add_argument("--zoo", default="tree-path", help="zoo model to use when shipped")
    parser.add_argument("--no-zoo", dest="zoo", action="store_const", const=None)
    parser.add_argument("--only", choices=sorted(COMPARISONS), default=None)
    parser.add_argument("--no-mem", action="store_true", help="skip the memory children")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--mem-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["MESAINTERP_NO_PROGRESS"] = "1"
    if args.mem_child:
        child(args)
        return
    model, clean, corrupted, metric, name = setup(args)
    seq = clean.shape[1]
    with torch.no_grad():
        _, clean_cache = model.run_with_cache(clean)

    def tl_metric(logits: torch.Tensor) -> torch.Tensor:
        return metric(logits, None).mean()

    base_kb = None if args.no_mem else peak_kb(args, "run_with_cache")
    for comparison, tl_fn in COMPARISONS.items():
        if args.only and comparison != args.only:
            continue
        sites = sites_for(comparison, model, seq)
        tl_times: list[float] = []
        our_times: list[float] = []
        tl_out = ours = None
        for _ in range(args.repeats):
            start = time.perf_counter()
            tl_out = tl_fn(model, corrupted, clean_cache, tl_metric)
            tl_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            ours = run_sweep(model, sites, clean=clean, corrupted=corrupted, metric=metric)
            our_times.append(time.perf_counter() - start)
        assert tl_out is not None and ours is not None
        got = ours_as_tl(ours.patched.mean(dim=1), comparison, model, seq)
        ours_s, tl_s = statistics.median(our_times), statistics.median(tl_times)
        mem_ratio = None
        if base_kb:
            mem_ratio = round(peak_kb(args, comparison) / base_kb, 3)
        print(
            json.dumps(
                {
                    "comparison": f"{comparison} vs transformer_lens.patching",
                    "ours_s": round(ours_s, 4),
                    "tl_s": round(tl_s, 4),
                    "ratio": round(ours_s / tl_s, 4),
                    "max_abs_diff": float((got - tl_out.detach()).abs().max()),
                    "peak_mem_ratio": mem_ratio,
                    "method": ours.method,
                    "model": name,
                    "batch": int(clean.shape[0]),
                    "seq": int(seq),
                    "n_sites": len(sites),
                    "repeats": args.repeats,
                    "threads": args.threads,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
