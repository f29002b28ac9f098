"""The named site sweeps: what `mesainterp patch --sites NAME` and its run workers patch.

    resid          the residual stream entering each layer (resid_pre), at every position
    heads          every attention head's output, all positions at once
    heads-by-pos   every attention head's output, at every position
    mlp            every MLP's output, at every position
    path           every head and MLP as a sender into the logits (direct effects);
                   also the nodes node-attribution scores

One definition, so a notebook, the command line and every worker of a resumable
run build the same sites in the same order.
"""

from __future__ import annotations

from typing import Literal, get_args

from mesainterp.errors import ConfigError, allowed
from mesainterp.model.build import ModelShape
from mesainterp.sites.site import Site
from mesainterp.sites.sweeps import head_sites, mlp_sites, resid_sites

__all__ = ["SWEEPS", "SweepName", "named_sites"]

SweepName = Literal["resid", "heads", "heads-by-pos", "mlp", "path"]
SWEEPS: tuple[str, ...] = get_args(SweepName)


def named_sites(sweep: SweepName, shape: ModelShape, *, seq_len: int | None = None) -> list[Site]:
    """The sites of the named sweep on a model of `shape` and prompts of `seq_len`
    (needed by the by-position sweeps: resid, heads-by-pos, mlp).

    >>> model = mesainterp.build_model(mesainterp.ModelConfig(
    ...     n_layers=1, d_model=16, n_heads=2, d_head=8, d_mlp=32, d_vocab=11, n_ctx=8, seed=0))
    >>> shape = mesainterp.model_shape(model)
    >>> [s.node_name for s in mesainterp.named_sites("heads", shape)]
    ['L0H0', 'L0H1']
    >>> [s.label() for s in mesainterp.named_sites("resid", shape, seq_len=3)]
    ['L0 resid_pre @0', 'L0 resid_pre @1', 'L0 resid_pre @2']
    >>> [s.kind for s in mesainterp.named_sites("path", shape)]  # path-patching senders
    ['z', 'z', 'mlp_out']
    """
    if sweep == "resid":
        return resid_sites(shape, seq_len=seq_len)
    if sweep == "heads":
        return head_sites(shape)
    if sweep == "heads-by-pos":
        return head_sites(shape, seq_len=seq_len, by_pos=True)
    if sweep == "mlp":
        return mlp_sites(shape, seq_len=seq_len)
    if sweep == "path":
        senders = head_sites(shape)
        return senders if shape.attn_only else senders + mlp_sites(shape, by_pos=False)
    raise ConfigError("sweep", f"unknown sweep {sweep!r}", allowed(SWEEPS))
