"""Probe sweeps with their controls, as one tidy table.

Every probe score is reported beside: the same probe on a random-init twin's
activations, on shuffled labels (selectivity = score − shuffled score, Hewitt &
Liang 2019) and the constant (majority-class / mean) predictor on the same folds.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import pandas as pd
import torch
from torch import Tensor

from mesainterp.errors import ConfigError, allowed
from mesainterp.probes.cv import CVScores, ProbeKind, cross_validate, majority_baseline
from mesainterp.probes.dataset import ActivationDataset
from mesainterp.progress import progress_bar

__all__ = [
    "TABLE_COLUMNS",
    "ProbeResult",
    "ProbeSpec",
    "infer_kind",
    "prepare_target",
    "run_probes",
    "save_table",
]

TABLE_COLUMNS = (
    "layer",
    "pos",
    "hook",
    "target",
    "kind",
    "metric",
    "value",
    "se",
    "random_init",
    "random_init_se",
    "shuffled",
    "shuffled_se",
    "majority",
    "selectivity",
    "n",
    "folds",
    "reg",
)

KindOrAuto = Literal["auto", "logistic", "ridge", "multilabel"]


@dataclass(frozen=True, kw_only=True)
class ProbeSpec:
    """What to probe for and how.

    target:        label name in the dataset (e.g. "goal", "depth", "on_path", "w").
    kind:          "auto" picks ridge for float labels, multilabel for bool/0-1
                   labels of 2 or more dimensions (each entry one label), logistic
                   for 1-D integer labels.
    label_column:  take one column of a 2-D label (e.g. column 1 of "path").
    C:             inverse L2 strength of logistic probes (sklearn's C).
    alpha:         L2 strength of ridge probes (sklearn's alpha).

    >>> mesainterp.ProbeSpec(target="depth", kind="ridge", folds=2)
    ProbeSpec(target='depth', kind='ridge', label_column=None, C=1.0, alpha=1.0, folds=2, seed=0, shuffle_seed=1)
    >>> mesainterp.ProbeSpec(target="depth", kind="svm")
    Traceback (most recent call last):
    ...
    mesainterp.errors.ConfigError: kind: got 'svm' (allowed: ...)
    """

    target: str
    kind: KindOrAuto = "auto"
    label_column: int | None = None
    C: float = 1.0
    alpha: float = 1.0
    folds: int = 5
    seed: int = 0
    shuffle_seed: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.target, str) or not self.target:
            raise ConfigError("target", f"expected a label name, got {self.target!r}")
        if self.kind not in get_args(KindOrAuto):
            raise ConfigError("kind", f"got {self.kind!r}", allowed(get_args(KindOrAuto)))
        for name in ("C", "alpha"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not v > 0:
                raise ConfigError(name, f"expected a positive number, got {v!r}")
        if not isinstance(self.folds, int) or self.folds < 2:
            raise ConfigError("folds", f"expected an int >= 2, got {self.folds!r}")
        if self.label_column is not None and (
            not isinstance(self.label_column, int) or self.label_column < 0
        ):
            raise ConfigError(
                "label_column", f"expected a non-negative int, got {self.label_column!r}"
            )


def infer_kind(y: Tensor) -> ProbeKind:
    if y.dtype.is_floating_point:
        return "ridge"
    if y.ndim >= 2:  # e.g. an adjacency matrix per example: each entry one label
        return "multilabel"
    return "logistic"


def prepare_target(data: ActivationDataset, spec: ProbeSpec) -> tuple[Tensor, ProbeKind, Tensor]:
    """The label tensor, the probe kind, and a mask of usable rows (label present)."""
    y = data.label(spec.target)
    if spec.label_column is not None:
        if y.ndim != 2 or spec.label_column >= y.shape[1]:
            raise ConfigError(
                "label_column", f"{spec.target!r} has shape {tuple(y.shape)}", "a column index"
            )
        y = y[:, spec.label_column]
    kind: ProbeKind = infer_kind(y) if spec.kind == "auto" else spec.kind
    if y.dtype == torch.bool:
        y = y.long()
    keep = torch.ones(y.shape[0], dtype=torch.bool)
    if kind == "logistic":
        if y.ndim != 1:
            raise ConfigError(
                "kind", f"logistic needs a 1-D label, {spec.target!r} is {tuple(y.shape)}"
            )
        keep = y >= 0  # padded entries (-1) carry no label
        y = y.long()
    elif kind == "ridge":
        y = y.to(torch.float64)
        keep = torch.isfinite(y.reshape(y.shape[0], -1)).all(1)
    return y, kind, keep


def _compact(y: Tensor) -> tuple[Tensor, int]:
    """Relabel class ids to 0..K-1 (absent ids would only add dead classes)."""
    values, inverse = torch.unique(y, return_inverse=True)
    return inverse, int(values.numel())


@dataclass(frozen=True, kw_only=True)
class ProbeResult:
    """The probe table (one row per site) plus the per-fold scores and provenance."""

    table: pd.DataFrame
    scores: CVScores
    shuffled: CVScores
    random_init: CVScores | None
    majority: CVScores
    provenance: dict[str, Any] = field(default_factory=dict)


def run_probes(
    data: ActivationDataset,
    spec: ProbeSpec,
    *,
    random_init: ActivationDataset | None = None,
    provenance: dict[str, Any] | None = None,
    progress: bool | None = None,
) -> ProbeResult:
    """Cross-validated probes for every site of `data`, with all controls.

    `random_init` holds the same sites over the same examples from a random-init
    twin of the model (same labels); without it that column is NaN. `progress`:
    bars over the probe and its controls (None: on unless MESAINTERP_NO_PROGRESS).

    >>> task = mesainterp.get_task("tree-path", n_nodes=6, max_depth=3)
    >>> model = mesainterp.build_model(mesainterp.ModelConfig(n_layers=1, d_model=16, n_heads=2,
    ...     d_head=8, d_mlp=32, d_vocab=task.d_vocab, n_ctx=task.seq_len, seed=0))
    >>> batches = [task.sample(16, seed=seed) for seed in (0, 1)]
    >>> sites = mesainterp.probe_sites(mesainterp.model_shape(model), [task.seq_len - 1])
    >>> data = mesainterp.collect_activations(model, batches, sites, progress=False)
    >>> spec = mesainterp.ProbeSpec(target="depth", kind="ridge", folds=2)
    >>> result = mesainterp.run_probes(data, spec, progress=False)
    >>> result.table[["layer", "pos", "target", "kind", "n", "folds"]].to_dict("records")
    [{'layer': 0, 'pos': ..., 'target': 'depth', 'kind': 'ridge', 'n': 32, 'folds': 2}]
    >>> [c for c in result.table.columns if c in ("value", "shuffled", "random_init", "majority")]
    ['value', 'random_init', 'shuffled', 'majority']
    """
    y, kind, keep = prepare_target(data, spec)
    feats = data.features[:, keep]
    y = y[keep]
    n_classes = None
    if kind == "logistic":
        y, n_classes = _compact(y)
        if n_classes < 2:
            raise ConfigError("target", f"{spec.target!r} has a single class over these examples")
    if random_init is not None and (random_init.sites != data.sites or random_init.n != data.n):
        raise ConfigError(
            "random_init", "must hold the same sites and number of examples as the dataset"
        )
    perm = torch.randperm(y.shape[0], generator=torch.Generator().manual_seed(spec.shuffle_seed))
    runs = {"probe": (feats, y), "shuffled": (feats, y[perm])}
    if random_init is not None:
        runs["random_init"] = (random_init.features[:, keep], y)
    found: dict[str, CVScores] = {}
    for name in progress_bar(list(runs), desc="probe + controls", progress=progress):
        x_run, y_run = runs[name]
        found[name] = cross_validate(
            x_run,
            y_run,
            kind=kind,
            C=spec.C,
            alpha=spec.alpha,
            k=spec.folds,
            seed=spec.seed,
            n_classes=n_classes,
            progress=progress,
        )
    scores, shuffled, rand = found["probe"], found["shuffled"], found.get("random_init")
    majority = majority_baseline(y, kind=kind, k=spec.folds, seed=spec.seed)
    maj = float(majority.mean[0])
    rows = []
    for i, site in enumerate(data.sites):
        value = float(scores.mean[i])
        rows.append(
            {
                "layer": site.layer,
                "pos": site.pos,
                "hook": site.hook_name,
                "target": spec.target
                if spec.label_column is None
                else f"{spec.target}[{spec.label_column}]",
                "kind": kind,
                "metric": scores.metric,
                "value": value,
                "se": float(scores.se[i]),
                "random_init": float(rand.mean[i]) if rand is not None else float("nan"),
                "random_init_se": float(rand.se[i]) if rand is not None else float("nan"),
                "shuffled": float(shuffled.mean[i]),
                "shuffled_se": float(shuffled.se[i]),
                "majority": maj,
                "selectivity": value - float(shuffled.mean[i]),
                "n": int(y.shape[0]),
                "folds": spec.folds,
                "reg": spec.alpha if kind == "ridge" else spec.C,
            }
        )
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    prov = dict(provenance or {}) | {"probe_spec": asdict(spec), "dataset": data.metadata}
    return ProbeResult(
        table=table,
        scores=scores,
        shuffled=shuffled,
        random_init=rand,
        majority=majority,
        provenance=prov,
    )


def save_table(
    table: pd.DataFrame, directory: str | Path, *, stem: str, provenance: dict[str, Any]
) -> dict[str, Path]:
    """Write `<stem>.parquet`, `<stem>.csv` and the JSON sidecar `<stem>.json`."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "parquet": out / f"{stem}.parquet",
        "csv": out / f"{stem}.csv",
        "json": out / f"{stem}.json",
    }
    from mesainterp.atomic import atomic_write, atomic_write_text

    atomic_write(paths["parquet"], lambda t: table.to_parquet(t, index=False))
    atomic_write(paths["csv"], lambda t: table.to_csv(t, index=False))
    sidecar = {"columns": list(table.columns), "rows": len(table), "provenance": provenance}
    atomic_write_text(paths["json"], json.dumps(sidecar, indent=2, default=str))
    return paths
