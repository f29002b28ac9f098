"""A circuit search as a resumable unit.

Edge attribution scores every edge in one backward pass and ACDC decides edges one
after another, each decision depending on the last, so neither splits into
independent chunks; the search (scoring, pruning, faithfulness) is one unit. A
resumed search whose unit is saved recomputes nothing; with the Ray executor the
unit runs on an actor that loads the model itself from the config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from mesainterp.discovery.circuit import Circuit
from mesainterp.discovery.faithfulness import FaithfulnessRow
from mesainterp.runs.executor import WorkerSpec
from mesainterp.runs.plan import RunPlan, WorkUnit, stable_hash

__all__ = ["SearchJob", "SearchWorker", "outcome_from_unit", "search_plan"]


@dataclass(frozen=True, kw_only=True)
class SearchJob:
    """The config file (absolute path) and the command recorded in the provenance."""

    config_path: str
    command: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"config_path": self.config_path, "command": list(self.command)}

    def worker_spec(self) -> WorkerSpec:
        return WorkerSpec(factory="mesainterp.runs.search_job:SearchWorker", kwargs=self.to_dict())


class SearchWorker:
    """Loads and validates the config, the model and the pairs once."""

    def __init__(self, *, config_path: str, command: list[str]) -> None:
        from mesainterp.discovery.config import load_config
        from mesainterp.discovery.search import prepare

        self.command = list(command)
        self.plan = prepare(load_config(config_path))

    @classmethod
    def from_plan(cls, plan: Any, command: list[str]) -> SearchWorker:
        """A worker around a plan this process already prepared (no second load)."""
        worker = cls.__new__(cls)
        worker.plan, worker.command = plan, list(command)
        return worker

    def run(self, unit: WorkUnit) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        from mesainterp.discovery.search import run_search

        outcome = run_search(self.plan, command=self.command)
        return {}, {
            "circuit": outcome.circuit.to_json(),
            "rows": [r.to_dict() for r in outcome.rows],
            "ranking": [list(edge) for edge in outcome.ranking],
        }


def search_plan(identity: dict[str, Any]) -> RunPlan:
    return RunPlan(units=(WorkUnit(key=f"search-{stable_hash(identity)}", index=0),))


def outcome_from_unit(meta: dict[str, Any]) -> Any:
    """The `SearchOutcome` a saved unit holds."""
    from mesainterp.discovery.search import SearchOutcome

    return SearchOutcome(
        circuit=Circuit.from_json(meta["circuit"]),
        rows=[FaithfulnessRow(**row) for row in meta["rows"]],
        ranking=[(str(u), str(d)) for u, d in meta["ranking"]],
    )
