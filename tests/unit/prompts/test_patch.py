"""Prompt pairs through the analyses: patching equals a hand-built pair, the multi-token
metric equals a per-token loop, attribution accepts the pair, both metric forms agree."""

from __future__ import annotations

import pytest
import torch

from mesainterp.attribution import node_attribution
from mesainterp.errors import ConfigError
from mesainterp.model import model_shape
from mesainterp.patching import count_hooks, patch, patch_pair
from mesainterp.prompts import PromptPairs
from mesainterp.sites import head_sites, resid_sites
from tests.unit.prompts._ioi import ROLES, ioi_columns, ioi_model, ioi_tokenizer


def ioi_pairs(n: int = 6, **answers) -> PromptPairs:
    columns = ioi_columns(n)
    columns.pop("template")
    columns.update(answers)
    return PromptPairs.from_strings(
        **columns, tokenizer=ioi_tokenizer(), roles={k: [v] * n for k, v in ROLES.items()}
    )


def test_patch_pair_on_prompts_equals_a_hand_built_tensor_pair() -> None:
    model = ioi_model()
    tok = ioi_tokenizer()
    columns = ioi_columns()
    clean = torch.tensor([tok.encode(s) for s in columns["clean"]])
    corrupted = torch.tensor([tok.encode(s) for s in columns["corrupted"]])
    good = torch.tensor([tok.encode(a)[0] for a in columns["clean_answer"]])
    bad = torch.tensor([tok.encode(a)[0] for a in columns["corrupted_answer"]])
    rows = torch.arange(len(good))

    def hand_metric(logits, batch):
        return logits[rows, -1, good] - logits[rows, -1, bad]

    shape = model_shape(model)
    sites = resid_sites(shape, seq_len=clean.shape[1]) + head_sites(shape)
    oracle = patch(model, sites, clean=clean, corrupted=corrupted, metric=hand_metric, n_boot=50)
    pairs = ioi_pairs()
    ours = patch_pair(model, pairs.to_pair(), sites, metric=pairs.default_metric(), n_boot=50)
    assert torch.equal(ours.patched, oracle.patched)
    assert torch.equal(ours.clean, oracle.clean) and torch.equal(ours.corrupted, oracle.corrupted)
    assert (ours.clean - ours.corrupted).abs().max() > 0  # the pair changes the metric
    # The results table's positions (NA for whole-layer sites) read as labels.
    named = pairs.labels_for(ours.table["position"].tolist())
    assert named[:3] == ["When", "IO", " and"] and named[-1] == "all"
    # Position labels line up with the patched sites' positions.
    labelled = dict(zip(range(14), pairs.labels_for(list(range(14))), strict=True))
    assert [labelled[p] for p in pairs.changed_positions] == ["IO", "S1", "S2"]


@torch.no_grad()
def naive_answer_logprob(model, prompt: list[int], answer: list[int]) -> float:
    """log p(answer | prompt), one forward per answer token on the growing prefix."""
    total = 0.0
    for k, token in enumerate(answer):
        logits = model(torch.tensor([prompt + answer[:k]]))
        total += float(torch.log_softmax(logits[0, -1].double(), dim=-1)[token])
    return total


def test_multi_token_metric_equals_a_per_token_loop() -> None:
    model = ioi_model()
    tok = ioi_tokenizer()
    answers = {
        "clean_answer": [" Mary and John", " John", " Alice went", " Bob", " Tom and", " Anna"],
        "corrupted_answer": [" John", " Alice and Bob", " Bob", " Tom went to", " Anna", " Mary"],
    }
    pairs = ioi_pairs(**answers)
    assert pairs.is_multi_token
    pair = pairs.to_pair()
    metric = pairs.default_metric()
    columns = ioi_columns()
    for half, prompts in ((pair.clean, columns["clean"]), (pair.corrupted, columns["corrupted"])):
        with torch.no_grad():
            values = metric(model(half.inputs), half)
        for i, prompt in enumerate(prompts):
            ids = tok.encode(prompt)
            good = naive_answer_logprob(model, ids, tok.encode(answers["clean_answer"][i]))
            bad = naive_answer_logprob(model, ids, tok.encode(answers["corrupted_answer"][i]))
            assert float(values[2 * i]) == pytest.approx(good, abs=1e-4)
            assert float(values[2 * i + 1]) == pytest.approx(-bad, abs=1e-4)
            assert float(values[2 * i] + values[2 * i + 1]) == pytest.approx(good - bad, abs=1e-4)


def test_one_token_answers_log_prob_difference_is_the_logit_difference() -> None:
    """The two default metrics agree where both apply (the softmax normaliser cancels)."""
    model = ioi_model()
    single = ioi_pairs()
    # The same answers as a multi-token pair: one extra row has a two-token answer.
    columns = ioi_columns()
    multi = ioi_pairs(clean_answer=[*columns["clean_answer"][:5], " Anna and"])
    pair_1, pair_m = single.to_pair(), multi.to_pair()
    with torch.no_grad():
        diff = single.default_metric()(model(pair_1.clean.inputs), pair_1.clean)
        signed = multi.default_metric()(model(pair_m.clean.inputs), pair_m.clean)
    per_example = signed[0::2] + signed[1::2]
    assert torch.allclose(per_example[:5], diff[:5], atol=1e-4)
    assert not torch.allclose(per_example[5], diff[5], atol=1e-4)  # two tokens: not the same


@pytest.mark.parametrize("multi", [False, True])
def test_patching_every_position_restores_the_clean_run(multi: bool) -> None:
    model = ioi_model()
    answers = (
        {"clean_answer": [" Mary and John", *ioi_columns()["clean_answer"][1:]]} if multi else {}
    )
    pairs = ioi_pairs(**answers)
    pair = pairs.to_pair()
    shape = model_shape(model)
    sites = resid_sites(shape, by_pos=False)[:1] + resid_sites(shape, seq_len=pairs.seq_len)[:2]
    result = patch_pair(model, pair, sites, metric=pairs.default_metric(), n_boot=20)
    effect = result.table["value"].tolist()
    assert effect[0] == pytest.approx(1.0, abs=1e-4)  # all positions of layer 0: the clean run
    assert effect[1] == pytest.approx(0.0, abs=1e-6)  # position 0: same token in both halves


def test_attribution_accepts_the_prompt_pair() -> None:
    model = ioi_model()
    pairs = ioi_pairs()
    pair = pairs.to_pair()
    sites = resid_sites(model_shape(model), seq_len=pairs.prompt_len)
    scores = node_attribution(
        model, sites, clean=pair.clean.inputs, corrupted=pair.corrupted.inputs,
        metric=pairs.default_metric(), batch=pair.clean,
    )  # fmt: skip
    at = {(s.layer, s.pos): float(v) for s, v in zip(scores.sites, scores.scores, strict=True)}
    # Layer 0's input differs only where the tokens do, so only there can it score.
    unchanged = set(range(pairs.prompt_len)) - set(pairs.changed_positions)
    assert all(at[(0, p)] == 0.0 for p in unchanged)
    assert all(at[(0, p)] != 0.0 for p in pairs.changed_positions)


def test_both_metric_forms_give_identical_results_and_three_arguments_are_refused() -> None:
    model = ioi_model()
    pairs = ioi_pairs()
    pair = pairs.to_pair()
    with_batch = pairs.default_metric()
    sites = resid_sites(model_shape(model), seq_len=pairs.prompt_len)

    def logits_only(logits):
        return with_batch(logits, pair.clean)

    two = patch_pair(model, pair, sites, metric=with_batch, n_boot=50)
    one = patch_pair(model, pair, sites, metric=logits_only, n_boot=50)
    assert torch.equal(one.patched, two.patched)
    assert one.table["value"].tolist() == two.table["value"].tolist()
    assert one.provenance["patching"]["metric"].endswith("logits_only")

    def three(logits, batch, extra):
        return logits[:, -1, 0]

    before = count_hooks(model)
    with pytest.raises(ConfigError) as err:
        patch_pair(model, pair, sites, metric=three)
    message = str(err.value)
    assert "\n" not in message
    assert "metric(logits) or metric(logits, batch)" in message and "three(" in message
    assert count_hooks(model) == before
