"""The default analysis of a shipped model: what `make demo` runs.

It is the composition of the scripted commands, run in-process so each step is
exactly what its own command would do. Each step records the demo's command plus
`--step NAME`, the command that reruns just that step:

    patch    resid sweep (layer × position) and per-head sweep, with bootstrap CIs
    probe    the goal probe at every layer × position, random-init and shuffled controls,
             goal retargeting against random directions
    search   a circuit (EAP-IG top-n edges) with faithfulness under three ablations
    overlays the task drawn with the model's path, the top circuit head's attention
             and the goal decoded at each layer

and one self-contained report over all of it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mesainterp.errors import ConfigError
from mesainterp.provenance_stamp import provenance

__all__ = ["STEPS", "DemoPlan", "demo_steps", "run_demo"]

_HEAD = re.compile(r"^L?(\d+)H(\d+)$|^a(\d+)\.h(\d+)")


@dataclass(frozen=True, kw_only=True)
class DemoPlan:
    """Sizes of the default analysis; `quick` ones keep a test run short."""

    model: str = "tree-path"
    n_pairs: int = 64
    n_probe_examples: int = 1000
    causal_pairs: int = 64
    random_draws: int = 3
    n_boot: int = 500
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_pairs", "n_probe_examples", "causal_pairs", "random_draws", "n_boot"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 2:
                raise ConfigError(name, f"expected an int >= 2, got {value!r}")

    @classmethod
    def quick(cls, model: str = "tree-path") -> DemoPlan:
        return cls(
            model=model,
            n_pairs=16,
            n_probe_examples=400,
            causal_pairs=16,
            random_draws=2,
            n_boot=200,
        )


# run_command(step name, argv of the subcommand) runs one step in-process.
Step = Callable[[str, list[str]], Any]


def _search_config(plan: DemoPlan) -> str:
    return f"""# Written by `mesainterp demo`: the circuit search the report shows.
[model]
zoo = "{plan.model}"

[search]
method = "eap-ig"
ig_steps = 5
top_n = 40
metric = "task"
ablation = "resample"
n_examples = {plan.n_pairs}
seed = {plan.seed}

[faithfulness]
ablations = ["resample", "mean", "zero"]
curve_k = [5, 10, 20, 40, 80]
n_boot = {plan.n_boot}
"""


def _top_head(circuit: dict[str, Any]) -> tuple[int, int] | None:
    """The head node of the circuit with the largest total |edge score|."""
    weight: dict[tuple[int, int], float] = {}
    for edge in circuit.get("edges", []):
        score = abs(float(edge.get("score", 0.0)))
        for end in (edge.get("source"), edge.get("target")):
            match = _HEAD.match(str(end or ""))
            if match:
                groups = [g for g in match.groups() if g is not None]
                key = (int(groups[0]), int(groups[1]))
                weight[key] = weight.get(key, 0.0) + score
    return max(weight, key=lambda k: weight[k]) if weight else None


STEPS: tuple[str, ...] = ("patch-resid", "patch-heads", "probe-goal", "circuit")


def demo_steps(plan: DemoPlan, out: str | Path) -> dict[str, list[str]]:
    """The subcommand argv of each named step, in the order they run."""
    root = Path(out)
    common = ["--seed", str(plan.seed)]
    return {
        "patch-resid": ["patch", plan.model, "--sites", "resid", "--out", str(root / "patch-resid"),
                        "--n", str(plan.n_pairs), "--n-boot", str(plan.n_boot), *common],
        "patch-heads": ["patch", plan.model, "--sites", "heads", "--out", str(root / "patch-heads"),
                        "--n", str(plan.n_pairs), "--n-boot", str(plan.n_boot), *common],
        "probe-goal": ["probe", plan.model, "--target", "goal", "--out", str(root / "probe-goal"),
                       "--n-examples", str(plan.n_probe_examples),
                       "--causal-pairs", str(plan.causal_pairs),
                       "--n-random", str(plan.random_draws), *common],
        "circuit": ["search", str(root / "search.toml"), "--out", str(root / "circuit"),
                    "--no-report"],
    }  # fmt: skip


def run_demo(
    plan: DemoPlan,
    out: str | Path,
    *,
    run_command: Step,
    only: str | None = None,
    command: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Run every step into `out` and build `out/report.html`; returns the file map.

    `run_command(name, argv)` runs one `mesainterp` subcommand in-process (the CLI
    passes its own dispatcher, which records the step's name). `only` runs one step
    and no report. `command` is the demo's own command, recorded in `run.json`.
    """
    if only is not None and only not in STEPS:
        raise ConfigError("step", f"unknown demo step {only!r}", ", ".join(STEPS))
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    steps = demo_steps(plan, root)
    (root / "search.toml").write_text(_search_config(plan))
    for name, argv in steps.items():
        if only in (None, name):
            run_command(name, argv)
    if only is not None:
        argv = steps[only]
        return {only: Path(argv[argv.index("--out") + 1])}

    circuit = json.loads((root / "circuit" / "circuit.json").read_text())
    figures = _draw_overlays(plan, root, circuit)
    results: list[Any] = [
        {"name": "resid", "kind": "patching", "path": "patch-resid/results.parquet",
         "title": "Residual stream patching (denoising, layer × position)"},
        {"name": "heads", "kind": "patching", "path": "patch-heads/results.parquet", "x": "head",
         "title": "Per-head patching (all positions)"},
        {"name": "goal-probe", "kind": "probes", "path": "probe-goal/probes.parquet",
         "target": "goal", "title": "Goal probe with random-init and shuffled-label controls"},
        {"name": "retargeting", "kind": "table", "path": "probe-goal/causal.csv",
         "title": "Goal retargeting: probe subspace vs random subspaces of equal size"},
        {"name": "circuit", "kind": "circuit", "path": "circuit/circuit.json",
         "title": "Circuit found by EAP-IG"},
        {"name": "faithfulness", "kind": "table", "path": "circuit/faithfulness.csv",
         "title": "Faithfulness and completeness under resample, mean and zero ablation"},
        *({"name": name, "kind": "figure", "path": path} for name, path in figures.items()),
    ]  # fmt: skip
    results = [r for r in results if (root / r["path"]).exists()]
    from mesainterp.report import write_report, write_run

    stamp = provenance(model_name=plan.model, config={"demo": plan.__dict__}, seed=plan.seed)
    commands = [["mesainterp", *argv] for argv in steps.values()]
    stamp["steps"] = commands
    write_run(
        root,
        command=list(command) if command else ["mesainterp", "demo", "--out", str(root)],
        provenance=stamp,
        results=results,
        title=f"Default analysis of the shipped {plan.model} model",
    )
    page, _ = write_report(root)
    return {"report": page, "run": root / "run.json"}


def _draw_overlays(plan: DemoPlan, root: Path, circuit: dict[str, Any]) -> dict[str, str]:
    """The task overlays: drawn from one held-out example of the model's task."""
    from mesainterp.demo.overlays import overlay_data
    from mesainterp.model.build import model_shape
    from mesainterp.probes.dataset import collect_activations, probe_sites, task_batches
    from mesainterp.viz import instance_figure, instance_small_multiples, save_static
    from mesainterp.zoo.loader import load_model

    loaded = load_model(plan.model)
    task = loaded.require_task("draw overlays of")
    if not hasattr(task, "n_nodes"):
        return {}
    model = loaded.model
    head = _top_head(circuit) or (model.cfg.n_layers - 1, 0)
    example = task.sample(1, seed=plan.seed + 10_000)
    query = example.prompt_len - 1
    sites = probe_sites(model_shape(model), [query])
    batches = task_batches(task, plan.n_probe_examples, batch_size=250, seed=plan.seed)
    data = collect_activations(model, batches, sites)
    example_data = collect_activations(model, [example], sites)
    overlay = overlay_data(
        model, example, data, example_data.features[:, 0, :], head=head, n_nodes=task.n_nodes
    )
    figures_dir = root / "figures"
    layer, head_index = overlay.head
    drawn = {
        "overlay-path-attention": instance_figure(
            overlay.instance,
            model_path=overlay.model_path,
            intensity=overlay.attention,
            title=f"Model path; attention of L{layer}H{head_index} from the answer position",
        ),
        "overlay-decoded-goal": instance_small_multiples(
            overlay.instance,
            overlay.decoded_goal,
            title=f"Goal decoded by a linear probe at position {query}, layer by layer",
        ),
    }
    paths = {}
    for name, fig in drawn.items():
        save_static(fig, figures_dir / name, formats=("svg",))
        paths[name] = f"figures/{name}.svg"
    return paths
