"""A circuit search as resumable units, in two stages.

Stage 1, one unit: score and prune. Edge attribution scores every edge in one
backward pass and ACDC decides edges one after another, each decision depending on
the last, so this stage does not split. Stage 2, one unit per ablation: the
faithfulness rows (faithfulness, completeness and the size curve) of the stage-1
circuit. Each ablation's rows depend only on the circuit, the ranking and the
config's seed, so with the Ray executor the ablations run on different workers and
the assembled rows equal the in-process ones. A resumed search recomputes only the
missing units; the stage-2 keys hash the circuit, so a changed circuit is never
mixed with old rows. Each worker loads the model itself from the config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from mesainterp.discovery.circuit import Circuit
from mesainterp.discovery.faithfulness import FaithfulnessRow
from mesainterp.errors import MesaInterpError
from mesainterp.runs.executor import WorkerSpec
from mesainterp.runs.plan import RunPlan, WorkUnit, stable_hash
from mesainterp.runs.state import RunState

__all__ = [
    "SearchJob",
    "SearchWorker",
    "faithfulness_plan",
    "outcome_from_units",
    "search_plan",
]


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
        from mesainterp.discovery.search import circuit_faithfulness, find_circuit

        if "ablation" in unit.payload:  # stage 2
            circuit = Circuit.from_json(unit.payload["circuit"])
            ranking = [(str(u), str(d)) for u, d in unit.payload["ranking"]]
            rows = circuit_faithfulness(
                self.plan, circuit, ranking, ablations=[unit.payload["ablation"]]
            )
            return {}, {"rows": [r.to_dict() for r in rows]}
        circuit, ranking = find_circuit(self.plan, command=self.command)
        return {}, {"circuit": circuit.to_json(), "ranking": [list(edge) for edge in ranking]}


def search_plan(identity: dict[str, Any]) -> RunPlan:
    """Stage 1: the one unit that finds the circuit."""
    return RunPlan(units=(WorkUnit(key=f"circuit-{stable_hash(identity)}", index=0),))


def faithfulness_plan(
    identity: dict[str, Any], stage1: dict[str, Any], ablations: list[str]
) -> RunPlan:
    """Stage 2: one unit per ablation, keyed by the run and the stage-1 circuit."""
    digest = stable_hash({"identity": identity, "circuit": stage1["circuit"],
                          "ranking": stage1["ranking"]})  # fmt: skip
    return RunPlan(
        units=tuple(
            WorkUnit(
                key=f"faithfulness-{ablation}-{digest}",
                index=i,
                payload={
                    "ablation": ablation,
                    "circuit": stage1["circuit"],
                    "ranking": stage1["ranking"],
                },
            )
            for i, ablation in enumerate(ablations)
        )
    )


def outcome_from_units(state: RunState, stage1_key: str, stage2: RunPlan) -> Any:
    """The `SearchOutcome` the saved units hold (rows in the plan's ablation order)."""
    from mesainterp.discovery.search import SearchOutcome, with_headline

    meta = state.load_unit(stage1_key)[1]
    rows: list[FaithfulnessRow] = []
    for unit in stage2.units:
        saved = state.load_unit(unit.key)[1]
        if "rows" not in saved:
            raise MesaInterpError(f"unit {unit.key}: no faithfulness rows saved")
        rows.extend(FaithfulnessRow(**row) for row in saved["rows"])
    circuit = Circuit.from_json(meta["circuit"])
    return SearchOutcome(
        circuit=with_headline(circuit, rows),
        rows=rows,
        ranking=[(str(u), str(d)) for u, d in meta["ranking"]],
    )
