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
    eap            EAP over every edge             vs the naive edge loop: one forward per edge
                                                   with that edge cut (exact). Timed on
                                                   `--edge-sample` edges, scaled to all of them;
                                                   max_abs_diff = |EAP - exact effect| there (the
                                                   linearisation's error, not a bug)
    probes         logistic probes at every resid_pre site x position at once (fit_logistic)
                                                   vs a loop of scikit-learn LogisticRegression fits;
                                                   max_abs_diff = largest held-out accuracy gap
    topn_vs_acdc   top-n search from EAP-IG verified by exact faithfulness (target 0.9)
                                                   vs ACDC (threshold 0.01); ratio = top-n / ACDC
                                                   time, one run each (max_abs_diff: none)

eap and topn_vs_acdc need the edge forward (not gemma2, whose soft-capping it refuses);
probes run once per architecture (pairs "-").

Pairs: "few" differ at two positions (IOI-style), "all" differ everywhere.

Sizes: the default is GPT-2-small width (d_model 768, 12 heads of 64, d_mlp 3072,
vocab 50257) at 2 layers, batch 8 x seq 16: TransformerLens's heads-by-position sweep
is one forward per (layer, head, position), so 12 layers would take hours on a 2-core
machine. `--width W` sets d_model W (heads of 64, d_mlp 4W, vocab 50257) for every
family, `--layers L` the depth (`--width 768` is GPT-2-small width). `--quick` runs
d_model 128, 4 heads, 2 layers, vocab 512, batch 8 x seq 12, 2 repeats: minutes.

    python benchmarks/bench_models.py --quick
    python benchmarks/bench_models.py --width 768 --layers 2 --arch llama --analysis eap
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

from mesainterp.attribution import EdgeForward, edge_attribution
from mesainterp.attribution.edge_forward import edge_support_reason
from mesainterp.discovery import Circuit, ablated_outputs, acdc, cut_run_metric, faithfulness
from mesainterp.discovery.topn import topn_circuit
from mesainterp.model import ModelConfig, build_model, model_shape, wrap_hf_model
from mesainterp.patching import logit_diff, run_sweep
from mesainterp.patching.stacked import PatchingFallbackWarning
from mesainterp.probes.linear import fit_logistic
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
# Probe data: examples per fit (80 % train), drawn as random token sequences.
PROBE_N = 200


def sizes_from(args: argparse.Namespace) -> Sizes:
    """QUICK, or FULL with `--width` / `--layers` applied."""
    if args.quick:
        return QUICK
    width = args.width or FULL.d_model  # 0 (as the memory children get it): the default
    return Sizes(
        d_model=width, n_heads=max(1, width // 64), n_layers=args.layers or FULL.n_layers,
        d_vocab=FULL.d_vocab, batch=FULL.batch, seq=FULL.seq,
    )  # fmt: skip


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


# The sweeps' back end: "auto" (fast path where it applies), or "hooks" to measure the
# hook-loop fallback itself (`--method hooks`).
SWEEP_METHOD: dict[str, Any] = {"method": "auto", "sites_per_forward": None}


def ours(model: Any, analysis: str, clean: Tensor, corrupted: Tensor, metric: Any) -> Any:
    sites = ANALYSES[analysis].sites(model, int(clean.shape[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PatchingFallbackWarning)  # reported as "method"
        return run_sweep(
            model, sites, clean=clean, corrupted=corrupted, metric=metric,
            method=SWEEP_METHOD["method"],
            sites_per_forward=SWEEP_METHOD["sites_per_forward"],
        )  # fmt: skip


# -- EAP, probes, top-n vs ACDC: rows of their own ----------------------------------------


def _interleaved(a: Callable[[], Any], b: Callable[[], Any], repeats: int):
    ta: list[float] = []
    tb: list[float] = []
    out_a = out_b = None
    for _ in range(repeats):
        start = time.perf_counter()
        out_a = a()
        ta.append(time.perf_counter() - start)
        start = time.perf_counter()
        out_b = b()
        tb.append(time.perf_counter() - start)
    return statistics.median(ta), statistics.median(tb), out_a, out_b


def _eap(model: Any, sizes: Sizes, clean: Tensor, corrupted: Tensor, metric: Any) -> Any:
    return edge_attribution(model, clean=clean, corrupted=corrupted, metric=metric)


def _edge_loop(model: Any, clean: Tensor, corrupted: Tensor, metric: Any, edges: list) -> Tensor:
    """The naive exact edge loop: one full forward per edge, that edge cut (resample)."""
    ef = EdgeForward(model)
    g = ef.graph
    ablated = ablated_outputs(ef, "resample", corrupted=corrupted)
    tok, pos = ef.embed_parts(clean)
    with torch.no_grad():
        full = metric(ef.run(tok, pos).logits, None).float().mean()
        out = []
        for u, d in edges:
            cut = torch.zeros(g.n_upstream, g.n_downstream, dtype=torch.bool)
            cut[g.up_index(u), g.down_index(d)] = True
            value = cut_run_metric(ef, metric, None, tok=tok, pos=pos, cut=cut, ablated=ablated)
            out.append(value.mean() - full)
    return torch.stack(out)


def _edge_sample(model: Any, k: int) -> list:
    edges = EdgeForward(model).graph.edges()
    step = max(1, len(edges) // k)
    return edges[::step][:k]


def measure_eap(args, sizes, arch, model, clean, corrupted, metric) -> dict[str, Any]:
    all_edges = EdgeForward(model).graph.edges()
    sample = _edge_sample(model, args.edge_sample)
    ours_s, loop_s, scores, exact = _interleaved(
        lambda: _eap(model, sizes, clean, corrupted, metric),
        lambda: _edge_loop(model, clean, corrupted, metric, sample),
        args.repeats,
    )
    g = scores.graph
    # EAP scores the corrupted-minus-clean change of the metric; the loop measures it.
    ours = torch.stack([scores.scores[g.up_index(u), g.down_index(d)] for u, d in sample])
    ref_s = loop_s * len(all_edges) / len(sample)
    return {"ours_s": ours_s, "reference_s": ref_s, "max_abs_diff": float((ours.float() - exact).abs().max()),
            "max_abs_exact": float(exact.abs().max()),
            "reference": f"naive edge loop (one forward per edge; timed on {len(sample)} of {len(all_edges)} edges, scaled)",
            "n_edges": len(all_edges)}  # fmt: skip


def _probe_data(model: Any, sizes: Sizes) -> tuple[Tensor, Tensor]:
    """resid_pre of every layer at every position ([sites, n, d]) and a binary label
    (the parity of the first token, which every later position can read)."""
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, sizes.d_vocab, (PROBE_N, sizes.seq), generator=g)
    names = [f"blocks.{layer}.hook_resid_pre" for layer in range(sizes.n_layers)]
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
    x = torch.cat([cache[n].transpose(0, 1) for n in names]).float()  # [layers*pos, n, d]
    del cache
    return x, tokens[:, 0] % 2


def _probes(model: Any, sizes: Sizes, clean: Tensor, corrupted: Tensor, metric: Any) -> Any:
    x, y = _probe_data(model, sizes)
    n_tr = int(0.8 * PROBE_N)
    return fit_logistic(x[:, :n_tr], y[:n_tr], n_classes=2)


def measure_probes(args, sizes, arch, model, clean, corrupted, metric) -> dict[str, Any]:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x, y = _probe_data(model, sizes)
    n_tr = int(0.8 * PROBE_N)
    mu, sd = x[:, :n_tr].mean(1, keepdim=True), x[:, :n_tr].std(1, keepdim=True) + 1e-6
    xs = (x - mu) / sd  # both sides fit the same standardised features
    x_tr, x_te, y_tr, y_te = xs[:, :n_tr], xs[:, n_tr:], y[:n_tr], y[n_tr:]
    np_tr, np_te = x_tr.double().numpy(), x_te.double().numpy()

    def ours() -> Tensor:
        pred = fit_logistic(x_tr, y_tr, n_classes=2).predict(x_te)[..., 0].long()
        return (pred == y_te[None]).double().mean(1)

    def theirs() -> Tensor:
        return torch.tensor(np.array([
            LogisticRegression(max_iter=1000).fit(np_tr[s], y_tr.numpy()).score(np_te[s], y_te.numpy())
            for s in range(x.shape[0])
        ]))  # fmt: skip

    ours_s, ref_s, a, b = _interleaved(ours, theirs, args.repeats)
    return {"ours_s": ours_s, "reference_s": ref_s, "max_abs_diff": float((a - b).abs().max()),
            "reference": "sklearn LogisticRegression loop (lbfgs)", "n_sites": int(x.shape[0]),
            "n_train": n_tr}  # fmt: skip


def _topn(model: Any, sizes: Sizes, clean: Tensor, corrupted: Tensor, metric: Any) -> Any:
    return topn_circuit(model, clean=clean, corrupted=corrupted, metric=metric, target=0.9,
                        scorer="eap-ig", n_boot=200)  # fmt: skip


def measure_topn(args, sizes, arch, model, clean, corrupted, metric) -> dict[str, Any]:
    start = time.perf_counter()
    found = _topn(model, sizes, clean, corrupted, metric)
    topn_s = time.perf_counter() - start
    start = time.perf_counter()
    pruned = acdc(model, clean=clean, corrupted=corrupted, metric=metric, threshold=0.01,
                  progress=False)  # fmt: skip
    acdc_s = time.perf_counter() - start
    circuit = Circuit.from_edges(pruned.kept, method="acdc")
    acdc_faith = faithfulness(model, circuit, clean=clean, corrupted=corrupted, metric=metric,
                              ablations=("resample",), n_boot=50, progress=False)[0].value  # fmt: skip
    return {"ours_s": topn_s, "reference_s": acdc_s, "max_abs_diff": None,
            "reference": "ACDC threshold 0.01 (resample)", "topn_n": found.n,
            "topn_edges": len(found.circuit.edges), "topn_faithfulness": found.faithfulness,
            "topn_grid_runs": found.n_runs, "acdc_runs": pruned.n_runs,
            "acdc_edges": len(pruned.kept), "acdc_faithfulness": acdc_faith,
            "n_edges": len(EdgeForward(model).graph.edges())}  # fmt: skip


@dataclass(frozen=True)
class Other:
    ours: Callable[..., Any]  # what the memory child runs
    measure: Callable[..., dict[str, Any]]
    needs_edges: bool
    per_pairs: bool


OTHERS: dict[str, Other] = {
    "eap": Other(ours=_eap, measure=measure_eap, needs_edges=True, per_pairs=True),
    "probes": Other(ours=_probes, measure=measure_probes, needs_edges=False, per_pairs=False),
    "topn_vs_acdc": Other(ours=_topn, measure=measure_topn, needs_edges=True, per_pairs=True),
}


def measure_other(args, sizes, arch, analysis, model) -> list[dict[str, Any]]:
    spec = OTHERS[analysis]
    common = {"arch": arch, "analysis": analysis, "d_model": sizes.d_model,
              "n_layers": sizes.n_layers, "n_heads": sizes.n_heads, "d_vocab": sizes.d_vocab,
              "batch": sizes.batch, "seq": sizes.seq, "repeats": args.repeats,
              "threads": args.threads}  # fmt: skip
    reason = edge_support_reason(model) if spec.needs_edges else None
    rows = []
    for pairs in args.pairs if spec.per_pairs else ["-"]:
        if reason is not None:
            rows.append({**common, "pairs": pairs, "ratio": None, "max_abs_diff": None,
                         "peak_mem_ratio": None, "refused": reason})  # fmt: skip
            continue
        clean, corrupted, metric = make_pairs(sizes, "few" if pairs == "-" else pairs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PatchingFallbackWarning)
            got = spec.measure(args, sizes, arch, model, clean, corrupted, metric)
        mem_ratio = base_kb = ours_kb = None
        if not args.no_mem:
            mem_pairs = "few" if pairs == "-" else pairs
            base_kb = peak_kb(args, arch, mem_pairs, "run_with_cache")
            ours_kb = peak_kb(args, arch, mem_pairs, analysis)
            mem_ratio = round(ours_kb / max(base_kb, 1), 3)
        ours_s, ref_s = got.pop("ours_s"), got.pop("reference_s")
        rows.append({**common, "pairs": pairs, "ratio": round(ours_s / ref_s, 4),
                     "max_abs_diff": got.pop("max_abs_diff"), "peak_mem_ratio": mem_ratio,
                     "peak_kb": ours_kb, "run_with_cache_peak_kb": base_kb,
                     "ours_s": round(ours_s, 4), "reference_s": round(ref_s, 4), **got})  # fmt: skip
    return rows


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
        elif args.mem_child in ANALYSES:
            ours(model, args.mem_child, clean, corrupted, metric)
        else:
            OTHERS[args.mem_child].ours(model, sizes, clean, corrupted, metric)
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
    argv += ["--width", str(args.width or 0), "--layers", str(args.layers or 0)]
    argv += ["--edge-sample", str(args.edge_sample), "--method", args.method]
    if args.sites_per_forward:
        argv += ["--sites-per-forward", str(args.sites_per_forward)]
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
        "sites_per_forward": SWEEP_METHOD["sites_per_forward"],
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
    parser.add_argument(
        "--analysis", action="append", choices=sorted([*ANALYSES, *OTHERS]), default=None
    )
    parser.add_argument(
        "--width", type=int, default=None, help="d_model (heads of 64); 768: GPT-2-small"
    )
    parser.add_argument("--layers", type=int, default=None, help="layers (default 2)")
    parser.add_argument(
        "--method", choices=["auto", "hooks"], default="auto",
        help="sweeps' back end (hooks: measure the hook-loop fallback)",
    )  # fmt: skip
    parser.add_argument(
        "--sites-per-forward", type=int, default=None,
        help="hook back end: sites stacked into one forward (fewer: less memory, slower)",
    )  # fmt: skip
    parser.add_argument(
        "--edge-sample", type=int, default=48, help="edges the naive edge loop is timed on"
    )
    parser.add_argument("--pairs", action="append", choices=["few", "all"], default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--no-mem", action="store_true", help="skip the memory children")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes = sizes_from(args)
    SWEEP_METHOD["method"] = args.method
    SWEEP_METHOD["sites_per_forward"] = args.sites_per_forward
    args.repeats = args.repeats or (2 if args.quick else 3)
    args.arch = args.arch or list(ARCHS)
    args.analysis = args.analysis or [*ANALYSES, *OTHERS]
    args.pairs = args.pairs or ["few", "all"]
    if args.mem_child:
        child(args, sizes)
        return
    for arch in args.arch:
        model = ARCHS[arch](sizes)
        for analysis in args.analysis:
            if analysis in OTHERS:
                for row in measure_other(args, sizes, arch, analysis, model):
                    print(json.dumps(row), flush=True)
                continue
            for pairs in args.pairs:
                row = measure(args, sizes, arch, analysis, pairs, model)
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
