"""Probes on every architecture family: activations and a planted linear label.

`collect_activations` must hand back exactly what the bridge computes at every
residual site (read here with plain `run_with_hooks`), in memory and spilled to
shards; `run_probes` must find a label planted as the side of a fixed direction of
one layer's residual, at that layer, with the accuracy a per-site sklearn loop gets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from torch import Tensor

from mesainterp.probes import ProbeSpec, collect_activations, kfold_indices, run_probes
from mesainterp.sites import Site
from mesainterp.tasks.base import TaskBatch
from tests.families import ALL_FAMILIES, VOCAB
from tests.unit.attribution.families import build_family

SEQ = 6
POS = SEQ - 1


def _batch(n: int, seed: int, labels: dict[str, Tensor] | None = None) -> TaskBatch:
    tokens = torch.randint(0, VOCAB, (n, SEQ), generator=torch.Generator().manual_seed(seed))
    return TaskBatch(inputs=tokens, targets=tokens.clone(), prompt_len=SEQ, labels=labels or {})


def _resid_sites(model: Any, positions: tuple[int, ...]) -> list[Site]:
    mid = () if getattr(model.cfg, "parallel_attn_mlp", False) else ("resid_mid",)
    return [
        Site(kind=kind, layer=layer, pos=pos)
        for layer in range(model.cfg.n_layers)
        for kind in ("resid_pre", *mid, "resid_post")
        for pos in positions
    ]


def hooked(model: Any, tokens: Tensor, sites: list[Site]) -> Tensor:
    """[sites, n, d_model] read by plain forward hooks."""
    seen: dict[str, Tensor] = {}

    def keep(name: str) -> Any:
        def fn(act: Tensor, hook: Any) -> None:
            seen[name] = act.detach().clone()

        return fn

    names = sorted({s.hook_name for s in sites})
    with torch.no_grad():
        model.run_with_hooks(tokens, fwd_hooks=[(n, keep(n)) for n in names])
    return torch.stack([seen[s.hook_name][:, s.pos] for s in sites])


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_collected_activations_are_the_models(family: str, tmp_path: Path) -> None:
    model = build_family(family)
    sites = _resid_sites(model, (0, 3, POS))
    batches = [_batch(4, seed) for seed in (0, 1)]
    expected = torch.cat([hooked(model, b.inputs, sites) for b in batches], dim=1)
    data = collect_activations(model, batches, sites, progress=False)
    assert torch.equal(data.features, expected)
    spilled = collect_activations(model, batches, sites, out_dir=tmp_path, max_memory_bytes=1,
                                  progress=False)  # fmt: skip
    assert torch.equal(spilled.features, expected)
    # Sites really differ: a layer-swapped read would not pass.
    assert not torch.equal(expected[0], expected[-1])


def _sklearn_accuracy(x: Tensor, y: Tensor, spec: ProbeSpec) -> float:
    accs = []
    for train, test in kfold_indices(len(y), k=spec.folds, seed=spec.seed, stratify=y):
        scaler = StandardScaler().fit(x[train].double().numpy())
        clf = LogisticRegression(C=spec.C, max_iter=5000).fit(
            scaler.transform(x[train].double().numpy()), y[train].numpy()
        )
        accs.append(clf.score(scaler.transform(x[test].double().numpy()), y[test].numpy()))
    return float(np.mean(accs))


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_a_planted_direction_is_found_at_its_layer(family: str) -> None:
    model = build_family(family)
    planted = Site(kind="resid_post", layer=0, pos=POS)
    same = Site(kind="resid_pre", layer=1, pos=POS)  # the same vector
    sites = _resid_sites(model, (POS,))
    tokens = _batch(300, seed=7).inputs
    x = hooked(model, tokens, [planted])[0]
    w = torch.randn(x.shape[1], generator=torch.Generator().manual_seed(3))
    side = x @ w
    label = (side > side.median()).long()  # balanced classes
    data = collect_activations(
        model, [TaskBatch(inputs=tokens, targets=tokens, prompt_len=SEQ, labels={"side": label})],
        sites, progress=False,
    )  # fmt: skip
    spec = ProbeSpec(target="side", kind="logistic", folds=4, C=1.0)
    values = torch.tensor(run_probes(data, spec, progress=False).table["value"].to_numpy())
    best = sites[int(values.argmax())]
    assert best in (planted, same)
    at = sites.index(planted)
    assert float(values[at]) >= 0.9
    # The embeddings alone (one token each) cannot tell the side of the direction.
    assert float(values[at] - values[0]) >= 0.1
    oracle = _sklearn_accuracy(data.features[at], label, spec)
    assert abs(float(values[at]) - oracle) <= 0.01
