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
# # Model organism: search in a DAG
#
# **Question.** How well does the shipped `graph-search` model find the unique path
# from a start vertex to a goal in a small DAG, where in the network does the goal's
# identity decide the answer, and is the goal linearly readable there, beyond what the
# controls allow?
#
# The prompt is an edge list (shuffled, padded), then `<s> start <g> goal :`; the answer
# is the path start ... goal, END (Saparov et al. 2025). The "balanced" distribution
# gives the start two branches of the same length, only one of which reaches the goal,
# so neither branch length nor out-degree tells them apart: the model has to search.
# The shipped model is trained on a small instance (see `docs/zoo.md`).
#
# **What to look at.**
# - a DAG with its path and the model's greedy path;
# - held-out exact path on fresh samples, overall and by lookahead (distance start → goal);
# - the residual-stream patching grid on the `"goal"` counterfactual (same graph, another
#   goal whose path leaves the clean one): where the clean goal's information sits;
# - a goal probe by layer against a random-init twin, shuffled labels and the majority class.

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
from mesainterp.probes import ProbeSpec, collect_activations, probe_sites, run_probes, task_batches
from mesainterp.sites import resid_sites
from mesainterp.training import evaluate
from mesainterp.viz import instance_figure, patching_heatmap, probe_curves

N_PAIRS = 32
N_PROBE = 400
torch.manual_seed(0)

checkpoint = zoo.load("graph-search")
model = checkpoint.model.eval()
task = zoo.load_task("graph-search")
shape = model_shape(model)
print(task)
print("held-out accuracy recorded at training:", checkpoint.metadata["held_out"]["metrics"])


# %% [markdown]
# ## The task and the model's path

# %%
batch = task.sample(4, seed=3)
decoded = model_paths(model, batch, n_nodes=task.n_vertices)
for b in range(2):
    print(task.render(batch.inputs[b]))
    print("   model:", decoded[b], " truth:", list(batch.instances[b].path))
display(instance_figure(batch.instances[0], model_path=decoded[0], title="a DAG"))

# %% [markdown]
# ## Held-out accuracy, by lookahead
#
# `evaluate` draws fresh samples from the held-out seed range (never used in training).

# %%
result = evaluate(model, task, n=500)
display(pd.Series(result.metrics).to_frame("held-out").round(4))
held = task.sample(500, seed=result.seed)
with torch.no_grad():
    exact = task.score(model(held.inputs), held)["exact_path"]
pd.DataFrame({"lookahead": held.labels["lookahead"].numpy(), "exact_path": exact.numpy()}).groupby(
    "lookahead"
)["exact_path"].agg(["mean", "count"]).round(3)

# %% [markdown]
# ## Activation patching on the goal counterfactual
#
# Pairs from the `"goal"` family share the graph, the edge order and the start and
# differ only in the goal; the metric is the logit difference of the first path vertex
# where the two answers part. Denoising writes the clean residual stream at one
# (layer, position) into the corrupted run: 1 means that site alone restores the clean
# answer. Expect the goal token's column early and the `:` / answer columns late.

# %%
pair = task.counterfactual_pairs(N_PAIRS, seed=0)
metric = task.default_metric(pair)
resid = patch_pair(
    model,
    pair,
    resid_sites(shape, seq_len=pair.clean.seq_len),
    metric=metric,
    direction="denoising",
    n_boot=50,
    model_name="graph-search",
    metric_name="graph-search:goal:logit_diff",
)
labels = [f"{p}:{task.vocab[t]}" for p, t in enumerate(pair.clean.inputs[0].tolist())]
patching_heatmap(resid.table, x="position", position_labels=labels, title="resid_pre, denoising")

# %%
resid.table.sort_values("value", ascending=False).head(8)[
    ["layer", "position", "value", "ci_low", "ci_high"]
].round(3)

# %% [markdown]
# ## A goal probe with controls
#
# One logistic probe per layer at the `:` position (the one that predicts the first
# path vertex), cross-validated; the controls are the same probe on a random-init
# twin, on shuffled labels, and the majority class. `selectivity` is the probe's score
# minus the strongest control.

# %%
sites = probe_sites(shape, [task.goal_pos, task.prompt_len - 1], kind="resid_post")
twin = zoo.random_init("graph-search", seed=0)
data = collect_activations(model, task_batches(task, N_PROBE, batch_size=200, seed=0), sites)
twin_data = collect_activations(twin, task_batches(task, N_PROBE, batch_size=200, seed=0), sites)
probes = run_probes(data, ProbeSpec(target="goal", folds=4, seed=0), random_init=twin_data).table
probes[["layer", "pos", "value", "random_init", "shuffled", "majority", "selectivity"]].round(3)

# %%
probe_curves(probes, pos=task.prompt_len - 1)
