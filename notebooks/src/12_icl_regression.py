# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Model organism: in-context linear regression
#
# **Question.** Given a few (x, y) pairs from a fresh linear function, how close is the
# shipped `icl-regression` model's prediction at a query x to least squares and to one
# step of gradient descent on the context (von Oswald et al. 2023)?
#
# Inputs are embeddings, not tokens: each position carries one (x, y) pair and the last
# one the query x with y = 0. The model's output at the query is its prediction.
#
# **What to look at.**
# - the clean example and its `"weights"` counterfactual (same xs, a fresh w) drawn side
#   by side with every predictor's answer;
# - the held-out MSE table from `mesainterp.training.evaluate`;
# - the batch figure and MSE table: model vs least squares vs one GD step (at the
#   best-fitting rate);
# - the MSE against the number of in-context pairs;
# - the circuitsvis view of one layer's attention.

# %%
# %matplotlib inline
import dataclasses
import os

os.environ.setdefault("MESAINTERP_NO_PROGRESS", "1")

import pandas as pd
import torch
from IPython.display import display
from matplotlib.figure import Figure

from mesainterp import model_shape, zoo
from mesainterp.tasks import best_gd_lr, gd_predictions
from mesainterp.training import evaluate
from mesainterp.viz import attention_heads, icl_predictions_figure, icl_regression_figure

torch.manual_seed(0)
checkpoint = zoo.load("icl-regression")
model = checkpoint.model.eval()
task = zoo.load_task("icl-regression")
shape = model_shape(model)
print(task)


def predict(batch) -> torch.Tensor:
    """The model's prediction at the query (last) position."""
    with torch.no_grad():
        return model(batch.inputs)[:, -1, 0]


# %% [markdown]
# ## One example and its counterfactual
#
# The x-axis of each panel is the first input coordinate (the functions are
# 10-dimensional, so the points do not lie on one line in this projection).

# %%
pair = task.counterfactual_pairs(4, seed=1, family="weights")
gd_lr = task.effective_gd_lr
for name, batch in (("clean", pair.clean), ("counterfactual w", pair.corrupted)):
    xs, ys = batch.labels["xs"][0], batch.labels["ys"][0]
    display(
        icl_regression_figure(
            xs[:-1, :1],
            ys[:-1],
            xs[-1:, :1],
            {
                "model": predict(batch)[:1],
                "least squares": batch.labels["lstsq_pred"][:1],
                "one GD step": batch.labels["gd_pred"][:1],
            },
            query_y=ys[-1:],
            title=name,
        )
    )

# %% [markdown]
# ## Held-out MSE on fresh samples

# %%
result = evaluate(model, task, n=500)
pd.Series(result.metrics).to_frame("held-out").round(4)

# %% [markdown]
# ## Model vs least squares vs gradient descent
#
# `best_gd_lr` finds the one-step rate whose predictions best match the model's, so the
# "GD (fitted rate)" row asks how much of the model's behaviour one GD step can explain.

# %%
batch = task.sample(500, seed=2)
y = batch.labels["ys"][:, -1]
model_pred = predict(batch)
fitted_lr = best_gd_lr(batch.labels["xs"], batch.labels["ys"], model_pred)
series = {
    "model": model_pred,
    "least squares": batch.labels["lstsq_pred"],
    "one GD step (task rate)": batch.labels["gd_pred"],
    "one GD step (fitted rate)": gd_predictions(batch.labels["xs"], batch.labels["ys"], fitted_lr),
}
display(
    icl_predictions_figure(y, {k: v for k, v in series.items() if k != "one GD step (task rate)"})
)
pd.DataFrame(
    {
        "MSE to true y": {k: float(((v - y) ** 2).mean()) for k, v in series.items()},
        "MSE to model": {k: float(((v - model_pred) ** 2).mean()) for k, v in series.items()},
    }
).round(4)

# %% [markdown]
# ## MSE against the number of in-context pairs
#
# Same task with fewer context pairs (the model was trained at the full length only,
# so short prompts are off its training distribution).

# %%
rows = []
for k in range(1, task.n_context + 1):
    short = dataclasses.replace(task, n_context=k)
    b = short.sample(300, seed=3)
    target = b.labels["ys"][:, -1]
    rows.append(
        {
            "context pairs": k,
            "model": float(((predict(b) - target) ** 2).mean()),
            "least squares": float(((b.labels["lstsq_pred"] - target) ** 2).mean()),
            "one GD step": float(((b.labels["gd_pred"] - target) ** 2).mean()),
        }
    )
curve = pd.DataFrame(rows).set_index("context pairs")
curve.round(3)

# %%
fig = Figure(figsize=(5, 3.2), layout="constrained")
ax = fig.add_subplot()
for column in curve.columns:
    ax.plot(curve.index, curve[column], marker="o", label=column)
ax.set_xlabel("in-context pairs")
ax.set_ylabel("MSE at the query")
ax.legend(frameon=False)
display(fig)

# %% [markdown]
# ## Attention of the last layer (circuitsvis, offline)
#
# Positions are labelled `(x1,y1)` … and `query`; the query row shows which context
# pairs the heads read.

# %%
LAYER = shape.n_layers - 1
hook = f"blocks.{LAYER}.attn.hook_pattern"
with torch.no_grad():
    _, cache = model.run_with_cache(pair.clean.inputs[:1], names_filter=[hook])
labels = [f"(x{i + 1},y{i + 1})" for i in range(task.n_context)] + ["query"]
attention_heads(cache[hook][0], labels, head_names=[f"L{LAYER}H{h}" for h in range(shape.n_heads)])
