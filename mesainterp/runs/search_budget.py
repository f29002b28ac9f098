"""The budget of a search run (`[search] max_runs / max_seconds`, `--max-runs / --max-seconds`).

ACDC keeps its own budget and state file (`discovery.acdc_pruning`): a stopped ACDC
unit returns a partial circuit, which is shown but not kept as the unit's result, so
`--resume` runs the unit again and it continues from the state file. The attribution
methods' stage 1 is a list of score chunks: they are computed in order while the
budget lasts (a run is a chunk; at least one batch is always computed), each saved
as it finishes; when the budget ends first, the partial circuit is the one of the
examples scored so far (the leading chunks), marked partial. Faithfulness (stage 2)
is measured only for a complete circuit.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mesainterp.discovery.budget import PARTIAL, BudgetClock
from mesainterp.errors import MesaInterpError
from mesainterp.runs.executor import ExecutionStats, WorkerSpec, execute
from mesainterp.runs.plan import RunPlan
from mesainterp.runs.state import STATE_DIR, RunState

__all__ = ["acdc_state_path", "drop_partial", "execute_within", "partial_chunk_meta"]


def acdc_state_path(state: RunState, digest: str) -> str:
    """Where a run directory keeps its ACDC progress (beside the units)."""
    return str(state.root / STATE_DIR / f"acdc-{digest}.safetensors")


def execute_within(
    spec: WorkerSpec, plan: RunPlan, state: RunState, clock: BudgetClock, **where: Any
) -> tuple[ExecutionStats, bool]:
    """Compute `plan`'s missing units in order while `clock` lasts (one unit at a time
    in-process, `workers` at a time with Ray); the stats and whether all are done."""
    if not clock.budget.limited:
        return execute(spec, plan, state, **where), True
    done = state.done_keys()
    missing = [u for u in plan.units if u.key not in done]
    step = where.get("workers", 1) if where.get("executor") == "ray" else 1
    computed = 0
    while missing:
        left = (clock.budget.max_runs or len(missing)) - clock.runs
        batch = missing[: max(1, min(step, left))]
        execute(spec, RunPlan(units=tuple(batch)), state, **where)
        clock.charge(len(batch))
        computed += len(batch)
        missing = missing[len(batch) :]
        if clock.spent():
            break
    stats = ExecutionStats(
        total=len(plan), computed=computed, reused=len(plan) - len(missing) - computed,
        executor=str(where.get("executor", "inprocess")),
        workers=int(where.get("workers", 1)) if where.get("executor") == "ray" else 1,
    )  # fmt: skip
    return stats, not missing


def partial_chunk_meta(
    state: RunState, stage1: RunPlan, plan: Any, command: list[str]
) -> dict[str, Any]:
    """The partial circuit (JSON-able, as `stage1_result` gives) of the leading score
    chunks on disk: the search on the examples they cover, marked partial."""
    from mesainterp.discovery.search import find_circuit
    from mesainterp.runs.search_job import stage1_meta
    from mesainterp.tasks.base import slice_pair

    done = state.done_keys()
    leading = []
    for unit in stage1.units:
        if unit.key not in done:
            break
        leading.append(unit)
    stop = int(leading[-1].payload["stop"]) if leading else 0
    if stop < 2:
        raise MesaInterpError(
            "the budget ended before two examples were scored; raise search.max_runs or "
            "search.max_seconds (or --max-runs / --max-seconds)"
        )
    sub = dataclasses.replace(
        plan,
        config=dataclasses.replace(plan.config, n_examples=stop),
        pair=slice_pair(plan.pair, 0, stop),
    )
    chunks = [state.load_unit(u.key)[0] for u in leading]
    return stage1_meta(*find_circuit(sub, command=command, chunks=chunks, status=PARTIAL))


def drop_partial(state: RunState, key: str) -> None:
    """Forget a unit that holds a partial result, so that `--resume` computes it again."""
    (state.units_dir / f"{key}.safetensors").unlink(missing_ok=True)
