"""Causal tests of a probe direction: ablate it, steer along it, watch behaviour follow.

A probe subspace at a site is the span of the probe's class-contrast weights,
mapped back to raw activation coordinates (orthonormal basis Q, rank K−1).

- ablate:  x ← x − QQᵀ(x − μ)       (the subspace component set to the data mean)
- steer:   x ← x + QQᵀ(m_B − x)     (the subspace component set to goal B's class mean)

The control applies the same edit along a random subspace of the same rank,
rescaled per example to the probe edit's norm, for several random draws.

Behaviour (goal retargeting, Mini et al. 2023): given counterfactual pairs whose
halves differ only in the goal (same structure, goal A vs goal B), run the clean
prompt (goal token still A) with the edit and greedily decode the answer; success
means the decoded answer equals goal B's answer exactly (for tree-path: the model
walks from the root to B and stops there).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import pandas as pd
import torch
from jaxtyping import Float, Int
from torch import Tensor

from mesainterp.errors import ConfigError
from mesainterp.patching.hooks import hook_context
from mesainterp.probes.dataset import ActivationDataset, check_probe_sites, validate_hook_names
from mesainterp.probes.linear import fit_logistic, standardize
from mesainterp.sites.site import Site
from mesainterp.stats import wilson_interval
from mesainterp.tasks.base import IGNORE_INDEX, CounterfactualPair
from mesainterp.tasks.decode import greedy_decode

__all__ = [
    "CAUSAL_COLUMNS",
    "Intervention",
    "ProbeSubspace",
    "edit_activations",
    "probe_subspaces",
    "random_subspace",
    "retarget",
    "wilson_interval",
]

CAUSAL_COLUMNS = (
    "layer",
    "positions",
    "intervention",
    "direction",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "draws",
    "n",
)


Intervention = Literal["steer", "ablate"]


@dataclass(frozen=True, kw_only=True)
class ProbeSubspace:
    """A probe's subspace at one site, in raw activation coordinates.

    basis:        [d, r] orthonormal columns.
    class_means:  [classes, d], row c = mean activation of examples of class id c
                  (NaN for ids never seen).
    mean:         [d] mean activation over the dataset.
    """

    site: Site
    basis: Float[Tensor, "d r"]
    class_means: Float[Tensor, "classes d"]
    mean: Float[Tensor, " d"]

    def __post_init__(self) -> None:
        check_probe_sites([self.site])

    @property
    def rank(self) -> int:
        return int(self.basis.shape[1])

    @property
    def pos(self) -> int:
        """The edited position (a probe site always has one)."""
        assert self.site.pos is not None  # checked at construction
        return self.site.pos


def probe_subspaces(
    data: ActivationDataset,
    target: str,
    *,
    site_indices: Sequence[int] | None = None,
    C: float = 1.0,
    rank_tol: float = 1e-6,
) -> list[ProbeSubspace]:
    """Fit the target's logistic probe on all examples at the chosen sites (batched)
    and return each site's probe subspace and class means."""
    idx = list(range(len(data.sites))) if site_indices is None else list(site_indices)
    y = data.label(target)
    if y.ndim != 1 or y.dtype.is_floating_point:
        raise ConfigError(
            "target", f"causal tests need a 1-D class label, {target!r} is {tuple(y.shape)}"
        )
    keep = y >= 0
    y = y[keep].long()
    feats = data.features[idx][:, keep].to(torch.float64)
    values, y_c = torch.unique(y, return_inverse=True)
    std = standardize(feats)
    probe = fit_logistic(std(feats), y_c, C=C, n_classes=int(values.numel()))
    # Logits are linear in x/scale, so raw-coordinate weights are coef / scale.
    w = probe.coef / std.scale.transpose(1, 2)  # [s, d, out]
    if probe.kind == "multinomial":
        w = w - w.mean(dim=2, keepdim=True)
    n_ids = int(y.max()) + 1
    out = []
    for j, i in enumerate(idx):
        u, sv, _ = torch.linalg.svd(w[j], full_matrices=False)
        r = max(1, int((sv > rank_tol * sv.max()).sum()))
        means = torch.full((n_ids, feats.shape[-1]), float("nan"), dtype=torch.float64)
        counts = torch.bincount(y, minlength=n_ids)
        sums = torch.zeros(n_ids, feats.shape[-1], dtype=torch.float64).index_add_(0, y, feats[j])
        seen = counts > 0
        means[seen] = sums[seen] / counts[seen, None]
        out.append(
            ProbeSubspace(
                site=data.sites[i],
                basis=u[:, :r].to(torch.float32),
                class_means=means.to(torch.float32),
                mean=feats[j].mean(0).to(torch.float32),
            )
        )
    return out


def random_subspace(d: int, r: int, *, generator: torch.Generator) -> Float[Tensor, "d r"]:
    """A uniformly random r-dimensional orthonormal basis in R^d."""
    q, _ = torch.linalg.qr(torch.randn(d, r, generator=generator, dtype=torch.float64))
    return q.to(torch.float32)


def edit_activations(
    x: Float[Tensor, "batch d"],
    sub: ProbeSubspace,
    intervention: Intervention,
    *,
    goal_b: Int[Tensor, " batch"] | None = None,
    random_basis: Float[Tensor, "d r"] | None = None,
) -> Float[Tensor, "batch d"]:
    """Apply a steer / ablate edit to activations at the subspace's site.

    Both edits set the subspace component to an anchor's: x + QQᵀ(anchor − x), the
    anchor being goal B's class mean (steer) or the data mean (ablate). With
    `random_basis` the displacement is taken along that subspace instead and
    rescaled per example to the norm of the probe edit's displacement.
    """
    return _edit_fn(sub, intervention, goal_b, random_basis)(x)


def _edit_fn(
    sub: ProbeSubspace,
    intervention: Intervention,
    goal_b: Tensor | None,
    random_basis: Tensor | None,
) -> Callable[[Tensor], Tensor]:
    q = sub.basis
    if intervention == "steer":
        if goal_b is None:
            raise ConfigError("goal_b", "steering needs the goal B class of every example")
        if int(goal_b.max()) >= sub.class_means.shape[0] or int(goal_b.min()) < 0:
            raise ConfigError("goal_b", "a goal B class is outside the probe's classes")
        anchor = sub.class_means[goal_b]
        if torch.isnan(anchor).any():
            raise ConfigError("goal_b", "a goal B class never occurs in the probe's dataset")
    elif intervention == "ablate":
        anchor = sub.mean[None]
    else:
        raise ConfigError("intervention", f"got {intervention!r}", "'steer', 'ablate'")

    def edit(x: Tensor) -> Tensor:
        qq, toward = q.to(x), anchor.to(x) - x
        delta = (toward @ qq) @ qq.T
        if random_basis is not None:
            rr = random_basis.to(x)
            rand = (toward @ rr) @ rr.T
            scale = delta.norm(dim=-1, keepdim=True) / rand.norm(dim=-1, keepdim=True).clamp_min(
                1e-12
            )
            delta = rand * scale
        return x + delta

    return edit


def _hooks_for(
    subspaces: Sequence[ProbeSubspace],
    blocks: Sequence[tuple[Intervention, Sequence[Tensor] | None] | None],
    goal_b: Tensor,
) -> list[tuple[str, Callable[..., Tensor]]]:
    """Forward hooks editing each block of `n` rows its own way (None: unedited).

    A block is (intervention, random bases or None for the probe's own subspace).
    """
    n = goal_b.shape[0]
    by_hook: dict[str, list[tuple[slice, int, Callable[[Tensor], Tensor]]]] = {}
    for b, block in enumerate(blocks):
        if block is None:
            continue
        intervention, bases = block
        rows = slice(b * n, (b + 1) * n)
        for i, sub in enumerate(subspaces):
            rb = bases[i] if bases is not None else None
            by_hook.setdefault(sub.site.hook_name, []).append(
                (rows, sub.pos, _edit_fn(sub, intervention, goal_b, rb))
            )
    hooks = []
    for name, edits in by_hook.items():

        def hook(act: Tensor, *, hook: Any = None, _edits: Any = edits) -> Tensor:
            act = act.clone()
            for rows, pos, edit in _edits:
                # Greedy decoding feeds growing prefixes; a later position's edit
                # starts once the prefix reaches it (causal masking: same result).
                if pos < act.shape[1]:
                    act[rows, pos] = edit(act[rows, pos])
            return act

        hooks.append((name, hook))
    return hooks


def _matches(tokens: Tensor, targets: Tensor) -> Tensor:
    """True where the decoded tokens give every supervised target (token t+1 is
    the output at t), as `mesainterp.tasks.greedy_exact` scores it."""
    mask = targets[:, :-1] != IGNORE_INDEX
    return ((tokens[:, 1:] == targets[:, :-1]) | ~mask).all(dim=1)


@torch.no_grad()
def retarget(
    model: Any,
    pair: CounterfactualPair,
    subspaces: Sequence[ProbeSubspace],
    *,
    target: str = "goal",
    interventions: Sequence[Intervention] = ("steer", "ablate"),
    n_random: int = 5,
    seed: int = 0,
) -> pd.DataFrame:
    """Goal-retargeting table for one set of edited sites (usually one layer).

    Rows: for the unedited model and for each intervention along the probe and
    along random subspaces: "to_b" (decoded answer = goal B's answer, exact) and
    "to_a" (still goal A's answer). Probe rows carry a Wilson 95% interval; random
    rows are the mean over `n_random` draws with a t-interval across draws.
    """
    if not subspaces:
        raise ConfigError("subspaces", "expected at least one probe subspace")
    validate_hook_names(model, {s.site.hook_name for s in subspaces})
    clean, corrupt = pair.clean, pair.corrupted
    if clean.inputs.dtype.is_floating_point:
        raise ConfigError("pair", "retargeting needs a token task (greedy decoding)")
    goal_b = corrupt.labels[target].long()
    n = clean.batch_size
    layers = sorted({s.site.block for s in subspaces})
    positions = ",".join(str(p) for p in sorted({s.pos for s in subspaces}))

    rows: list[dict[str, Any]] = []
    layer = layers[0] if len(layers) == 1 else -1

    def add(intervention: str, direction: str, metric: str, hits: list[Tensor]) -> None:
        rates = [float(h.float().mean()) for h in hits]
        if len(hits) == 1:
            lo, hi = wilson_interval(int(hits[0].sum()), n)
        else:
            m = sum(rates) / len(rates)
            sd = (sum((r - m) ** 2 for r in rates) / (len(rates) - 1)) ** 0.5
            half = _t975(len(rates) - 1) * sd / len(rates) ** 0.5
            lo, hi = max(0.0, m - half), min(1.0, m + half)
        rows.append(
            {
                "layer": layer,
                "positions": positions,
                "intervention": intervention,
                "direction": direction,
                "metric": metric,
                "value": sum(rates) / len(rates),
                "ci_low": lo,
                "ci_high": hi,
                "draws": len(hits),
                "n": n,
            }
        )

    gen = torch.Generator().manual_seed(seed)
    d = subspaces[0].basis.shape[0]
    draws = [
        [random_subspace(d, s.rank, generator=gen) for s in subspaces] for _ in range(n_random)
    ]
    # Every condition decodes in one batch: the clean rows repeated once per
    # (intervention, direction, draw), each block of n rows edited its own way.
    blocks: list[tuple[Intervention, Sequence[Tensor] | None] | None] = [None]
    for intervention in interventions:
        blocks.append((intervention, None))
        blocks.extend((intervention, bases) for bases in draws)
    device = next(iter(model.parameters())).device
    stacked = replace(
        clean,
        inputs=clean.inputs.repeat(len(blocks), 1).to(device),
        targets=clean.targets.repeat(len(blocks), 1),
        labels={},
        instances=[],
    )
    with hook_context(model, fwd=_hooks_for(subspaces, blocks, goal_b)):
        tokens = greedy_decode(model, stacked).cpu()
    hits = [(_matches(t, corrupt.targets), _matches(t, clean.targets)) for t in tokens.split(n)]
    add("none", "none", "to_b", [hits[0][0]])
    add("none", "none", "to_a", [hits[0][1]])
    b = 1
    for intervention in interventions:
        add(intervention, "probe", "to_b", [hits[b][0]])
        add(intervention, "probe", "to_a", [hits[b][1]])
        randoms = hits[b + 1 : b + 1 + n_random]
        if randoms:
            add(intervention, "random", "to_b", [h[0] for h in randoms])
            add(intervention, "random", "to_a", [h[1] for h in randoms])
        b += 1 + n_random
    return pd.DataFrame(rows, columns=list(CAUSAL_COLUMNS))


def _t975(dof: int) -> float:
    """Two-sided 95% Student-t quantile (table for small dof, normal beyond)."""
    table = {
        1: 12.706,
        2: 4.303,
        3: 3.182,
        4: 2.776,
        5: 2.571,
        6: 2.447,
        7: 2.365,
        8: 2.306,
        9: 2.262,
    }
    return table.get(dof, 2.228 if dof == 10 else 1.96 + 2.4 / max(dof, 1))
