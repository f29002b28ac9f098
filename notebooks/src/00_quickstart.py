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
# # Quickstart: load a shipped model organism and look at what it does
#
# **Question.** What does a shipped mesainterp model do, how well, and how do I cite it?
#
# This notebook loads the shipped `tree-path` model (a small transformer trained to
# output the path from the root of a tree to a goal node), samples a few task
# instances, runs the model, scores it with the task's own scoring, draws one
# instance with the model's greedy path on top, and prints the provenance block
# and weight fingerprint that every saved result carries.
#
# **What to look at.**
# - the rendered prompt and the model's greedy answer under it;
# - the per-example scores table (`exact_path`, `token_acc`);
# - the instance figure: true path vs the model's path;
# - the provenance dictionary and the fingerprint check at the end.
#
# Runs offline on CPU in well under a minute.

# %%
# %matplotlib inline
import os

os.environ.setdefault("MESAINTERP_NO_PROGRESS", "1")

import pandas as pd
import torch
from IPython.display import display

import mesainterp
from mesainterp import zoo
from mesainterp.tasks import greedy_decode
from mesainterp.viz import instance_figure

torch.manual_seed(0)
print("mesainterp", mesainterp.__version__)
print("shipped models:", zoo.list_models())

# %% [markdown]
# ## The zoo
#
# `zoo.describe(name)` reads a model's card (task, size, held-out score, the command that
# trained it) without loading its weights.

# %%
pd.DataFrame([zoo.describe(name).to_dict() for name in zoo.list_models()]).set_index("name")

# %% [markdown]
# ## Load the model and its task
#
# `zoo.load` returns a `Checkpoint`: the `TransformerBridge` model, its `ModelConfig`,
# the fingerprint of its weights (verified on load) and the training metadata.
# `zoo.load_task` rebuilds the exact task the model was trained on.

# %%
checkpoint = zoo.load("tree-path")
model = checkpoint.model.eval()
task = zoo.load_task("tree-path")
print(task)
print(mesainterp.model_shape(model))

# %% [markdown]
# ## Sample a task instance
#
# `task.sample(n, seed=...)` is deterministic: the same seed always gives the same batch.
# The prompt is the shuffled edge list, then `| goal :`; the answer is the path
# from the root to the goal, then `END`.

# %%
batch = task.sample(8, seed=123)
example = batch.instances[0]
print("prompt + answer:", task.render(batch.inputs[0]))
print("instance:", example)

# %% [markdown]
# ## Run the model and score it
#
# `task.score(outputs, batch)` scores teacher-forced logits: `exact_path` is True when
# every answer token is right (path and `END`); `token_acc` is the share of answer
# tokens that are right. Greedy decoding (`mesainterp.tasks.greedy_decode`) feeds the
# model its own answers instead.

# %%
with torch.no_grad():
    logits = model(batch.inputs)
scores = task.score(logits, batch)
decoded = greedy_decode(model, batch)


def answer_path(tokens: torch.Tensor) -> list[int]:
    """The node labels of a decoded answer, up to END."""
    path = []
    for token in tokens[batch.prompt_len :].tolist():
        if token >= task.n_nodes:
            break
        path.append(token)
    return path


table = pd.DataFrame(
    {
        "goal": batch.labels["goal"].tolist(),
        "true path": [list(inst.path) for inst in batch.instances],
        "greedy path": [answer_path(row) for row in decoded],
        **{name: value.float().tolist() for name, value in scores.items()},
    }
)
display(table)

# %% [markdown]
# ## Draw the instance with the model's path
#
# `instance_figure` draws the tree (root at the top), the goal, the true path and the
# model's greedy path in the task's own node labels. The figure is a matplotlib
# `Figure` built without pyplot; `display` shows it.

# %%
fig = instance_figure(
    example, model_path=answer_path(decoded[0]), title=f"goal {example.goal}: true vs model path"
)
display(fig)

# %% [markdown]
# ## Provenance and fingerprint
#
# Every saved result carries a provenance block: package versions, the model's weight
# fingerprint, the config, the seed and the git commit. The fingerprint is a hash of
# the weights, so a result can be matched to the exact model that produced it.

# %%
stamp = mesainterp.provenance(
    model=model, model_name="tree-path", config={"task": task.config_dict()}, seed=123
)
display(stamp)

# %%
print("checkpoint fingerprint:", checkpoint.fingerprint)
print("recomputed fingerprint:", mesainterp.fingerprint(model))
assert mesainterp.fingerprint(model) == checkpoint.fingerprint
