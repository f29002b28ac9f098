"""The shared answer metrics: one definition, checked against a naive loop."""

from __future__ import annotations

import pytest
import torch

import mesainterp.patching.metrics as patching_metrics
from mesainterp.errors import ConfigError
from mesainterp.tasks import IGNORE_INDEX, get_task
from mesainterp.tasks.metrics import exact_match, exact_path_accuracy, logit_diff


def test_patching_re_exports_the_one_definition() -> None:
    assert patching_metrics.logit_diff is logit_diff
    assert patching_metrics.exact_path_accuracy is exact_path_accuracy


def test_logit_diff_matches_a_naive_loop_and_refuses_a_wrong_shape() -> None:
    logits = torch.randn(4, 5, 7, generator=torch.Generator().manual_seed(0))
    pos, good, bad = (
        torch.tensor([0, 4, 2, 2]),
        torch.tensor([1, 2, 3, 6]),
        torch.tensor([0, 0, 5, 6]),
    )
    naive = [float(logits[i, pos[i], good[i]] - logits[i, pos[i], bad[i]]) for i in range(4)]
    assert logit_diff(pos, good, bad)(logits, None).tolist() == pytest.approx(naive)
    with pytest.raises(ConfigError, match=r"outputs: expected \[batch, pos, d_vocab_out\]"):
        logit_diff(pos, good, bad)(logits[:3], None)


def test_exact_match_matches_a_naive_loop() -> None:
    g = torch.Generator().manual_seed(1)
    targets = torch.randint(0, 3, (64, 6), generator=g)
    targets[torch.rand(64, 6, generator=g) < 0.4] = IGNORE_INDEX
    predicted = torch.randint(0, 3, (64, 6), generator=g)
    naive = [
        all(int(p) == int(t) for p, t in zip(prow, trow, strict=True) if t != IGNORE_INDEX)
        for prow, trow in zip(predicted, targets, strict=True)
    ]
    assert exact_match(predicted, targets).tolist() == naive
    assert 0 < sum(naive) < 64  # both outcomes occur, so the check can fail


def test_task_score_and_exact_path_accuracy_agree() -> None:
    task = get_task("tree-path", n_nodes=5, max_depth=2)
    batch = task.sample(32, seed=0)
    logits = torch.randn(
        32, batch.seq_len, task.d_vocab_out, generator=torch.Generator().manual_seed(2)
    )
    right = batch.targets.clamp_min(0)
    logits[:16].scatter_(2, right[:16, :, None], 100.0)  # half the batch exactly right
    score = task.score(logits, batch)["exact_path"]
    assert score.tolist() == exact_path_accuracy()(logits, batch).bool().tolist()
    assert score[:16].all() and not score[16:].any()
