"""Path patching: a sender's effect on the metric only through chosen receivers.

Wang et al. (2022, IOI), per sender:

1. Frozen run: the base input, with the sender's output set to its patch value and
   every other attention head's output (hook_z) and every MLP output frozen to the
   base run. Whatever reaches the receivers' inputs in this run reaches them only
   along direct paths from the sender. Record the receivers' inputs: a head's q, k or
   v; an MLP's output (computed from its changed input, recorded before freezing);
   the final residual for the logits.
2. Patched run: the base input, with only the receivers' recorded values written in;
   everything downstream of them is recomputed normally. The metric is read here.

Everything runs through `hook_context` on the bridge, so it works on any bridge.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.errors import ConfigError, MesaInterpError, allowed
from mesainterp.model.build import ModelShape, model_shape
from mesainterp.model.placement import to_model
from mesainterp.patching.ablation import AblationKind, Direction, PatchSpec, replacement_from
from mesainterp.patching.api import summarise
from mesainterp.patching.engine import SweepValues, capture, check_pair_shapes
from mesainterp.patching.hooks import hook_context
from mesainterp.patching.metric_call import AnyMetric, as_batch_metric
from mesainterp.patching.results import PatchResult
from mesainterp.patching.setters import apply_site
from mesainterp.provenance_stamp import provenance
from mesainterp.shapes import ModelInput, ReferenceInput, shape_checked
from mesainterp.sites.site import RECEIVER_KINDS, SENDER_KINDS, ReceiverKind, Site
from mesainterp.sites.sweeps import heads_of, validate_sites

__all__ = ["RECEIVER_KINDS", "Receiver", "path_patch", "run_path_sweep"]

_FINAL = Site(kind="logits").hook_name


def Receiver(*, kind: ReceiverKind, layer: int | None = None, head: int | None = None) -> Site:
    """Where a path ends, as a `Site`: a head's query/key/value input ("q", "k", "v"),
    an MLP's input ("mlp_in") or the logits. The same value as `Site(kind=..., ...)`,
    with the kind checked to be one a path can end at.

    >>> Receiver(kind="q", layer=1, head=0) == Site(kind="q", layer=1, head=0)
    True
    """
    if kind not in RECEIVER_KINDS:
        raise ConfigError("kind", f"got {kind!r} for a receiver", allowed(RECEIVER_KINDS))
    return Site(kind=kind, layer=layer, head=head)


def _write_hook(receiver: Site) -> str:
    """The hook a receiver's recorded value is written to. An MLP's input is set by
    writing the output the MLP computed from it (the MLP is a function of its input)."""
    if receiver.kind == "mlp_in":
        return Site(kind="mlp_out", layer=receiver.layer).hook_name
    return receiver.hook_name


def _check(senders: list[Site], receivers: list[Site], shape: ModelShape) -> None:
    if not receivers:
        raise MesaInterpError("receivers: at least one receiver is needed")
    for s in senders:
        if s.kind not in SENDER_KINDS:
            raise MesaInterpError(
                f"sender {s.label()}: a sender must be a head output ('z') or an MLP ('mlp_out')"
            )
    for i, r in enumerate(receivers):
        if not isinstance(r, Site):
            raise MesaInterpError(f"receivers[{i}]: expected a Site, got {type(r).__name__}")
        if r.kind not in RECEIVER_KINDS:
            raise MesaInterpError(
                f"receivers[{i}] ({r.label()}): kind {r.kind!r} is not where a path ends "
                f"(allowed: {allowed(RECEIVER_KINDS)})"
            )
        if r.pos is not None:
            raise MesaInterpError(
                f"receivers[{i}] ({r.label()}): a receiver spans every position (pos None)"
            )
        if r.kind == "logits":
            continue
        if r.block >= shape.n_layers:
            raise MesaInterpError(
                f"receiver {r.label()}: layer out of range (allowed: 0..{shape.n_layers - 1})"
            )
        n_heads = heads_of(shape, r.kind)  # k/v receivers exist per key/value head
        if r.head is not None and r.head >= n_heads:
            raise MesaInterpError(
                f"receiver {r.label()}: head out of range (allowed: 0..{n_heads - 1})"
            )
        if r.kind == "mlp_in" and shape.attn_only:
            raise MesaInterpError(f"receiver {r.label()}: the model is attention-only")
        for s in senders:
            # A head feeds the MLP of its own block; anything else needs a later block.
            ok = r.block > s.block or (r.kind == "mlp_in" and s.kind == "z" and r.block == s.block)
            if not ok:
                raise MesaInterpError(
                    f"receiver {r.label()} is not downstream of sender {s.label()}"
                )


@torch.no_grad()
@shape_checked
def run_path_sweep(
    model: TransformerBridge,
    senders: Sequence[Site],
    receivers: Sequence[Site],
    *,
    clean: ModelInput,
    corrupted: ModelInput,
    metric: AnyMetric,
    batch: Any = None,
    spec: PatchSpec | None = None,
    reference: ReferenceInput | None = None,
) -> SweepValues:
    """Raw per-example metric values of path patching each sender into `receivers`."""
    metric = as_batch_metric(metric)  # metric(logits) or metric(logits, batch)
    spec = spec or PatchSpec()
    check_pair_shapes(clean, corrupted)
    shape = model_shape(model)
    clean, corrupted = to_model(model, clean), to_model(model, corrupted)
    reference = None if reference is None else to_model(model, reference)
    seq_len = int(clean.shape[1])
    sender_list = validate_sites(senders, shape, seq_len=seq_len)
    receiver_list = list(receivers)
    _check(sender_list, receiver_list, shape)

    layers = range(shape.n_layers)
    frozen = [f"blocks.{i}.attn.hook_z" for i in layers]
    if not shape.attn_only:
        frozen += [f"blocks.{i}.hook_mlp_out" for i in layers]
    names = list(dict.fromkeys([*frozen, _FINAL]))
    denoising = spec.direction == "denoising"
    base_input = corrupted if denoising else clean
    clean_logits, clean_acts = capture(model, clean, names)
    corrupted_logits, corrupted_acts = capture(model, corrupted, names)
    base_acts = corrupted_acts if denoising else clean_acts
    source_acts = clean_acts if denoising else corrupted_acts
    if spec.needs_reference:
        ref = reference if reference is not None else torch.cat([clean, corrupted])
        _, source_acts = capture(model, ref, names)

    def values(logits: Tensor) -> Tensor:
        return metric(logits, batch).detach().float().cpu()

    rows = []
    for sender in sender_list:
        replacement = replacement_from(
            spec.ablation,
            name=sender.hook_name,
            base_act=base_acts[sender.hook_name],
            source_act=source_acts.get(sender.hook_name),
        )
        recorded = _frozen_run(
            model, base_input, sender, replacement, receiver_list, frozen, base_acts
        )
        logits = _receiver_run(model, base_input, receiver_list, recorded, base_acts[_FINAL])
        rows.append(values(logits))
    return SweepValues(
        sites=sender_list,
        patched=torch.stack(rows),
        clean=values(clean_logits),
        corrupted=values(corrupted_logits),
        spec=spec,
        method="path",
    )


def _frozen_run(
    model: TransformerBridge,
    inputs: Tensor,
    sender: Site,
    replacement: Tensor,
    receivers: list[Site],
    frozen: list[str],
    base_acts: dict[str, Tensor],
) -> dict[str, Tensor]:
    recorded: dict[str, Tensor] = {}
    record = {_write_hook(r) for r in receivers}

    def freeze(name: str) -> Any:
        def fn(act: Tensor, *, hook: Any) -> Tensor:
            if name in record:  # an MLP receiver: keep what its changed input produced
                recorded[name] = act.clone()
            out = base_acts[name]
            if name == sender.hook_name:
                out = apply_site(sender, out, replacement)
            return out

        return fn

    def keep(name: str) -> Any:
        def fn(act: Tensor, *, hook: Any) -> None:
            recorded[name] = act.clone()

        return fn

    hooks = [(name, freeze(name)) for name in frozen]
    hooks += [(name, keep(name)) for name in sorted(record - set(frozen))]
    with hook_context(model, fwd=hooks):
        model(inputs)
    return recorded


def _receiver_run(
    model: TransformerBridge,
    inputs: Tensor,
    receivers: list[Site],
    recorded: dict[str, Tensor],
    base_final: Tensor,
) -> Tensor:
    by_hook: dict[str, list[Site]] = {}
    for r in receivers:
        by_hook.setdefault(_write_hook(r), []).append(r)

    def write(name: str, group: list[Site]) -> Any:
        def fn(act: Tensor, *, hook: Any) -> Tensor:
            value = recorded[name]
            if name == _FINAL:
                # Only the sender's direct change to the final residual, on top of
                # whatever the patched receivers changed upstream.
                return act + (value - base_final)
            if group[0].kind == "mlp_in":
                return value
            out = act.clone()
            for r in group:
                out[:, :, r.head] = value[:, :, r.head]
            return out

        return fn

    with hook_context(model, fwd=[(name, write(name, group)) for name, group in by_hook.items()]):
        return model(inputs)


@shape_checked
def path_patch(
    model: TransformerBridge,
    senders: Sequence[Site],
    receivers: Sequence[Site],
    *,
    clean: ModelInput,
    corrupted: ModelInput,
    metric: AnyMetric,
    batch: Any = None,
    direction: Direction = "denoising",
    ablation: AblationKind = "resample",
    reference: ReferenceInput | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    model_name: str | None = None,
) -> PatchResult:
    """Path-patch every sender into `receivers`; one table row per sender.

    senders:   Sites of kind "z" (a head's output) or "mlp_out".
    receivers: Sites of kind "q", "k", "v" (one head's input), "mlp_in" or "logits",
               spanning every position (`Receiver(...)` builds one with the kind checked).

    >>> model = mesainterp.build_model(mesainterp.ModelConfig(
    ...     n_layers=1, d_model=16, n_heads=2, d_head=8, d_mlp=32, d_vocab=11, n_ctx=8, seed=0))
    >>> pairs = mesainterp.PromptPairs.from_token_ids(
    ...     [[5, 1, 2], [6, 1, 2], [7, 3, 2], [8, 3, 2]],  # clean prompts
    ...     [[6, 1, 2], [5, 1, 2], [8, 3, 2], [7, 3, 2]],  # corrupted: first token swapped
    ...     [5, 6, 7, 8], [6, 5, 8, 7])                     # clean and corrupted answers
    >>> pair = pairs.to_pair()
    >>> senders = mesainterp.named_sites("path", mesainterp.model_shape(model))
    >>> result = mesainterp.path_patch(model, senders, [Receiver(kind="logits")],
    ...     clean=pair.clean.inputs, corrupted=pair.corrupted.inputs,
    ...     metric=pairs.default_metric(), batch=pair.clean)
    >>> result.table[["kind", "head", "value"]].round(1).values.tolist()
    [['z', 0, -0.5], ['z', 1, 0.2], ['mlp_out', <NA>, 1.3]]
    """
    metric_name = getattr(metric, "__qualname__", type(metric).__name__)
    metric = as_batch_metric(metric)  # metric(logits) or metric(logits, batch)
    spec = PatchSpec(direction=direction, ablation=ablation)
    values = run_path_sweep(
        model,
        senders,
        receivers,
        clean=clean,
        corrupted=corrupted,
        metric=metric,
        batch=batch,
        spec=spec,
        reference=reference,
    )
    prov = provenance(model=model, model_name=model_name, seed=seed)
    prov["patching"] = {
        "kind": "path",
        "receivers": [r.to_dict() for r in receivers],
        "metric": metric_name,
    }
    return summarise(values, n_boot=n_boot, confidence=confidence, seed=seed, prov=prov)
