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
# # Model organism: tree path finding
#
# **Question.** What is the `tree-path` task, how well does the shipped model solve
# held-out instances, and what does one of its attention heads look at?
#
# The prompt is a shuffled edge list of a random tree plus a goal node; the answer is
# the path from the root to the goal. Solving it needs chaining parent lookups, which is
# what makes it a model organism of internal search (Brinkmann et al. 2024).
#
# **What to look at.**
# - the rendered instance and its counterfactual twin side by side (same tree, another
#   goal), each with the model's greedy path;
# - the held-out scores table from `mesainterp.training.evaluate` on fresh samples;
# - the chosen head's attention drawn on the tree (darker = more attention on the edges
#   naming that node) and the interactive circuitsvis view of the whole layer.

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
checkpoint = zoo.load("tree-path")
model = checkpoint.model.eval()
task = zoo.load_task("tree-path")
shape = model_shape(model)
print(task)


# %% [markdown]
# ## The task and a counterfactual pair
#
# The `"goal"` family keeps the tree and changes the goal to one whose path diverges.

# %%
pair = task.counterfactual_pairs(8, seed=1)
print("clean:    ", task.render(pair.clean.inputs[0]))
print("corrupted:", task.render(pair.corrupted.inputs[0]))
clean_paths = model_paths(model, pair.clean, n_nodes=task.n_nodes)
corrupted_paths = model_paths(model, pair.corrupted, n_nodes=task.n_nodes)
display(
    instance_before_after(
        pair.clean.instances[0],
        pair.corrupted.instances[0],
        model_before=clean_paths[0],
        model_after=corrupted_paths[0],
        titles=("clean goal", "counterfactual goal"),
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
# ## A head's attention on the tree
#
# We pick the head whose activation patching effect on the goal family is largest
# (a quick sweep on a few pairs), then draw its attention from the `:` position (the
# one that predicts the first answer token) onto the tree: each node gets the summed
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
position_nodes = [t if t < task.n_nodes else None for t in tokens[: query + 1]]
weights = attention_to_nodes(pattern[HEAD, query, : query + 1], position_nodes)
decoded = model_paths(model, batch, n_nodes=task.n_nodes)[0]
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
# ## Where the goal becomes decodable, and whether steering it retargets the model
#
# Measured on this shipped model (600 examples, 5-fold cross-validated logistic probes,
# C = 1, `resid_post` at every layer × positions 0..37; controls: a random-init twin,
# shuffled labels, the majority class; the goal-probes notebook recomputes this at a
# smaller size):
#
# - **Goal token (pos 34).** Accuracy 1.00 at every layer, but so is the random-init
#   twin's: the token's own identity, not a finding.
# - **`:` (pos 35, predicts the first answer).** 0.61 ± 0.01 after block 1 against 0.44
#   for the random-init twin (shuffled 0.09, majority 0.10); after that it falls *below*
#   the twin (0.30, 0.22, 0.16, 0.15 for blocks 2–5, twin 0.37–0.32).
# - **First answer positions (pos 36, 37).** The goal is decodable right after block 0:
#   1.00 against 0.23 / 0.29 for the twin; it stays ≥ 0.98 through block 3 and decays to
#   0.84 / 0.80 after block 5. The model copies the goal to where the path is written
#   in its first layer.
#
# **Retargeting** (48 goal-family pairs: same tree, goal A in the clean prompt, goal B in
# the counterfactual; steer = set the probe-subspace component at positions 34–37 to
# goal B's class mean; control = the same edit along 5 random subspaces of equal rank,
# rescaled to the probe edit's norm per example): steering after block 0 sends
# **0.81 [0.68, 0.90]** (Wilson 95%) of the clean runs down goal B's exact path; random
# directions **0.00** (5 draws) and the unedited model 0.00 [0, 0.07]. Steering after
# blocks 1–5 at the same positions retargets 0.00, consistent with the goal having been
# read into other positions by then (not tested here). Ablating the probe subspace
# never produces goal B's path (0.00).
