"""Published findings per task, and whether a card's claims bear them out.

Each finding is a rule over the card's claims, declared here before any card was
generated: `consistent` when claims of the kind it names are supported in the pattern
the paper describes, `not found` when such claims were measured and the pattern is
absent, `not tested` when the card holds no claim of that kind (nothing measured it).
No verdict is written by hand.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import Any, Literal

from mesainterp.mechanism.claims import Claim

__all__ = ["LITERATURE", "Comparison", "Finding", "compare_with_literature"]

Verdict = Literal["consistent", "not found", "not tested"]


@dataclass(frozen=True, kw_only=True)
class Finding:
    """A published finding; `judge(claims, measured)` gives (verdict, evidence)."""

    finding: str
    judge: Callable[[Sequence[Claim], set[str]], tuple[Verdict, str]]


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """One row of a card's literature table."""

    source: str
    finding: str
    verdict: Verdict
    evidence: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _names(relation: str) -> list[str]:
    """A role row's relation may name several coinciding relations ("a = b")."""
    return [part.strip() for part in relation.split(" = ")]


def _where(claims: Sequence[Claim]) -> str:
    seen = dict.fromkeys(f"{c.head} at {c.query_role}" for c in claims)
    return "; ".join(list(seen)[:6])


def _is_answer(role: str) -> bool:
    return role == ":" or role.startswith("answer ")


def _roles(
    where: Callable[[Claim], bool], measured_needs: str, what: str
) -> Callable[[Sequence[Claim], set[str]], tuple[Verdict, str]]:
    """Consistent when a supported role claim matches `where`; not found when head roles
    were measured (`measured_needs` in the measured set) and none does."""

    def judge(claims: Sequence[Claim], measured: set[str]) -> tuple[Verdict, str]:
        if measured_needs not in measured:
            return "not tested", f"no {what} measured"
        hits = [c for c in claims if c.kind == "role" and c.status == "supported" and where(c)]
        if hits:
            return "consistent", _where(hits)
        near = [c for c in claims if c.kind == "role" and where(c)]
        if near:
            return "not found", "attention found, ablation check failed: " + _where(near)
        return "not found", f"no head holds this role ({what} measured)"

    return judge


def _levels(pattern: str, least: int) -> Callable[[Sequence[Claim], set[str]], tuple[Verdict, str]]:
    """Consistent when supported role claims on relations `pattern` (one number k: a
    tree level or hop count) cover at least `least` distinct levels, with the layer
    rising with k: one step of the search per layer."""
    rx = re.compile(pattern)

    def judge(claims: Sequence[Claim], measured: set[str]) -> tuple[Verdict, str]:
        if "roles" not in measured:
            return "not tested", "no head roles measured"
        level: dict[int, int] = {}
        for c in claims:
            if c.kind != "role" or c.status != "supported" or c.layer is None:
                continue
            for name in _names(c.relation):
                m = rx.fullmatch(name)
                if m:
                    k = int(m.group(1))
                    level[k] = min(level.get(k, c.layer), c.layer)
        found = "; ".join(f"level {k} at layer {level[k]}" for k in sorted(level)) or "none"
        ks = sorted(level)
        rising = all(level[a] < level[b] for a, b in pairwise(ks))
        if len(ks) >= least and rising:
            return "consistent", found
        return "not found", f"supported levels: {found}"

    return judge


def _either(
    *judges: Callable[[Sequence[Claim], set[str]], tuple[Verdict, str]],
) -> Callable[[Sequence[Claim], set[str]], tuple[Verdict, str]]:
    """Consistent when any judge finds it; not found when one measured it and none did."""
    order: tuple[Verdict, ...] = ("consistent", "not found")

    def judge(claims: Sequence[Claim], measured: set[str]) -> tuple[Verdict, str]:
        found = [j(claims, measured) for j in judges]
        for verdict in order:
            hits = [e for v, e in found if v == verdict]
            if hits:
                return verdict, "; ".join(hits)
        return "not tested", "; ".join(e for _, e in found)

    return judge


def _staircase(claims: Sequence[Claim], measured: set[str]) -> tuple[Verdict, str]:
    hits = [c for c in claims if c.kind == "probe" and c.relation == "staircase"]
    if not hits:
        return "not tested", "no chain probes"
    ok = [c for c in hits if c.status == "supported"]
    return ("consistent" if ok else "not found"), "chain probes: " + "; ".join(
        f"{'staircase' if c.status == 'supported' else 'none'} at {c.query_role}" for c in hits
    )


def _needs_kind(kind: str, what: str) -> Callable[[Sequence[Claim], set[str]], tuple[Verdict, str]]:
    """A finding only a measurement of `kind` this card does not make could test."""

    def judge(claims: Sequence[Claim], measured: set[str]) -> tuple[Verdict, str]:
        hits = [c for c in claims if c.kind == kind and what in c.text]
        if not hits:
            return "not tested", f"needs {what}; no such claim"
        ok = [c for c in hits if c.status == "supported"]
        return ("consistent" if ok else "not found"), "; ".join(c.text for c in hits[:2])

    return judge


def _algorithm(
    want: Callable[[str], bool], label: str
) -> Callable[[Sequence[Claim], set[str]], tuple[Verdict, str]]:
    def judge(claims: Sequence[Claim], measured: set[str]) -> tuple[Verdict, str]:
        hits = [c for c in claims if c.kind == "probe" and c.relation.startswith("closest ")]
        if not hits:
            return "not tested", "no algorithmic comparison run"
        c = hits[0]
        closest = c.relation.removeprefix("closest ")
        if c.status == "supported" and want(closest):
            return "consistent", c.text
        if want(closest):
            return "not found", f"closest reference {closest}, but its R² fails the threshold"
        return "not found", f"closest reference {closest}, not {label}"

    return judge


_GOAL = re.compile(r"goal|target")
LITERATURE: dict[str, tuple[str, list[Finding]]] = {
    "tree-path": (
        "Brinkmann et al. 2024",
        [
            Finding(
                finding="edge-token concatenation (layer 0 reads each edge's parent into its child)",
                judge=_roles(
                    lambda c: (
                        c.query_role == "edge child tokens"
                        and "previous token" in _names(c.relation)
                    ),
                    "roles",
                    "head roles at the edge tokens",
                ),
            ),
            Finding(
                finding="goal movement (the goal is copied to the answer positions)",
                judge=_roles(
                    lambda c: _is_answer(c.query_role) and "goal" in _names(c.relation),
                    "roles",
                    "head roles at ':' and the answers",
                ),
            ),
            Finding(
                finding="deduction heads climb one tree level per layer",
                judge=_either(_levels(r"edge into goal ancestor (\d+)", 2), _staircase),
            ),
            Finding(
                finding="register tokens and subgoals for paths deeper than the layer count",
                judge=_needs_kind("probe", "register"),
            ),
            Finding(
                finding="one-step look-ahead (children of the current node at the answers)",
                judge=_roles(
                    lambda c: (
                        _is_answer(c.query_role)
                        and bool(
                            {"edges out of current", "edge onto path"} & set(_names(c.relation))
                        )
                    ),
                    "roles",
                    "head roles at the answers",
                ),
            ),
        ],
    ),
    "graph-search": (
        "Saparov et al. 2025",
        [
            Finding(
                finding="the search extends one hop per layer (heads reach the goal's k-hop"
                " predecessors at rising layers, or the chain probes climb)",
                judge=_either(_levels(r"edges into goal within (\d+)", 2), _staircase),
            ),
            Finding(
                finding="exponential path merging (reachable sets double their reach per layer)",
                judge=_needs_kind("probe", "path merging"),
            ),
            Finding(
                finding="the goal is moved to the answer positions",
                judge=_roles(
                    lambda c: _is_answer(c.query_role) and "goal" in _names(c.relation),
                    "roles",
                    "head roles at the answers",
                ),
            ),
        ],
    ),
    "maze": (
        "Ivanitskiy et al. 2023",
        [
            Finding(
                finding="connectivity linearly decodable from a single token",
                judge=_needs_kind("probe", "connectivity"),
            ),
            Finding(
                finding="adjacency heads (attend to the current cell's connections)",
                judge=_roles(
                    lambda c: (
                        _is_answer(c.query_role)
                        and any(n.startswith("connection") for n in _names(c.relation))
                    ),
                    "roles",
                    "head roles at the answers",
                ),
            ),
            Finding(
                finding="the target is moved to the answer positions",
                judge=_roles(
                    lambda c: (
                        _is_answer(c.query_role)
                        and any(_GOAL.fullmatch(n) for n in _names(c.relation))
                    ),
                    "roles",
                    "head roles at the answers",
                ),
            ),
        ],
    ),
    "icl-regression": (
        "von Oswald et al. 2023",
        [
            Finding(
                finding="the model's predictions match one step of gradient descent",
                judge=_algorithm(lambda name: name == "gd-1", "gd-1"),
            ),
            Finding(
                finding="deeper models match GD++ or several GD steps",
                judge=_algorithm(
                    lambda name: name == "gd++" or (name.startswith("gd-") and name != "gd-1"),
                    "GD-k (k > 1) or GD++",
                ),
            ),
        ],
    ),
}


def compare_with_literature(
    task_name: str, claims: Sequence[Claim], measured: set[str]
) -> list[Comparison]:
    """The literature table of `task_name` judged on `claims` (empty for other tasks).

    measured: the kinds of measurement the card ran ("roles", "dla", "lens", ...).
    """
    if task_name not in LITERATURE:
        return []
    source, findings = LITERATURE[task_name]
    rows = []
    for f in findings:
        verdict, evidence = f.judge(claims, measured)
        rows.append(
            Comparison(source=source, finding=f.finding, verdict=verdict, evidence=evidence)
        )
    return rows
