"""Causal tests: edit algebra, hook hygiene, greedy decoding, the retargeting table."""

from __future__ import annotations

import pytest
import torch

from mesainterp.errors import ConfigError
from mesainterp.model import ModelConfig, build_model, model_shape
from mesainterp.patching.hooks import count_hooks
from mesainterp.probes.causal import (
    ProbeSubspace,
    edit_activations,
    probe_subspaces,
    random_subspace,
    retarget,
    wilson_interval,
)
from mesainterp.probes.dataset import (
    ActivationDataset,
    collect_activations,
    probe_sites,
    task_batches,
)
from mesainterp.probes.linear import fit_logistic, standardize
from mesainterp.sites import Site
from mesainterp.tasks.tree_path import TreePathTask

TASK = TreePathTask(n_nodes=7, max_depth=3)


@pytest.fixture(scope="module")
def tree_model():
    cfg = ModelConfig(
        n_layers=2,
        d_model=24,
        n_heads=2,
        d_head=12,
        d_mlp=48,
        d_vocab=TASK.d_vocab,
        n_ctx=TASK.seq_len,
        seed=4,
    )
    return build_model(cfg)


def _planted_dataset(n: int = 400, d: int = 10, k: int = 4) -> ActivationDataset:
    gen = torch.Generator().manual_seed(0)
    y = torch.randint(0, k, (n,), generator=gen)
    x = torch.randn(2, n, d, generator=gen)
    x[0] += 4 * torch.randn(k, d, generator=gen)[y]
    sites = (
        Site(kind="resid_post", layer=0, pos=0),
        Site(kind="resid_post", layer=1, pos=0),
    )
    return ActivationDataset(sites=sites, features=x, labels={"goal": y})


def test_steer_sets_probe_logits_to_goal_b_mean() -> None:
    data = _planted_dataset()
    (sub,) = probe_subspaces(data, "goal", site_indices=[0])
    assert sub.rank == 3
    assert torch.allclose(sub.basis.T @ sub.basis, torch.eye(3), atol=1e-5)
    x = data.features[0, :50]
    goal_b = (data.labels["goal"][:50] + 1) % 4
    steered = edit_activations(x, sub, "steer", goal_b=goal_b)
    # Oracle: the same probe, refitted here, must score every steered row like B's class mean.
    std = standardize(data.features[:1])
    probe = fit_logistic(std(data.features[:1]), data.labels["goal"])
    logits = probe.decision(std(steered[None]))[0]
    anchor = probe.decision(std(sub.class_means[goal_b][None]))[0]
    centred = logits - logits.mean(-1, keepdim=True)
    centred_anchor = anchor - anchor.mean(-1, keepdim=True)
    torch.testing.assert_close(centred, centred_anchor, atol=1e-3, rtol=1e-3)
    assert (logits.argmax(-1) == goal_b).float().mean() > 0.95
    # The edit moves nothing outside the probe subspace.
    outside = (steered - x) - ((steered - x) @ sub.basis) @ sub.basis.T
    assert outside.abs().max() < 1e-4


def test_ablate_and_random_edits() -> None:
    data = _planted_dataset()
    (sub,) = probe_subspaces(data, "goal", site_indices=[0])
    x = data.features[0, :50]
    ablated = edit_activations(x, sub, "ablate")
    comp = (ablated - sub.mean) @ sub.basis
    assert comp.abs().max() < 1e-4
    basis = random_subspace(10, sub.rank, generator=torch.Generator().manual_seed(1))
    goal_b = torch.zeros(50, dtype=torch.long)
    probe_edit = edit_activations(x, sub, "steer", goal_b=goal_b) - x
    rand_edit = edit_activations(x, sub, "steer", goal_b=goal_b, random_basis=basis) - x
    torch.testing.assert_close(
        probe_edit.norm(dim=-1), rand_edit.norm(dim=-1), atol=1e-4, rtol=1e-4
    )
    with pytest.raises(ConfigError, match="goal_b"):
        edit_activations(x, sub, "steer")


def _one_condition(model, pair, subs, intervention, bases):
    """Slow oracle: decode one condition alone, full-length forwards, one edit hook
    per site, exact-match against goal B's answer."""
    clean, corrupt = pair.clean, pair.corrupted
    goal_b = corrupt.labels["goal"].long()
    tokens = clean.inputs.clone()
    hooks = []
    for i, sub in enumerate(subs):
        rb = None if bases is None else bases[i]

        def fn(act, *, hook=None, sub=sub, rb=rb):
            act = act.clone()
            act[:, sub.site.pos] = edit_activations(
                act[:, sub.site.pos], sub, intervention, goal_b=goal_b, random_basis=rb
            )
            return act

        hooks.append((sub.site.hook_name, fn))
    with torch.no_grad():
        for t in range(clean.prompt_len, clean.seq_len):
            logits = model.run_with_hooks(tokens, fwd_hooks=hooks)
            tokens[:, t] = logits[:, t - 1].argmax(-1)
    mask = corrupt.targets[:, :-1] != -100
    return ((tokens[:, 1:] == corrupt.targets[:, :-1]) | ~mask).all(1)


def test_batched_retarget_matches_one_condition_at_a_time(tree_model) -> None:
    sites = probe_sites(model_shape(tree_model), [TASK.goal_pos])
    data = collect_activations(tree_model, task_batches(TASK, 200, batch_size=200), sites)
    subs = probe_subspaces(data, "goal", site_indices=[0])
    pair = TASK.counterfactual_pairs(12, seed=4)
    table = retarget(tree_model, pair, subs, n_random=2, interventions=("steer", "ablate"), seed=3)
    gen = torch.Generator().manual_seed(3)
    d = subs[0].basis.shape[0]
    draws = [[random_subspace(d, subs[0].rank, generator=gen)] for _ in range(2)]
    for intervention in ("steer", "ablate"):
        rows = table[(table["intervention"] == intervention) & (table["metric"] == "to_b")]
        probe = _one_condition(tree_model, pair, subs, intervention, None).float().mean()
        assert rows[rows["direction"] == "probe"]["value"].item() == pytest.approx(probe.item())
        rand = [
            _one_condition(tree_model, pair, subs, intervention, b).float().mean() for b in draws
        ]
        expected = float(sum(rand) / len(rand))
        assert rows[rows["direction"] == "random"]["value"].item() == pytest.approx(expected)


def test_retarget_table_and_no_hooks_left(tree_model) -> None:
    before = count_hooks(tree_model)
    sites = probe_sites(model_shape(tree_model), [TASK.goal_pos, TASK.prompt_len - 1])
    data = collect_activations(tree_model, task_batches(TASK, 200, batch_size=200), sites)
    subs = probe_subspaces(data, "goal", site_indices=[2, 3])
    pair = TASK.counterfactual_pairs(16, seed=9)
    table = retarget(tree_model, pair, subs, n_random=2, interventions=("steer",))
    assert count_hooks(tree_model) == before
    assert set(table["intervention"]) == {"none", "steer"}
    assert set(table["direction"]) == {"none", "probe", "random"}
    assert (table["layer"] == 1).all()
    assert ((table["ci_low"] <= table["value"]) & (table["value"] <= table["ci_high"])).all()
    # Unedited "to_a" is the model's own exact-path accuracy on the clean half.
    with torch.no_grad():
        exact = TASK.score(tree_model(pair.clean.inputs), pair.clean)["exact_path"]
    none_a = table[(table["intervention"] == "none") & (table["metric"] == "to_a")]["value"].item()
    assert none_a == pytest.approx(exact.float().mean().item())


def test_hooks_are_removed_when_an_edit_fails(tree_model) -> None:
    before = count_hooks(tree_model)
    pair = TASK.counterfactual_pairs(4, seed=1)
    # A basis of the wrong width fails inside the hook, mid-forward.
    bad = ProbeSubspace(
        site=Site(kind="resid_post", layer=0, pos=TASK.goal_pos),
        basis=torch.eye(5)[:, :2],
        class_means=torch.zeros(TASK.n_nodes, 5),
        mean=torch.zeros(5),
    )
    with pytest.raises(RuntimeError):
        retarget(tree_model, pair, [bad], n_random=0)
    assert count_hooks(tree_model) == before


def test_wilson_interval() -> None:
    lo, hi = wilson_interval(0, 50)
    assert lo == 0.0 and 0.05 < hi < 0.1
    lo, hi = wilson_interval(25, 50)
    assert lo < 0.5 < hi
