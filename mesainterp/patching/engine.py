"""The patching engine: one loop over any site set.

For every site, the base run is repeated with that site's activation replaced and the
metric is read per example. "Resid by layer", "heads by position", "MLP by position"
are only different site sets. Two interchangeable back ends:

    fast   `FastForward`: no hooks, no grad, restarts at the patched layer and
           position from the cached base run, on the models it implements.
    hooks  bridge forwards under `hook_context` (any bridge), several sites per
           forward stacked along the batch (`stacked.py`); also the exact fallback
           whenever the fast path refuses a model.

`method="auto"` takes the fast path when it applies, and checks its base-run logits
against the bridge's before trusting it. When it falls back it says so: a
`PatchingFallbackWarning` naming the reason, once per call, and the reason in the
result's provenance (`fallback_reason`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.errors import ConfigError, MesaInterpError, allowed
from mesainterp.model.build import model_shape
from mesainterp.model.placement import to_model
from mesainterp.patching.ablation import PatchSpec, replacement_from
from mesainterp.patching.fast import FastForward, entry_point, unsupported_reason
from mesainterp.patching.hooks import hook_context
from mesainterp.patching.metrics import MetricFn
from mesainterp.patching.setters import apply_site
from mesainterp.patching.stacked import (
    PatchingFallbackWarning,
    foreign_hooks,
    run_stacked,
    stack_size,
    stacked_hooks,
    stacks,
)
from mesainterp.progress import progress_bar
from mesainterp.shapes import ModelInput, ReferenceInput, shape_checked
from mesainterp.sites.site import Site
from mesainterp.sites.sweeps import unique_hook_names, validate_sites

__all__ = [
    "METHODS",
    "Method",
    "PatchingFallbackWarning",
    "SweepValues",
    "capture",
    "check_pair_shapes",
    "run_sweep",
    "site_hooks",
]

Method = Literal["auto", "fast", "hooks"]
METHODS: tuple[str, ...] = get_args(Method)
# The fast path must reproduce the bridge's base logits this closely to be trusted.
FAST_CHECK_TOL = 1e-4


@dataclass(frozen=True, kw_only=True)
class SweepValues:
    """Raw per-example metric values of a sweep, before normalisation."""

    sites: list[Site]
    patched: Tensor  # [n_sites, batch]
    clean: Tensor  # [batch]
    corrupted: Tensor  # [batch]
    spec: PatchSpec
    method: str  # the back end that ran: "fast" or "hooks"
    fallback_reason: str | None = None


@torch.no_grad()
@shape_checked
def capture(
    model: TransformerBridge, inputs: ModelInput, names: Sequence[str]
) -> tuple[Float[Tensor, "batch pos d_vocab_out"], dict[str, Float[Tensor, " batch ..."]]]:
    """One bridge forward caching only `names` (in the bridge's hook layout)."""
    store: dict[str, Tensor] = {}

    def make(name: str) -> Any:
        def fn(act: Tensor, *, hook: Any) -> None:
            store[name] = act.detach().clone()

        return fn

    with hook_context(model, fwd=[(name, make(name)) for name in names]):
        logits = model(inputs)
    return logits, store


def _metric_values(metric: MetricFn, logits: Tensor, batch: Any, n: int) -> Tensor:
    values = metric(logits, batch)
    if not isinstance(values, Tensor) or values.shape != (n,):
        shape = tuple(values.shape) if isinstance(values, Tensor) else type(values).__name__
        raise MesaInterpError(f"metric: expected one value per example, shape ({n},), got {shape}")
    return values.detach().float().cpu()


@torch.no_grad()
def check_pair_shapes(clean: Tensor, corrupted: Tensor) -> None:
    """Refuse clean and corrupted inputs of different shapes, before any forward pass."""
    if clean.shape != corrupted.shape:
        raise MesaInterpError(
            f"clean and corrupted inputs differ in shape: {tuple(clean.shape)} vs "
            f"{tuple(corrupted.shape)}"
        )


@shape_checked
def run_sweep(
    model: TransformerBridge,
    sites: Sequence[Site],
    *,
    clean: ModelInput,
    corrupted: ModelInput,
    metric: MetricFn,
    batch: Any = None,
    spec: PatchSpec | None = None,
    reference: ReferenceInput | None = None,
    method: Method = "auto",
    progress: bool | None = None,
    sites_per_forward: int | None = None,
) -> SweepValues:
    """Patch every site and read `metric(logits, batch)` per example.

    clean, corrupted:  model inputs of identical shape (tokens or embeddings).
    reference:         inputs whose activations give mean/pos_mean ablations
                       (default: clean and corrupted together).
    sites_per_forward: hook back end only: sites stacked into one forward (default:
                       as many as a token and logit budget allow; 1 while someone
                       else's hooks are installed).
    """
    spec = spec or PatchSpec()
    if method not in METHODS:
        raise ConfigError("method", f"got {method!r}", allowed(METHODS))
    if sites_per_forward is not None and (
        not isinstance(sites_per_forward, int) or sites_per_forward < 1
    ):
        raise ConfigError("sites_per_forward", f"got {sites_per_forward!r}", "an int >= 1")
    check_pair_shapes(clean, corrupted)
    # Inputs go to the model (device, and dtype for embeddings); the model never moves.
    clean, corrupted = to_model(model, clean), to_model(model, corrupted)
    reference = None if reference is None else to_model(model, reference)
    n, seq_len = int(clean.shape[0]), int(clean.shape[1])
    site_list = validate_sites(sites, model_shape(model), seq_len=seq_len)
    names = unique_hook_names(site_list)

    denoising = spec.direction == "denoising"
    base_input = corrupted if denoising else clean
    reason = unsupported_reason(model) if method != "hooks" else "hooks requested"
    # At real vocabularies the logits dominate memory: each run's metric is taken as soon
    # as it is captured, and only the base run's logits are kept, only for the fast
    # path's check against the bridge.
    clean_logits, clean_acts = capture(model, clean, names)
    clean_values = _metric_values(metric, clean_logits, batch, n)
    base_logits: Tensor | None = clean_logits if reason is None and not denoising else None
    del clean_logits
    corrupted_logits, corrupted_acts = capture(model, corrupted, names)
    corrupted_values = _metric_values(metric, corrupted_logits, batch, n)
    if reason is None and denoising:
        base_logits = corrupted_logits
    del corrupted_logits
    base_acts = corrupted_acts if denoising else clean_acts
    source_acts: dict[str, Tensor] = clean_acts if denoising else corrupted_acts
    if spec.needs_reference:
        ref = reference if reference is not None else torch.cat([clean, corrupted])
        _, source_acts = capture(model, ref, names)
    replacements = {
        name: replacement_from(
            spec.ablation, name=name, base_act=base_acts[name], source_act=source_acts.get(name)
        )
        for name in names
    }
    del clean_acts, corrupted_acts

    fast: FastForward | None = None
    if method != "hooks" and reason is None:
        fast = FastForward(model)
        entries = {(site.block, entry_point(site)) for site in site_list}
        state = fast.run_base(
            base_input,
            keep_z={layer for layer, entry in entries if entry == "z"},
            keep_mid={layer for layer, entry in entries if entry == "mid"},
        )
        assert base_logits is not None
        drift = float((state.logits - base_logits).abs().max())
        if drift > FAST_CHECK_TOL:
            reason = f"fast forward disagrees with the bridge by {drift:.2e}"
            fast = None
    base_logits = None
    if method == "fast" and fast is None:
        raise MesaInterpError(f"method 'fast' cannot run on this model: {reason}")

    if method == "auto" and fast is None:
        warnings.warn(
            f"exact patching falls back to the hook loop ({reason}); results are exact but slower",
            PatchingFallbackWarning,
            stacklevel=3,  # past the no_grad wrapper, to the caller
        )

    base_values = corrupted_values if denoising else clean_values
    rows: list[Tensor | None] = [None] * len(site_list)
    pending: list[int] = []
    for i, site in enumerate(site_list):
        if _is_noop(site, base_acts[site.hook_name], replacements[site.hook_name]):
            # Writing in the value already there changes nothing: the base run's
            # values are the answer (counterfactual pairs share most positions).
            rows[i] = base_values
        else:
            pending.append(i)
    if fast is not None:
        for i in progress_bar(pending, desc="patching", unit="site", progress=progress):
            site = site_list[i]
            logits = fast.run_patched(state, site, replacements[site.hook_name])
            rows[i] = _metric_values(metric, logits, batch, n)
    else:
        size = sites_per_forward or stack_size(model, n, seq_len, n_sites=len(pending))
        if foreign_hooks(model) is not None:
            size = 1  # a user's hook may assume the batch it was written for
        groups = list(stacks(pending, size))
        for group in progress_bar(groups, desc="patching", unit="forward", progress=progress):
            stacked = run_stacked(model, base_input, [site_list[i] for i in group], replacements)
            for slot, i in enumerate(group):
                rows[i] = _metric_values(metric, stacked[slot], batch, n)
            del stacked  # else two stacks of full-vocabulary logits live at the next forward
    return SweepValues(
        sites=site_list,
        patched=torch.stack([row for row in rows if row is not None]),
        clean=clean_values,
        corrupted=corrupted_values,
        spec=spec,
        method="fast" if fast is not None else "hooks",
        fallback_reason=None if fast is not None else reason,
    )


def _is_noop(site: Site, base_act: Tensor, replacement: Tensor) -> bool:
    """Whether patching `site` writes exactly the values the base run already has."""
    if site.kind == "resid_mid":
        return False  # patched through two hooks; keep it simple
    return bool(torch.equal(apply_site(site, base_act, replacement), base_act))


@shape_checked
def site_hooks(site: Site, replacement: Float[Tensor, " batch *act"]) -> list[tuple[str, Any]]:
    """Forward hooks that patch `site` on a bridge (see `stacked.stacked_hooks`)."""
    return stacked_hooks([site], {site.hook_name: replacement})
