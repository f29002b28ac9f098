"""Ablated upstream values for edge-level runs, and one run with a set of edges cut.

resample  the corrupted run's upstream outputs (per example, per position)
mean      mean of each upstream output over a reference run, over examples and positions
pos_mean  the same, per position
zero      zeros

A cut edge u -> d makes d read the ablated value of u instead of u's output.
"""

from __future__ import annotations

from typing import Any

import torch
from einops import reduce
from jaxtyping import Float, Int, Shaped
from torch import Tensor

from mesainterp.attribution.edge_forward import EdgeForward, EdgeRun
from mesainterp.errors import ConfigError, allowed
from mesainterp.patching.ablation import ABLATIONS
from mesainterp.shapes import ModelInput, ReferenceInput, shape_checked

__all__ = ["ablated_outputs", "cut_run_metric"]


@torch.no_grad()
@shape_checked
def ablated_outputs(
    ef: EdgeForward,
    ablation: str,
    *,
    corrupted: ModelInput,
    reference: ReferenceInput | None = None,
) -> list[Float[Tensor, "#batch #pos d_model"]]:
    """Per upstream node, the value a cut edge reads (broadcastable to [b, p, d_model])."""
    if ablation not in ABLATIONS:
        raise ConfigError("ablation", f"got {ablation!r}", allowed(ABLATIONS))
    if ablation == "zero":
        f = ef.fast
        z = torch.zeros(1, 1, f.d_model, device=f.device, dtype=f.dtype)
        return [z] * ef.graph.n_upstream
    source = corrupted if ablation == "resample" or reference is None else reference
    tok, pos = ef.embed_parts(source)
    outs = ef.run(tok, pos).outs
    if ablation == "resample":
        return outs
    pattern = "batch pos d -> 1 1 d" if ablation == "mean" else "batch pos d -> 1 pos d"
    return [reduce(o, pattern, "mean") for o in outs]


@torch.no_grad()
@shape_checked
def cut_run_metric(
    ef: EdgeForward,
    metric: Any,
    batch: Any,
    *,
    tok: Float[Tensor, "batch pos d_model"],
    pos: Float[Tensor, "batch pos d_model"] | None,
    cut: Shaped[Tensor, "n_up n_down *groups"],
    ablated: list[Float[Tensor, "#batch #pos d_model"]],
    start_layer: int = 0,
    base: EdgeRun | None = None,
    cut_groups: Int[Tensor, "batch pos"] | None = None,
) -> Float[Tensor, " batch"]:
    """Per-example metric of the run with `cut` edges reading `ablated` values
    (`cut_groups`: per-position cuts, see `EdgeForward.run`)."""
    run = ef.run(
        tok, pos, cut=cut, ablated=ablated, start_layer=start_layer, base=base,
        cut_groups=cut_groups,
    )  # fmt: skip
    return metric(run.logits, batch).detach().float()
