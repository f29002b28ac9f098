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
# # Model organism: maze path finding
#
# **Question.** What is the `maze` task, how well does the shipped model solve
# held-out mazes, and what does one of its attention heads look at?
#
# The prompt lists the connections between cells of a small grid maze, an origin and a
# target; the answer is the path of cells from origin to target (Ivanitskiy et al. 2023).
# Finding it needs search over the maze graph, which makes it a model organism of
# internal search.
#
# **What to look at.**
# - the rendered maze and its counterfactual twin side by side (same maze, another
#   target), each with the model's greedy path;
# - the held-out scores table from `mesainterp.training.evaluate` on fresh samples;
# - the chosen head's attention drawn on the maze (darker = more attention on the tokens naming that
#   cell in the connections) and the interactive circuitsvis view of the whole layer.

# %%
# %matplotlib inline
import os

os.environ.setdefault("MESAINTERP_NO_PROGRESS", "1")

import pandas as pd
import torch
from IPython.display import display

from mesainterp import model_shape, zoo
from mesainterp.patching import patch_pair
from mesainterp.sites import head_sites
from mesainterp.tasks import greedy_decode
from mesainterp.training import evaluate
from mesainterp.viz import (
    attention_heads,
    attention_to_nodes,
    instance_before_after,
    instance_figure,
)

torch.manual_seed(0)
checkpoint = zoo.load("maze")
model = checkpoint.model.eval()
task = zoo.load_task("maze")
shape = model_shape(model)
print(task)


def answer_path(tokens: torch.Tensor, prompt_len: int) -> list[int]:
    """Cell indices of a decoded answer, up to END."""
    path = []
    for token in tokens[prompt_len:].tolist():
        if token >= task.n_cells:
            break
        path.append(token)
    return path


# %% [markdown]
# ## The task and a counterfactual pair
#
# The `"target"` family keeps the maze and the origin and moves the target.

# %%
pair = task.counterfactual_pairs(8, seed=1)
print("clean:    ", task.render(pair.clean.inputs[0]))
print("corrupted:", task.render(pair.corrupted.inputs[0]))
clean_paths = greedy_decode(model, pair.clean)
corrupted_paths = greedy_decode(model, pair.corrupted)
display(
    instance_before_after(
        pair.clean.instances[0],
        pair.corrupted.instances[0],
        model_before=answer_path(clean_paths[0], task.prompt_len),
        model_after=answer_path(corrupted_paths[0], task.prompt_len),
        titles=("clean target", "counterfactual target"),
    )
)

# %% [markdown]
# ## Held-out accuracy on fresh samples
#
# `evaluate` draws fresh examples from the held-out seed range (never used in training)
# and reports the task's scores with 95% Wilson intervals.

# %%
result = evaluate(model, task, n=300)
pd.Series(result.metrics).to_frame("held-out").round(4)

# %% [markdown]
# ## A head's attention on the maze
#
# We pick the head whose activation patching effect on the target family is largest
# (a quick sweep on a few pairs), then draw its attention from the `:` position (the
# one that predicts the first answer token) onto the maze: each cell gets the summed
# attention of the key positions whose token names it.

# %%
heads = patch_pair(
    model, pair, head_sites(shape), metric=task.default_metric(pair), n_boot=50
).table
chosen = heads.loc[heads["value"].abs().idxmax()]
LAYER, HEAD = int(chosen["layer"]), int(chosen["head"])
print(f"chosen head: L{LAYER}H{HEAD}")

batch = task.sample(1, seed=7)
instance = batch.instances[0]
hook = f"blocks.{LAYER}.attn.hook_pattern"
with torch.no_grad():
    _, cache = model.run_with_cache(batch.inputs, names_filter=[hook])
pattern = cache[hook][0]  # [head, query, key]
query = task.prompt_len - 1
tokens = batch.inputs[0].tolist()
position_nodes = [t if t < task.n_cells else None for t in tokens[: query + 1]]
weights = attention_to_nodes(pattern[HEAD, query, : query + 1], position_nodes)
decoded = answer_path(greedy_decode(model, batch)[0], task.prompt_len)
display(
    instance_figure(
        instance, model_path=decoded, intensity=weights, title=f"L{LAYER}H{HEAD} attention from ':'"
    )
)

# %% [markdown]
# ## The whole layer in circuitsvis
#
# `attention_heads` returns an object that renders offline in the notebook (the
# circuitsvis bundle is inlined; nothing is fetched). Hover a token to see where it attends.

# %%
labels = [task.vocab[t] for t in tokens]
attention_heads(pattern, labels, head_names=[f"L{LAYER}H{h}" for h in range(shape.n_heads)])
