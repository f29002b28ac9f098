"""What a cut edge reads under each ablation, against the upstream outputs of the
reference run averaged by hand."""

from __future__ import annotations

import pytest
import torch

from mesainterp.attribution import EdgeForward
from mesainterp.discovery import ablated_outputs
from mesainterp.model import ModelConfig, build_model


@pytest.mark.parametrize(("ablation", "dims"), [("mean", (0, 1)), ("pos_mean", (0,))])
def test_mean_ablations_average_the_reference_outputs(ablation: str, dims: tuple) -> None:
    model = build_model(
        ModelConfig(n_layers=2, d_model=16, n_heads=2, d_head=8, d_mlp=32, d_vocab=11,
                    n_ctx=8, seed=1)
    )  # fmt: skip
    ef = EdgeForward(model)
    g = torch.Generator().manual_seed(0)
    corrupted = torch.randint(0, 11, (3, 6), generator=g)
    reference = torch.randint(0, 11, (5, 6), generator=g)
    with torch.no_grad():
        outs = ef.run(*ef.embed_parts(reference)).outs
    got = ablated_outputs(ef, ablation, corrupted=corrupted, reference=reference)
    assert len(got) == ef.graph.n_upstream
    for value, out in zip(got, outs, strict=True):
        expected = out.mean(dim=dims, keepdim=True)
        assert value.shape == expected.shape
        assert torch.allclose(value, expected, atol=1e-6)
    # Without a reference the corrupted run is averaged.
    alone = ablated_outputs(ef, ablation, corrupted=corrupted)
    with torch.no_grad():
        first = ef.run(*ef.embed_parts(corrupted)).outs[0]
    assert torch.allclose(alone[0], first.mean(dim=dims, keepdim=True), atol=1e-6)
