"""A whole circuit search into a run directory: what `mesainterp search` runs.

`run_search_run` validates the config and loads the model before anything is
written, runs the two resumable stages (`mesainterp.runs.search_job`), writes the
data (`discovery.search.write_outputs`: circuit.json, faithfulness.csv/.parquet),
the run manifest run.json, and, unless `report=False`, the page report.html.
The search itself never draws; the page is written here, above it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mesainterp.discovery.config import load_config, with_data
from mesainterp.discovery.search import SearchOutcome, SearchPlan, prepare, write_outputs
from mesainterp.prompts.task import PromptData, PromptTask
from mesainterp.report import write_report, write_run
from mesainterp.runs.executor import ExecutionStats, execute
from mesainterp.runs.options import RunOptions
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
    """The found circuit and its faithfulness, the files written, and how units ran."""

    plan: SearchPlan
    outcome: SearchOutcome
    paths: dict[str, Path]
    stats: ExecutionStats


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
) -> SearchRun:
    """Run the search of the TOML config at `config_path` into `out` (resumable);
    `command` is the argv recorded in the provenance; `data`, a prompt file that
    replaces the config's [data] (`mesainterp search --data`)."""
    options = options or RunOptions()
    override = None if data is None else data.to_dict()
    config = load_config(config_path)
    plan = prepare(config if override is None else with_data(config, override))
    config = plan.config  # with [data], n_examples is capped at the file's rows
    recorded = list(command or [])
    identity = {"command": "search", "model_fingerprint": plan.fingerprint,
                "config": config.to_dict()}  # fmt: skip
    if isinstance(plan.task, PromptTask):  # an edited file never reuses the old file's units
        identity["data_sha256"] = plan.task.data.sha256
    state = open_run(out, identity=identity, resume=options.resume)
    job = SearchJob(
        config_path=str(Path(config_path).resolve()), command=tuple(recorded), data=override
    )
    local = SearchWorker.from_plan(plan, recorded) if options.executor == "inprocess" else None
    where = {"local_worker": local, **options.execute_kwargs()}
    # Stage 1 finds the circuit (one unit per chunk of examples scored, or one for
    # acdc); stage 2 measures it, one unit per ablation.
    stage1 = search_plan(state.identity, config)
    first = execute(job.worker_spec(), stage1, state, **where)
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
