"""Sites: typed, validated places in a model where an activation can be read or replaced.

A `Site` names one slice of one hook point: a residual stream vector, one attention
head's output (or query, key, value, pattern row), a whole attention or MLP output.
Sites are values: frozen, hashable, comparable, and checked at construction; whether a
site fits a particular model is checked separately (`validate_sites`) before any
forward pass, so a bad sweep fails before it costs anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from mesainterp.errors import ConfigError, allowed

__all__ = [
    "HEAD_KINDS",
    "LAYER_KINDS",
    "SITE_KINDS",
    "Site",
    "SiteKind",
]

SiteKind = Literal[
    "resid_pre",
    "resid_mid",
    "resid_post",
    "attn_out",
    "mlp_out",
    "z",
    "q",
    "k",
    "v",
    "pattern",
]
SITE_KINDS: tuple[str, ...] = get_args(SiteKind)
# Kinds that live on one attention head (need `head`).
HEAD_KINDS: tuple[str, ...] = ("z", "q", "k", "v", "pattern")
# Kinds that span the whole residual width (no `head`).
LAYER_KINDS: tuple[str, ...] = ("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out")

# Legacy TransformerLens hook names; the bridge resolves them to its canonical HookPoints.
_HOOK_NAMES: dict[str, str] = {
    "resid_pre": "blocks.{layer}.hook_resid_pre",
    "resid_mid": "blocks.{layer}.hook_resid_mid",
    "resid_post": "blocks.{layer}.hook_resid_post",
    "attn_out": "blocks.{layer}.hook_attn_out",
    "mlp_out": "blocks.{layer}.hook_mlp_out",
    "z": "blocks.{layer}.attn.hook_z",
    "q": "blocks.{layer}.attn.hook_q",
    "k": "blocks.{layer}.attn.hook_k",
    "v": "blocks.{layer}.attn.hook_v",
    "pattern": "blocks.{layer}.attn.hook_pattern",
}


@dataclass(frozen=True, kw_only=True, order=True)
class Site:
    """One patchable activation slice.

    kind:  what is patched (see `SITE_KINDS`).
    layer: block index, 0-based.
    head:  attention head, required for the head kinds (z, q, k, v, pattern), absent otherwise.
    pos:   sequence position, or None for every position. For `pattern` it is the query
           (destination) position: the whole attention row of that query is replaced.
    """

    kind: SiteKind
    layer: int
    head: int | None = None
    pos: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in SITE_KINDS:
            raise ConfigError("kind", f"got {self.kind!r}", allowed(SITE_KINDS))
        _require_index("layer", self.layer)
        if self.kind in HEAD_KINDS:
            if self.head is None:
                raise ConfigError("head", f"required for a {self.kind!r} site", "an int >= 0")
            _require_index("head", self.head)
        elif self.head is not None:
            raise ConfigError(
                "head",
                f"must be None for a {self.kind!r} site",
                f"None; head kinds are {allowed(HEAD_KINDS)}",
            )
        if self.pos is not None:
            _require_index("pos", self.pos)

    @property
    def hook_name(self) -> str:
        """The TransformerLens hook name this site lives on."""
        return _HOOK_NAMES[self.kind].format(layer=self.layer)

    @property
    def first_pos(self) -> int:
        """Earliest position whose computation the patch can change (causal attention)."""
        return 0 if self.pos is None else self.pos

    def label(self) -> str:
        """Short human-readable name, e.g. 'L1H0 z @3' or 'L2 resid_pre'."""
        where = f"L{self.layer}" + (f"H{self.head}" if self.head is not None else "")
        at = "" if self.pos is None else f" @{self.pos}"
        return f"{where} {self.kind}{at}"

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "layer": self.layer, "head": self.head, "pos": self.pos}


def _require_index(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(name, f"expected an int >= 0, got {value!r}")
