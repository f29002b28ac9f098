"""Shared fixtures: tiny models that build in milliseconds."""

from __future__ import annotations

import os

# The suite checks every `@shape_checked` signature (jaxtyping shapes under beartype).
# `shape_checked` decides when mesainterp is imported, so this comes first; the notebook
# kernels and command-line subprocesses the tests start inherit it with the environment.
os.environ["MESAINTERP_TYPECHECK"] = "1"

import jaxtyping
import pytest
import torch

from mesainterp.model import ModelConfig, build_model, save_checkpoint
from mesainterp.tasks.registry import get_task


@pytest.fixture
def no_runtime_check():
    """The shape check off for one test: for tests of the one-line refusal that users,
    who run without the check, see."""
    jaxtyping.config.update("jaxtyping_disable", True)
    yield
    jaxtyping.config.update("jaxtyping_disable", False)


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


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A tiny random model saved with a real task (tree-path), for command-line tests."""
    task = get_task("tree-path", n_nodes=6, max_depth=3)
    config = ModelConfig(
        n_layers=2, d_model=16, n_heads=2, d_head=8, d_mlp=32,
        d_vocab=task.d_vocab, d_vocab_out=task.d_vocab_out, n_ctx=task.seq_len, seed=1,
    )  # fmt: skip
    path = tmp_path_factory.mktemp("ckpt") / "tree"
    save_checkpoint(build_model(config), path, config=config, task=task.config_dict())
    return path
