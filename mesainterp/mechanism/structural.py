"""Structural probes: what a search algorithm needs, decoded at every layer and position.

Quantities (labels from the task batch; per position where they depend on it):

    tree-path     ancestor k (k = 1..ranks, the goal's k-th ancestor), current node,
                  parent (of the current node), children (multilabel), on path
                  (the root -> goal path = the nodes the goal is reachable from,
                  multilabel), distance to goal
    graph-search  node k back (the k-th node back from the goal on the path),
                  current node, reachable (from the start, multilabel), ancestors
                  of goal (the vertices that reach it, multilabel), distance to goal
    maze          current cell, on path (multilabel), distance to target

The chain (ancestor k / node k back) comes from `evidence.iterative.chain_labels`:
the goal and path[0] are left out, as in the battery. Answer step j is the input
position `prompt_len + j`, holding path[j]; the current node is path[j]. Distance
to goal is the steps left from the current node, and before the answer starts
the length of the whole path. Free labels are reported but never counted: the
current node is the token at that position; the parent of the current node (on
tree-path) is the previous answer token.

Every quantity is probed with the battery's batched ridge probes
(`evidence.layer_probe.cv_predictions`: k-fold held-out predictions; multilabel:
one ridge output per node, thresholded at 0.5, scored by per-node accuracy) at
every layer (`resid_post` of block l) and position, against the same controls
at the same site: each random-init twin, the model's features with shuffled
labels, the chance rate (majority class, per-node majority, or R² 0), and the
strongest search-free baseline that does not reveal the label
(`evidence.baselines`), extended with the one-hots of the token at the position
and the one before it. Intervals are percentile bootstraps over examples
(`mesainterp.stats.bootstrap`, 95%).

Declared rule (fixed before looking at any model): a site *clears* when the
model's lower bound exceeds the highest upper bound among its controls there
(every twin, shuffled labels) and the chance rate. For each chain rank k and
position, the staircase's first layer is the smallest layer that clears (None:
never); `mechanism.staircase_rule` summarises the table by that rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import pandas as pd
import torch
from torch import Tensor

from mesainterp.errors import ConfigError, MesaInterpError, allowed
from mesainterp.evidence.baselines import search_free_baselines
from mesainterp.evidence.iterative import chain_labels
from mesainterp.evidence.layer_probe import cv_predictions, label_for
from mesainterp.evidence.profile import EvidenceInputs, declared_positions, profile_for
from mesainterp.model.build import model_shape
from mesainterp.probes.cv import kfold_indices
from mesainterp.probes.dataset import ActivationDataset, collect_activations, probe_sites
from mesainterp.probes.linear import fit_ridge, standardize
from mesainterp.progress import progress_bar
from mesainterp.stats import bootstrap
from mesainterp.tasks.base import Task, TaskBatch
from mesainterp.tasks.roles import task_roles

__all__ = [
    "STRUCTURAL_TASKS",
    "Quantity",
    "StructuralTable",
    "position_names",
    "structural_labels",
    "structural_probes",
]

Kind = Literal["class", "value", "multilabel"]
STRUCTURAL_TASKS = ("graph-search", "maze", "tree-path")
CONFIDENCE = 0.95


@dataclass(frozen=True, kw_only=True)
class Quantity:
    """One probed quantity over every position.

    values: class ids [n, seq] (long), values [n, seq] (float) or sets
            [n, seq, nodes] (float 0/1); `defined` [n, seq] says where it exists.
    rank:   k for the chain quantities (the staircase), else None.
    free:   why the model gets it without search ("" when it does not).
    """

    name: str
    kind: Kind
    values: Tensor
    defined: Tensor
    rank: int | None = None
    free: str = ""


def _everywhere(per_example: Tensor, seq: int) -> Tensor:
    return per_example[:, None].expand(-1, seq, *per_example.shape[1:]).clone()


def _answer_steps(batch: TaskBatch, path: Tensor) -> tuple[Tensor, Tensor]:
    """(current node [n, seq] with -1 where none, steps left to the goal [n, seq])."""
    n, seq, p0 = batch.batch_size, batch.seq_len, batch.prompt_len
    length = (path >= 0).sum(1)
    current = torch.full((n, seq), -1, dtype=torch.long)
    left = _everywhere((length - 1).double(), seq)
    for j in range(min(path.shape[1], seq - p0)):
        current[:, p0 + j] = path[:, j]
        left[:, p0 + j] = torch.where(path[:, j] >= 0, length - 1 - j, -1).double()
    left[:, p0:][current[:, p0:] < 0] = torch.nan
    return current, left


def structural_labels(task: Task, batch: TaskBatch, *, ranks: int = 4) -> dict[str, Quantity]:
    """Every structural quantity of `batch` (see the module docstring), by name.

    >>> task = mesainterp.tasks.TreePathTask(n_nodes=6, max_depth=3)
    >>> labels = structural_labels(task, task.sample(4, seed=0), ranks=2)
    >>> list(labels)
    ['ancestor 1', 'ancestor 2', 'current node', 'parent', 'children', 'on path', 'distance to goal']
    >>> labels["current node"].free
    'the token at that position'
    """
    if task.name not in STRUCTURAL_TASKS:
        raise ConfigError(
            "task", f"no structural labels for {task.name!r}", allowed(STRUCTURAL_TASKS)
        )
    if isinstance(ranks, bool) or not isinstance(ranks, int) or ranks < 1:
        raise ConfigError("ranks", f"expected an int >= 1, got {ranks!r}")
    lab, seq = batch.labels, batch.seq_len
    path = lab["path"].long()
    current, left = _answer_steps(batch, path)
    out: dict[str, Quantity] = {}

    def add(name: str, kind: Kind, values: Tensor, defined: Tensor, **kw: Any) -> None:
        out[name] = Quantity(name=name, kind=kind, values=values, defined=defined, **kw)

    if task.name in ("tree-path", "graph-search"):
        chain = chain_labels(path, ranks)
        word = "ancestor {k}" if task.name == "tree-path" else "node {k} back"
        for k in range(1, ranks + 1):
            col = _everywhere(chain[:, k - 1], seq)
            add(word.format(k=k), "class", col, col >= 0, rank=k)
    cur_name = "current cell" if task.name == "maze" else "current node"
    add(cur_name, "class", current, current >= 0, free="the token at that position")
    rows = torch.arange(batch.batch_size)[:, None]
    safe = current.clamp_min(0)
    if task.name == "tree-path":
        parent = lab["parent"].long()  # [n, nodes]
        par = torch.where(current >= 0, parent[rows, safe], -1)
        add("parent", "class", par, par >= 0, free="the previous answer token")
        kids = (parent[:, None, :] == safe[:, :, None]).double()
        add("children", "multilabel", kids, current >= 0)
        on_path = lab["on_path"].double()
        add(
            "on path",
            "multilabel",
            _everywhere(on_path, seq),
            torch.ones_like(current, dtype=torch.bool),
        )
    elif task.name == "graph-search":
        every = torch.ones_like(current, dtype=torch.bool)
        add("reachable", "multilabel", _everywhere(lab["reachable"].double(), seq), every)
        to_goal = (lab["distance_to_goal"] > 0).double()
        add("ancestors of goal", "multilabel", _everywhere(to_goal, seq), every)
    else:
        every = torch.ones_like(current, dtype=torch.bool)
        add("on path", "multilabel", _everywhere(lab["on_path"].double(), seq), every)
    dist = "distance to target" if task.name == "maze" else "distance to goal"
    add(dist, "value", left, torch.isfinite(left))
    return out


def position_names(task: Task, batch: TaskBatch) -> list[str]:
    """A name per position: its task role where every example shares it ("goal",
    "answer step 0"), else its token where that is fixed (",", "|"), else its
    slot in the edge list ("edge 3 tail")."""
    names = [""] * batch.seq_len
    for attr, role in (("start_pos", "start"), ("origin_pos", "origin"), ("target_pos", "target")):
        if hasattr(task, attr):
            names[int(getattr(task, attr))] = role
    for role, where in task_roles(task, batch).items():
        if bool((where == where[0]).all()) and 0 <= int(where[0]) < batch.seq_len:
            names[int(where[0])] = names[int(where[0])] or role
    vocab = getattr(task, "vocab", None)
    n_edges = int(getattr(task, "max_edges", getattr(task, "n_edges", 0)))
    ends = ("parent", "child") if task.name == "tree-path" else ("tail", "head")
    for p in range(batch.seq_len):
        column = batch.inputs[:, p]
        if names[p]:
            continue
        if p < 3 * n_edges and p % 3 < 2:
            names[p] = f"edge {p // 3} {ends[p % 3]}"
        elif vocab is not None and bool((column == column[0]).all()):
            names[p] = str(vocab[int(column[0])])
    return names


# ---- probing ----------------------------------------------------------------------


def _cv_multilabel(features: Tensor, y: Tensor, *, folds: int, seed: int) -> Tensor:
    """Held-out set predictions [sites, n, nodes] (bool) of multi-output ridge probes."""
    out = torch.zeros(features.shape[0], *y.shape, dtype=torch.bool)
    for train, test in kfold_indices(y.shape[0], k=folds, seed=seed):
        std = standardize(features[:, train])
        probe = fit_ridge(std(features[:, train]), y[train])
        out[:, test] = probe.predict(std(features[:, test])) > 0.5
    return out


def _outcomes(
    q: Quantity, feats: Tensor, y: Tensor, truth: Tensor, folds: int, seed: int
) -> Tensor:
    """Per-example outcome [sites, n]: correct (class), node accuracy (sets), or
    squared error (values), of probes trained on `y` and scored against `truth`."""
    if q.kind == "multilabel":
        pred = _cv_multilabel(feats, y, folds=folds, seed=seed)
        return (pred == truth.bool()[None]).double().mean(-1)
    pred = cv_predictions(feats, y, is_class=q.kind == "class", folds=folds, seed=seed)
    if q.kind == "class":
        return (pred == truth[None]).double()
    return (pred - truth[None]).pow(2)


def _chance(q: Quantity, y: Tensor) -> float:
    if q.kind == "class":
        return float(torch.bincount(y).max()) / y.numel()
    if q.kind == "multilabel":
        rate = y.mean(0)
        return float(torch.maximum(rate, 1 - rate).mean())
    return 0.0


def _scores(kind: Kind, outcome: Tensor, y: Tensor, *, n_boot: int, seed: int) -> Tensor:
    """[rows, 3]: point score, bootstrap low and high, of per-example outcomes."""
    n = y.shape[0]
    r2 = kind == "value"

    def stat(idx: Tensor) -> Tensor:
        counts = torch.zeros(idx.shape[0], n, dtype=torch.float64)
        counts.scatter_add_(1, idx, torch.ones_like(idx, dtype=torch.float64))
        total = outcome @ counts.T  # [rows, boot]
        if not r2:
            return total / n
        mean = counts @ y / n
        ss_tot = counts @ y.pow(2) - n * mean.pow(2)
        return torch.where(ss_tot > 1e-12, 1 - total / ss_tot, torch.nan)

    if r2:
        ss = (y - y.mean()).pow(2).sum().clamp_min(1e-300)
        point = 1 - outcome.sum(1) / ss
    else:
        point = outcome.mean(1)
    low, high = bootstrap(stat, n, n_boot=n_boot, confidence=CONFIDENCE, seed=seed)
    return torch.stack([point, low, high], 1)


def _baseline(inputs: EvidenceInputs, name: str, pos: int, vocab: int) -> Tensor:
    """The richest search-free set not revealing `name`, plus the one-hots of the
    token at `pos` and at `pos - 1` [n, d]."""
    sets = [b for b in search_free_baselines(inputs) if name not in b.reveals]
    tok = inputs.tokens.long()
    local = [torch.nn.functional.one_hot(tok[:, pos], vocab).double()]
    if pos > 0:
        local.append(torch.nn.functional.one_hot(tok[:, pos - 1], vocab).double())
    return torch.cat([sets[-1].features, *local], 1) if sets else torch.cat(local, 1)


@dataclass(frozen=True, kw_only=True)
class StructuralTable:
    """Structural probe scores: one row per quantity × position × layer.

    Columns: quantity, rank, kind, metric ("accuracy", "node accuracy", "r2"),
    free (why it is free, "" if not), layer, pos, role, n (examples carrying the
    label there), value, ci_low, ci_high, chance, best_control (name),
    control (its score), control_high (highest control upper bound), baseline,
    baseline_high, clears (ci_low > max(control_high, chance)), beats_baseline.
    A quantity absent at a position, held by too few examples there (< 4 x folds)
    or constant there has no rows at that position.
    """

    rows: tuple[dict[str, Any], ...]
    n_layers: int
    task: str
    settings: dict[str, Any]

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(list(self.rows))

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "n_layers": self.n_layers,
            "settings": dict(self.settings),
            "rows": [dict(r) for r in self.rows],
        }


def _rows_at(
    q: Quantity, pos: int, role: str, inputs: EvidenceInputs, twins: Sequence[ActivationDataset],
    *, folds: int, seed: int, n_boot: int, vocab: int,
) -> list[dict[str, Any]]:  # fmt: skip
    keep = q.defined[:, pos]
    if q.kind == "multilabel":
        y = q.values[keep, pos]
    else:
        keep_y, y, _ = label_for({"y": q.values[:, pos]}, "y", None)
        keep = keep & keep_y
        y = label_for({"y": q.values[keep, pos]}, "y", None)[1]
    n = int(keep.sum())
    # Too few examples, or one value for all of them (nothing to decode): no row.
    if n < 4 * folds or bool((y == y[:1]).all()):
        return []
    model_x = inputs.at(pos).features[:, keep]
    n_layers = model_x.shape[0]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 1))
    parts = [
        _outcomes(q, model_x, y, y, folds, seed),
        *(_outcomes(q, _at(t, pos)[:, keep], y, y, folds, seed) for t in twins),
        _outcomes(q, model_x, y[perm], y, folds, seed),  # shuffled labels, true scoring
        _outcomes(q, _baseline(inputs, q.name, pos, vocab)[keep][None].float(), y, y, folds, seed),
    ]
    yv = y.double() if q.kind == "value" else y
    s = _scores(q.kind, torch.cat(parts), yv, n_boot=n_boot, seed=seed)
    model_s = s[:n_layers]
    controls = s[n_layers:-1].reshape(len(twins) + 1, n_layers, 3)
    names = [f"random-init seed {i}" for i in range(len(twins))] + ["shuffled labels"]
    base = s[-1]
    chance = _chance(q, y)
    metric = {"class": "accuracy", "multilabel": "node accuracy", "value": "r2"}[q.kind]
    rows = []
    for layer in range(n_layers):
        best = int(controls[:, layer, 0].argmax())
        bound = max(float(controls[:, layer, 2].max()), chance)
        low = float(model_s[layer, 1])
        rows.append(
            {
                "quantity": q.name, "rank": q.rank, "kind": q.kind, "metric": metric,
                "free": q.free, "layer": layer, "pos": pos, "role": role, "n": n,
                "value": float(model_s[layer, 0]), "ci_low": low,
                "ci_high": float(model_s[layer, 2]), "chance": chance,
                "best_control": names[best], "control": float(controls[best, layer, 0]),
                "control_high": float(controls[:, layer, 2].max()),
                "baseline": float(base[0]), "baseline_high": float(base[2]),
                "clears": low > bound, "beats_baseline": low > bound and low > float(base[2]),
            }
        )  # fmt: skip
    return rows


def _at(data: ActivationDataset, pos: int) -> Tensor:
    idx = [i for i, s in enumerate(data.sites) if s.pos == pos]
    return data.features[idx]


def structural_probes(
    model: Any,
    task: Task,
    *,
    twins: Sequence[Any],
    n_examples: int = 600,
    ranks: int = 4,
    positions: Sequence[int] | None = None,
    quantities: Sequence[str] | None = None,
    folds: int = 5,
    n_boot: int = 500,
    seed: int = 0,
    batch_size: int = 200,
    progress: bool | None = None,
) -> StructuralTable:
    """Probe every structural quantity at every layer and position (see the module docstring).

    twins: random-init twins of `model` (>= 1; the battery uses 5 seeds, e.g.
    `evidence.scorecard.twin_controls(config)`). positions: default every position.
    quantities: names from `structural_labels` (default all).
    """
    profile_for(task)
    if not twins:
        raise MesaInterpError("twins: expected at least one random-init twin")
    shape = model_shape(model)
    if any(model_shape(t) != shape for t in twins):
        raise MesaInterpError("twins: every random-init twin must have the model's shape")
    for name, value, lo in (("n_examples", n_examples, 4 * folds), ("folds", folds, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise ConfigError(name, f"expected an int >= {lo}, got {value!r}")
    starts = range(0, n_examples, batch_size)
    batches = [
        task.sample(min(batch_size, n_examples - s), seed=seed + i) for i, s in enumerate(starts)
    ]
    seq = batches[0].seq_len
    where = list(range(seq)) if positions is None else sorted(set(positions))
    bad = [p for p in where if not 0 <= p < seq]
    if bad:
        raise ConfigError("positions", f"{bad[0]} is not a position", f"0..{seq - 1}")
    per_batch = [structural_labels(task, b, ranks=ranks) for b in batches]
    names = list(per_batch[0]) if quantities is None else list(quantities)
    unknown = [q for q in names if q not in per_batch[0]]
    if unknown:
        raise ConfigError("quantities", f"unknown quantity {unknown[0]!r}", allowed(per_batch[0]))
    labels = {
        q: Quantity(**(asdict(per_batch[0][q]) | {
            "values": torch.cat([b[q].values for b in per_batch]),
            "defined": torch.cat([b[q].defined for b in per_batch]),
        }))
        for q in names
    }  # fmt: skip
    sites = probe_sites(shape, where)

    def read(m: Any) -> ActivationDataset:
        return collect_activations(m, batches, sites, progress=False)

    data = read(model)
    twin_data = [read(t) for t in twins]
    goal_pos, query_pos, decision_pos = declared_positions(task)
    inputs = EvidenceInputs(
        model=model, twins=tuple(twins), task=task, profile=profile_for(task),
        query_pos=query_pos, goal_pos=goal_pos, decision_pos=decision_pos,
        n_layers=shape.n_layers, data=data, twin_data=tuple(twin_data),
        tokens=torch.cat([b.inputs for b in batches]),
    )  # fmt: skip
    roles = position_names(task, batches[0])
    vocab = int(task.d_vocab)
    rows: list[dict[str, Any]] = []
    for pos in progress_bar(where, desc="structural probes", progress=progress):
        for q in labels.values():
            rows += _rows_at(q, pos, roles[pos], inputs, twin_data,
                             folds=folds, seed=seed, n_boot=n_boot, vocab=vocab)  # fmt: skip
    settings = {
        "n_examples": n_examples, "ranks": ranks, "folds": folds, "n_boot": n_boot,
        "seed": seed, "n_twins": len(twins), "site": "resid_post", "confidence": CONFIDENCE,
    }  # fmt: skip
    return StructuralTable(
        rows=tuple(rows), n_layers=shape.n_layers, task=task.name, settings=settings
    )
