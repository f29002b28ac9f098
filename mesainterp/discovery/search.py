"""A whole circuit search from a config: prepare (validate and load, no results), run, write.

`prepare` resolves everything that can fail on bad input (model, task, family,
whether edge methods support the model) before any attribution or pruning runs,
and `write_outputs` is the only step that touches the output directory: it writes
the data; the run manifest and the page are written by `mesainterp.runs`.

Attribution scores (eap, eap-ig, node-attribution) are a mean over examples, so
`chunk_scores` computes each example's scores for one range of `score_ranges`
(`search.score_chunk` examples) and `find_circuit` joins the ranges in order and
averages. It does so whether it computed the chunks itself or was handed them by a
staged run's units, so both give the same circuit bit for bit (on as many torch
threads: the attribution backward's float sums depend on the thread count).

A prompt file with multi-token answers is scored by its teacher-forced metric
(`mesainterp.prompts.metrics`): each example is two rows of the pair, so a range
of examples is twice as many rows, and every mean is over rows (half the
per-example log-probability difference; normalised faithfulness is unchanged).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.atomic import atomic_write
from mesainterp.attribution.eap import EdgeMethod, EdgeScores, edge_attribution
from mesainterp.attribution.edge_forward import EdgeForward, edge_support_reason
from mesainterp.attribution.nodes import NodeScores, node_attribution
from mesainterp.attribution.positions import (
    PositionalEdgeScores,
    PositionalGraph,
    Positions,
    position_groups,
)
from mesainterp.discovery.acdc_pruning import acdc
from mesainterp.discovery.budget import COMPLETE, Status
from mesainterp.discovery.circuit import Circuit
from mesainterp.discovery.config import SearchConfig
from mesainterp.discovery.faithfulness_measure import FaithfulnessRow, faithfulness, rows_to_frame
from mesainterp.discovery.greedy import drop_dangling, top_edges
from mesainterp.errors import ConfigError, MesaInterpError, allowed
from mesainterp.model.build import model_shape
from mesainterp.model.placement import to_model
from mesainterp.patching.metrics import MetricFn, neg_kl_to_clean
from mesainterp.prompts.task import PromptTask, prompt_data
from mesainterp.provenance_stamp import provenance
from mesainterp.sites.named import named_sites
from mesainterp.sites.site import Site
from mesainterp.tasks.base import CounterfactualPair, Task, slice_pair
from mesainterp.tasks.roles import task_roles

__all__ = [
    "SearchOutcome",
    "SearchPlan",
    "chunk_scores",
    "circuit_faithfulness",
    "find_circuit",
    "prepare",
    "run_search",
    "score_ranges",
    "search_positions",
    "with_headline",
    "write_outputs",
]


@dataclass(frozen=True, kw_only=True)
class SearchPlan:
    config: SearchConfig
    model: TransformerBridge
    model_name: str
    fingerprint: str
    task: Task
    pair: CounterfactualPair


@dataclass(frozen=True, kw_only=True)
class SearchOutcome:
    circuit: Circuit
    rows: list[FaithfulnessRow]
    ranking: list[tuple[str, str]]


def prepare(config: SearchConfig) -> SearchPlan:
    """Load the model and task and draw the pairs; refuses anything that cannot run."""
    from mesainterp.zoo.loader import load_model
    from mesainterp.zoo.registry import list_models

    if config.zoo is not None and config.zoo not in list_models():
        raise ConfigError("model.zoo", f"unknown zoo model {config.zoo!r}", allowed(list_models()))
    field = "model.zoo" if config.zoo is not None else "model.checkpoint"
    data_task = None if config.data_path is None else _data_task(config)
    if data_task is not None:  # the file's problems are named before the model loads
        config = dataclasses.replace(
            config, n_examples=min(config.n_examples, len(data_task.pairs))
        )
    try:
        loaded = load_model(config.zoo if config.zoo is not None else str(config.checkpoint))
    except MesaInterpError as err:
        raise ConfigError(field, str(err)) from None
    reason = edge_support_reason(loaded.model)
    if reason is not None:
        raise ConfigError("model", f"circuit search cannot run on this model: {reason}")
    task: Task
    if data_task is not None:
        data_task.check_model(int(loaded.model.cfg.d_vocab), int(loaded.model.cfg.n_ctx), "data")
        task = data_task
    else:
        task = _model_task(config, loaded)
    pair = task.counterfactual_pairs(config.n_examples, seed=config.seed, family=config.family)
    return SearchPlan(
        config=config,
        model=loaded.model,
        model_name=loaded.name,
        fingerprint=loaded.fingerprint,
        task=task,
        pair=pair,
    )


def _data_task(config: SearchConfig) -> PromptTask:
    """The [data] file's pairs as the task (one- or multi-token answers)."""
    data = prompt_data(
        str(config.data_path), model=config.checkpoint, tokenizer=config.data_tokenizer,
        roles=config.data_roles, fields=("data.path", "data.tokenizer"),
    )  # fmt: skip
    return PromptTask(data)


def _model_task(config: SearchConfig, loaded: Any) -> Task:
    """The task the config names, or the one the checkpoint records."""
    from mesainterp.tasks.registry import build_task, task_from_config

    recorded = (loaded.checkpoint.task if loaded.checkpoint is not None else None) or {}
    task_name = config.task_name or recorded.get("name")
    if task_name is None:
        raise ConfigError("task.name", "the checkpoint records no task; name one")
    if config.task_name is not None and recorded.get("name") not in (None, config.task_name):
        raise ConfigError(
            "task.name", f"the model was trained on {recorded.get('name')!r}, not {task_name!r}"
        )
    params = (
        {k: v for k, v in recorded.items() if k != "name"}
        if task_name == recorded.get("name")
        else {}
    )
    params.update(config.task_params)
    task = (
        build_task(task_name, params, where="task.params", name_field="task.name")
        if params or not recorded
        else task_from_config(recorded)
    )
    if config.family is not None and config.family not in task.counterfactual_families:
        raise ConfigError(
            "task.family", f"got {config.family!r}", allowed(task.counterfactual_families)
        )
    if task.seq_len > model_shape(loaded.model).n_ctx:
        raise ConfigError("task.params", f"sequences of {task.seq_len} exceed the model's n_ctx")
    return task


def _metric(plan: SearchPlan, pair: CounterfactualPair | None = None) -> MetricFn:
    """The config's metric for `pair` (default: the plan's whole pair)."""
    pair = plan.pair if pair is None else pair
    if plan.config.metric == "task":
        return plan.task.default_metric(pair)
    with torch.no_grad():
        clean_logits = plan.model(pair.clean.inputs)
    return neg_kl_to_clean(clean_logits, answer_pos=pair.answer_pos)


def score_ranges(config: SearchConfig) -> list[tuple[int, int]]:
    """The example ranges (start, stop) scored apart, in the order they are joined:
    `search.score_chunk` examples each (default: one range of all); none for acdc."""
    if config.method == "acdc":
        return []
    n = config.n_examples
    step = config.score_chunk or n
    return [(start, min(start + step, n)) for start in range(0, n, step)]


def chunk_scores(plan: SearchPlan, start: int, stop: int) -> dict[str, Tensor]:
    """Each example's attribution scores for examples `start` to `stop`, on the CPU:
    {"per_example": [n_up, n_down, k]} (eap, eap-ig; [n_up, n_down, n_groups, k] per
    position or role) or [n_sites, k] (node-attribution).

    The metric is built from the slice of the pair, so it reads only these examples.
    """
    cfg = plan.config
    if cfg.method == "acdc":
        raise MesaInterpError("acdc decides edges one after another; it has no score chunks")
    torch.manual_seed(cfg.seed)
    rows = plan.task.rows_per_example if isinstance(plan.task, PromptTask) else 1
    pair = slice_pair(plan.pair, start * rows, stop * rows)
    clean, corrupted = pair.clean.inputs, pair.corrupted.inputs
    metric = _metric(plan, pair)
    if cfg.method == "node-attribution":
        nodes = node_attribution(
            plan.model, _node_sites(plan), clean=clean, corrupted=corrupted, metric=metric,
            batch=pair.corrupted,
        )  # fmt: skip
        return {"per_example": nodes.per_example}
    edges = edge_attribution(
        plan.model, clean=clean, corrupted=corrupted, metric=metric, batch=pair.clean,
        method="eap" if cfg.method == "eap" else "eap-ig", ig_steps=cfg.ig_steps,
        positions=search_positions(plan, start, stop),
    )  # fmt: skip
    return {"per_example": edges.per_example.detach().cpu()}


def search_positions(plan: SearchPlan, start: int = 0, stop: int | None = None) -> Positions:
    """The config's `search.positions` for examples `start` to `stop`: "all", "each",
    or the roles of those examples (the task's `task_roles`, or the [data] file's)."""
    which = plan.config.positions
    if which != "roles":
        return "all" if which == "all" else "each"
    stop = plan.pair.clean.batch_size if stop is None else stop
    task = plan.task
    if isinstance(task, PromptTask):
        roles = {name: list(where) for name, where in task.pairs.roles.items()}
        if not roles:
            raise ConfigError(
                "search.positions", "'roles' needs roles, and the [data] file names none",
                "data.roles = [columns], or 'each'",
            )  # fmt: skip
        return {name: where[start:stop] for name, where in roles.items()}
    return {name: where[start:stop] for name, where in task_roles(task, plan.pair.clean).items()}


def _joined(
    plan: SearchPlan, chunks: Sequence[Mapping[str, Tensor]], *, examples_outer: bool
) -> Tensor:
    """The chunks' per-example scores joined along the last (example) axis, in order.

    Laid out in memory as one unchunked call lays them out: examples outermost for
    `edge_attribution`, innermost for `node_attribution`. The mean reads memory in
    layout order, so only the same layout gives the same bits as the unchunked scores.
    """
    if not chunks or any("per_example" not in c for c in chunks):
        raise MesaInterpError("score chunks: expected one 'per_example' tensor per chunk")
    parts = [c["per_example"] for c in chunks]
    per_example = (
        torch.cat([p.movedim(-1, 0) for p in parts]).movedim(0, -1)
        if examples_outer
        else torch.cat(parts, dim=-1)
    )
    n = plan.pair.clean.batch_size
    if per_example.shape[-1] != n:
        raise MesaInterpError(
            f"score chunks cover {per_example.shape[-1]} examples; the search has {n}"
        )
    return per_example


def _node_sites(plan: SearchPlan) -> list[Site]:
    # Every head and MLP over all positions: the senders of the path sweep.
    return named_sites("path", model_shape(plan.model))


def _node_circuit(
    plan: SearchPlan, ef: EdgeForward, scores: NodeScores
) -> dict[tuple[str, str], float]:
    named = {
        (f"L{s.layer}H{s.head}" if s.kind == "z" else f"M{s.layer}"): float(v)
        for s, v in zip(scores.sites, scores.scores, strict=True)
    }
    ranked = sorted(named.items(), key=lambda kv: -abs(kv[1]))
    cfg = plan.config
    chosen = (
        dict(ranked[: cfg.top_n])
        if cfg.top_n is not None
        else {n: v for n, v in ranked if abs(v) >= (cfg.threshold or 0.0)}
    )
    chosen |= {"embed": 0.0, "pos_embed": 0.0}
    edges = {
        (u, d): chosen[u]
        for u, d in ef.graph.edges()
        # A grouped key/value input belongs to every query head that reads it.
        if u in chosen and (d == "logits" or any(o in chosen for o in ef.graph.owners(d)))
    }
    return drop_dangling(ef.graph, edges)


def run_search(plan: SearchPlan, *, command: list[str] | None = None) -> SearchOutcome:
    """Find the circuit and measure its faithfulness (the two stages, in one process)."""
    circuit, ranking = find_circuit(plan, command=command)
    rows = circuit_faithfulness(plan, circuit, ranking)
    return SearchOutcome(circuit=with_headline(circuit, rows), rows=rows, ranking=ranking)


def find_circuit(
    plan: SearchPlan,
    *,
    command: list[str] | None = None,
    chunks: Sequence[Mapping[str, Tensor]] | None = None,
    state: str | os.PathLike[str] | None = None,
    status: Status = COMPLETE,
) -> tuple[Circuit, list[tuple[str, str]]]:
    """Stage 1: score and prune; the circuit (no faithfulness yet) and the edge ranking.

    eap, eap-ig and node-attribution join the `chunk_scores` of every range of
    `score_ranges` (computed here, or given as `chunks` in that order), average over
    the examples, then rank and prune. ACDC decides each edge after the last, so it
    runs whole here and takes no chunks; it stops at the config's budget and, with
    `state`, saves its progress there and continues from it (`acdc_pruning`).

    The circuit's `params["status"]` (and its provenance's) is "partial" when the
    budget stopped ACDC, or when the caller says so (`status`: chunks of only the
    first examples, a plan cut short by `budget_plan`); else "complete".
    """
    cfg = plan.config
    torch.manual_seed(cfg.seed)
    ef = EdgeForward(plan.model)
    params: dict[str, Any] = {"n_examples": cfg.n_examples, "metric": cfg.metric}
    spec: dict[str, Any] | None = None
    if cfg.method == "acdc":
        if chunks is not None:
            raise MesaInterpError("acdc decides edges one after another; it takes no chunks")
        assert cfg.threshold is not None
        clean, corrupted = plan.pair.clean.inputs, plan.pair.corrupted.inputs
        positions = search_positions(plan)
        result = acdc(
            plan.model, clean=clean, corrupted=corrupted, metric=_metric(plan),
            batch=plan.pair.clean, threshold=cfg.threshold, ablation=cfg.ablation, forward=ef,
            reference=torch.cat([clean, corrupted]), positions=positions, budget=cfg.budget,
            state=state if positions == "all" else None,
        )  # fmt: skip
        # An edge the budget left undecided is kept, scored 0 (JSON has no NaN).
        edges = {e: 0.0 if math.isnan(v) else v for e, v in result.kept.items()}
        status = result.status
        params["n_undecided"] = result.n_undecided
        damages = torch.nan_to_num(result.damages, nan=0.0)
        if result.positions is not None:
            pg = PositionalGraph(ef.graph, result.positions["granularity"],
                                 tuple(result.positions["labels"]))  # fmt: skip
            ranking = sorted(pg.edges(), key=lambda e: -abs(float(damages[pg.index(e)])))
        else:
            ranking = sorted(ef.graph.edges(), key=lambda e: -abs(float(
                damages[ef.graph.up_index(e[0]), ef.graph.down_index(e[1])]
            )))  # fmt: skip
        spec = result.positions
        params |= {"threshold": cfg.threshold, "n_runs": result.n_runs}
    else:
        if chunks is None:
            chunks = [chunk_scores(plan, start, stop) for start, stop in score_ranges(cfg)]
        node = cfg.method == "node-attribution"
        per_example = _joined(plan, chunks, examples_outer=not node)
        if node:
            nodes = NodeScores(sites=_node_sites(plan), per_example=per_example)
            edges = _node_circuit(plan, ef, nodes)
            ranking = [e for e, _ in sorted(edges.items(), key=lambda kv: -abs(kv[1]))]
        else:
            scores = _edge_scores(plan, ef, to_model(plan.model, per_example))
            spec = scores.graph.spec if isinstance(scores, PositionalEdgeScores) else None
            edges = top_edges(scores, top_n=cfg.top_n, threshold=cfg.threshold)
            ranking = [e for e, _ in scores.ranked()]
            params |= scores.params
        params |= _selection(cfg)
    if not edges:
        raise MesaInterpError(
            "the search kept no edges; lower search.threshold or raise search.top_n"
        )
    params["status"] = status
    if status != COMPLETE:
        params["budget"] = cfg.budget.to_dict()
    stamp = provenance(
        model_fingerprint=plan.fingerprint,
        model_name=plan.model_name,
        config={
            "search": cfg.identity_dict(),  # the budget does not change a finished search
            "task": plan.task.config_dict(),
            "family": plan.pair.family,
        },
        seed=cfg.seed,
        command=command,
    )
    stamp["status"] = status
    circuit = Circuit.from_edges(
        edges, method=cfg.method, params=params, ablation=cfg.ablation,
        provenance=stamp, node_order=ef.graph.upstream, positions=spec,
    )  # fmt: skip
    return circuit, ranking


def _edge_scores(
    plan: SearchPlan, ef: EdgeForward, per_example: Tensor
) -> EdgeScores | PositionalEdgeScores:
    """The joined chunks' scores, per position or role when the config asks."""
    cfg = plan.config
    method: EdgeMethod = "eap" if cfg.method == "eap" else "eap-ig"
    if cfg.positions == "all":
        return EdgeScores.from_per_example(
            ef.graph, per_example, method=method, ig_steps=cfg.ig_steps
        )
    clean = plan.pair.clean.inputs
    groups = position_groups(
        search_positions(plan), batch=int(clean.shape[0]), seq=int(clean.shape[1])
    )
    return PositionalEdgeScores(
        graph=PositionalGraph.of(ef.graph, groups), scores=per_example.mean(dim=-1),
        per_example=per_example, method=method,
        params={"ig_steps": cfg.ig_steps} if method == "eap-ig" else {},
    )  # fmt: skip


def circuit_faithfulness(
    plan: SearchPlan,
    circuit: Circuit,
    ranking: list[tuple[str, str]],
    *,
    ablations: Sequence[str] | None = None,
) -> list[FaithfulnessRow]:
    """Stage 2: the faithfulness rows of `circuit` under `ablations` (default: the
    config's). Each ablation's rows depend on nothing but the circuit, the ranking and
    the config's seed, so the ablations can be measured apart and give the same rows."""
    cfg = plan.config
    return faithfulness(
        plan.model, circuit, clean=plan.pair.clean.inputs, corrupted=plan.pair.corrupted.inputs,
        metric=_metric(plan), batch=plan.pair.clean,
        ablations=cfg.faithfulness_ablations if ablations is None else ablations,
        curve_k=cfg.curve_k, ranking=ranking, n_boot=cfg.n_boot, seed=cfg.seed,
        forward=EdgeForward(plan.model),
        roles=_roles_of(plan) if circuit.positions is not None else None,
    )  # fmt: skip


def _roles_of(plan: SearchPlan) -> Mapping[str, Any] | None:
    """The roles a role circuit is measured on (None for one found per position)."""
    positions = search_positions(plan)
    return positions if isinstance(positions, Mapping) else None


def with_headline(circuit: Circuit, rows: Sequence[FaithfulnessRow]) -> Circuit:
    """`circuit` carrying its faithfulness under its own ablation (None if not measured)."""
    headline = next(
        (r.value for r in rows if r.measure == "faithfulness" and r.ablation == circuit.ablation),
        None,
    )
    return dataclasses.replace(circuit, faithfulness=headline)


def _selection(cfg: SearchConfig) -> dict[str, Any]:
    return {"top_n": cfg.top_n} if cfg.top_n is not None else {"threshold": cfg.threshold}


def write_outputs(outcome: SearchOutcome, out_dir: str | Path) -> dict[str, Path]:
    """The search's data: circuit.json and faithfulness.csv/.parquet. The run manifest
    and the page are written above, by `mesainterp.runs.search_run`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"circuit": outcome.circuit.save(out / "circuit.json")}
    frame = rows_to_frame(outcome.rows)
    atomic_write(out / "faithfulness.csv", lambda t: frame.to_csv(t, index=False))
    atomic_write(out / "faithfulness.parquet", lambda t: frame.to_parquet(t, index=False))
    paths["faithfulness_csv"] = out / "faithfulness.csv"
    paths["faithfulness_parquet"] = out / "faithfulness.parquet"
    return paths
