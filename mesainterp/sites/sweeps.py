"""Standard site sets and their validation against a model.

A site set is any sequence of `Site` values; these constructors build the usual sweeps
in a fixed order (layer, then head, then position) so result tables line up.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal, get_args

from mesainterp.errors import ConfigError, MesaInterpError, allowed
from mesainterp.model.shape import ModelShape
from mesainterp.sites.site import HEAD_KINDS, PATCH_KINDS, Site

__all__ = [
    "KV_KINDS",
    "HeadKind",
    "ResidKind",
    "SiteError",
    "attn_out_sites",
    "head_sites",
    "heads_of",
    "mlp_sites",
    "resid_sites",
    "unique_hook_names",
    "validate_sites",
]

ResidKind = Literal["resid_pre", "resid_mid", "resid_post"]
HeadKind = Literal["z", "q", "k", "v", "pattern"]
_RESID_KINDS: tuple[str, ...] = get_args(ResidKind)
# Head kinds indexed by key/value head: under grouped-query attention there are only
# n_kv_heads of them (hook_k / hook_v hold [batch, pos, n_kv_heads, d_head]).
KV_KINDS: tuple[str, ...] = ("k", "v")


def heads_of(shape: ModelShape, kind: str) -> int:
    """How many heads a head kind has: n_kv_heads for k/v, n_heads otherwise."""
    if kind in KV_KINDS:
        return shape.n_kv_heads or shape.n_heads
    return shape.n_heads


class SiteError(MesaInterpError):
    """A site does not exist in the model it is used on."""


def _positions(seq_len: int | None, by_pos: bool) -> list[int | None]:
    if not by_pos:
        return [None]
    if seq_len is None or seq_len <= 0:
        raise ConfigError("seq_len", "a positive int is needed for a by-position sweep")
    return list(range(seq_len))


def resid_sites(
    shape: ModelShape,
    *,
    seq_len: int | None = None,
    kind: ResidKind = "resid_pre",
    by_pos: bool = True,
) -> list[Site]:
    """Residual stream by layer (× position when `by_pos`)."""
    if kind not in _RESID_KINDS:
        raise ConfigError("kind", f"got {kind!r}", allowed(_RESID_KINDS))
    return [
        Site(kind=kind, layer=layer, pos=pos)
        for layer in range(shape.n_layers)
        for pos in _positions(seq_len, by_pos)
    ]


def head_sites(
    shape: ModelShape, *, seq_len: int | None = None, kind: HeadKind = "z", by_pos: bool = False
) -> list[Site]:
    """Every attention head (× position when `by_pos`), for one head kind.

    For k and v these are the key/value heads (fewer under grouped-query attention).
    """
    if kind not in HEAD_KINDS:
        raise ConfigError("kind", f"got {kind!r}", allowed(HEAD_KINDS))
    return [
        Site(kind=kind, layer=layer, head=head, pos=pos)
        for layer in range(shape.n_layers)
        for head in range(heads_of(shape, kind))
        for pos in _positions(seq_len, by_pos)
    ]


def mlp_sites(shape: ModelShape, *, seq_len: int | None = None, by_pos: bool = True) -> list[Site]:
    """MLP output by layer (× position when `by_pos`)."""
    if shape.attn_only:
        raise SiteError("mlp sites: this model is attention-only (it has no MLPs)")
    return [
        Site(kind="mlp_out", layer=layer, pos=pos)
        for layer in range(shape.n_layers)
        for pos in _positions(seq_len, by_pos)
    ]


def attn_out_sites(
    shape: ModelShape, *, seq_len: int | None = None, by_pos: bool = True
) -> list[Site]:
    """Whole attention-layer output by layer (× position when `by_pos`)."""
    return [
        Site(kind="attn_out", layer=layer, pos=pos)
        for layer in range(shape.n_layers)
        for pos in _positions(seq_len, by_pos)
    ]


def validate_sites(sites: Iterable[Site], shape: ModelShape, *, seq_len: int) -> list[Site]:
    """Check every site fits the model and the input length; returns the sites as a list.

    Refuses with the valid choices, before any forward pass.
    """
    out = list(sites)
    if not out:
        raise SiteError("sites: the site set is empty")
    for i, site in enumerate(out):
        if not isinstance(site, Site):
            raise SiteError(f"sites[{i}]: expected a Site, got {type(site).__name__}")
        if site.kind not in PATCH_KINDS:  # a place the engine cannot replace
            raise SiteError(f"sites[{i}].kind: got {site.kind!r} (allowed: {allowed(PATCH_KINDS)})")
        if site.block >= shape.n_layers:
            raise SiteError(
                f"sites[{i}] ({site.label()}): layer {site.layer} out of range "
                f"(allowed: 0..{shape.n_layers - 1})"
            )
        if site.head is not None and site.head >= heads_of(shape, site.kind):
            raise SiteError(
                f"sites[{i}] ({site.label()}): head {site.head} out of range "
                f"(allowed: 0..{heads_of(shape, site.kind) - 1}{_kv_note(shape, site.kind)})"
            )
        if site.pos is not None and site.pos >= seq_len:
            raise SiteError(
                f"sites[{i}] ({site.label()}): pos {site.pos} out of range "
                f"(allowed: 0..{seq_len - 1} for inputs of length {seq_len})"
            )
        if shape.attn_only and site.kind in ("mlp_out", "resid_mid"):
            raise SiteError(
                f"sites[{i}] ({site.label()}): the model is attention-only, it has no {site.kind}"
            )
        if shape.parallel_attn_mlp and site.kind == "resid_mid":
            raise SiteError(
                f"sites[{i}] ({site.label()}): attention and MLP run in parallel in this model, "
                "so there is no resid_mid (allowed: resid_pre, resid_post, attn_out, mlp_out)"
            )
    return out


def _kv_note(shape: ModelShape, kind: str) -> str:
    if kind in KV_KINDS and heads_of(shape, kind) < shape.n_heads:
        return f"; {kind} has {heads_of(shape, kind)} key/value heads (grouped-query attention)"
    return ""


def unique_hook_names(sites: Sequence[Site]) -> list[str]:
    """Hook names the sites live on, in first-seen order (what a sweep must cache)."""
    return list(dict.fromkeys(site.hook_name for site in sites))
