"""The probe pipeline: probes per layer × position with controls, causal tests, files.

What `mesainterp probe` runs, callable from a notebook or a script:

    probes    a resumable sweep of probe units (`runs.probe_job`): held-out score ± se,
              random-init twin, shuffled labels, majority, selectivity per site
    causal    goal retargeting per layer (steer / ablate along the probe subspace vs
              random subspaces) for token tasks with a counterfactual family that
              changes the target; saved as one more unit, reused on resume
    files     probes.parquet/.csv/.json, causal.*, probes.png (summary),
              probes_heatmap.png and probes_curves.png (the shared probe figures)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.atomic import atomic_write
from mesainterp.errors import ConfigError
from mesainterp.model.build import model_shape
from mesainterp.probes.causal import probe_subspaces, retarget
from mesainterp.probes.controls import ProbeSpec, save_table
from mesainterp.probes.dataset import ActivationDataset, probe_sites
from mesainterp.prompts.positions import label_positions
from mesainterp.prompts.task import PromptData, PromptTask, task_for
from mesainterp.provenance_stamp import provenance
from mesainterp.report import write_run
from mesainterp.runs.executor import ExecutionStats, execute
from mesainterp.runs.plan import stable_hash
from mesainterp.runs.probe_job import ProbeJob, assemble_probe_table, collect_for_job, probe_plan
from mesainterp.runs.state import open_run
from mesainterp.tasks.base import Task
from mesainterp.zoo import LoadedModel, load_model, loaded_control_twin

__all__ = ["CausalOptions", "ProbeRun", "load_probe_model", "run_probe_pipeline"]


@dataclass(frozen=True, kw_only=True)
class CausalOptions:
    """The goal-retargeting tests run after the probes.

    pairs:     counterfactual pairs (clean goal A, corrupted goal B).
    positions: positions edited; None: from the task's goal position onward; (): all.
    n_random:  random-subspace draws, the control for the probe's subspace.
    """

    pairs: int = 256
    positions: tuple[int, ...] | None = None
    n_random: int = 5

    def __post_init__(self) -> None:
        for name, low in (("pairs", 2), ("n_random", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(name, f"expected an int >= {low}, got {value!r}")

    def identity(self) -> dict[str, Any]:
        positions = None if self.positions is None else list(self.positions)
        return {"pairs": self.pairs, "positions": positions, "n_random": self.n_random}


@dataclass(frozen=True, kw_only=True)
class ProbeRun:
    """What a probe run produced: the tables, how the causal tests went, the files."""

    table: pd.DataFrame
    causal: pd.DataFrame | None
    causal_note: str
    stats: ExecutionStats
    files: dict[str, Path]
    provenance: dict[str, Any] = field(default_factory=dict)


def load_probe_model(
    name: str, data: dict[str, Any] | None = None
) -> tuple[LoadedModel, Task, TransformerBridge]:
    """The model (`zoo.load_model`: zoo name, checkpoint or HF directory), the task its
    probe examples come from (the prompt file `data`, if given: `PromptData.to_dict()`),
    and its random-init control twin."""
    loaded = load_model(name)
    source = None if data is None else PromptData.from_dict(data)
    task = task_for(loaded, source, "generate probe examples from")
    return loaded, task, loaded_control_twin(loaded)


def _check_target(task: Task, target: str, seed: int) -> None:
    """Refuse a target the task (or the prompt file) has no label for, naming those it has."""
    if isinstance(task, PromptTask):
        names = task.label_names()
        if target not in names:
            raise ConfigError(
                "--target",
                f"{Path(task.data.path).name} has no numeric label column {target!r}",
                ", ".join(names) or "none: add a numeric label column",
            )
        return
    labels = task.sample(2, seed=seed).labels
    if target not in labels:
        raise ConfigError("target", f"the task has no label {target!r}", ", ".join(sorted(labels)))


def _checked_positions(name: str, positions: Sequence[int], seq_len: int) -> tuple[int, ...]:
    bad = [p for p in positions if not 0 <= p < seq_len]
    if bad:
        raise ConfigError(name, f"{bad} outside 0..{seq_len - 1}")
    return tuple(sorted(set(positions)))


def run_probe_pipeline(
    job: ProbeJob,
    out: str | Path,
    *,
    causal: CausalOptions | None = None,
    resume: bool = False,
    executor: str = "inprocess",
    workers: int = 2,
    ray_address: str | None = None,
    chunk_size: int = 8,
    command: list[str] | None = None,
) -> ProbeRun:
    """Run the probe sweep of `job` into `out`, then the causal tests (`causal`; None
    skips them), and write the tables and figures. `resume` reuses the units already
    in `out`. `command` is recorded in the provenance (the caller's command line)."""
    if job.data is not None:  # the file's problems are named before the model loads
        _check_target(PromptTask(PromptData.from_dict(job.data)), job.target, job.seed)
    checkpoint, task, _twin = load_probe_model(job.model, job.data)  # workers build their own
    model = checkpoint.model
    shape = model_shape(model)
    _check_target(task, job.target, job.seed)
    labels = task.position_labels if isinstance(task, PromptTask) else None
    positions = job.positions or tuple(range(task.seq_len))
    # Workers rebuild the sweep from the job: the model by absolute path or by name.
    job = replace(
        job,
        model=str(Path(job.model).resolve()) if Path(job.model).is_dir() else job.model,
        positions=_checked_positions("positions", positions, task.seq_len),
    )
    sites = probe_sites(shape, list(job.positions), kind=job.site_kind)
    spec = job.spec
    identity = {
        "command": "probe",
        "model_fingerprint": checkpoint.fingerprint,
        "job": job.to_dict(),
        "causal": None if causal is None else causal.identity(),
    }
    if isinstance(task, PromptTask):  # an edited file never reuses the old file's units
        identity["data_sha256"] = task.data.sha256
    state = open_run(out, identity=identity, resume=resume)
    plan = probe_plan(job, sites, chunk_size)
    stats = execute(
        job.worker_spec(), plan, state, executor=executor, workers=workers, address=ray_address
    )
    table, dataset_meta = assemble_probe_table(plan, state)
    if labels is not None:
        table["position_label"] = label_positions(labels, list(table["pos"]))
    prov = provenance(
        model_fingerprint=checkpoint.fingerprint,
        model_name=job.model,
        config={
            "task": task.config_dict(),
            "job": job.to_dict(),
            "causal": None if causal is None else causal.identity(),
        },
        seed=job.seed,
        command=command,
    )
    prov["run"] = stats.to_dict()
    table_prov = prov | {"probe_spec": asdict(spec), "dataset": dataset_meta}
    root = Path(out)
    files = save_table(table, root, stem="probes", provenance=table_prov)
    # The causal tests are one more unit: saved once, reused on resume.
    causal_key = f"causal-{stable_hash(state.identity)}"
    if state.has(causal_key):
        saved = state.load_unit(causal_key)[1]
        rows = saved["rows"]
        causal_table = None if rows is None else pd.DataFrame(rows, columns=saved["columns"])
        causal_note = saved["note"]
    else:
        data = None if causal is None else collect_for_job(job, task, model, sites)
        causal_table, causal_note = _causal(model, task, data, spec, causal, shape.n_layers)
        state.save_unit(causal_key, {}, {
            "rows": None if causal_table is None else causal_table.to_dict(orient="records"),
            "columns": None if causal_table is None else list(causal_table.columns),
            "note": causal_note,
        })  # fmt: skip
    if causal_table is not None:
        saved_causal = save_table(causal_table, root, stem="causal", provenance=prov)
        files |= {f"causal_{k}": v for k, v in saved_causal.items()}
    files |= _write_figures(table, causal_table, root, labels)
    if labels is not None:  # run.json, so the report names the file's positions
        entry = {"name": "probes", "kind": "probes", "path": "probes.parquet",
                 "position_labels": list(labels)}  # fmt: skip
        write_run(root, command=list(command or []), provenance=table_prov, results=[entry],
                  title=f"Probe for {job.target!r} on {checkpoint.name}")  # fmt: skip
    state.mark_complete()
    return ProbeRun(
        table=table,
        causal=causal_table,
        causal_note=causal_note,
        stats=stats,
        files=files,
        provenance=table_prov,
    )


def _write_figures(
    table: pd.DataFrame,
    causal: pd.DataFrame | None,
    root: Path,
    labels: Sequence[str] | None = None,
) -> dict[str, Path]:
    """The summary figure, and the shared probe figures: the layer × position grid and
    the control curves at the most selective position."""
    from mesainterp.viz.probe_summary import probe_summary_mpl
    from mesainterp.viz.probes import probe_curves, probe_heatmap

    best_pos = int(table.loc[table["selectivity"].idxmax(), "pos"])
    figures = {
        "figure": ("probes.png", probe_summary_mpl(table, causal)),
        "heatmap": (
            "probes_heatmap.png",
            probe_heatmap(table, position_labels=labels, backend="matplotlib"),
        ),
        "curves": ("probes_curves.png", probe_curves(table, pos=best_pos, backend="matplotlib")),
    }
    files = {}
    for key, (name, fig) in figures.items():
        atomic_write(root / name, partial(_save_png, fig))
        files[key] = root / name
    return files


def _save_png(fig: Any, path: Path) -> None:
    fig.savefig(path, dpi=130)


def _causal(
    model: Any,
    task: Task,
    data: ActivationDataset | None,
    spec: ProbeSpec,
    options: CausalOptions | None,
    n_layers: int,
) -> tuple[pd.DataFrame | None, str]:
    """Per-layer retargeting table, or None and the reason it does not apply."""
    if options is None or data is None:
        return None, "skipped (not requested)"
    y = data.labels.get(spec.target)
    if y is None or y.ndim != 1 or y.dtype.is_floating_point or spec.label_column is not None:
        return None, "skipped: target is not a 1-D class label"
    if isinstance(task, PromptTask):
        return None, "skipped: a prompt file's clean and corrupted rows share their labels"
    families = getattr(task, "counterfactual_families", ())
    if not families:
        return None, "skipped: task has no counterfactual family"
    pair = task.counterfactual_pairs(options.pairs, seed=spec.seed + 10_000)
    if pair.clean.inputs.dtype.is_floating_point:
        return None, "skipped: not a token task"
    if spec.target not in pair.corrupted.labels or bool(
        (pair.clean.labels[spec.target] == pair.corrupted.labels[spec.target]).any()
    ):
        return None, f"skipped: family {pair.family!r} does not change {spec.target!r}"
    goal_pos = int(getattr(task, "goal_pos", pair.clean.prompt_len - 1))
    if options.positions is None:
        wanted: Sequence[int] = range(goal_pos, pair.clean.seq_len)
    else:
        every = options.positions or range(pair.clean.seq_len)
        wanted = _checked_positions("causal_positions", every, pair.clean.seq_len)
    tables = []
    for layer in range(n_layers):
        idx = [i for i, s in enumerate(data.sites) if s.layer == layer and s.pos in wanted]
        if not idx:
            continue
        subs = probe_subspaces(data, spec.target, site_indices=idx, C=spec.C)
        tables.append(
            retarget(
                model, pair, subs, target=spec.target, n_random=options.n_random, seed=spec.seed
            )
        )
    if not tables:
        return None, "skipped: no probed site at the causal positions"
    table = pd.concat(tables, ignore_index=True)
    return table, f"family {pair.family!r}, {options.pairs} pairs"
