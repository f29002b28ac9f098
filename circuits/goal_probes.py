"""The goal-probe section of a path model's circuit card.

Where the goal becomes linearly decodable (logistic probes on the residual stream
after each layer, at the goal token and at the last prompt token, with random-init,
shuffled-label and majority controls), and whether steering the residual stream
along the probe subspace retargets the model to another goal (share of pairs whose
greedy answer becomes goal B's exact path, probe vs random subspaces of the same rank).
Uses only the public `mesainterp.probes` API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from mesainterp import zoo
from mesainterp.model.build import model_shape
from mesainterp.probes import (
    ProbeSpec,
    collect_activations,
    probe_sites,
    probe_subspaces,
    retarget,
    run_probes,
    task_batches,
)

__all__ = ["GOAL_LABELS", "GoalProbes", "goal_probe_lines", "goal_probes"]

# The label that names the goal, and the position of the goal token, per path task.
GOAL_LABELS: dict[str, tuple[str, str]] = {
    "tree-path": ("goal", "goal_pos"),
    "tree-path-brinkmann": ("goal", "goal_pos"),
    "maze": ("target", "target_pos"),
    "maze-4x4": ("target", "target_pos"),
}


@dataclass(frozen=True, kw_only=True)
class GoalProbes:
    target: str
    positions: dict[int, str]
    probes: pd.DataFrame  # one row per (layer, pos), with controls
    first_decodable: dict[int, int | None]  # position -> first decodable layer
    steering: pd.DataFrame  # layer, direction, value, ci_low, ci_high (to_b under steer)
    params: dict[str, Any]


def goal_probes(
    name: str, *, n_examples: int = 300, n_pairs: int = 32, n_random: int = 2, seed: int = 0
) -> GoalProbes:
    """Probe and retarget the goal of zoo model `name` (a path task)."""
    target, pos_attr = GOAL_LABELS[name]
    torch.manual_seed(seed)
    model = zoo.load(name).model.eval()
    twin = zoo.random_init(name, seed=seed)
    task = zoo.load_task(name)
    shape = model_shape(model)
    positions = {int(getattr(task, pos_attr)): "goal token", task.prompt_len - 1: "last prompt"}
    sites = probe_sites(shape, list(positions), kind="resid_post")

    def collect(m: Any) -> Any:
        batches = task_batches(task, n_examples, batch_size=200, seed=seed)
        return collect_activations(m, batches, sites)

    data = collect(model)
    spec = ProbeSpec(target=target, folds=4, seed=seed)
    table = run_probes(data, spec, random_init=collect(twin)).table.copy()
    controls = table[["random_init", "shuffled", "majority"]].max(axis=1)
    table["decodable"] = table["value"] - 2 * table["se"] > controls
    first: dict[int, int | None] = {}
    for pos in positions:
        layers = table[(table["pos"] == pos) & table["decodable"]]["layer"]
        first[pos] = int(layers.min()) if len(layers) else None
    pair = task.counterfactual_pairs(n_pairs, seed=10_000 + seed)
    rows = []
    for layer in range(shape.n_layers):
        index = [i for i, s in enumerate(data.sites) if s.layer == layer]
        subspaces = probe_subspaces(data, target, site_indices=index)
        rows.append(
            retarget(
                model,
                pair,
                subspaces,
                target=target,
                interventions=("steer",),
                n_random=n_random,
                seed=seed,
            )
        )
    causal = pd.concat(rows, ignore_index=True)
    steer = causal[(causal["metric"] == "to_b") & (causal["intervention"] == "steer")]
    steering = steer[["layer", "direction", "value", "ci_low", "ci_high"]].reset_index(drop=True)
    params = {"n_examples": n_examples, "n_pairs": n_pairs, "n_random": n_random, "seed": seed,
              "folds": 4}  # fmt: skip
    return GoalProbes(target=target, positions=positions, probes=table, first_decodable=first,
                      steering=steering, params=params)  # fmt: skip


def _ci(value: float, low: float, high: float) -> str:
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def goal_probe_lines(name: str, gp: GoalProbes) -> list[str]:
    """The card section as markdown lines."""
    p = gp.params
    lines = [
        "## Goal probes (measured by circuits/goal_probes.py)",
        "",
        f"Logistic probes for the `{gp.target}` label on `resid_post` of every layer "
        f"({p['n_examples']} examples, {p['folds']}-fold held-out accuracy, seed {p['seed']}); "
        "a site counts as decodable when its accuracy minus 2 standard errors beats the "
        "best control (same probe on the random-init twin, shuffled labels, majority class).",
        "",
        "| position | first decodable layer | accuracy there | best control there |",
        "|---|---|---|---|",
    ]
    t = gp.probes
    for pos, label in gp.positions.items():
        layer = gp.first_decodable[pos]
        if layer is None:
            lines.append(f"| {pos} ({label}) | never | | |")
            continue
        row = t[(t["pos"] == pos) & (t["layer"] == layer)].iloc[0]
        ctrl = max(row["random_init"], row["shuffled"], row["majority"])
        lines.append(f"| {pos} ({label}) | {layer} | {row['value']:.3f} ± {row['se']:.3f} | "
                     f"{ctrl:.3f} |")  # fmt: skip
    lines += [
        "",
        f"Retargeting: on {p['n_pairs']} pairs that share the input and differ in the goal, "
        "the clean run's residual stream at both probed positions is steered, at one layer, "
        "to goal B's class mean inside the probe subspace; the cell is the share of pairs "
        "whose greedy answer becomes goal B's exact path (probe: Wilson 95% interval; random "
        f"subspaces of the same rank: mean of {p['n_random']} draws, t-interval).",
        "",
        "| layer | probe subspace | random subspaces |",
        "|---|---|---|",
    ]
    s = gp.steering
    for layer in sorted(s["layer"].unique()):
        probe = s[(s["layer"] == layer) & (s["direction"] == "probe")].iloc[0]
        rand = s[(s["layer"] == layer) & (s["direction"] == "random")].iloc[0]
        lines.append(
            f"| {layer} | {_ci(probe['value'], probe['ci_low'], probe['ci_high'])} | "
            f"{_ci(rand['value'], rand['ci_low'], rand['ci_high'])} |"
        )
    return [*lines, ""]
