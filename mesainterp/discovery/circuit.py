"""The Circuit value: a set of edges with scores, how it was found, and where from.

Saved as versioned JSON (`to_json` / `from_json`); a document from a newer schema,
of another format, or missing a field is refused with the field named.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mesainterp.errors import ConfigError, MesaInterpError
from mesainterp.sites.site import Site

__all__ = [
    "CIRCUIT_FORMAT",
    "CIRCUIT_SCHEMA_VERSION",
    "Circuit",
    "CircuitFormatError",
    "node_layer",
]

CIRCUIT_FORMAT = "mesainterp.circuit"
CIRCUIT_SCHEMA_VERSION = 1
_REQUIRED = (
    "format",
    "schema_version",
    "nodes",
    "edges",
    "method",
    "params",
    "ablation",
    "provenance",
)


class CircuitFormatError(MesaInterpError):
    """A circuit document is malformed or of a schema this version cannot read."""


_PORTS = ("q", "k", "v", "in")


def _edge_entry(upstream: str, downstream: str, score: float) -> dict[str, Any]:
    """An edge as JSON: target is the node, input which of its inputs ("L1H0.v" -> L1H0, v)."""
    target, _, port = downstream.rpartition(".")
    if not target:
        target, port = downstream, ""
    return {"source": upstream, "target": target, "input": port or None, "score": score}


def _node_name(node: str | Site) -> str:
    return node.node_name if isinstance(node, Site) else node


def _node_site(name: str, where: str) -> Site:
    try:
        return Site.from_node_name(name)
    except ConfigError as err:
        raise CircuitFormatError(f"{where}: {err}") from None


def node_layer(name: str) -> int:
    """Layer of a node for drawing: -1 for embeddings, l for "L{l}H{h}" / "M{l}", and
    a large number for the logits."""
    if name in ("embed", "pos_embed"):
        return -1
    if name == "logits":
        return 10_000
    head = name[1:].split("H", 1)[0] if name.startswith(("L", "M")) else ""
    return int(head) if head.isdigit() else 0


@dataclass(frozen=True, kw_only=True)
class Circuit:
    """A circuit found in one model.

    nodes:      node names ("embed", "L0H1", "M2", "logits", ...), sorted by the graph order;
                `node_sites` gives them as `Site`s.
    edges:      {(upstream, downstream input): score}; downstream inputs are "L1H0.v",
                "M2.in", "logits". In JSON an edge is {"source", "target" (a node),
                "input" ("q", "k", "v", "in" or null), "score"}. `edge_sites` gives
                them as (sender Site, receiver Site) pairs, and `from_edges` takes either.
    method:     "eap", "eap-ig", "acdc" or "node-attribution".
    params:     the method's parameters (threshold, top_n, ig_steps, ...).
    ablation:   how edges outside the circuit are ablated ("resample", "mean", "zero").
    provenance: `mesainterp.provenance(...)` of the run that found it.
    faithfulness: the headline faithfulness (resample), if measured.

    >>> circuit = mesainterp.Circuit.from_edges(
    ...     {("embed", "L0H0.q"): 0.5, ("L0H0", "M0.in"): 0.25, ("M0", "logits"): 0.75},
    ...     method="eap", params={"top_n": 3})
    >>> circuit
    Circuit(method='eap', ablation='resample', 4 nodes, 3 edges)
    >>> circuit.nodes  # the graph's order unless `node_order` is given
    ('logits', 'L0H0', 'M0', 'embed')
    >>> [(up.node_name, down.kind) for up, down in circuit.edge_sites][:2]
    [('embed', 'q'), ('L0H0', 'mlp_in')]
    >>> mesainterp.Circuit.from_json(circuit.to_json()).edges == circuit.edges
    True
    """

    nodes: tuple[str, ...]
    edges: dict[tuple[str, str], float]
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    ablation: str = "resample"
    provenance: dict[str, Any] = field(default_factory=dict)
    faithfulness: float | None = None

    def __post_init__(self) -> None:
        for (u, d), score in self.edges.items():
            if not isinstance(u, str) or not isinstance(d, str):
                raise CircuitFormatError(f"edges: ({u!r}, {d!r}) must be a pair of node names")
            if not isinstance(score, float):
                object.__setattr__(self, "edges", {k: float(v) for k, v in self.edges.items()})
                break

    @classmethod
    def from_edges(
        cls,
        edges: Mapping[tuple[str, str], float] | Mapping[tuple[Site, Site], float],
        *,
        method: str,
        params: dict[str, Any] | None = None,
        ablation: str = "resample",
        provenance: dict[str, Any] | None = None,
        node_order: tuple[str, ...] = (),
    ) -> Circuit:
        """Derive the node set from the edges (a downstream input "L1H0.v" is node "L1H0").

        An edge's ends are node names or the `Site`s they name
        (`Site(kind="z", layer=0, head=1)` is "L0H1", `Site(kind="v", layer=1, head=0)`
        is "L1H0.v"); the circuit keeps the names.
        """
        named = {(_node_name(u), _node_name(d)): score for (u, d), score in edges.items()}
        names: set[str] = set()
        for u, d in named:
            names.add(u)
            names.add(d.rsplit(".", 1)[0] if d != "logits" else d)
        rank = {n: i for i, n in enumerate((*node_order, "logits"))}
        nodes = tuple(sorted(names, key=lambda n: (rank.get(n, len(rank)), n)))
        return cls(
            nodes=nodes,
            edges=named,
            method=method,
            params=dict(params or {}),
            ablation=ablation,
            provenance=dict(provenance or {}),
        )

    @property
    def edge_set(self) -> set[tuple[str, str]]:
        return set(self.edges)

    @property
    def node_sites(self) -> tuple[Site, ...]:
        """The nodes as Sites, in node order: a head is its output ("z"), an MLP its
        output ("mlp_out"), plus "embed", "pos_embed" and "logits"."""
        return tuple(_node_site(n, "nodes") for n in self.nodes)

    @property
    def edge_sites(self) -> dict[tuple[Site, Site], float]:
        """The edges as {(sender output Site, receiver input Site): score}; the receiver
        is a head's "q" / "k" / "v", an MLP's "mlp_in", or "logits"."""
        return {
            (_node_site(u, "edges"), _node_site(d, "edges")): score
            for (u, d), score in self.edges.items()
        }

    def __len__(self) -> int:
        return len(self.edges)

    # -- JSON ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": CIRCUIT_FORMAT,
            "schema_version": CIRCUIT_SCHEMA_VERSION,
            "nodes": [{"name": n, "layer": node_layer(n)} for n in self.nodes],
            "edges": [_edge_entry(u, d, s) for (u, d), s in self.edges.items()],
            "method": self.method,
            "params": self.params,
            "ablation": self.ablation,
            "provenance": self.provenance,
            "faithfulness": self.faithfulness,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def save(self, path: str | os.PathLike[str]) -> Path:
        from mesainterp.atomic import atomic_write_text

        return atomic_write_text(path, self.to_json())

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "circuit") -> Circuit:
        if not isinstance(data, dict):
            raise CircuitFormatError(f"{where}: expected a JSON object")
        for name in _REQUIRED:
            if name not in data:
                raise CircuitFormatError(f"{where}: missing field {name!r}")
        if data["format"] != CIRCUIT_FORMAT:
            raise CircuitFormatError(
                f"{where}: field 'format' is {data['format']!r}, expected {CIRCUIT_FORMAT!r}"
            )
        version = data["schema_version"]
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise CircuitFormatError(
                f"{where}: field 'schema_version' must be an int >= 1, got {version!r}"
            )
        if version > CIRCUIT_SCHEMA_VERSION:
            raise CircuitFormatError(
                f"{where}: field 'schema_version' is {version}, newer than this mesainterp "
                f"reads (up to {CIRCUIT_SCHEMA_VERSION}); upgrade mesainterp"
            )
        if not isinstance(data["edges"], list):
            raise CircuitFormatError(f"{where}: field 'edges' must be a list")
        edges: dict[tuple[str, str], float] = {}
        for i, edge in enumerate(data["edges"]):
            for key in ("source", "target", "score"):
                if not isinstance(edge, dict) or key not in edge:
                    raise CircuitFormatError(f"{where}: missing field 'edges[{i}].{key}'")
            if not isinstance(edge["score"], int | float) or isinstance(edge["score"], bool):
                raise CircuitFormatError(f"{where}: field 'edges[{i}].score' must be a number")
            target, port = str(edge["target"]), edge.get("input")
            if port is not None and port not in _PORTS:
                raise CircuitFormatError(
                    f"{where}: field 'edges[{i}].input' is {port!r} (allowed: {', '.join(_PORTS)}, null)"
                )
            downstream = target if port is None else f"{target}.{port}"
            edges[(str(edge["source"]), downstream)] = float(edge["score"])
        for name, kind in (("params", dict), ("provenance", dict), ("nodes", list)):
            if not isinstance(data[name], kind):
                raise CircuitFormatError(f"{where}: field {name!r} must be a {kind.__name__}")
        nodes: list[str] = []
        for i, node in enumerate(data["nodes"]):
            if isinstance(node, dict) and isinstance(node.get("name"), str):
                nodes.append(node["name"])
            elif isinstance(node, str):
                nodes.append(node)
            else:
                raise CircuitFormatError(f"{where}: field 'nodes[{i}].name' must be a string")
        faith = data.get("faithfulness")
        if faith is not None and (not isinstance(faith, int | float) or isinstance(faith, bool)):
            raise CircuitFormatError(f"{where}: field 'faithfulness' must be a number or null")
        return cls(
            faithfulness=None if faith is None else float(faith),
            nodes=tuple(nodes),
            edges=edges,
            method=str(data["method"]),
            params=data["params"],
            ablation=str(data["ablation"]),
            provenance=data["provenance"],
        )

    @classmethod
    def from_json(cls, text: str, *, where: str = "circuit") -> Circuit:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise CircuitFormatError(f"{where}: not valid JSON ({err})") from None
        return cls.from_dict(data, where=where)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Circuit:
        from mesainterp.safe_read import read_text

        p = Path(path)
        return cls.from_json(read_text(p, error=CircuitFormatError), where=str(p))

    # -- display -------------------------------------------------------------------------

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(u)}</td><td>{html.escape(d)}</td><td>{s:+.4g}</td></tr>"
            for (u, d), s in sorted(self.edges.items(), key=lambda kv: -abs(kv[1]))
        )
        params = html.escape(json.dumps(self.params, sort_keys=True))
        model = html.escape(str(self.provenance.get("model_name")))
        return (
            f"<div><b>Circuit</b> ({html.escape(self.method)}, ablation "
            f"{html.escape(self.ablation)}, model {model}): {len(self.nodes)} nodes, "
            f"{len(self.edges)} edges<br><small>params {params}</small>"
            "<table><tr><th>source</th><th>target</th><th>score</th></tr>"
            f"{rows}</table></div>"
        )

    def __repr__(self) -> str:
        return (
            f"Circuit(method={self.method!r}, ablation={self.ablation!r}, "
            f"{len(self.nodes)} nodes, {len(self.edges)} edges)"
        )
