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
from mesainterp.demo.overlays import model_paths
from mesainterp.patching import patch_pair
from mesainterp.sites import head_sites
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


# %% [markdown]
# ## The task and a counterfactual pair
#
# The `"target"` family keeps the maze and the origin and moves the target.

# %%
pair = task.counterfactual_pairs(8, seed=1)
print("clean:    ", task.render(pair.clean.inputs[0]))
print("corrupted:", task.render(pair.corrupted.inputs[0]))
clean_paths = model_paths(model, pair.clean, n_nodes=task.n_cells)
corrupted_paths = model_paths(model, pair.corrupted, n_nodes=task.n_cells)
display(
    instance_before_after(
        pair.clean.instances[0],
        pair.corrupted.instances[0],
        model_before=clean_paths[0],
        model_after=corrupted_paths[0],
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
decoded = model_paths(model, batch, n_nodes=task.n_cells)[0]
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

# %% [markdown]
# ## Where the target becomes decodable, and whether steering it retargets the model
#
# Measured on this shipped model (600 examples, 5-fold cross-validated logistic probes,
# C = 1, `resid_post` at every layer × positions 0..30; controls: a random-init twin,
# shuffled labels, the majority class at 0.14):
#
# - **Target token (pos 27).** 1.00 at every layer, and 1.00 for the random-init twin
#   too: the token's identity, not a finding.
# - **`:` (pos 28).** 0.59 ± 0.02 after block 0 falling to 0.44 after block 5, *below*
#   the random-init twin (0.88 → 0.78): training removes the target from this position.
# - **First answer positions (pos 29, 30).** Decodable after block 0 (0.63 / 0.69 against
#   0.50 / 0.45 for the twin) and best after blocks 1–3: 0.83 ± 0.01 at pos 29 after
#   block 1 and 0.81 ± 0.02 at pos 30 after block 3 (twin 0.45 / 0.44); 0.72 / 0.74 after
#   block 5.
#
# **Retargeting** (48 target-family pairs: same maze and origin, target A vs B; steer the
# probe-subspace component at positions 27–30 to target B's class mean; control: 5
# random subspaces of equal rank and per-example norm): steering after block 0 makes
# **0.35 [0.23, 0.50]** (Wilson 95%) of the clean runs walk goal B's exact path against
# **0.03 [0.00, 0.06]** for random directions and 0.00 [0, 0.07] unedited; after
# blocks 1–3, 0.02 [0.00, 0.11]; after blocks 4–5, 0.00. Ablation never reaches B (0.00).
