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
# # Your own model and your own prompts
#
# **Question.** How do I run every mesainterp analysis on a HuggingFace model and
# prompts I bring myself, instead of a shipped model organism?
#
# This notebook does the whole route offline, end to end, on two architectures:
#
# 1. trains a small byte-level BPE tokenizer on IOI-style sentences written here;
# 2. builds a GPT-2-shaped and a Llama-shaped HuggingFace model (rotary, RMSNorm,
#    4 query heads over 2 key/value heads, SwiGLU) and wraps them with
#    `mesainterp.wrap_hf_model`; saves one as a HuggingFace directory and loads it back;
# 3. writes IOI prompt pairs as strings (`PromptPairs.from_strings`) with named roles
#    (`IO`, `S1`, `S2`, `END`), and round-trips them through a CSV (`load_prompts`);
# 4. runs activation patching, node and edge attribution (EAP, EAP-IG), circuit discovery
#    (ACDC and top edges) with faithfulness, probes with a random-init control, figures
#    and a report, on both models.
#
# **Read this first: the weights are random.** Nothing here is trained, so every number
# below (which head matters, how faithful a circuit is, what a probe decodes) is
# meaningless as science. The notebook shows the *route*; the markdown cells say what a
# trained model would show at each step. Swap in your own trained model (any directory
# `save_pretrained` wrote) at the cell marked **Bring your model** and the rest runs
# unchanged.
#
# Runs offline on CPU in about a minute.

# %%
# %matplotlib inline
import os

os.environ.setdefault("MESAINTERP_NO_PROGRESS", "1")

import itertools
import tempfile
from pathlib import Path

import pandas as pd
import torch
import transformers
from IPython.display import display
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

import mesainterp

transformers.utils.logging.disable_progress_bar()
torch.manual_seed(0)
WORK = Path(tempfile.mkdtemp(prefix="mesainterp-own-model-"))
print("mesainterp", mesainterp.__version__, "| scratch directory:", WORK)

# %% [markdown]
# ## 1. IOI-style sentences and a tokenizer trained on them
#
# Indirect-object identification (IOI): in "When Mary and John went to the store, John
# gave a drink to", the next name is the indirect object, **Mary**, the name that was
# not repeated. Two templates, six names, both name orders (ABBA: IO first; BABA: IO
# second).
#
# The tokenizer is a byte-level BPE (the GPT-2 scheme) trained with the `tokenizers`
# package on these sentences only, so every name and template word becomes one token,
# and wrapped in `transformers.PreTrainedTokenizerFast` like any hub tokenizer. It
# prepends a `<bos>` token to every prompt.

# %%
NAMES = ["Mary", "John", "Alice", "Bob", "Kate", "Tom"]
TEMPLATES = [
    "When {A} and {B} went to the store, {C} gave a drink to",
    "When {A} and {B} went to the park, {C} handed a ball to",
]
OBJECTS = {0: " drink", 1: " ball"}


def sentence(template: int, io: str, s: str, *, io_first: bool, s2: str | None = None) -> str:
    """One IOI prompt: the subject repeats at S2 (or `s2` replaces it)."""
    a, b = (io, s) if io_first else (s, io)
    return TEMPLATES[template].format(A=a, B=b, C=s if s2 is None else s2)


corpus = [
    sentence(t, io, s, io_first=first) + f" {io}."
    for t in range(len(TEMPLATES))
    for io, s in itertools.permutations(NAMES, 2)
    for first in (True, False)
]
print(len(corpus), "training sentences, e.g.:", corpus[0])

bpe = Tokenizer(models.BPE())
bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
bpe.decoder = decoders.ByteLevel()
bpe.train_from_iterator(
    corpus * 4,
    trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<bos>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    ),
)
bpe.post_processor = processors.TemplateProcessing(
    single="<bos> $A", special_tokens=[("<bos>", bpe.token_to_id("<bos>"))]
)
in_memory_tokenizer = PreTrainedTokenizerFast(
    tokenizer_object=bpe, bos_token="<bos>", pad_token="<pad>"
)
# Saved and read back like any tokenizer from a directory (section 3 says why).
in_memory_tokenizer.save_pretrained(WORK / "tokenizer")
tokenizer = PreTrainedTokenizerFast.from_pretrained(WORK / "tokenizer")
print("vocab size:", len(tokenizer))
print(tokenizer.convert_ids_to_tokens(tokenizer(corpus[0])["input_ids"]))

# %% [markdown]
# ## 2. Prompt pairs from strings, with roles
#
# Each pair is a clean prompt and a corrupted one that differs only at S2: the repeated
# subject is replaced by the indirect object, so the right answer flips (clean answer
# ` Mary`, corrupted answer ` John`). Answers are written as they continue the prompt,
# with their leading space.
#
# Roles are positions in the tokenized prompt (counting the `<bos>`), found here by
# tokenizing each prompt. The labels are what the probes will decode later:
# `template` (0 or 1) and `io_first` (1 for ABBA, 0 for BABA).

# %%
rows = []
for t, (io, s), first in itertools.product(
    range(len(TEMPLATES)), itertools.permutations(NAMES, 2), (True, False)
):
    rows.append(
        {
            "clean": sentence(t, io, s, io_first=first),
            "corrupted": sentence(t, io, s, io_first=first, s2=io),
            "clean_answer": f" {io}",
            "corrupted_answer": f" {s}",
            "io": io,
            "s": s,
            "template": t,
            "io_first": int(first),
        }
    )
frame = pd.DataFrame(rows).sample(frac=1.0, random_state=0).head(64).reset_index(drop=True)


def role_positions(text: str, io: str, s: str) -> dict[str, int]:
    """Where IO, S1, S2 and END sit in the tokenized prompt (with its <bos>)."""
    ids = tokenizer(text)["input_ids"]
    io_id, s_id = tokenizer.convert_tokens_to_ids([f"Ġ{io}", f"Ġ{s}"])
    s_positions = [i for i, tok in enumerate(ids) if tok == s_id]
    return {"IO": ids.index(io_id), "S1": s_positions[0], "S2": s_positions[1], "END": len(ids) - 1}


roles = pd.DataFrame(
    [role_positions(r.clean, r.io, r.s) for r in frame.itertuples()], index=frame.index
)
frame = pd.concat([frame, roles], axis=1)

pairs = mesainterp.PromptPairs.from_strings(
    frame["clean"].tolist(),
    frame["corrupted"].tolist(),
    frame["clean_answer"].tolist(),
    frame["corrupted_answer"].tolist(),
    tokenizer=tokenizer,
    labels={"template": frame["template"].tolist(), "io_first": frame["io_first"].tolist()},
    roles={role: frame[role].tolist() for role in ("IO", "S1", "S2", "END")},
)
print(len(pairs), "pairs; prompt length", pairs.prompt_len)
print("changed positions:", pairs.changed_positions)
print("position labels:", pairs.position_labels)
frame[["clean", "corrupted", "clean_answer", "corrupted_answer", "IO", "S1", "S2"]].head()

# %% [markdown]
# The same pairs as a CSV: one row per pair, text columns `clean`, `corrupted`,
# `clean_answer`, `corrupted_answer`, one column per role and per label. `load_prompts`
# reads it back with the tokenizer (the `roles` argument says which columns are roles;
# the rest are labels).

# %%
csv_path = WORK / "ioi_pairs.csv"
frame.drop(columns=["io", "s"]).to_csv(csv_path, index=False)
loaded_pairs = mesainterp.load_prompts(
    csv_path, tokenizer=tokenizer, roles=["IO", "S1", "S2", "END"]
)
assert loaded_pairs.rows == pairs.rows and loaded_pairs.position_labels == pairs.position_labels
print("reloaded from", csv_path.name, "- labels:", sorted(loaded_pairs.labels))

pair = pairs.to_pair()
metric = pairs.default_metric()
clean, corrupted = pair.clean.inputs, pair.corrupted.inputs
# What attribution, discovery and faithfulness all take: both runs, the metric, the batch.
runs = {"clean": clean, "corrupted": corrupted, "metric": metric, "batch": pair.clean}
positions = list(pairs.position_labels)

# %% [markdown]
# ## 3. Two HuggingFace models, wrapped
#
# **Bring your model.** Here the models are built from `transformers` configs with
# seeded random weights: a GPT-2 shape (learned positions, LayerNorm, GELU MLP) and a
# Llama shape (rotary positions, RMSNorm, grouped-query attention with 4 query heads
# over 2 key/value heads, SwiGLU MLP), both 2 layers, d_model 64. With a trained model,
# replace this cell by `mesainterp.load_hf_dir("path/to/your/model")` (or
# `wrap_hf_model(AutoModelForCausalLM.from_pretrained(...), tokenizer=...)`).
#
# `wrap_hf_model` returns a TransformerLens `TransformerBridge`: the same hook names
# (`blocks.0.attn.hook_z`, ...) on every architecture, which is what every analysis below
# reads.

# %%
special = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.bos_token_id}
common = {"vocab_size": len(tokenizer), "attn_implementation": "eager", **special}
configs = {
    "gpt2": transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, n_positions=32, **common),
    "llama": transformers.LlamaConfig(
        num_hidden_layers=2,
        hidden_size=64,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        max_position_embeddings=32,
        **common,
    ),
}
hf_classes = {"gpt2": transformers.GPT2LMHeadModel, "llama": transformers.LlamaForCausalLM}
hf_modules = {}
bridges = {}
hf_dir = WORK / "ioi-llama"
for name, config in configs.items():
    torch.manual_seed(0)  # seeded random weights
    hf_modules[name] = hf_classes[name](config).eval()
    if name == "llama":  # saved before wrapping: the bridge rewires the module in place
        hf_modules[name].save_pretrained(hf_dir, safe_serialization=True)
        tokenizer.save_pretrained(hf_dir)
    bridges[name] = mesainterp.wrap_hf_model(
        hf_modules[name], tokenizer=tokenizer, model_name=f"ioi-{name}"
    )
    print(name, mesainterp.model_shape(bridges[name]))

# %% [markdown]
# **Known refusal.** The tokenizer passed to `wrap_hf_model` above is the one read back
# from its directory. The tokenizer object built in memory in section 1 is refused:
# TransformerLens rebuilds a tokenizer with a BOS token from its `name_or_path`, which
# an in-memory `PreTrainedTokenizerFast(tokenizer_object=...)` does not have. The check
# below shows the refusal as it stands (saving the tokenizer first, as in section 1, is
# the workaround; `wrap_hf_model` without a tokenizer also works, with a placeholder).

# %%
torch.manual_seed(0)
probe_module = transformers.GPT2LMHeadModel(configs["gpt2"]).eval()
try:
    mesainterp.wrap_hf_model(probe_module, tokenizer=in_memory_tokenizer)
    print("wrap_hf_model accepts the in-memory tokenizer")
except mesainterp.MesaInterpError as err:
    print("refused:", err)

# %% [markdown]
# ### Save one as a HuggingFace directory and load it back
#
# `save_pretrained(..., safe_serialization=True)` writes `config.json` and
# `model.safetensors`, the format a trained model comes in; the cell that built the
# models saved the Llama one (with the tokenizer) *before* wrapping it. `load_hf_dir`
# reads such a directory offline; `load_model` takes a directory or a shipped model's
# name and also returns a fingerprint of the weights. The reloaded model gives the same
# logits.
#
# Save before wrapping: `wrap_hf_model` rewires the HuggingFace module in place, and
# `save_pretrained` on the wrapped module then fails inside `transformers` (on the
# Llama shape it reads the bridge's aliases of each weight as shared tensors; on the
# GPT-2 shape, below, a tensor view error), as the check below shows.

# %%
try:
    hf_modules["gpt2"].save_pretrained(WORK / "wrapped-gpt2", safe_serialization=True)
    print("save_pretrained works on a wrapped module")
except RuntimeError as err:
    print("refused:", str(err)[:120], "...")
print(sorted(p.name for p in hf_dir.iterdir()))

reloaded = mesainterp.load_hf_dir(hf_dir)
loaded = mesainterp.load_model(hf_dir)
print("load_model:", loaded.name, "| source:", loaded.source, "| task:", loaded.task)
with torch.no_grad():
    original_logits = bridges["llama"](clean)
    torch.testing.assert_close(reloaded(clean), original_logits)
    torch.testing.assert_close(loaded.model(clean), original_logits)
print("fingerprint:", mesainterp.fingerprint(reloaded))

# %% [markdown]
# ## 4. The metric on clean and corrupted runs
#
# `pairs.default_metric()` is the logit difference `logit(clean answer) -
# logit(corrupted answer)` at the last prompt position. A trained IOI model scores
# clearly positive on clean prompts and negative on corrupted ones; random weights give
# values near zero on both, and any gap is noise.

# %%
with torch.no_grad():
    gaps = pd.DataFrame(
        {
            name: {
                "clean": float(metric(model(clean), pair.clean).mean()),
                "corrupted": float(metric(model(corrupted), pair.clean).mean()),
            }
            for name, model in bridges.items()
        }
    ).T
gaps.round(4)

# %% [markdown]
# ## 5. Activation patching: residual stream by position, and heads
#
# `named_sites("resid", shape, seq_len=...)` is every layer × position of the residual
# stream; `named_sites("heads", shape)` every attention head (`hook_z`, all positions).
# `patch_pair` patches clean activations into the corrupted run one site at a time
# (denoising) and reports the recovered share of the clean–corrupted gap, with
# bootstrap intervals. The position axis uses the pairs' position labels, so the roles
# read off the figure.
#
# In a trained IOI model the residual stream carries the answer at S2 in early layers
# and at END in late layers, and a few name-mover heads stand out. Here the gap itself
# is noise, so the recovered shares are unstable and can exceed [0, 1].

# %%
patching = {}
for name, model in bridges.items():
    shape = mesainterp.model_shape(model)
    patching[name] = {
        sweep: mesainterp.patch_pair(
            model,
            pair,
            mesainterp.named_sites(sweep, shape, seq_len=pairs.prompt_len),
            metric=metric,
            n_boot=100,
            model_name=f"ioi-{name}",
            metric_name="ioi:logit_diff",
        )
        for sweep in ("resid", "heads")
    }
for name in bridges:
    display(
        mesainterp.viz.patching_heatmap(
            patching[name]["resid"].table,
            x="position",
            position_labels=positions,
            title=f"{name}: residual stream by position (denoising)",
            backend="matplotlib",
        )
    )

# %%
mesainterp.viz.patching_heatmap(
    patching["llama"]["heads"].table, x="head", title="llama: heads (z), denoising"
)

# %% [markdown]
# ## 6. Node attribution and edge attribution (EAP, EAP-IG)
#
# `node_attribution` estimates every site's patching effect from one forward and one
# backward pass (attribution patching); the scatter compares it with the exact patching
# above. `edge_attribution` scores every edge of the computational graph (embeddings →
# heads' q/k/v inputs → MLPs → logits) with EAP (one gradient) or EAP-IG (gradients
# integrated along the path from corrupted to clean inputs).

# %%
node_scores = {}
edge_scores = {}
for name, model in bridges.items():
    shape = mesainterp.model_shape(model)
    heads = mesainterp.named_sites("heads", shape)
    node_scores[name] = mesainterp.node_attribution(model, heads, **runs)
    edge_scores[name] = {
        method: mesainterp.edge_attribution(model, **runs, method=method, ig_steps=3)
        for method in ("eap", "eap-ig")
    }
    print(f"{name}: {len(edge_scores[name]['eap'].as_dict())} edges scored")

exact = patching["llama"]["heads"]
raw_exact = (exact.patched.mean(dim=1) - exact.corrupted.mean()).numpy()
mesainterp.viz.attribution_scatter(
    raw_exact,
    node_scores["llama"].scores.numpy(),
    labels=[site.label() for site in exact.sites],
    title="llama: head attribution vs exact patching",
)

# %%
pd.DataFrame(edge_scores["llama"]["eap-ig"].ranked()[:8], columns=["edge", "EAP-IG score"])

# %% [markdown]
# ## 7. A circuit and its faithfulness
#
# Two routes: keep the top EAP-IG edges (`top_edges`), or let ACDC prune edges whose
# removal changes the metric by less than a threshold (`acdc`). `faithfulness` runs the
# model with everything outside the circuit ablated (resample, mean, zero) and reports
# the share of the metric the circuit keeps.
#
# With random weights the clean–corrupted gap is tiny, so faithfulness (a ratio of two
# near-zero numbers) swings wildly; on a trained model it is the headline number, with a
# bootstrap interval, and a good circuit keeps most of the gap with few edges.

# %%
TOP_N = 20
circuits = {}
faith = []
for name, model in bridges.items():
    circuits[name] = mesainterp.Circuit.from_edges(
        mesainterp.top_edges(edge_scores[name]["eap-ig"], top_n=TOP_N),
        method="eap-ig",
        params={"top_n": TOP_N, "ig_steps": 3},
    )
    for row in mesainterp.faithfulness(
        model,
        circuits[name],
        **runs,
        ablations=("resample", "mean"),
        n_boot=100,
    ):
        faith.append({"model": name, **row.to_dict()})
pd.DataFrame(faith).round(3)

# %%
acdc_rows = []
for name, model in bridges.items():
    # The threshold is in metric units: a fixed share of this model's clean-corrupted gap.
    threshold = 0.05 * abs(gaps.loc[name, "clean"] - gaps.loc[name, "corrupted"])
    found = mesainterp.acdc(model, **runs, threshold=threshold)
    top = set(circuits[name].edges)
    acdc_rows.append(
        {
            "model": name,
            "threshold": threshold,
            "edges kept": len(found.kept),
            "forward runs": found.n_runs,
            "edges cut without a run": found.n_skipped,
            "metric, full model": found.full_metric,
            "metric, ACDC circuit": found.final_metric,
            f"shared with top-{TOP_N}": len(top & set(found.kept)),
        }
    )
pd.DataFrame(acdc_rows).set_index("model").round(4)

# %%
circuit = circuits["llama"]
doc = circuit.to_dict()
mesainterp.viz.circuit_graph(
    doc["nodes"],
    [(e["source"], e["target"]) for e in doc["edges"]],
    [e["score"] for e in doc["edges"]],
    title="llama: top EAP-IG edges",
)

# %% [markdown]
# ## 8. Probes, with a random-init control
#
# `probe_sites(shape, positions)` names the residual stream after every layer at the
# chosen positions; `collect_activations` caches them over the clean prompts (the labels
# ride along), and `run_probes` fits cross-validated linear probes for one label. The
# controls are the same probe on shuffled labels, the majority class, and the same
# architecture with fresh random weights (`random_init_twin`).
#
# A probe is only evidence when it beats the random-init control: a random network
# already makes many input features linearly decodable. Both models here *are* random
# and there are only 64 prompts, so expect the model, its twin, the shuffled-label
# probe and the majority class to score alike, near chance; on a trained model the gap
# between the model and its twin is the finding. Other labels to try: `template`, or an
# integer column added to `labels` (the index of the IO name gives a multi-class probe).

# %%
probe_positions = [pairs.roles["S2"][0], pairs.prompt_len - 1]
probe_tables = {}
for name, model in bridges.items():
    sites = mesainterp.probe_sites(mesainterp.model_shape(model), probe_positions)
    twin = mesainterp.random_init_twin(model, seed=1)
    data = mesainterp.collect_activations(model, [pair.clean], sites)
    twin_data = mesainterp.collect_activations(twin, [pair.clean], sites)
    result = mesainterp.run_probes(
        data, mesainterp.ProbeSpec(target="io_first", folds=4, seed=0), random_init=twin_data
    )
    probe_tables[name] = result.table
probe_tables["llama"][["layer", "pos", "value", "se", "random_init", "shuffled", "majority"]].round(
    3
)

# %%
display(
    mesainterp.viz.probe_curves(
        probe_tables["llama"],
        pos=probe_positions[-1],
        title="llama: io_first at END",
        backend="matplotlib",
    )
)

# %% [markdown]
# ## 9. A report
#
# Every result saves itself into a run directory; `report.write_run` writes the manifest
# (`run.json`) naming them, and `write_report` turns the directory into one HTML page
# plus static figures. Position labels from the prompt pairs go into the manifest so the
# report's heatmaps read by role.

# %%
run_dir = WORK / "run"
run_dir.mkdir()
patching["llama"]["resid"].table.to_csv(run_dir / "resid.csv", index=False)
patching["llama"]["heads"].table.to_csv(run_dir / "heads.csv", index=False)
probe_tables["llama"].to_csv(run_dir / "probes.csv", index=False)
circuits["llama"].save(run_dir / "circuit.json")
mesainterp.report.write_run(
    run_dir,
    command=["notebooks/06_your_model.ipynb"],
    provenance=mesainterp.provenance(model=bridges["llama"], model_name="ioi-llama"),
    title="IOI on a random Llama-shaped model",
    results=[
        {
            "name": "resid",
            "kind": "patching",
            "path": "resid.csv",
            "x": "position",
            "position_labels": positions,
        },
        {"name": "heads", "kind": "patching", "path": "heads.csv", "x": "head"},
        {"name": "io-first", "kind": "probes", "path": "probes.csv", "target": "io_first"},
        {"name": "circuit", "kind": "circuit", "path": "circuit.json"},
    ],
)
report_path, figures = mesainterp.write_report(run_dir, formats=("svg",))
print(report_path.name, f"{report_path.stat().st_size // 1024} KiB;", len(figures), "figures")

# %% [markdown]
# ## What changes with a trained model
#
# - **Metric**: clean logit difference clearly positive, corrupted negative; the gap is
#   what every normalised number divides by, so it must be well away from zero.
# - **Patching**: recovery concentrates at S2 in early layers and at END in late layers;
#   a handful of heads carry it.
# - **Attribution**: the scatter against exact patching lies near the diagonal for the
#   sites that matter (where it does not, trust the exact patching).
# - **Circuit**: faithfulness near 1 with few edges, with intervals that exclude 0;
#   ACDC and top-edge circuits overlap.
# - **Probes**: the trained model beats its random-init twin by more than a few
#   standard errors at some layer; labels a random network already decodes are no
#   evidence of anything learned.
