"""`to_model`: inputs go to the model's device, float inputs also to its dtype."""

from __future__ import annotations

import torch

from mesainterp.model import ModelConfig, build_model
from mesainterp.model.placement import model_device, model_dtype, to_model


def test_tokens_keep_their_dtype_and_embeddings_take_the_models() -> None:
    config = ModelConfig(n_layers=1, d_model=8, n_heads=1, d_head=8, d_mlp=16, d_vocab=5, n_ctx=4)
    model = build_model(config, dtype=torch.bfloat16)
    assert model_device(model) == torch.device("cpu") and model_dtype(model) == torch.bfloat16
    tokens = torch.zeros(2, 4, dtype=torch.long)
    assert to_model(model, tokens) is tokens
    embeds = torch.zeros(2, 4, 8)
    assert to_model(model, embeds).dtype == torch.bfloat16
    assert next(model.parameters()).dtype == torch.bfloat16
