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
# # Circuit discovery: attribution, edge circuits and faithfulness
#
# **Question.** Which components and edges of the `tree-path` model carry the
# goal-dependent answer, can cheap gradient attribution find them, and how much of the
# model's behaviour does the resulting circuit keep?
#
# **What to look at.**
# - the attribution-vs-exact scatter (Pearson and Spearman in its title): node
#   attribution patching against exact activation patching of the same sites;
# - the EAP vs EAP-IG agreement on edge scores;
# - the circuit graph of the top edges;
# - the faithfulness table: the circuit's share of the clean–corrupted metric gap under
#   resample, mean and zero ablation of everything outside it, with bootstrap intervals,
#   and the top-k curve;
# - the Circuit JSON round trip.
#
# Small on purpose (few pairs) so it runs in about a minute on a CPU; `mesainterp search`
# runs the configured version.

# %%
# %matplotlib inline
import os

os.environ.setdefault("MESAINTERP_NO_PROGRESS", "1")

import tempfile
from pathlib import Path

import pandas as pd
import torch
from scipy.stats import spearmanr

from mesainterp import model_shape, provenance, zoo
from mesainterp.attribution import EdgeForward, edge_attribution, node_attribution
from mesainterp.discovery import Circuit, faithfulness, rows_to_frame, top_edges
from mesainterp.patching import patch_pair
from mesainterp.sites import head_sites, mlp_sites
from mesainterp.viz import attribution_scatter, circuit_graph

N_PAIRS = 16
TOP_N = 60  # edges kept in the circuit
torch.manual_seed(0)

checkpoint = zoo.load("tree-path")
model = checkpoint.model.eval()
task = zoo.load_task("tree-path")
shape = model_shape(model)
pair = task.counterfactual_pairs(N_PAIRS, seed=0)
metric = task.default_metric(pair)
clean, corrupted = pair.clean.inputs, pair.corrupted.inputs

# %% [markdown]
# ## Node attribution vs exact patching
#
# Node attribution scores every head and MLP from two forwards and one backward; it
# approximates the raw effect (patched − corrupted metric) of exact denoising patching.

# %%
sites = head_sites(shape) + mlp_sites(shape, by_pos=False)
approx = node_attribution(
    model, sites, clean=clean, corrupted=corrupted, metric=metric, batch=pair.clean
)
exact = patch_pair(model, pair, sites, metric=metric, n_boot=100)
raw_exact = (exact.patched.mean(dim=1) - exact.corrupted.mean()).numpy()
labels = [site.label() for site in sites]
attribution_scatter(
    raw_exact, approx.scores.numpy(), labels=labels, title="node attribution vs exact patching"
)

# %%
pd.DataFrame(
    {"site": labels, "exact": raw_exact, "attribution": approx.scores.numpy()}
).sort_values("exact", ascending=False).round(3)

# %% [markdown]
# ## Edge attribution: EAP and EAP-IG
#
# Every edge (from an upstream output to a downstream input: a head's q/k/v, an MLP,
# the logits) gets a score. EAP-IG integrates the gradient along the path from
# corrupted to clean inputs.

# %%
forward = EdgeForward(model)
eap = edge_attribution(
    model,
    clean=clean,
    corrupted=corrupted,
    metric=metric,
    batch=pair.clean,
    method="eap",
    forward=forward,
)
eap_ig = edge_attribution(
    model,
    clean=clean,
    corrupted=corrupted,
    metric=metric,
    batch=pair.clean,
    method="eap-ig",
    ig_steps=3,
    forward=forward,
)
a, b = eap.as_dict(), eap_ig.as_dict()
print(
    f"{len(a)} edges; Spearman(EAP, EAP-IG) = {spearmanr(list(a.values()), [b[e] for e in a]).statistic:.3f}"
)
pd.DataFrame(eap_ig.ranked()[:10], columns=["edge", "EAP-IG score"])

# %% [markdown]
# ## A circuit from the top edges

# %%
ranking = [edge for edge, _ in eap_ig.ranked()]
stamp = provenance(model_fingerprint=checkpoint.fingerprint, model_name="tree-path", seed=0)
circuit = Circuit.from_edges(
    top_edges(eap_ig, top_n=TOP_N),
    method="eap-ig",
    params={"top_n": TOP_N, "ig_steps": 3, "n_examples": N_PAIRS},
    provenance=stamp,
    node_order=forward.graph.upstream,
)
print(f"top-edge circuit: {len(circuit.nodes)} nodes, {len(circuit.edges)} edges")

# %% [markdown]
# ACDC (`mesainterp.discovery.acdc`) prunes edges one at a time instead, one forward run
# per edge, which takes minutes on a CPU even for this model; run it through
# `mesainterp search` with `method = "acdc"`. Here we keep the attribution circuit.

# %% [markdown]
# ## Faithfulness
#
# Faithfulness: the metric with everything outside the circuit ablated, as a share of
# the clean–corrupted gap. Completeness: the same with the circuit itself ablated. The
# curve keeps the top k edges of the ranking.

# %%
rows = faithfulness(
    model,
    circuit,
    clean=clean,
    corrupted=corrupted,
    metric=metric,
    batch=pair.clean,
    ablations=("resample", "mean", "zero"),
    curve_k=(10, 30, 60, 120),
    ranking=ranking,
    n_boot=200,
    forward=forward,
)
frame = rows_to_frame(rows)
frame.round(3)

# %%
headline = float(
    frame.query("measure == 'faithfulness' and ablation == 'resample'")["value"].iloc[0]
)
circuit = Circuit(**{**circuit.__dict__, "faithfulness": headline})
# The figure draws node-to-node edges: sum the scores of edges into one node's inputs
# (q, k, v of a head).
node_edges: dict[tuple[str, str], float] = {}
for (up, down), score in circuit.edges.items():
    key = (up, down.rsplit(".", 1)[0])
    node_edges[key] = node_edges.get(key, 0.0) + score
circuit_graph(
    list(circuit.nodes),
    list(node_edges),
    list(node_edges.values()),
    faithfulness=headline,
    title="EAP-IG top-edge circuit",
)

# %% [markdown]
# ## Save and load the circuit (JSON, with provenance)

# %%
with tempfile.TemporaryDirectory() as tmp:
    path = circuit.save(Path(tmp) / "circuit.json")
    loaded = Circuit.load(path)
assert loaded.edges == circuit.edges and loaded.nodes == circuit.nodes
print(loaded.method, loaded.params, loaded.faithfulness)
