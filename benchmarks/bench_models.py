"""Analyses on every architecture family, against their reference implementations.

One JSON line per (architecture, analysis, pairs):
    {"arch", "analysis", "pairs", "ratio", "max_abs_diff", "peak_mem_ratio", ...}

    ratio           our time / the reference's time (medians of interleaved runs, one process)
    max_abs_diff    largest difference between our per-site means and the reference's
    peak_mem_ratio  peak resident-memory growth of our analysis / of one full
                    `run_with_cache` on the same inputs, each measured in a fresh child
                    process (RSS sampled every millisecond)

Architectures: HuggingFace configs with random weights, wrapped (gpt2, neox, llama with
grouped-query attention, gemma), and TransformerLens-native ones (native-gpt2,
native-llama). Analyses (a small table: `ANALYSES`, one function each):

    resid_sweep    resid_pre by layer x position   vs transformer_lens.patching.get_act_patch_resid_pre
    heads_by_pos   head outputs (z) by layer x head x position
                                                   vs transformer_lens.patching.get_act_patch_attn_head_out_by_pos

Pairs: "few" differ at two positions (IOI-style), "all" differ everywhere.

Sizes: the default is GPT-2-small width (d_model 768, 12 heads of 64, d_mlp 3072,
vocab 50257) at 2 layers, batch 8 x seq 16: TransformerLens's heads-by-position sweep
is one forward per (layer, head, position), so 12 layers would take hours on a 2-core
machine. `--quick` runs d_model 128, 4 heads, 2 layers, vocab 512, batch 8 x seq 12,
2 repeats: minutes.

    python benchmarks/bench_models.py --quick
    python benchmarks/bench_models.py --arch llama --analysis heads_by_pos
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import transformers
from _peak_rss import PeakRss  # benchmarks/ is on sys.path when run as a script
from torch import Tensor
from transformer_lens import patching as tl_patching

from mesainterp.model import ModelConfig, build_model, model_shape, wrap_hf_model
from mesainterp.patching import logit_diff, run_sweep
from mesainterp.patching.stacked import PatchingFallbackWarning
from mesainterp.sites import head_sites, resid_sites


@dataclass(frozen=True)
class Sizes:
    d_model: int
    n_heads: int
    n_layers: int
    d_vocab: int
    batch: int
    seq: int

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads


FULL = Sizes(d_model=768, n_heads=12, n_layers=2, d_vocab=50257, batch=8, seq=16)
QUICK = Sizes(d_model=128, n_heads=4, n_layers=2, d_vocab=512, batch=8, seq=12)


# -- architectures ------------------------------------------------------------------------


def _hf(cls_name: str, config: Any) -> Any:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module = getattr(transformers, cls_name)(config)
    return wrap_hf_model(module.eval())


def _native(s: Sizes, **extra: Any) -> Any:
    return build_model(
        ModelConfig(
            n_layers=s.n_layers, d_model=s.d_model, n_heads=s.n_heads, d_head=s.d_head,
            d_mlp=4 * s.d_model, d_vocab=s.d_vocab, n_ctx=max(64, s.seq), seed=0, **extra,
        )
    )  # fmt: skip


def _kv_heads(s: Sizes) -> int:
    return max(1, s.n_heads // 4)


ARCHS: dict[str, Callable[[Sizes], Any]] = {
    "gpt2": lambda s: _hf(
        "GPT2LMHeadModel",
        transformers.GPT2Config(
            n_layer=s.n_layers, n_embd=s.d_model, n_head=s.n_heads, n_positions=64,
            vocab_size=s.d_vocab,
        ),
    ),
    "neox": lambda s: _hf(
        "GPTNeoXForCausalLM",
        transformers.GPTNeoXConfig(
            num_hidden_layers=s.n_layers, hidden_size=s.d_model, num_attention_heads=s.n_heads,
            intermediate_size=4 * s.d_model, max_position_embeddings=64, vocab_size=s.d_vocab,
            use_parallel_residual=True, rotary_pct=0.25,
        ),
    ),
    "llama": lambda s: _hf(
        "LlamaForCausalLM",
        transformers.LlamaConfig(
            num_hidden_layers=s.n_layers, hidden_size=s.d_model, num_attention_heads=s.n_heads,
            num_key_value_heads=_kv_heads(s), intermediate_size=4 * s.d_model,
            max_position_embeddings=64, vocab_size=s.d_vocab,
        ),
    ),
    "gemma": lambda s: _hf(
        "GemmaForCausalLM",
        transformers.GemmaConfig(
            num_hidden_layers=s.n_layers, hidden_size=s.d_model, num_attention_heads=s.n_heads,
            num_key_value_heads=_kv_heads(s), head_dim=s.d_head, intermediate_size=4 * s.d_model,
            max_position_embeddings=64, vocab_size=s.d_vocab,
        ),
    ),
    "native-gpt2": lambda s: _native(s, act_fn="gelu_new"),
    "native-llama": lambda s: _native(
        s, act_fn="silu", normalization_type="RMS", positional_embedding_type="rotary",
        n_kv_heads=_kv_heads(s), gated_mlp=True,
    ),
}  # fmt: skip


# -- inputs -------------------------------------------------------------------------------


def make_pairs(s: Sizes, pairs: str) -> tuple[Tensor, Tensor, Any]:
    """Clean/corrupted tokens and a logit-difference metric at the last position."""
    g = torch.Generator().manual_seed(0)
    clean = torch.randint(0, s.d_vocab, (s.batch, s.seq), generator=g)
    corrupted = torch.randint(0, s.d_vocab, (s.batch, s.seq), generator=g)
    if pairs == "few":
        keep = torch.ones(s.seq, dtype=torch.bool)
        keep[[s.seq // 3, 2 * s.seq // 3]] = False
        corrupted[:, keep] = clean[:, keep]
    answer = torch.full((s.batch,), s.seq - 1)
    right = torch.randint(0, s.d_vocab, (s.batch,), generator=g)
    wrong = torch.randint(0, s.d_vocab, (s.batch,), generator=g)
    return clean, corrupted, logit_diff(answer, right, wrong)


# -- analyses: (sites for ours, the reference call, our means in the reference's layout) ----


@dataclass(frozen=True)
class Analysis:
    reference_name: str
    sites: Callable[[Any, int], list]
    reference: Callable[..., Tensor]
    as_reference: Callable[[Tensor, Any, int], Tensor]


ANALYSES: dict[str, Analysis] = {
    "resid_sweep": Analysis(
        reference_name="transformer_lens.patching.get_act_patch_resid_pre",
        sites=lambda model, seq: resid_sites(model_shape(model), seq_len=seq),
        reference=tl_patching.get_act_patch_resid_pre,
        as_reference=lambda v, model, seq: v.view(model_shape(model).n_layers, seq),
    ),
    "heads_by_pos": Analysis(
        reference_name="transformer_lens.patching.get_act_patch_attn_head_out_by_pos",
        sites=lambda model, seq: head_sites(model_shape(model), seq_len=seq, by_pos=True),
        reference=tl_patching.get_act_patch_attn_head_out_by_pos,
        as_reference=lambda v, model, seq: v.view(
            model_shape(model).n_layers, model_shape(model).n_heads, seq
        ).transpose(1, 2),
    ),
}


def ours(model: Any, analysis: str, clean: Tensor, corrupted: Tensor, metric: Any) -> Any:
    sites = ANALYSES[analysis].sites(model, int(clean.shape[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PatchingFallbackWarning)  # reported as "method"
        return run_sweep(model, sites, clean=clean, corrupted=corrupted, metric=metric)


# -- memory -------------------------------------------------------------------------------


def child(args: argparse.Namespace, sizes: Sizes) -> None:
    """Peak resident-memory growth of one operation, measured in this fresh process."""
    model = ARCHS[args.arch[0]](sizes)
    clean, corrupted, metric = make_pairs(sizes, args.pairs[0])
    with torch.no_grad():
        model(clean)  # warm up allocations common to every operation
    with PeakRss() as peak:
        if args.mem_child == "run_with_cache":
            with torch.no_grad():
                _, cache = model.run_with_cache(clean)
            del cache
        else:
            ours(model, args.mem_child, clean, corrupted, metric)
    print(json.dumps({"kb": peak.growth_kb}))


_PEAKS: dict[tuple[str, str, str], int] = {}


def peak_kb(args: argparse.Namespace, arch: str, pairs: str, what: str) -> int:
    """Peak growth of `what` in a child process (remembered: the baseline serves every row)."""
    key = (arch, pairs, what)
    if key not in _PEAKS:
        _PEAKS[key] = _peak_kb_child(args, arch, pairs, what)
    return _PEAKS[key]


def _peak_kb_child(args: argparse.Namespace, arch: str, pairs: str, what: str) -> int:
    argv = [sys.executable, __file__, "--mem-child", what, "--arch", arch, "--pairs", pairs]
    argv += ["--threads", str(args.threads)] + (["--quick"] if args.quick else [])
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return int(json.loads(out.strip().splitlines()[-1])["kb"])


# -- main ---------------------------------------------------------------------------------


def measure(args: argparse.Namespace, sizes: Sizes, arch: str, analysis: str, pairs: str,
            model: Any) -> dict[str, Any]:  # fmt: skip
    clean, corrupted, metric = make_pairs(sizes, pairs)
    spec = ANALYSES[analysis]
    with torch.no_grad():
        _, clean_cache = model.run_with_cache(clean)

    def tl_metric(logits: Tensor) -> Tensor:
        return metric(logits, None).mean()

    ref_times: list[float] = []
    our_times: list[float] = []
    ref = values = None
    for _ in range(args.repeats):
        start = time.perf_counter()
        ref = spec.reference(model, corrupted, clean_cache, tl_metric)
        ref_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        values = ours(model, analysis, clean, corrupted, metric)
        our_times.append(time.perf_counter() - start)
    assert ref is not None and values is not None
    got = spec.as_reference(values.patched.mean(dim=1), model, sizes.seq)
    ours_s, ref_s = statistics.median(our_times), statistics.median(ref_times)
    mem_ratio = base_kb = ours_kb = None
    if not args.no_mem:
        base_kb = peak_kb(args, arch, pairs, "run_with_cache")
        ours_kb = peak_kb(args, arch, pairs, analysis)
        mem_ratio = round(ours_kb / max(base_kb, 1), 3)
    return {
        "arch": arch,
        "analysis": analysis,
        "pairs": pairs,
        "ratio": round(ours_s / ref_s, 4),
        "max_abs_diff": float((got - ref.detach().to(got.dtype)).abs().max()),
        "peak_mem_ratio": mem_ratio,
        "peak_kb": ours_kb,
        "run_with_cache_peak_kb": base_kb,
        "reference": spec.reference_name,
        "ours_s": round(ours_s, 4),
        "reference_s": round(ref_s, 4),
        "method": values.method,
        "fallback_reason": values.fallback_reason,
        "n_sites": len(values.sites),
        "d_model": sizes.d_model,
        "n_layers": sizes.n_layers,
        "n_heads": sizes.n_heads,
        "d_vocab": sizes.d_vocab,
        "batch": sizes.batch,
        "seq": sizes.seq,
        "repeats": args.repeats,
        "threads": args.threads,
    }


def main() -> None:
    os.environ["MESAINTERP_NO_PROGRESS"] = "1"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mem-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="small width, 2 repeats")
    parser.add_argument("--arch", action="append", choices=sorted(ARCHS), default=None)
    parser.add_argument("--analysis", action="append", choices=sorted(ANALYSES), default=None)
    parser.add_argument("--pairs", action="append", choices=["few", "all"], default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--no-mem", action="store_true", help="skip the memory children")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes = QUICK if args.quick else FULL
    args.repeats = args.repeats or (2 if args.quick else 3)
    args.arch = args.arch or list(ARCHS)
    args.analysis = args.analysis or list(ANALYSES)
    args.pairs = args.pairs or ["few", "all"]
    if args.mem_child:
        child(args, sizes)
        return
    for arch in args.arch:
        model = ARCHS[arch](sizes)
        for analysis in args.analysis:
            for pairs in args.pairs:
                row = measure(args, sizes, arch, analysis, pairs, model)
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
