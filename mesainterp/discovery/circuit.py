"""The Circuit value: a set of edges with scores, how it was found, and where from.

Saved as versioned JSON (`to_json` / `from_json`); a document from a newer schema,
of another format, or missing a field is refused with the field named.

Schema versions: 1, position-agnostic edges; 2 adds circuits found per position or
per role (`attribution.positions`): a top-level "positions" ({"granularity": "each"
or "roles", "labels": [...]}, null otherwise) and a "position" on every node and
edge of such a circuit. Position-agnostic circuits are still written as version 1,
so version 1 documents read back and write out unchanged.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mesainterp.attribution.positions import at, split_at
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
CIRCUIT_SCHEMA_VERSION = 2
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
    """An edge as JSON: target is the node, input which of its inputs ("L1H0.v" -> L1H0, v),
    and for a positional edge ("L0H1@3", "L1H0.v@3") its position or role ("3")."""
    source, label = split_at(upstream)
    down, _ = split_at(downstream)
    target, _, port = down.rpartition(".")
    if not target:
        target, port = down, ""
    entry = {"source": source, "target": target, "input": port or None, "score": score}
    return entry if label is None else entry | {"position": label}


def _node_entry(name: str) -> dict[str, Any]:
    node, label = split_at(name)
    entry: dict[str, Any] = {"name": node, "layer": node_layer(node)}
    return entry if label is None else entry | {"position": label}


def _check_positions(spec: Any, where: str) -> dict[str, Any] | None:
    """A circuit's granularity: None, or {"granularity": "each" | "roles", "labels": [...]}."""
    if spec is None:
        return None
    if (
        not isinstance(spec, Mapping)
        or spec.get("granularity") not in ("each", "roles")
        or not isinstance(spec.get("labels"), list | tuple)
        or not all(isinstance(x, str) and x and "@" not in x for x in spec["labels"])
    ):
        raise CircuitFormatError(
            f"{where}: field 'positions' is {spec!r} (allowed: null, or "
            "{'granularity': 'each' or 'roles', 'labels': [names without '@']})"
        )
    return {"granularity": spec["granularity"], "labels": list(spec["labels"])}


def _base_node(name: str) -> str:
    """The node a downstream input belongs to, at its position: "L1H0.v@3" -> "L1H0@3"."""
    node, label = split_at(name)
    if node != "logits":
        node = node.rsplit(".", 1)[0]
    return node if label is None else at(node, label)


def _node_name(node: str | Site, grouped_query: bool = False) -> str:
    if not isinstance(node, Site):
        return node
    return node.node_name_for(grouped_query=True) if grouped_query else node.node_name


def _node_site(name: str, where: str) -> Site:
    node, label = split_at(name)
    try:
        site = Site.from_node_name(node)
    except ConfigError as err:
        raise CircuitFormatError(f"{where}: {err}") from None
    if label is None:
        return site
    return replace(site, pos=int(label)) if label.isdigit() else replace(site, role=label)


def node_layer(name: str) -> int:
    """Layer of a node for drawing: -1 for embeddings, l for "L{l}H{h}" / "M{l}", and
    a large number for the logits."""
    name = split_at(name)[0]
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
    positions:  None for a position-agnostic circuit; for one found per position or
                per role, {"granularity": "each" or "roles", "labels": [...]}, and
                every node and edge end is named at one label: "L1H0@3",
                "L1H0.v@goal" (see `attribution.positions` for the edge set).

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
    positions: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        spec = _check_positions(self.positions, "circuit")
        labels = set(spec["labels"]) if spec is not None else set()
        for (u, d), score in self.edges.items():
            if not isinstance(u, str) or not isinstance(d, str):
                raise CircuitFormatError(f"edges: ({u!r}, {d!r}) must be a pair of node names")
            lu, ld = split_at(u)[1], split_at(d)[1]
            if spec is None and (lu is not None or ld is not None):
                raise CircuitFormatError(
                    f"edges: ({u!r}, {d!r}) names a position; pass positions= the granularity"
                )
            if spec is not None and (lu != ld or lu not in labels):
                raise CircuitFormatError(
                    f"edges: ({u!r}, {d!r}) must name one position of "
                    f"{', '.join(spec['labels'])} at both ends ('L0H1@3', 'L1H0.v@3')"
                )
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
        positions: dict[str, Any] | None = None,
        grouped_query: bool = False,
    ) -> Circuit:
        """Derive the node set from the edges (a downstream input "L1H0.v" is node "L1H0").

        An edge's ends are node names or the `Site`s they name
        (`Site(kind="z", layer=0, head=1)` is "L0H1", `Site(kind="v", layer=1, head=0)`
        is "L1H0.v"); the circuit keeps the names. A circuit found per position or role
        names its ends "L0H1@3", "L1H0.v@3" and takes `positions` (its granularity,
        `PositionalGraph.spec`); nodes then sort by graph order, then label order.
        grouped_query: the model shares key/value heads, so a k/v receiver Site's `head`
        counts key/value heads and names node "L1KV0.k" (`Site.node_name_for`).

        >>> from mesainterp.sites import Site
        >>> up, down = Site(kind="z", layer=0, head=1), Site(kind="k", layer=1, head=0)
        >>> sorted(Circuit.from_edges({(up, down): 1.0}, method="eap", grouped_query=True).edges)
        [('L0H1', 'L1KV0.k')]
        """
        named = {
            (_node_name(u, grouped_query), _node_name(d, grouped_query)): score
            for (u, d), score in edges.items()
        }
        names: set[str] = set()
        for u, d in named:
            names.add(u)
            names.add(_base_node(d))
        rank = {n: i for i, n in enumerate((*node_order, "logits"))}
        label_rank = {x: i for i, x in enumerate((positions or {}).get("labels", ()))}

        def key(name: str) -> tuple[int, str, int, str]:
            node, label = split_at(name)
            return (rank.get(node, len(rank)), node, label_rank.get(label or "", -1), name)

        nodes = tuple(sorted(names, key=key))
        return cls(
            nodes=nodes,
            edges=named,
            method=method,
            params=dict(params or {}),
            ablation=ablation,
            provenance=dict(provenance or {}),
            positions=None if positions is None else dict(positions),
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
        is a head's "q" / "k" / "v", an MLP's "mlp_in", or "logits". Per position, the
        Sites carry `pos`; a circuit by role has none (Sites compare without their role,
        so two roles' edges would be one key): use `edges`."""
        if self.positions is not None and self.positions["granularity"] == "roles":
            raise CircuitFormatError(
                "edge_sites: a circuit by role has no Site per edge (Sites compare "
                "without their role); use .edges"
            )
        return {
            (_node_site(u, "edges"), _node_site(d, "edges")): score
            for (u, d), score in self.edges.items()
        }

    def __len__(self) -> int:
        return len(self.edges)

    # -- JSON ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        # A position-agnostic circuit is written as version 1, so committed circuits and
        # readers of version 1 see the same document; only per-position ones need 2.
        data = {
            "format": CIRCUIT_FORMAT,
            "schema_version": 1 if self.positions is None else CIRCUIT_SCHEMA_VERSION,
            "nodes": [_node_entry(n) for n in self.nodes],
            "edges": [_edge_entry(u, d, s) for (u, d), s in self.edges.items()],
            "method": self.method,
            "params": self.params,
            "ablation": self.ablation,
            "provenance": self.provenance,
            "faithfulness": self.faithfulness,
        }
        if self.positions is not None:
            data["positions"] = self.positions
        return data

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
        positions = _check_positions(data.get("positions") if version >= 2 else None, where)

        def placed(name: str, item: Any, field_name: str) -> str:
            label = item.get("position") if isinstance(item, dict) else None
            if (label is None) != (positions is None):
                need = "a 'position'" if positions is not None else "no 'position'"
                raise CircuitFormatError(
                    f"{where}: field '{field_name}.position': this circuit's entries need {need}"
                )
            return name if label is None else at(name, str(label))

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
            source = placed(str(edge["source"]), edge, f"edges[{i}]")
            downstream = placed(downstream, edge, f"edges[{i}]")
            edges[(source, downstream)] = float(edge["score"])
        for name, kind in (("params", dict), ("provenance", dict), ("nodes", list)):
            if not isinstance(data[name], kind):
                raise CircuitFormatError(f"{where}: field {name!r} must be a {kind.__name__}")
        nodes: list[str] = []
        for i, node in enumerate(data["nodes"]):
            if isinstance(node, dict) and isinstance(node.get("name"), str):
                nodes.append(placed(node["name"], node, f"nodes[{i}]"))
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
            positions=positions,
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
        per = {"each": "position", "roles": "role"}
        at_ = "" if self.positions is None else f", per {per[self.positions['granularity']]}"
        return (
            f"Circuit(method={self.method!r}, ablation={self.ablation!r}, "
            f"{len(self.nodes)} nodes, {len(self.edges)} edges{at_})"
        )
