"""A whole circuit search into a run directory: what `mesainterp search` runs.

`run_search_run` validates the config and loads the model before anything is
written, runs the two resumable stages (`mesainterp.runs.search_job`), writes the
data (`discovery.search.write_outputs`: circuit.json, faithfulness.csv/.parquet),
the run manifest run.json, and, unless `report=False`, the page report.html.
The search itself never draws; the page is written here, above it.

With a budget (`runs.search_budget`) a search can stop before its circuit is
complete: then only circuit.json (its `params.status` "partial") and run.json are
written, the run is not marked complete, and `--resume` continues it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mesainterp.discovery.budget import COMPLETE, PARTIAL, Budget, Status
from mesainterp.discovery.circuit import Circuit
from mesainterp.discovery.config import load_config, with_data
from mesainterp.discovery.search import SearchOutcome, SearchPlan, prepare, write_outputs
from mesainterp.prompts.task import PromptData, PromptTask
from mesainterp.report import write_report, write_run
from mesainterp.runs.executor import ExecutionStats, execute
from mesainterp.runs.options import RunOptions
from mesainterp.runs.plan import stable_hash
from mesainterp.runs.search_budget import (
    acdc_state_path,
    drop_partial,
    execute_within,
    partial_chunk_meta,
)
from mesainterp.runs.search_job import (
    SearchJob,
    SearchWorker,
    faithfulness_plan,
    outcome_from_units,
    search_plan,
    stage1_result,
)
from mesainterp.runs.state import open_run

__all__ = ["SearchRun", "run_search_run", "write_search_run"]


@dataclass(frozen=True, kw_only=True)
class SearchRun:
    """The found circuit and its faithfulness, the files written, and how units ran.
    status "partial": the budget stopped the search (no faithfulness rows)."""

    plan: SearchPlan
    outcome: SearchOutcome
    paths: dict[str, Path]
    stats: ExecutionStats
    status: Status = COMPLETE


def write_search_run(
    outcome: SearchOutcome,
    out: str | Path,
    *,
    command: Sequence[str] | None,
    report: bool = True,
) -> dict[str, Path]:
    """The search's data, its run manifest and (with `report`) its page."""
    paths = write_outputs(outcome, out)
    results: list[Any] = [
        {"name": "circuit", "kind": "circuit", "path": "circuit.json"},
        {"name": "faithfulness", "kind": "table", "path": "faithfulness.csv"},
    ]
    circuit = outcome.circuit
    paths["run"] = write_run(
        Path(out),
        command=list(command or []),
        provenance=circuit.provenance,
        results=results,
        title=f"Circuit search ({circuit.method}) on {circuit.provenance.get('model_name')}",
    )
    if report:
        paths["report"] = write_report(Path(out))[0]
    return paths


def run_search_run(
    config_path: str | Path,
    out: str | Path,
    *,
    options: RunOptions | None = None,
    command: Sequence[str] | None = None,
    report: bool = True,
    data: PromptData | None = None,
    budget: Budget | None = None,
) -> SearchRun:
    """Run the search of the TOML config at `config_path` into `out` (resumable);
    `command` is the argv recorded in the provenance; `data`, a prompt file that
    replaces the config's [data] (`mesainterp search --data`); `budget`, limits whose set
    fields replace the config's `max_runs` / `max_seconds` (`--max-runs` / `--max-seconds`)."""
    options = options or RunOptions()
    override = None if data is None else data.to_dict()
    limits = {k: v for k, v in (budget or Budget()).to_dict().items() if v is not None} or None
    config = load_config(config_path)
    config = config if limits is None else dataclasses.replace(config, **limits)
    plan = prepare(config if override is None else with_data(config, override))
    config = plan.config  # with [data], n_examples is capped at the file's rows
    recorded = list(command or [])
    # The budget bounds one call: a resumed run may give another.
    identity = {"command": "search", "model_fingerprint": plan.fingerprint,
                "config": config.identity_dict()}  # fmt: skip
    if isinstance(plan.task, PromptTask):  # an edited file never reuses the old file's units
        identity["data_sha256"] = plan.task.data.sha256
    state = open_run(out, identity=identity, resume=options.resume)
    acdc = config.method == "acdc"
    acdc_state = acdc_state_path(state, stable_hash(state.identity)) if acdc else None
    job = SearchJob(
        config_path=str(Path(config_path).resolve()), command=tuple(recorded), data=override,
        budget=limits, acdc_state=acdc_state,
    )  # fmt: skip
    local = (
        SearchWorker.from_plan(plan, recorded, acdc_state=acdc_state)
        if options.executor == "inprocess"
        else None
    )
    where = {"local_worker": local, **options.execute_kwargs()}
    # Stage 1 finds the circuit (one unit per chunk of examples scored, or one for
    # acdc); stage 2 measures it, one unit per ablation.
    stage1 = search_plan(state.identity, config)
    if (
        acdc
        and state.has(stage1.keys[0])
        and _status(state.load_unit(stage1.keys[0])[1]) == PARTIAL
    ):
        drop_partial(state, stage1.keys[0])  # killed between saving and dropping it below
    if acdc:  # ACDC keeps its own budget (its trial runs) and state file
        first, finished = execute(job.worker_spec(), stage1, state, **where), True
    else:
        first, finished = execute_within(
            job.worker_spec(), stage1, state, config.budget.start(), **where
        )
    if acdc and _status(state.load_unit(stage1.keys[0])[1]) == PARTIAL:
        partial = state.load_unit(stage1.keys[0])[1]
        drop_partial(state, stage1.keys[0])  # --resume continues from the state file
        return _partial_run(plan, partial, out, recorded, first)
    if not finished:
        return _partial_run(plan, partial_chunk_meta(state, stage1, plan, recorded), out,
                            recorded, first)  # fmt: skip
    circuit_meta = stage1_result(state, stage1, plan, recorded)
    stage2 = faithfulness_plan(state.identity, circuit_meta, list(config.faithfulness_ablations))
    second = execute(job.worker_spec(), stage2, state, **where)
    stats = dataclasses.replace(
        second,
        total=first.total + second.total,
        computed=first.computed + second.computed,
        reused=first.reused + second.reused,
    )
    outcome = outcome_from_units(state, circuit_meta, stage2)
    paths = write_search_run(outcome, out, command=recorded, report=report)
    state.mark_complete()
    return SearchRun(plan=plan, outcome=outcome, paths=paths, stats=stats)


def _status(meta: dict[str, Any]) -> str:
    return str(Circuit.from_json(meta["circuit"]).params.get("status", COMPLETE))


def _partial_run(
    plan: SearchPlan, meta: dict[str, Any], out: str | Path, command: list[str],
    stats: ExecutionStats,
) -> SearchRun:  # fmt: skip
    """Write a budget-stopped search's partial circuit and its manifest (no report)."""
    circuit = Circuit.from_json(meta["circuit"])
    paths = {"circuit": circuit.save(Path(out) / "circuit.json")}
    paths["run"] = write_run(
        Path(out), command=command, provenance=circuit.provenance,
        results=[{"name": "circuit", "kind": "circuit", "path": "circuit.json"}],
        title=f"Circuit search ({circuit.method}, partial) on "
        f"{circuit.provenance.get('model_name')}",
    )  # fmt: skip
    outcome = SearchOutcome(
        circuit=circuit, rows=[], ranking=[(str(u), str(d)) for u, d in meta["ranking"]]
    )
    return SearchRun(plan=plan, outcome=outcome, paths=paths, stats=stats, status=PARTIAL)
