"""The one-layer lookup model: it solves tree-path, writes every ancestor in block 1,
and so fails the iterative-computation test that the planted chainer passes on the
same task (the test can fail on a real model, not only on synthetic activations)."""

from __future__ import annotations

from itertools import permutations

import pytest
import torch

from mesainterp.errors import ConfigError, MesaInterpError
from mesainterp.evidence import EvidenceConfig, twin_controls
from mesainterp.evidence.iterative import iterative_computation
from mesainterp.evidence.planted import planted_chain_config, planted_chain_model
from mesainterp.evidence.planted_lookup import (
    chain_count,
    lookup_subspaces,
    planted_lookup_config,
    planted_lookup_model,
)
from mesainterp.evidence.profile import collect_inputs
from mesainterp.tasks import get_task

# Small enough for a 1,236-unit table; paths of up to 5 nodes leave 3 ancestor
# ranks once the goal and the root are left out.
SMALL = {"n_nodes": 6, "max_depth": 4}


def test_chain_count_matches_enumeration() -> None:
    for n, depth in [(4, 2), (6, 4), (7, 3), (3, 5)]:
        brute = sum(len(list(permutations(range(n), k))) for k in range(1, min(depth + 1, n) + 1))
        assert chain_count(n, depth) == brute


@pytest.mark.parametrize("params", [SMALL, {"n_nodes": 7, "max_depth": 3}])
def test_the_lookup_model_solves_tree_path(params: dict) -> None:
    task = get_task("tree-path", **params)
    model = planted_lookup_model(task)
    batch = task.sample(128, seed=3)
    with torch.no_grad():
        scores = task.score(model(batch.inputs), batch)
    assert bool(scores["exact_path"].all())


def test_every_ancestor_is_written_in_block_1_and_none_before() -> None:
    task = get_task("tree-path", **SMALL)
    model = planted_lookup_model(task)
    at, n = lookup_subspaces(task), task.n_nodes
    batch = task.sample(64, seed=4)
    _, cache = model.run_with_cache(
        batch.inputs, names_filter=lambda name: name.endswith("hook_resid_post")
    )
    blocks = [
        cache[f"blocks.{layer}.hook_resid_post"][
            :, task.goal_pos, at["K"] : at["K"] + n * task.max_depth
        ]
        for layer in range(3)
    ]
    assert float(blocks[0].abs().max()) < 1e-3
    anc = batch.labels["ancestors"]  # [n, max_depth], -1 where none
    for layer in (1, 2):
        ranks = blocks[layer].reshape(-1, task.max_depth, n)
        for k in range(task.max_depth):
            has = anc[:, k] >= 0
            assert (ranks[has, k].argmax(-1) == anc[has, k]).all()
            assert float(ranks[~has, k].abs().sum()) < 1e-2


def test_the_lookup_model_refuses_big_families_and_other_tasks() -> None:
    with pytest.raises(ConfigError, match="n_nodes"):
        planted_lookup_config(get_task("tree-path"))
    with pytest.raises(MesaInterpError, match="tree-path"):
        planted_lookup_model(get_task("graph-search"))


def test_iterative_test_fails_the_lookup_model_and_passes_the_chainer() -> None:
    task = get_task("tree-path", **SMALL)
    cfg = EvidenceConfig(n_examples=300, n_boot=400, state_ranks=3)
    results = {}
    for name, config, build in [
        ("lookup", planted_lookup_config, planted_lookup_model),
        ("chain", planted_chain_config, planted_chain_model),
    ]:
        twins = twin_controls(config(task), n=2, first_seed=1)
        inputs = collect_inputs(build(task), twins, task, n_examples=300, seed=0, progress=False)
        results[name] = iterative_computation(inputs, cfg)
    lookup, chain = results["lookup"], results["chain"]
    # Both models decode every rank perfectly somewhere: the difference is the order.
    for r in (lookup, chain):
        rises = [row["full_rise_by_rank"] for row in r.details["positions"]]
        assert any(min(rise) > 0.4 for rise in rises)
    assert not lookup.passed and lookup.value < 0.1, lookup.reason
    assert chain.passed and chain.margin_low > 0.25, chain.reason
