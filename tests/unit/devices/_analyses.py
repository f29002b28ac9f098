"""Every analysis, run once on a model of a given device and dtype (shared by the tests
and `scripts/gpu_check.py`).

Inputs are made on the CPU, as a user's task would make them: each analysis must move
them to the model's device itself. After every analysis the model must have the same
device, dtype and weights (a fingerprint over the exact bytes) and no hooks left.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from mesainterp.attribution import edge_attribution
from mesainterp.attribution.nodes import node_attribution
from mesainterp.discovery import Circuit, faithfulness, top_edges
from mesainterp.model import ModelConfig, build_model, fingerprint, model_shape
from mesainterp.patching import count_hooks, patch_pair
from mesainterp.probes.dataset import collect_activations, probe_sites, task_batches
from mesainterp.sites import head_sites, resid_sites
from mesainterp.tasks import TreePathTask

__all__ = ["ANALYSES", "Setup", "model_state", "run_analysis", "setup"]


@dataclass(frozen=True, kw_only=True)
class Setup:
    model: Any
    task: TreePathTask
    pair: Any
    metric: Any


def setup(device: str, dtype: torch.dtype, *, n: int = 6) -> Setup:
    task = TreePathTask(n_nodes=5, max_depth=2)
    config = ModelConfig(
        n_layers=2, d_model=16, n_heads=2, d_head=8, d_mlp=32, d_vocab=task.d_vocab,
        n_ctx=task.seq_len, seed=3,
    )  # fmt: skip
    model = build_model(config, device=device, dtype=dtype)
    pair = task.counterfactual_pairs(n, seed=0)
    return Setup(model=model, task=task, pair=pair, metric=task.default_metric(pair))


def model_state(model: Any) -> dict[str, Any]:
    """What an analysis must leave unchanged."""
    params = list(model.parameters())
    return {
        "devices": sorted({str(p.device) for p in params}),
        "dtypes": sorted({str(p.dtype) for p in params}),
        "buffers": sorted({str(b.device) for b in model.buffers()}),
        "fingerprint": fingerprint(model),
        "training": model.training,
        "requires_grad": [p.requires_grad for p in params],
        "hooks": count_hooks(model),
    }


def _finite(values: torch.Tensor | float, what: str) -> None:
    t = (
        torch.as_tensor(values, dtype=torch.float64)
        if not isinstance(values, torch.Tensor)
        else values
    )
    if not bool(torch.isfinite(t.detach().double().cpu()).all()):
        raise AssertionError(f"{what}: non-finite values")


def _patch(s: Setup, method: str) -> str:
    shape = model_shape(s.model)
    sites = resid_sites(shape, seq_len=s.pair.clean.seq_len) + head_sites(shape)
    result = patch_pair(s.model, s.pair, sites, metric=s.metric, method=method, n_boot=20)
    _finite(result.patched, "patched metric")
    return f"{len(sites)} sites, metric dtype {result.patched.dtype}"


def _nodes(s: Setup) -> str:
    shape = model_shape(s.model)
    sites = resid_sites(shape, seq_len=s.pair.clean.seq_len) + head_sites(shape)
    scores = node_attribution(
        s.model, sites, clean=s.pair.clean.inputs, corrupted=s.pair.corrupted.inputs,
        metric=s.metric, batch=s.pair.clean,
    )  # fmt: skip
    _finite(scores.scores, "node scores")
    return f"{len(sites)} node scores, dtype {scores.scores.dtype}"


def _edges(s: Setup, method: str) -> Any:
    return edge_attribution(
        s.model, clean=s.pair.clean.inputs, corrupted=s.pair.corrupted.inputs,
        metric=s.metric, batch=s.pair.clean, method=method, ig_steps=2,  # type: ignore[arg-type]
    )  # fmt: skip


def _edge_scores(s: Setup, method: str) -> str:
    scores = _edges(s, method)
    _finite(scores.scores, "edge scores")
    return f"{scores.scores.numel()} edge scores, dtype {scores.scores.dtype}"


def _faithfulness(s: Setup) -> str:
    edges = top_edges(_edges(s, "eap"), top_n=5)
    circuit = Circuit.from_edges(edges, method="eap")
    rows = faithfulness(
        s.model, circuit, clean=s.pair.clean.inputs, corrupted=s.pair.corrupted.inputs,
        metric=s.metric, batch=s.pair.clean, ablations=("resample", "mean", "zero"),
        curve_k=(1, 3), n_boot=20,
    )  # fmt: skip
    for row in rows:
        if not math.isfinite(row.value) and row.measure != "completeness":
            raise AssertionError(f"faithfulness {row.measure}/{row.ablation} is {row.value}")
    return f"{len(rows)} rows"


def _probes(s: Setup) -> str:
    sites = probe_sites(model_shape(s.model), [0, s.task.seq_len - 1])
    batches = task_batches(s.task, 8, batch_size=4, seed=0)
    data = collect_activations(s.model, batches, sites)
    _finite(data.features, "probe features")
    return f"features {tuple(data.features.shape)} {data.features.dtype} on {data.features.device}"


ANALYSES: dict[str, Callable[[Setup], str]] = {
    "patch-fast": lambda s: _patch(s, "fast"),
    "patch-hooks": lambda s: _patch(s, "hooks"),
    "node-attribution": _nodes,
    "eap": lambda s: _edge_scores(s, "eap"),
    "eap-ig": lambda s: _edge_scores(s, "eap-ig"),
    "faithfulness": _faithfulness,
    "probe-collection": _probes,
}


def run_analysis(name: str, s: Setup) -> str:
    """Run one analysis; raise AssertionError if it changed the model."""
    before = model_state(s.model)
    note = ANALYSES[name](s)
    after = model_state(s.model)
    changed = [k for k in before if before[k] != after[k]]
    if changed:
        raise AssertionError(f"{name} changed the model's {', '.join(changed)}")
    return note
