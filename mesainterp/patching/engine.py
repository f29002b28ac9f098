"""The patching engine: one loop over any site set.

For every site, the base run is repeated with that site's activation replaced and the
metric is read per example. "Resid by layer", "heads by position", "MLP by position"
are only different site sets. Two interchangeable back ends:

    fast   `FastForward`: no hooks, no grad, restarts at the patched layer and
           position from the cached base run (native bridges only).
    hooks  one bridge forward per site under `hook_context` (any bridge); also the
           fallback whenever the fast path refuses a model.

`method="auto"` takes the fast path when it applies, and checks its base-run logits
against the bridge's before trusting it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import torch
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
from mesainterp.progress import progress_bar
from mesainterp.sites.site import Site
from mesainterp.sites.sweeps import unique_hook_names, validate_sites

__all__ = ["METHODS", "Method", "SweepValues", "capture", "run_sweep", "site_hooks"]

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
def capture(
    model: TransformerBridge, inputs: Tensor, names: Sequence[str]
) -> tuple[Tensor, dict[str, Tensor]]:
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
def run_sweep(
    model: TransformerBridge,
    sites: Sequence[Site],
    *,
    clean: Tensor,
    corrupted: Tensor,
    metric: MetricFn,
    batch: Any = None,
    spec: PatchSpec | None = None,
    reference: Tensor | None = None,
    method: Method = "auto",
    progress: bool | None = None,
) -> SweepValues:
    """Patch every site and read `metric(logits, batch)` per example.

    clean, corrupted: model inputs of identical shape (tokens or embeddings).
    reference:        inputs whose activations give mean/pos_mean ablations
                      (default: clean and corrupted together).
    """
    spec = spec or PatchSpec()
    if method not in METHODS:
        raise ConfigError("method", f"got {method!r}", allowed(METHODS))
    if clean.shape != corrupted.shape:
        raise MesaInterpError(
            f"clean and corrupted inputs differ in shape: {tuple(clean.shape)} vs "
            f"{tuple(corrupted.shape)}"
        )
    # Inputs go to the model (device, and dtype for embeddings); the model never moves.
    clean, corrupted = to_model(model, clean), to_model(model, corrupted)
    reference = None if reference is None else to_model(model, reference)
    n, seq_len = int(clean.shape[0]), int(clean.shape[1])
    site_list = validate_sites(sites, model_shape(model), seq_len=seq_len)
    names = unique_hook_names(site_list)

    denoising = spec.direction == "denoising"
    base_input = corrupted if denoising else clean
    clean_logits, clean_acts = capture(model, clean, names)
    corrupted_logits, corrupted_acts = capture(model, corrupted, names)
    base_logits, base_acts = (
        (corrupted_logits, corrupted_acts) if denoising else (clean_logits, clean_acts)
    )
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
    clean_values = _metric_values(metric, clean_logits, batch, n)
    corrupted_values = _metric_values(metric, corrupted_logits, batch, n)

    reason = unsupported_reason(model) if method != "hooks" else "hooks requested"
    fast: FastForward | None = None
    if method != "hooks" and reason is None:
        fast = FastForward(model)
        entries = {(site.block, entry_point(site)) for site in site_list}
        state = fast.run_base(
            base_input,
            keep_z={layer for layer, entry in entries if entry == "z"},
            keep_mid={layer for layer, entry in entries if entry == "mid"},
        )
        drift = float((state.logits - base_logits).abs().max())
        if drift > FAST_CHECK_TOL:
            reason = f"fast forward disagrees with the bridge by {drift:.2e}"
            fast = None
    if method == "fast" and fast is None:
        raise MesaInterpError(f"method 'fast' cannot run on this model: {reason}")

    base_values = corrupted_values if denoising else clean_values
    rows: list[Tensor] = []
    for site in progress_bar(site_list, desc="patching", unit="site", progress=progress):
        replacement = replacements[site.hook_name]
        if _is_noop(site, base_acts[site.hook_name], replacement):
            # Writing in the value already there changes nothing: the base run's
            # values are the answer (counterfactual pairs share most positions).
            rows.append(base_values)
            continue
        if fast is not None:
            logits = fast.run_patched(state, site, replacement)
        else:
            logits = _hooked_run(model, base_input, site, replacement)
        rows.append(_metric_values(metric, logits, batch, n))
    return SweepValues(
        sites=site_list,
        patched=torch.stack(rows),
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


def site_hooks(site: Site, replacement: Tensor) -> list[tuple[str, Any]]:
    """Forward hooks that patch `site` on a bridge.

    A bridge's `hook_resid_mid` is the input hook of the second LayerNorm, so a patch
    there alone changes only the MLP's input, not the residual stream that skips past
    the MLP. To patch the stream itself (as HookedTransformer did), the same change is
    also added to the block's output.
    """

    def fn(act: Tensor, *, hook: Any) -> Tensor:
        return apply_site(site, act, replacement)

    if site.kind != "resid_mid":
        return [(site.hook_name, fn)]
    delta: dict[str, Tensor] = {}

    def mid(act: Tensor, *, hook: Any) -> Tensor:
        new = apply_site(site, act, replacement)
        delta["d"] = new - act
        return new

    def post(act: Tensor, *, hook: Any) -> Tensor:
        return act + delta.pop("d")

    return [(site.hook_name, mid), (f"blocks.{site.layer}.hook_resid_post", post)]


def _hooked_run(
    model: TransformerBridge, inputs: Tensor, site: Site, replacement: Tensor
) -> Tensor:
    with hook_context(model, fwd=site_hooks(site, replacement)):
        return model(inputs)
