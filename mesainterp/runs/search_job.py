"""A circuit search as resumable units, in two stages.

Stage 1: score and prune. The attribution methods (eap, eap-ig, node-attribution)
score a mean over examples, so they get one unit per chunk of `search.score_chunk`
examples (default: one chunk of all), each returning its examples' own scores;
`stage1_result` then joins the chunks in order, averages, ranks and prunes with
`find_circuit`, the code `run_search` uses on the same chunks, so the circuit is the
same bit for bit, and saves it as the `circuit-...` unit. ACDC decides edges one
after another, each decision depending on the last, so it is one unit that finds
the circuit. Stage 2, one unit per ablation: the faithfulness rows (faithfulness,
completeness and the size curve) of the stage-1 circuit. Each ablation's rows
depend only on the circuit, the ranking and the config's seed.

With the Ray executor the chunks, then the ablations, run on different workers and
the assembled results equal the in-process ones bit for bit: the attribution
backward's float sums depend on torch's thread count, so each actor runs on the
driver's (`WorkerSpec.threads`). A resumed search recomputes only the missing units: the chunk keys hash the run's identity (model fingerprint and
config) and the stage-2 keys hash the circuit, so results of a changed config or
circuit are never mixed in. Each worker loads the model itself from the config.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from mesainterp.discovery.circuit import Circuit
from mesainterp.discovery.faithfulness_measure import FaithfulnessRow
from mesainterp.errors import MesaInterpError
from mesainterp.runs.executor import WorkerSpec
from mesainterp.runs.plan import RunPlan, WorkUnit, stable_hash
from mesainterp.runs.state import RunState

if TYPE_CHECKING:
    from mesainterp.discovery.config import SearchConfig
    from mesainterp.discovery.search import SearchPlan

__all__ = [
    "SearchJob",
    "SearchWorker",
    "faithfulness_plan",
    "outcome_from_units",
    "search_plan",
    "stage1_meta",
    "stage1_result",
]


@dataclass(frozen=True, kw_only=True)
class SearchJob:
    """The config file (absolute path), the command recorded in the provenance, the
    prompt file given on the command line (`PromptData.to_dict()`), if any, which
    replaces the config's [data], the budget fields given on the command line
    (`BUDGET_FIELDS`, replacing the config's), and the ACDC state file."""

    config_path: str
    command: tuple[str, ...]
    data: dict[str, Any] | None = None
    budget: dict[str, Any] | None = None
    acdc_state: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "config_path": self.config_path, "command": list(self.command), "data": self.data,
            "budget": self.budget, "acdc_state": self.acdc_state,
        }  # fmt: skip

    def worker_spec(self) -> WorkerSpec:
        # The attribution backward's float sums depend on the thread count: actors
        # use the driver's, so their scores equal the in-process ones bit for bit.
        return WorkerSpec(
            factory="mesainterp.runs.search_job:SearchWorker",
            kwargs=self.to_dict(),
            threads=torch.get_num_threads(),
        )


class SearchWorker:
    """Loads and validates the config, the model and the pairs once."""

    def __init__(
        self,
        *,
        config_path: str,
        command: list[str],
        data: dict[str, Any] | None = None,
        budget: dict[str, Any] | None = None,
        acdc_state: str | None = None,
    ) -> None:
        from mesainterp.discovery.config import load_config, with_data
        from mesainterp.discovery.search import prepare

        self.command = list(command)
        self.acdc_state = acdc_state
        config = load_config(config_path)
        config = dataclasses.replace(config, **(budget or {}))
        self.plan = prepare(config if data is None else with_data(config, data))

    @classmethod
    def from_plan(
        cls, plan: Any, command: list[str], *, acdc_state: str | None = None
    ) -> SearchWorker:
        """A worker around a plan this process already prepared (no second load)."""
        worker = cls.__new__(cls)
        worker.plan, worker.command, worker.acdc_state = plan, list(command), acdc_state
        return worker

    def run(self, unit: WorkUnit) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        from mesainterp.discovery.search import chunk_scores, circuit_faithfulness, find_circuit

        if "ablation" in unit.payload:  # stage 2
            circuit = Circuit.from_json(unit.payload["circuit"])
            ranking = [(str(u), str(d)) for u, d in unit.payload["ranking"]]
            rows = circuit_faithfulness(
                self.plan, circuit, ranking, ablations=[unit.payload["ablation"]]
            )
            return {}, {"rows": [r.to_dict() for r in rows]}
        if "start" in unit.payload:  # stage 1, one chunk of examples
            return chunk_scores(self.plan, unit.payload["start"], unit.payload["stop"]), {}
        found = find_circuit(self.plan, command=self.command, state=self.acdc_state)  # acdc
        return {}, stage1_meta(*found)


def stage1_meta(circuit: Circuit, ranking: list[tuple[str, str]]) -> dict[str, Any]:
    """A stage-1 result as the JSON-able unit metadata it is saved as."""
    return {"circuit": circuit.to_json(), "ranking": [list(edge) for edge in ranking]}


def search_plan(identity: dict[str, Any], config: SearchConfig) -> RunPlan:
    """Stage 1: one unit per chunk of examples to score (`score_ranges`), or for acdc
    the one unit that finds the circuit. Keys hash the run's identity."""
    from mesainterp.discovery.search import score_ranges

    digest = stable_hash(identity)
    ranges = score_ranges(config)
    if not ranges:
        return RunPlan(units=(WorkUnit(key=f"circuit-{digest}", index=0),))
    return RunPlan(
        units=tuple(
            WorkUnit(
                key=f"scores-{start:05d}-{stop:05d}-{digest}",
                index=i,
                payload={"start": start, "stop": stop},
            )
            for i, (start, stop) in enumerate(ranges)
        )
    )


def stage1_result(
    state: RunState, stage1: RunPlan, plan: SearchPlan, command: list[str]
) -> dict[str, Any]:
    """The stage-1 circuit and ranking (JSON-able) from the saved units of `stage1`.

    For scored chunks, `find_circuit` joins them in plan order on `plan` (the driver's
    `SearchPlan`); the result is saved as a unit of its own, so a resumed run reuses
    the same circuit (and so the same stage-2 keys) instead of assembling it again.
    """
    from mesainterp.discovery.search import find_circuit

    if not stage1.units[0].payload:  # acdc: the unit found the circuit itself
        return state.load_unit(stage1.keys[0])[1]
    key = f"circuit-{stable_hash(stage1.keys)}"
    if not state.has(key):
        chunks = [state.load_unit(k)[0] for k in stage1.keys]
        meta = stage1_meta(*find_circuit(plan, command=command, chunks=chunks))
        state.save_unit(key, {}, meta)
    return state.load_unit(key)[1]


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


def outcome_from_units(state: RunState, stage1: dict[str, Any], stage2: RunPlan) -> Any:
    """The `SearchOutcome` of the stage-1 result and the saved stage-2 units (rows in
    the plan's ablation order)."""
    from mesainterp.discovery.search import SearchOutcome, with_headline

    rows: list[FaithfulnessRow] = []
    for unit in stage2.units:
        saved = state.load_unit(unit.key)[1]
        if "rows" not in saved:
            raise MesaInterpError(f"unit {unit.key}: no faithfulness rows saved")
        rows.extend(FaithfulnessRow(**row) for row in saved["rows"])
    circuit = Circuit.from_json(stage1["circuit"])
    return SearchOutcome(
        circuit=with_headline(circuit, rows),
        rows=rows,
        ranking=[(str(u), str(d)) for u, d in stage1["ranking"]],
    )
