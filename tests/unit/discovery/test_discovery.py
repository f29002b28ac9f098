"""ACDC, top-n circuits and faithfulness on the planted circuit and a random model."""

from __future__ import annotations

import pytest
import torch

from mesainterp.attribution import EdgeForward, EdgeGraph, edge_attribution
from mesainterp.discovery import (
    PLANTED_EDGES,
    Circuit,
    acdc,
    drop_dangling,
    faithfulness,
    planted_model,
    planted_pair,
    top_edges,
)
from mesainterp.errors import ConfigError
from mesainterp.model import ModelConfig, build_model, model_shape
from mesainterp.patching.metrics import logit_diff, neg_kl_to_clean


@pytest.mark.parametrize("ablation", ["resample", "mean"])
def test_acdc_recovers_the_planted_circuit(ablation: str) -> None:
    model, case = planted_model(), planted_pair()
    result = acdc(
        model, clean=case.clean, corrupted=case.corrupted, metric=case.metric,
        threshold=1e-3, ablation=ablation,
    )  # fmt: skip
    assert set(result.kept) == PLANTED_EDGES
    assert result.final_metric == pytest.approx(result.full_metric, abs=1e-5)


def test_acdc_with_kl_recovers_the_planted_circuit() -> None:
    model, case = planted_model(), planted_pair()
    with torch.no_grad():
        clean_logits = model(case.clean)
    metric = neg_kl_to_clean(clean_logits, answer_pos=torch.full((16,), 5))
    result = acdc(model, clean=case.clean, corrupted=case.corrupted, metric=metric, threshold=1e-4)
    assert set(result.kept) == PLANTED_EDGES


@pytest.mark.parametrize("method", ["eap", "eap-ig"])
def test_top_n_from_attribution_recovers_the_planted_circuit(method: str) -> None:
    model, case = planted_model(), planted_pair()
    scores = edge_attribution(
        model,
        clean=case.clean,
        corrupted=case.corrupted,
        metric=case.metric,
        method=method,  # type: ignore[arg-type]
    )
    assert set(top_edges(scores, top_n=3)) == PLANTED_EDGES
    assert set(top_edges(scores, threshold=1e-6)) == PLANTED_EDGES
    # Top-5 adds two zero-score edges that reach nothing; dropping dangling ones keeps 3+.
    assert set(top_edges(scores, top_n=5)) >= PLANTED_EDGES


def _random():
    model = build_model(
        ModelConfig(
            n_layers=2, d_model=16, n_heads=2, d_head=8, d_mlp=32, d_vocab=11, n_ctx=8, seed=2
        )
    )
    gen = torch.Generator().manual_seed(1)
    clean = torch.randint(0, 11, (12, 6), generator=gen)
    corrupted = clean.clone()
    corrupted[:, 1] = (clean[:, 1] + 1 + torch.randint(0, 10, (12,), generator=gen)) % 11
    return model, clean, corrupted, logit_diff(torch.full((12,), 5), clean[:, 1], corrupted[:, 1])


def ef_edges_from(model, node: str) -> int:
    return sum(u == node for u, _ in EdgeGraph.of(model_shape(model)).edges())


def test_acdc_restart_matches_runs_from_layer_zero() -> None:
    model, clean, corrupted, metric = _random()
    fast = acdc(model, clean=clean, corrupted=corrupted, metric=metric, threshold=0.02)
    slow = acdc(
        model, clean=clean, corrupted=corrupted, metric=metric, threshold=0.02, restart=False,
        skip_inert=False,
    )  # fmt: skip
    assert set(fast.kept) == set(slow.kept)
    # The positional embedding is identical in both runs: its edges are cut without a run.
    assert fast.n_skipped >= ef_edges_from(model, "pos_embed")
    assert (
        fast.n_runs + fast.n_skipped
        == slow.n_runs + slow.n_skipped
        == len(EdgeGraph.of(model_shape(model)).edges())
    )
    assert torch.allclose(fast.damages, slow.damages, atol=1e-5, equal_nan=True)
    for edge, value in fast.kept.items():
        assert value == pytest.approx(slow.kept[edge], abs=1e-5)
    # Threshold 0 keeps every edge that hurts; a huge threshold cuts everything.
    none_left = acdc(model, clean=clean, corrupted=corrupted, metric=metric, threshold=1e9)
    assert none_left.kept == {}
    with pytest.raises(ConfigError, match="threshold"):
        acdc(model, clean=clean, corrupted=corrupted, metric=metric, threshold=-1)


def test_drop_dangling_keeps_only_paths_to_the_logits() -> None:
    g = EdgeGraph(n_layers=2, n_heads=2, attn_only=True)
    edges = {("embed", "L0H0.v"): 1.0, ("L0H0", "L1H1.q"): 1.0, ("embed", "L0H1.k"): 1.0,
             ("L0H1", "logits"): 1.0}  # fmt: skip
    assert set(drop_dangling(g, edges)) == {("embed", "L0H1.k"), ("L0H1", "logits")}


def test_faithfulness_of_the_planted_circuit() -> None:
    model, case = planted_model(), planted_pair()
    circuit = Circuit.from_edges(dict.fromkeys(PLANTED_EDGES, 1.0), method="test")
    ranking = [*sorted(PLANTED_EDGES), ("embed", "logits")]
    rows = faithfulness(
        model, circuit, clean=case.clean, corrupted=case.corrupted, metric=case.metric,
        ablations=("resample", "mean", "zero"), curve_k=[0, 1, 3, 4], ranking=ranking,
        n_boot=200, seed=0,
    )  # fmt: skip
    by = {(r.measure, r.ablation, r.k): r for r in rows}
    for ablation in ("resample", "mean", "zero"):
        for measure in ("faithfulness", "completeness"):
            row = by[(measure, ablation, None)]
            assert row.value == pytest.approx(1.0, abs=1e-4)
            assert row.ci_low <= row.value + 1e-6 and row.value - 1e-6 <= row.ci_high
    assert by[("curve", "resample", 0)].value == pytest.approx(0.0, abs=1e-5)
    assert by[("curve", "resample", 3)].value == pytest.approx(1.0, abs=1e-4)
    assert by[("curve", "resample", 1)].value == pytest.approx(0.0, abs=1e-5)
    again = faithfulness(
        model, circuit, clean=case.clean, corrupted=case.corrupted, metric=case.metric,
        ablations=("resample",), n_boot=200, seed=0,
    )  # fmt: skip
    assert again == [r for r in rows if r.ablation == "resample" and r.measure != "curve"]


def test_faithfulness_refuses_bad_input() -> None:
    model, case = planted_model(), planted_pair()
    circuit = Circuit.from_edges({("embed", "L9H0.q"): 1.0}, method="test")
    with pytest.raises(ConfigError, match=r"circuit\.edges"):
        faithfulness(model, circuit, clean=case.clean, corrupted=case.corrupted, metric=case.metric)
    good = Circuit.from_edges(dict.fromkeys(PLANTED_EDGES, 1.0), method="test")
    with pytest.raises(ConfigError, match=r"ablations\[0\]"):
        faithfulness(
            model, good, clean=case.clean, corrupted=case.corrupted, metric=case.metric,
            ablations=("scrub",),
        )  # fmt: skip


def test_edge_forward_is_shared_not_rebuilt() -> None:
    model, case = planted_model(), planted_pair()
    ef = EdgeForward(model)
    result = acdc(
        model, clean=case.clean, corrupted=case.corrupted, metric=case.metric,
        threshold=1e-3, forward=ef,
    )  # fmt: skip
    assert result.n_runs < len(ef.graph.edges())  # edges into dead-end nodes are skipped
