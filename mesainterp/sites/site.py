"""Sites: typed, validated places in a model where an activation can be read or replaced.

A `Site` names one slice of one place in the model: a residual stream vector, one
attention head's output (or query, key, value, pattern row), a whole attention or MLP
output, an MLP's input, the embeddings, or the logits. Patching, path patching, probes
and circuits all speak of places as Sites. Sites are values: frozen, hashable,
comparable, and checked at construction; whether a site fits a particular model is
checked separately (`validate_sites`) before any forward pass, so a bad sweep fails
before it costs anything.

The edge graph of attribution and circuits names its nodes with short strings
("L1H0", "L1H0.q", "M2", "M2.in", "embed", "logits"; under grouped-query attention a
key/value head's inputs are "L1KV0.k" / "L1KV0.v"); `Site.node_name` and
`Site.from_node_name` translate both ways, so circuits save as the same JSON.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from mesainterp.errors import ConfigError, allowed

__all__ = [
    "GRAPH_KINDS",
    "HEAD_KINDS",
    "LAYER_KINDS",
    "MODEL_KINDS",
    "PATCH_KINDS",
    "PROBE_KINDS",
    "RECEIVER_KINDS",
    "SENDER_KINDS",
    "SITE_KINDS",
    "ProbeSiteKind",
    "ReceiverKind",
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
    "mlp_in",
    "embed",
    "pos_embed",
    "logits",
]
SITE_KINDS: tuple[str, ...] = get_args(SiteKind)
# Kinds that live on one attention head (need `head`).
HEAD_KINDS: tuple[str, ...] = ("z", "q", "k", "v", "pattern")
# Kinds that span the whole residual width of one block (no `head`).
LAYER_KINDS: tuple[str, ...] = ("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out")
# Kinds of the whole model, before the first block or after the last (no `layer`).
MODEL_KINDS: tuple[str, ...] = ("embed", "pos_embed", "logits")
# What the activation-patching engine can replace.
PATCH_KINDS: tuple[str, ...] = LAYER_KINDS + HEAD_KINDS
# What a probe can read: one d_model vector per example at one position.
ProbeSiteKind = Literal["resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out"]
PROBE_KINDS: tuple[str, ...] = get_args(ProbeSiteKind)
# Where a path starts (a head's or an MLP's output) and where it ends (a head's query,
# key or value, an MLP's input, or the logits). Replacing a head's q (or k, v) is how
# its query (key, value) input is intervened on, so the q site is that input.
SENDER_KINDS: tuple[str, ...] = ("z", "mlp_out")
ReceiverKind = Literal["q", "k", "v", "mlp_in", "logits"]
RECEIVER_KINDS: tuple[str, ...] = get_args(ReceiverKind)
# The nodes of the edge graph: upstream outputs and downstream inputs.
GRAPH_KINDS: tuple[str, ...] = ("embed", "pos_embed", *SENDER_KINDS, *RECEIVER_KINDS)

# Legacy TransformerLens hook names; the bridge resolves them to its canonical HookPoints.
_HOOK_NAMES: dict[SiteKind, str] = {
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
    "mlp_in": "blocks.{layer}.hook_mlp_in",
    "embed": "hook_embed",
    "pos_embed": "hook_pos_embed",
    # What the unembedding reads: the final residual stream, before the final norm.
    "logits": "ln_final.hook_in",
}
_HOOK_PATTERNS: dict[SiteKind, re.Pattern[str]] = {
    kind: re.compile("^" + re.escape(name).replace(r"\{layer\}", r"(\d+)") + "$")
    for kind, name in _HOOK_NAMES.items()
}
# Kind names as typed values, for parsing strings back into kinds.
_KIND: dict[str, SiteKind] = {kind: kind for kind in get_args(SiteKind)}
_NODE = re.compile(r"^(?:L(\d+)H(\d+)(?:\.([qkv]))?|L(\d+)KV(\d+)\.([kv])|M(\d+)(\.in)?)$")
_NODE_FORMS = "embed, pos_embed, logits, L{l}H{h}, L{l}H{h}.q/.k/.v, L{l}KV{g}.k/.v, M{l}, M{l}.in"


@dataclass(frozen=True, kw_only=True, order=True)
class Site:
    """One place in the model, optionally one position of it.

    kind:  what the place is (see `SITE_KINDS`).
    layer: block index, 0-based; required for every kind but the model-wide ones
           (embed, pos_embed, logits), which have none.
    head:  attention head, required for the head kinds (z, q, k, v, pattern), absent otherwise.
    pos:   sequence position, or None for every position. For `pattern` it is the query
           (destination) position: the whole attention row of that query is replaced.
    role:  an optional display name for the position or part it plays ("S2", "END",
           "name mover"). Shown by `label()` and kept by `to_dict`, but not part of the
           site's identity: Sites that differ only in role are equal and hash alike.

    >>> Site(kind="resid_post", layer=1, pos=3, role="S2") == Site(kind="resid_post", layer=1, pos=3)
    True
    >>> Site(kind="q", layer=1, head=0).node_name
    'L1H0.q'
    >>> Site.from_node_name("M2.in")
    Site(kind='mlp_in', layer=2, head=None, pos=None, role=None)
    """

    kind: SiteKind
    layer: int | None = None
    head: int | None = None
    pos: int | None = None
    role: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in SITE_KINDS:
            raise ConfigError("kind", f"got {self.kind!r}", allowed(SITE_KINDS))
        if self.kind in MODEL_KINDS:
            if self.layer is not None:
                raise ConfigError(
                    "layer", f"a {self.kind!r} site belongs to no block, got {self.layer!r}", "None"
                )
        else:
            if self.layer is None:
                raise ConfigError("layer", f"required for a {self.kind!r} site", "an int >= 0")
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
        if self.role is not None and (not isinstance(self.role, str) or not self.role.strip()):
            raise ConfigError("role", f"expected a non-empty string or None, got {self.role!r}")

    @property
    def block(self) -> int:
        """The block index, for the kinds that live in a block (refuses the model-wide ones)."""
        if self.layer is None:
            raise ConfigError("layer", f"a {self.kind!r} site belongs to no block")
        return self.layer

    @property
    def hook_name(self) -> str:
        """The TransformerLens hook name this site lives on."""
        return _HOOK_NAMES[self.kind].format(layer=self.layer)

    @property
    def first_pos(self) -> int:
        """Earliest position whose computation the patch can change (causal attention)."""
        return 0 if self.pos is None else self.pos

    def label(self) -> str:
        """Short human-readable name, e.g. 'L1H0 z @3', 'L2 resid_pre @4 (S2)', 'logits'."""
        where = "" if self.layer is None else f"L{self.layer}"
        where += "" if self.head is None else f"H{self.head}"
        at = "" if self.pos is None else f" @{self.pos}"
        role = "" if self.role is None else f" ({self.role})"
        return f"{where} {self.kind}{at}{role}".strip()

    def to_dict(self) -> dict[str, object]:
        """Plain JSON fields; `role` only when set (so older tables keep their shape)."""
        out: dict[str, object] = {
            "kind": self.kind,
            "layer": self.layer,
            "head": self.head,
            "pos": self.pos,
        }
        if self.role is not None:
            out["role"] = self.role
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, object], *, where: str = "site") -> Site:
        """The inverse of `to_dict`; unknown or missing fields are refused by name."""
        if not isinstance(data, Mapping):
            raise ConfigError(where, f"expected a mapping, got {type(data).__name__}")
        known = ("kind", "layer", "head", "pos", "role")
        extra = sorted(set(data) - set(known))
        if extra:
            raise ConfigError(f"{where}.{extra[0]}", "unknown field", allowed(known))
        if "kind" not in data:
            raise ConfigError(f"{where}.kind", "missing", allowed(SITE_KINDS))
        fields: dict[str, Any] = dict(data)
        return cls(**fields)

    @classmethod
    def from_hook_name(cls, name: str, *, pos: int | None = None) -> Site:
        """The site of a hook name without heads ('blocks.1.hook_resid_post' -> L1 resid_post)."""
        for kind, pattern in _HOOK_PATTERNS.items():
            m = pattern.match(name)
            if m and kind not in HEAD_KINDS:
                layer = int(m.group(1)) if m.groups() else None
                return cls(kind=kind, layer=layer, pos=pos)
        forms = allowed([name for k, name in _HOOK_NAMES.items() if k not in HEAD_KINDS])
        raise ConfigError("hook", f"no site lives on {name!r}", forms)

    # -- the edge graph's node names -------------------------------------------------

    @property
    def node_name(self) -> str:
        """This site's node in the edge graph: 'L1H0' (a head's output z), 'L1H0.q'
        (its query input; also .k, .v), 'M2' (an MLP's output), 'M2.in' (its input),
        'embed', 'pos_embed', 'logits'. Graph nodes span every position. In a model
        with grouped-query attention the k/v nodes are named by `node_name_for`."""
        return self.node_name_for(grouped_query=False)

    def node_name_for(self, *, grouped_query: bool) -> str:
        """This site's node name in a model with (True) or without grouped-query
        attention. With it, a k/v site's `head` counts key/value heads, as
        `sites.heads_of` validates it, and its node is 'L{layer}KV{head}.k' (.v),
        the input that query heads head*r .. head*r+r-1 share.

        >>> Site(kind="k", layer=1, head=0).node_name_for(grouped_query=True)
        'L1KV0.k'
        >>> Site.from_node_name("L1KV0.k")
        Site(kind='k', layer=1, head=0, pos=None, role=None)
        """
        if self.kind not in GRAPH_KINDS:
            raise ConfigError("kind", f"{self.kind!r} is not a node of the edge graph",
                              allowed(GRAPH_KINDS))  # fmt: skip
        if self.pos is not None:
            raise ConfigError("pos", f"graph nodes span every position, got {self.pos}", "None")
        if self.kind in MODEL_KINDS:
            return self.kind
        if self.kind in ("mlp_out", "mlp_in"):
            return f"M{self.layer}" + (".in" if self.kind == "mlp_in" else "")
        if grouped_query and self.kind in ("k", "v"):
            return f"L{self.layer}KV{self.head}.{self.kind}"
        head = f"L{self.layer}H{self.head}"
        return head if self.kind == "z" else f"{head}.{self.kind}"

    @classmethod
    def from_node_name(cls, name: str) -> Site:
        """The site of an edge-graph node name (the inverse of `node_name` and
        `node_name_for`): 'L1KV0.v' is the v site of key/value head 0 of layer 1."""
        if name in MODEL_KINDS:
            return cls(kind=_KIND[name])
        m = _NODE.match(name) if isinstance(name, str) else None
        if m is None:
            raise ConfigError("node", f"got {name!r}", _NODE_FORMS)
        head_layer, head, port, kv_layer, kv_head, kv_port, mlp_layer, mlp_in = m.groups()
        if mlp_layer is not None:
            return cls(kind="mlp_in" if mlp_in else "mlp_out", layer=int(mlp_layer))
        if kv_layer is not None:
            return cls(kind=_KIND[kv_port], layer=int(kv_layer), head=int(kv_head))
        return cls(kind=_KIND[port or "z"], layer=int(head_layer), head=int(head))


def _require_index(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(name, f"expected an int >= 0, got {value!r}")
