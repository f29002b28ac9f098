"""Linear probes for goal representations, with controls and causal tests.

activation datasets over `Site`s (`probe_sites`, `collect_activations`) → batched probes over every site
(`fit_logistic`, `fit_ridge`, `fit_multilabel`, `cross_validate`) → tables with
controls (`run_probes`) → causal tests of the probe direction (`retarget`).
"""

from mesainterp.probes.causal import ProbeSubspace, greedy_decode, probe_subspaces, retarget
from mesainterp.probes.controls import ProbeResult, ProbeSpec, run_probes, save_table
from mesainterp.probes.cv import CVScores, cross_validate, kfold_indices, majority_baseline
from mesainterp.probes.dataset import (
    ActivationDataset,
    check_probe_sites,
    collect_activations,
    probe_sites,
    task_batches,
    validate_hook_names,
)
from mesainterp.probes.linear import (
    LinearProbe,
    Standardizer,
    fit_logistic,
    fit_multilabel,
    fit_ridge,
    standardize,
)

__all__ = [
    "ActivationDataset",
    "CVScores",
    "LinearProbe",
    "ProbeResult",
    "ProbeSpec",
    "ProbeSubspace",
    "Standardizer",
    "check_probe_sites",
    "collect_activations",
    "cross_validate",
    "fit_logistic",
    "fit_multilabel",
    "fit_ridge",
    "greedy_decode",
    "kfold_indices",
    "majority_baseline",
    "probe_sites",
    "probe_subspaces",
    "retarget",
    "run_probes",
    "save_table",
    "standardize",
    "task_batches",
    "validate_hook_names",
]
