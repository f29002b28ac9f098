"""Shared fixtures: tiny models that build in milliseconds."""

from __future__ import annotations

import pytest
import torch

from mesainterp.model import ModelConfig, build_model


@pytest.fixture
def tiny_config() -> ModelConfig:
    return ModelConfig(
        n_layers=2, d_model=32, n_heads=2, d_head=16, d_mlp=64, d_vocab=13, n_ctx=16, seed=3
    )


@pytest.fixture
def tiny_model(tiny_config: ModelConfig):
    return build_model(tiny_config)


@pytest.fixture
def tiny_tokens(tiny_config: ModelConfig) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, tiny_config.d_vocab, (4, 10), generator=generator)
