"""Front ends: patch a site set on raw inputs or on a task's counterfactual pair."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from transformer_lens.model_bridge import TransformerBridge

from mesainterp.patching.ablation import AblationKind, Direction, PatchSpec
from mesainterp.patching.engine import Method, SweepValues, run_sweep
from mesainterp.patching.metric_call import AnyMetric, as_batch_metric
from mesainterp.patching.results import PatchResult, build_table
from mesainterp.patching.stats import bootstrap_normalised, normalised_effect
from mesainterp.provenance_stamp import provenance
from mesainterp.shapes import ModelInput, ReferenceInput, shape_checked
from mesainterp.sites.site import Site

__all__ = ["patch", "patch_pair", "summarise"]


def summarise(
    values: SweepValues,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    prov: dict[str, Any] | None = None,
) -> PatchResult:
    """Normalise a sweep's raw values and attach seeded bootstrap intervals."""
    effect = normalised_effect(values.patched, values.clean, values.corrupted)
    low, high = bootstrap_normalised(
        values.patched,
        values.clean,
        values.corrupted,
        n_boot=n_boot,
        confidence=confidence,
        seed=seed,
    )
    n = int(values.patched.shape[1])
    table = build_table(values.sites, effect, low, high, values.patched.mean(dim=1), n)
    block = dict(prov or {})
    block.setdefault("patching", {})
    block["patching"] = {
        **block["patching"],
        **values.spec.to_dict(),
        "method": values.method,
        "fallback_reason": values.fallback_reason,
        "n_boot": n_boot,
        "confidence": confidence,
        "bootstrap_seed": seed,
        "clean_mean": float(values.clean.mean()),
        "corrupted_mean": float(values.corrupted.mean()),
    }
    return PatchResult(
        table=table,
        sites=values.sites,
        patched=values.patched,
        clean=values.clean,
        corrupted=values.corrupted,
        provenance=block,
    )


@shape_checked
def patch(
    model: TransformerBridge,
    sites: Sequence[Site],
    *,
    clean: ModelInput,
    corrupted: ModelInput,
    metric: AnyMetric,
    batch: Any = None,
    direction: Direction = "denoising",
    ablation: AblationKind = "resample",
    reference: ReferenceInput | None = None,
    method: Method = "auto",
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    model_name: str | None = None,
    metric_name: str | None = None,
    progress: bool = False,
) -> PatchResult:
    """Patch every site of `sites` and summarise: normalised effects, CIs, provenance.

    `metric(logits, batch)` or `metric(logits)` gives one value per example, higher =
    more clean-like.

    >>> model = mesainterp.build_model(mesainterp.ModelConfig(
    ...     n_layers=1, d_model=16, n_heads=2, d_head=8, d_mlp=32, d_vocab=11, n_ctx=8, seed=0))
    >>> pairs = mesainterp.PromptPairs.from_token_ids(
    ...     [[5, 1, 2], [6, 1, 2], [7, 3, 2], [8, 3, 2]],  # clean prompts
    ...     [[6, 1, 2], [5, 1, 2], [8, 3, 2], [7, 3, 2]],  # corrupted: first token swapped
    ...     [5, 6, 7, 8], [6, 5, 8, 7])                     # clean and corrupted answers
    >>> pair = pairs.to_pair()
    >>> sites = mesainterp.named_sites("resid", mesainterp.model_shape(model), seq_len=3)
    >>> result = mesainterp.patch(model, sites, clean=pair.clean.inputs,
    ...     corrupted=pair.corrupted.inputs, metric=pairs.default_metric(), batch=pair.clean)
    >>> list(result.table.columns)
    ['kind', 'layer', 'head', 'position', 'value', 'ci_low', 'ci_high', 'n', 'raw_mean']
    >>> result.table[["position", "value"]].round(2).values.tolist()  # only the swapped token matters
    [[0, 1.0], [1, 0.0], [2, 0.0]]
    """
    spec = PatchSpec(direction=direction, ablation=ablation)
    values = run_sweep(
        model,
        sites,
        clean=clean,
        corrupted=corrupted,
        metric=as_batch_metric(metric),
        batch=batch,
        spec=spec,
        reference=reference,
        method=method,
        progress=progress,
    )
    prov = provenance(model=model, model_name=model_name, seed=seed)
    prov["patching"] = {
        "metric": metric_name or getattr(metric, "__qualname__", type(metric).__name__),
        "n_sites": len(values.sites),
        "input_shape": list(clean.shape),
    }
    return summarise(values, n_boot=n_boot, confidence=confidence, seed=seed, prov=prov)


def patch_pair(
    model: TransformerBridge,
    pair: Any,
    sites: Sequence[Site],
    *,
    metric: AnyMetric,
    **kwargs: Any,
) -> PatchResult:
    """`patch` on a task's `CounterfactualPair` (or `PromptPairs.to_pair()`); a two-argument
    metric is called with the clean batch.

    >>> model = mesainterp.build_model(mesainterp.ModelConfig(
    ...     n_layers=1, d_model=16, n_heads=2, d_head=8, d_mlp=32, d_vocab=11, n_ctx=8, seed=0))
    >>> pairs = mesainterp.PromptPairs.from_token_ids(
    ...     [[5, 1, 2], [6, 1, 2], [7, 3, 2], [8, 3, 2]],  # clean prompts
    ...     [[6, 1, 2], [5, 1, 2], [8, 3, 2], [7, 3, 2]],  # corrupted: first token swapped
    ...     [5, 6, 7, 8], [6, 5, 8, 7])                     # clean and corrupted answers
    >>> pair = pairs.to_pair()
    >>> heads = mesainterp.named_sites("heads", mesainterp.model_shape(model))
    >>> result = mesainterp.patch_pair(model, pair, heads, metric=pairs.default_metric())
    >>> result.table[["kind", "layer", "head", "value"]].round(2).values.tolist()
    [['z', 0, 0, 0.73], ['z', 0, 1, 0.27]]
    """
    return patch(
        model,
        sites,
        clean=pair.clean.inputs,
        corrupted=pair.corrupted.inputs,
        metric=metric,
        batch=pair.clean,
        **kwargs,
    )
