"""In-context linear regression (von Oswald et al. 2023): the canonical mesa-optimizer.

Each example draws w ~ N(0, I_d) and `n_context + 1` inputs x (uniform in
[-1, 1]^d by default, as in the paper, or standard normal), y = w.x (+ noise).
The model sees `n_context` context tokens (x_i, y_i) and a query token (x_q, 0)
and predicts y_q at the query.

Inputs are embeddings, not tokens: `inputs` is a FloatTensor
[batch, n_context + 1, d_model] fed straight to the model (a TransformerBridge
takes a float input as the embedding and still adds positional embeddings),
so the task's `d_model` must equal the model's. Each row is

    [x_1 .. x_d, y, is_query, 0 ... 0]      (width d_model >= d + 2)

with y = 0 and is_query = 1 on the query token. The model's output width is 1
(`d_vocab_out == 1`); its prediction is `output[:, -1, 0]`. `targets` is float
[batch, pos], NaN everywhere but the query position.

Labels: "w" [batch, d], "xs" [batch, n_context + 1, d], "ys" [batch, n_context + 1]
(the query's true y last), "lstsq_pred" (minimum-norm least squares on the
context, applied to x_q) and "gd_pred" (one gradient step from w = 0 on
L(w) = 1/(2N) sum_i (w.x_i - y_i)^2 at learning rate `gd_lr`). `gd_predictions`
computes any number of steps at any rate; `best_gd_lr` finds the rate that best
matches the targets or a model's predictions.

Counterfactual families (the metric is minus the squared error to the clean
target, so higher = more clean-like):
- "weights": the same xs, a fresh w (so every y changes);
- "query": the same context and w, a fresh query x.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar, Literal, get_args

import numpy as np
import torch
from einops import einsum, rearrange
from jaxtyping import Float
from torch import Tensor

from mesainterp.errors import ConfigError
from mesainterp.tasks._common import (
    ConfiguredTask,
    check_choice,
    check_float,
    check_int,
    pick_family,
)
from mesainterp.tasks.base import CounterfactualPair, Metric, TaskBatch
from mesainterp.tasks.metrics import check_outputs

__all__ = ["ICLRegressionTask", "XDistribution", "best_gd_lr", "gd_predictions"]

XDistribution = Literal["uniform", "normal"]


def gd_predictions(
    xs: Float[Tensor, "batch n_plus_1 d"],
    ys: Float[Tensor, "batch n_plus_1"],
    lr: float,
    steps: int = 1,
) -> Float[Tensor, " batch"]:
    """Prediction at the last x after `steps` GD steps from w = 0 on the context.

    The loss is L(w) = 1/(2N) sum_i (w.x_i - y_i)^2 over the N context pairs
    (the last row of `xs`/`ys` is the query; its y is not used).
    """
    ctx_x, ctx_y, xq = xs[:, :-1].double(), ys[:, :-1].double(), xs[:, -1].double()
    n = ctx_x.shape[1]
    w = torch.zeros(xs.shape[0], xs.shape[2], dtype=torch.float64)
    for _ in range(steps):
        resid = einsum(ctx_x, w, "batch n d, batch d -> batch n") - ctx_y
        w = w - lr / n * einsum(resid, ctx_x, "batch n, batch n d -> batch d")
    return einsum(w, xq, "batch d, batch d -> batch").to(xs.dtype)


def best_gd_lr(
    xs: Float[Tensor, "batch n_plus_1 d"],
    ys: Float[Tensor, "batch n_plus_1"],
    predictions: Float[Tensor, " batch"] | None = None,
    steps: int = 1,
) -> float:
    """The learning rate whose GD prediction is closest (squared error) to `predictions`.

    `predictions` defaults to the true query targets `ys[:, -1]`. One step is
    linear in the rate, so its optimum is closed-form; more steps use a grid
    search refined around its best point.
    """
    goal = (ys[:, -1] if predictions is None else predictions).double()
    if steps == 1:
        s = gd_predictions(xs.double(), ys.double(), 1.0)
        return float((s * goal).sum() / (s * s).sum().clamp(min=1e-30))

    def loss(lr: float) -> float:
        return float(((gd_predictions(xs.double(), ys.double(), lr, steps) - goal) ** 2).sum())

    one = best_gd_lr(xs, ys, predictions, steps=1)
    grid = np.linspace(0.0, 2.0 * abs(one) + 1e-6, 201)
    best = float(grid[int(np.argmin([loss(g) for g in grid]))])
    step = grid[1] - grid[0]
    for g in np.linspace(best - step, best + step, 41):
        if loss(float(g)) < loss(best):
            best = float(g)
    return best


@functools.cache
def _reference_lr(d_x: int, n_context: int, x_dist: XDistribution, noise_std: float) -> float:
    task = ICLRegressionTask(
        d_x=d_x,
        n_context=n_context,
        x_dist=x_dist,
        noise_std=noise_std,
        d_model=d_x + 2,
        gd_lr=1.0,
    )
    xs, ys, _ = task._draw(np.random.default_rng([0, 99]), 20000)
    return best_gd_lr(torch.from_numpy(xs), torch.from_numpy(ys))


@dataclass(frozen=True, kw_only=True)
class ICLRegressionTask(ConfiguredTask):
    """In-context linear regression with embedding inputs. See the module docstring."""

    name: ClassVar[str] = "icl-regression"
    counterfactual_families: ClassVar[tuple[str, ...]] = ("weights", "query")

    d_x: int = 10
    n_context: int = 10
    d_model: int = 64
    x_dist: XDistribution = "uniform"
    noise_std: float = 0.0
    gd_lr: float | None = None  # None: the best one-step rate for this distribution

    def __post_init__(self) -> None:
        t = self.name
        check_int(t, "d_x", self.d_x, 1, 256)
        check_int(t, "n_context", self.n_context, 1, 1024)
        check_int(t, "d_model", self.d_model, self.d_x + 2)
        check_choice(t, "x_dist", self.x_dist, get_args(XDistribution))
        check_float(t, "noise_std", self.noise_std, 0.0)
        if self.gd_lr is not None:
            check_float(t, "gd_lr", self.gd_lr, 0.0)

    @property
    def input_width(self) -> int:
        """Width of every input row; the model's d_model must equal it."""
        return self.d_model

    @property
    def d_vocab(self) -> int:
        return self.d_model

    @property
    def d_vocab_out(self) -> int:
        return 1

    @property
    def seq_len(self) -> int:
        return self.n_context + 1

    @property
    def prompt_len(self) -> int:
        return self.seq_len

    @property
    def query_pos(self) -> int:
        return self.n_context

    @property
    def effective_gd_lr(self) -> float:
        """`gd_lr`, or the loss-minimizing one-step rate (fixed 20k-example reference sample)."""
        if self.gd_lr is not None:
            return float(self.gd_lr)
        return _reference_lr(self.d_x, self.n_context, self.x_dist, float(self.noise_std))

    # ---- generation ------------------------------------------------------------
    def _xs(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        if self.x_dist == "uniform":
            return rng.uniform(-1.0, 1.0, shape)
        return rng.standard_normal(shape)

    def _ys(self, rng: np.random.Generator, xs: np.ndarray, w: np.ndarray) -> np.ndarray:
        ys = np.einsum("bnd,bd->bn", xs, w)
        if self.noise_std > 0:
            ys = ys + self.noise_std * rng.standard_normal(ys.shape)
        return ys

    def _draw(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        xs = self._xs(rng, (n, self.seq_len, self.d_x))
        w = rng.standard_normal((n, self.d_x))
        return xs, self._ys(rng, xs, w), w

    def _batch(self, xs: np.ndarray, ys: np.ndarray, w: np.ndarray) -> TaskBatch:
        n, q = xs.shape[0], self.query_pos
        inputs = np.zeros((n, self.seq_len, self.d_model))
        inputs[:, :, : self.d_x] = xs
        inputs[:, :q, self.d_x] = ys[:, :q]
        inputs[:, q, self.d_x + 1] = 1.0
        targets = np.full((n, self.seq_len), np.nan)
        targets[:, q] = ys[:, q]
        xs_t, ys_t = torch.from_numpy(xs), torch.from_numpy(ys)
        ctx = xs_t[:, :q]
        # QR least squares (min-norm when underdetermined); random inputs are full rank.
        ctx_y = rearrange(ys_t[:, :q], "batch n -> batch n 1")  # one right-hand side
        w_ls = rearrange(torch.linalg.lstsq(ctx, ctx_y, driver="gels").solution, "b d 1 -> b d")
        labels = {
            "w": torch.from_numpy(w).float(),
            "xs": xs_t.float(),
            "ys": ys_t.float(),
            "lstsq_pred": einsum(w_ls, xs_t[:, q], "batch d, batch d -> batch").float(),
            "gd_pred": gd_predictions(xs_t, ys_t, self.effective_gd_lr).float(),
        }
        return TaskBatch(
            inputs=torch.from_numpy(inputs).float(),
            targets=torch.from_numpy(targets).float(),
            prompt_len=self.prompt_len,
            labels=labels,
        )

    def sample(self, n: int, *, seed: int) -> TaskBatch:
        check_int(self.name, "n", n, 1)
        check_int(self.name, "seed", seed, 0)
        return self._batch(*self._draw(np.random.default_rng([seed, 0]), n))

    def counterfactual_pairs(
        self, n: int, *, seed: int, family: str | None = None
    ) -> CounterfactualPair:
        family = pick_family(self, family)
        check_int(self.name, "n", n, 1)
        check_int(self.name, "seed", seed, 0)
        rng = np.random.default_rng([seed, 1 if family == "weights" else 2])
        xs, ys, w = self._draw(rng, n)
        if family == "weights":
            xs2, w2 = xs, rng.standard_normal(w.shape)
        else:
            xs2, w2 = xs.copy(), w
            xs2[:, self.query_pos] = self._xs(rng, (n, self.d_x))
        ys2 = self._ys(rng, xs2, w2)
        if family == "query":
            ys2[:, : self.query_pos] = ys[:, : self.query_pos]  # same context, same noise
        none = torch.full((n,), -1, dtype=torch.long)
        return CounterfactualPair(
            family=family,
            clean=self._batch(xs, ys, w),
            corrupted=self._batch(xs2, ys2, w2),
            answer_pos=torch.full((n,), self.query_pos, dtype=torch.long),
            clean_answer=none,
            corrupted_answer=none.clone(),
        )

    def default_metric(self, pair: CounterfactualPair) -> Metric:
        """Minus the squared error of output[..., 0] at the query to the clean target."""
        target = pair.clean.targets[:, self.query_pos]

        def metric(
            outputs: Float[Tensor, "batch pos d_vocab_out"], batch: TaskBatch
        ) -> Float[Tensor, " batch"]:
            check_outputs(outputs, int(target.shape[0]), "[batch, pos, 1]")
            pred = outputs[:, self.query_pos, 0]
            return -((pred - target.to(pred.device)) ** 2)

        return metric

    def score(
        self, outputs: Float[Tensor, "batch pos d_vocab_out"], batch: TaskBatch
    ) -> dict[str, Tensor]:
        """{"mse": squared error per example, averaged over supervised positions}."""
        if outputs.ndim != 3 or outputs.shape[:2] != batch.targets.shape:
            raise ConfigError(
                "outputs",
                f"expected shape [batch, pos, 1] = [{batch.batch_size}, {batch.seq_len}, 1],"
                f" got {list(outputs.shape)}",
            )
        mask = batch.answer_mask.to(outputs.device)
        err = torch.where(mask, outputs[..., 0] - batch.targets.to(outputs.device), 0.0) ** 2
        return {"mse": err.sum(1) / mask.sum(1).clamp(min=1)}

    def gd_predictions(
        self, batch: TaskBatch, lr: float, steps: int = 1
    ) -> Float[Tensor, " batch"]:
        return gd_predictions(batch.labels["xs"], batch.labels["ys"], lr, steps)

    def best_gd_lr(
        self,
        batch: TaskBatch,
        predictions: Float[Tensor, " batch"] | None = None,
        steps: int = 1,
    ) -> float:
        return best_gd_lr(batch.labels["xs"], batch.labels["ys"], predictions, steps)
