"""A tiny saved checkpoint with a real task, shared by the run tests."""

from __future__ import annotations

import pytest

from mesainterp.model import ModelConfig, build_model, save_checkpoint
from mesainterp.tasks.registry import get_task


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    task = get_task("tree-path", n_nodes=6, max_depth=3)
    config = ModelConfig(
        n_layers=2, d_model=16, n_heads=2, d_head=8, d_mlp=32,
        d_vocab=task.d_vocab, d_vocab_out=task.d_vocab_out, n_ctx=task.seq_len, seed=1,
    )  # fmt: skip
    path = tmp_path_factory.mktemp("ckpt") / "tree"
    save_checkpoint(build_model(config), path, config=config, task=task.config_dict())
    return path
