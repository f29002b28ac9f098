"""The fast probes against sklearn, bootstrap intervals, ridge subspaces, and the
planted gradient-descent model against the task's own GD oracle."""

from __future__ import annotations

import pytest
import torch
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mesainterp.errors import MesaInterpError
from mesainterp.evidence.goal import ridge_subspaces
from mesainterp.evidence.layer_probe import cv_predictions, label_for, scores_of
from mesainterp.evidence.planted import planted_gd_model
from mesainterp.evidence.stats import bootstrap_mean, bootstrap_r2
from mesainterp.probes.cv import kfold_indices
from mesainterp.probes.dataset import ActivationDataset
from mesainterp.sites import Site
from mesainterp.tasks import get_task


def _blobs(
    n: int = 120, d: int = 6, k: int = 3, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % k
    centres = torch.randn(k, d, generator=g, dtype=torch.float64) * 1.5
    x = centres[y] + torch.randn(n, d, generator=g, dtype=torch.float64)
    return x, y


def test_cv_predictions_match_sklearn_ridge_classifier() -> None:
    x, y = _blobs()
    feats = torch.stack([x, x.flip(-1) * 2.0])  # two sites
    pred = cv_predictions(feats, y, is_class=True, folds=4, seed=0)
    folds = kfold_indices(len(y), k=4, seed=0, stratify=y)
    # sklearn's oracle on the same folds: standardise on the training rows, ridge one-vs-rest.
    splits = [(tr.numpy(), te.numpy()) for tr, te in folds]
    for site in range(2):
        oracle = cross_val_predict(
            make_pipeline(StandardScaler(), RidgeClassifier(alpha=1.0)),
            feats[site].numpy(), y.numpy(), cv=splits,
        )  # fmt: skip
        assert (pred[site].numpy() == oracle).all()
    acc = scores_of(pred, y, is_class=True)
    assert acc.shape == (2,) and float(acc[0]) > 0.6


def test_cv_predictions_regression_recovers_a_linear_target() -> None:
    x, _ = _blobs(n=200)
    y = x @ torch.arange(1.0, 7.0, dtype=torch.float64)
    pred = cv_predictions(x[None], y, is_class=False, folds=5, seed=1)
    assert float(scores_of(pred, y, is_class=False)[0]) > 0.99


def test_label_for_drops_missing_and_compacts_classes() -> None:
    labels = {"path": torch.tensor([[0, 7], [1, -1], [2, 9], [3, 7]])}
    keep, y, is_class = label_for(labels, "path", 1)
    assert is_class and keep.tolist() == [True, False, True, True]
    assert y.tolist() == [0, 1, 0]
    with pytest.raises(MesaInterpError, match="no label"):
        label_for(labels, "goal", None)


def test_bootstrap_intervals_cover_the_estimate() -> None:
    v = torch.tensor([0.0, 1.0] * 50, dtype=torch.float64)
    lo, hi = bootstrap_mean(v, n_boot=300, seed=0)
    assert lo < 0.5 < hi and hi - lo < 0.3
    y = torch.linspace(-1, 1, 100, dtype=torch.float64)
    lo, hi = bootstrap_r2(y, y, n_boot=100, seed=0)
    assert lo == pytest.approx(1.0) and hi == pytest.approx(1.0)


def test_ridge_subspaces_are_orthonormal_with_class_means() -> None:
    x, y = _blobs(n=90, k=3)
    data = ActivationDataset(
        sites=(Site(kind="resid_post", layer=0, pos=0),),
        features=x[None].float(),
        labels={"goal": y + 2},  # ids 2..4: means indexed by the raw id
    )
    (sub,) = ridge_subspaces(data, "goal", [0])
    assert sub.rank == 2  # K - 1 class contrasts
    gram = sub.basis.T @ sub.basis
    assert torch.allclose(gram, torch.eye(2), atol=1e-5)
    assert torch.isnan(sub.class_means[:2]).all()
    assert torch.allclose(sub.class_means[2], x[y == 0].mean(0).float(), atol=1e-5)


def test_planted_gd_model_computes_one_gradient_step() -> None:
    task = get_task("icl-regression", d_x=3, n_context=5, d_model=12, gd_lr=0.7)
    model = planted_gd_model(task)
    batch = task.sample(64, seed=3)
    with torch.no_grad():
        out = model(batch.inputs)[:, task.query_pos, 0]
    oracle = task.gd_predictions(batch, 0.7)  # the task's own GD, in float64
    assert torch.allclose(out.double(), oracle.double(), atol=2e-3 * float(oracle.abs().max()))
    other = planted_gd_model(task, lr=0.35)
    with torch.no_grad():
        half = other(batch.inputs)[:, task.query_pos, 0]
    assert torch.allclose(half, out / 2, atol=1e-3)


def test_planted_gd_model_refuses_other_tasks() -> None:
    with pytest.raises(MesaInterpError, match="icl-regression"):
        planted_gd_model(get_task("tree-path"))
    with pytest.raises(MesaInterpError, match="d_model"):
        planted_gd_model(get_task("icl-regression", d_x=5, n_context=4, d_model=8))


@pytest.mark.parametrize("n_nodes,max_depth", [(12, 5), (7, 3)])
def test_planted_chain_model_solves_tree_path(n_nodes: int, max_depth: int) -> None:
    from mesainterp.evidence.planted import planted_chain_model

    task = get_task("tree-path", n_nodes=n_nodes, max_depth=max_depth)
    model = planted_chain_model(task)
    assert model.cfg.n_layers == max_depth + 2
    batch = task.sample(128, seed=2)
    with torch.no_grad():
        scores = task.score(model(batch.inputs), batch)
    # Teacher-forced exactness equals greedy decoding being right (the targets are
    # the next inputs); the task's own paths are the oracle.
    assert bool(scores["exact_path"].all())
    with pytest.raises(MesaInterpError, match="tree-path"):
        planted_chain_model(get_task("icl-regression"))


@pytest.mark.parametrize(
    "params",
    [
        {"n_vertices": 8, "max_lookahead": 3, "extra_edges": 2},
        {"n_vertices": 12, "max_lookahead": 5, "extra_edges": 4},
        {"n_vertices": 20, "max_lookahead": 6, "n_branches": 3, "extra_edges": 10},
        {"n_vertices": 4, "max_lookahead": 1, "extra_edges": 1},
    ],
)
def test_planted_reach_model_solves_graph_search(params: dict) -> None:
    from mesainterp.evidence.planted_graph import planted_reach_model

    task = get_task("graph-search", **params)
    model = planted_reach_model(task)
    assert model.cfg.n_layers == 2 * task.max_lookahead
    batch = task.sample(256, seed=4)
    with torch.no_grad():
        scores = task.score(model(batch.inputs), batch)
    assert bool(scores["exact_path"].all())


def test_planted_reach_model_plans_the_path_at_the_colon() -> None:
    """The planning pointer writes path step j to its own block at ":" (what the
    iterative and look-ahead tests read)."""
    from mesainterp.evidence.planted_graph import planted_reach_model

    task = get_task("graph-search", n_vertices=10, max_lookahead=4, extra_edges=3)
    model = planted_reach_model(task)
    batch = task.sample(64, seed=5)
    _, cache = model.run_with_cache(batch.inputs)
    resid = cache[f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"][:, task.prompt_len - 1]
    n = task.n_vertices
    step = task.d_vocab + task.seq_len + 4 * n
    path = batch.labels["path"]
    for j in range(1, task.max_lookahead + 1):
        block = resid[:, step + (j - 1) * n : step + j * n]
        has = path[:, j] >= 0
        assert torch.equal(block[has].argmax(-1), path[has, j])
        assert bool((block[has].max(-1).values > 0.99).all())
        assert bool((block[~has].abs().max(-1).values < 1e-3).all())
    with pytest.raises(MesaInterpError, match="graph-search"):
        planted_reach_model(get_task("tree-path"))


@pytest.mark.parametrize("grid_n", [3, 4])
def test_planted_flood_model_solves_maze(grid_n: int) -> None:
    from mesainterp.evidence.planted_maze import planted_flood_model

    task = get_task("maze", grid_n=grid_n)
    model = planted_flood_model(task)
    assert model.cfg.n_layers == task.n_cells + 2
    batch = task.sample(128, seed=6)
    with torch.no_grad():
        scores = task.score(model(batch.inputs), batch)
    assert bool(scores["exact_path"].all())
    with pytest.raises(MesaInterpError, match="maze"):
        planted_flood_model(get_task("tree-path"))
