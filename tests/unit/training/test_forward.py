"""The shared forward helper: chunked equals one example at a time, no gradients,
the model's mode restored."""

from __future__ import annotations

import pytest
import torch

from mesainterp.errors import MesaInterpError
from mesainterp.model import ModelConfig, build_model
from mesainterp.tasks import get_task
from mesainterp.training.forward import forward_chunks, forward_logits

TASK = get_task("tree-path", n_nodes=5, max_depth=2)


@pytest.fixture(scope="module")
def model():
    config = ModelConfig(n_layers=2, d_model=16, n_heads=2, d_head=8, d_mlp=32,
                         d_vocab=TASK.d_vocab, n_ctx=TASK.seq_len)  # fmt: skip
    return build_model(config)


def test_chunked_logits_equal_one_example_at_a_time(model) -> None:
    tokens = TASK.sample(7, seed=0).inputs
    with torch.no_grad():
        naive = torch.cat([model(tokens[i : i + 1]) for i in range(7)])
    for chunk_size in (None, 1, 3, 7, 50):
        out = forward_logits(model, tokens, chunk_size=chunk_size)
        assert not out.requires_grad
        torch.testing.assert_close(out, naive, rtol=1e-5, atol=1e-5)


def test_chunks_cover_every_row_once_in_order(model) -> None:
    tokens = TASK.sample(7, seed=1).inputs
    rows = [r for r, _ in forward_chunks(model, tokens, chunk_size=3)]
    assert [(r.start, r.stop) for r in rows] == [(0, 3), (3, 6), (6, 7)]


def test_mode_is_restored_even_after_an_error(model) -> None:
    model.train()
    forward_logits(model, TASK.sample(2, seed=0).inputs)
    assert model.training
    with pytest.raises(Exception):  # noqa: B017 - any failure inside the forward
        forward_logits(model, torch.zeros(2, 3, 5))  # wrong embedding width
    assert model.training
    model.eval()


@pytest.mark.parametrize("bad", [0, -2, 1.5, True])
def test_bad_chunk_sizes_are_refused_before_any_forward(model, bad: object) -> None:
    with pytest.raises(MesaInterpError, match="chunk_size: expected a positive int"):
        forward_logits(model, TASK.sample(2, seed=0).inputs, chunk_size=bad)  # type: ignore[arg-type]
    with pytest.raises(MesaInterpError, match="empty batch"):
        forward_logits(model, TASK.sample(2, seed=0).inputs[:0])
