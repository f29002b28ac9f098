"""Building prompt pairs from text and ids: tokens, positions, roles, and every refusal."""

from __future__ import annotations

import pytest
import torch

from mesainterp.errors import ConfigError
from mesainterp.prompts import EXAMPLE, PromptError, PromptPairs
from mesainterp.tasks.base import IGNORE_INDEX, slice_pair
from tests.unit.prompts._ioi import ROLES, ioi_columns, ioi_prompt, ioi_tokenizer


def ioi_pairs(n: int = 6, **overrides) -> PromptPairs:
    columns = ioi_columns(n) | overrides
    template = columns.pop("template")
    return PromptPairs.from_strings(
        **columns,
        tokenizer=ioi_tokenizer(),
        labels={"template": template},
        roles={name: [pos] * n for name, pos in ROLES.items()},
    )


def test_text_rows_tokenize_like_the_tokenizer_itself() -> None:
    tok = ioi_tokenizer()
    columns = ioi_columns()
    pairs = ioi_pairs()
    pair = pairs.to_pair()
    expected = torch.tensor([tok.encode(s) for s in columns["clean"]])
    assert torch.equal(pair.clean.inputs, expected)
    assert torch.equal(
        pair.corrupted.inputs, torch.tensor([tok.encode(s) for s in columns["corrupted"]])
    )
    assert pair.clean_answer.tolist() == [tok.encode(a)[0] for a in columns["clean_answer"]]
    assert pair.answer_pos.tolist() == [expected.shape[1] - 1] * len(pairs)
    # Targets: only the answer position is scored, with each half's own answer.
    assert (pair.clean.targets[:, :-1] == IGNORE_INDEX).all()
    assert torch.equal(pair.corrupted.targets[:, -1], pair.corrupted_answer)
    assert pair.clean.labels["IO"].tolist() == [1] * 6
    assert pair.clean.labels["END"].tolist() == [13] * 6  # -1 counted from the end
    assert pair.clean.labels[EXAMPLE].tolist() == list(range(6))
    assert "template" not in pair.clean.labels  # text labels stay on the dataset
    assert pairs.labels["template"][:2] == ("ABBA", "BABA")


def test_position_labels_name_roles_shared_tokens_and_honest_mixtures() -> None:
    labels = ioi_pairs().position_labels
    assert labels[:4] == ("When", "IO", " and", "S1")
    assert labels[7] == "' store'|' park'|…"  # three places over the rows
    assert labels[9] == "S2" and labels[-1] == "END"
    # Without roles, a position where rows differ shows the tokens, never just row 0's.
    plain = PromptPairs.from_strings(**_four(ioi_columns(2)), tokenizer=ioi_tokenizer())
    assert plain.position_labels[1] == "' Mary'|' John'"
    assert plain.labels_for([0, -1, None]) == ["When", " to", "all"]
    with pytest.raises(ConfigError, match=r"positions: got 14 \(allowed: ints in \[-14, 14\)"):
        plain.labels_for([14])


def test_changed_positions_are_where_the_halves_differ() -> None:
    assert ioi_pairs().changed_positions == (1, 3, 9)


def test_rows_of_another_prompt_length_are_refused_naming_the_row() -> None:
    columns = _four(ioi_columns(3))
    longer = ioi_prompt("Mary", "John").replace("went", "went to")
    columns["clean"][2] = longer
    columns["corrupted"][2] = longer.replace("When Mary and John", "When John and Mary")
    with pytest.raises(PromptError, match=r"^row 2, column 'clean': 15 tokens .* but row 0 has 14"):
        PromptPairs.from_strings(**columns, tokenizer=ioi_tokenizer())
    # The same rows without the odd one are accepted.
    assert (
        len(
            PromptPairs.from_strings(
                **{k: v[:2] for k, v in columns.items()}, tokenizer=ioi_tokenizer()
            )
        )
        == 2
    )


def test_clean_and_corrupted_of_different_lengths_are_refused() -> None:
    columns = _four(ioi_columns(2))
    columns["corrupted"][1] = columns["corrupted"][1].replace("went", "went to")
    with pytest.raises(PromptError, match=r"^row 1, column 'corrupted': 15 tokens but the clean"):
        PromptPairs.from_strings(**columns, tokenizer=ioi_tokenizer())


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("clean", "   ", "empty text"),
        ("clean_answer", "", "empty text"),
        ("corrupted", "When © and John went to the store, John gave a drink to", "unknown token"),
        ("clean_answer", " Mary©", "unknown token"),
    ],
)
def test_bad_text_is_refused_with_row_and_column(column: str, value: str, problem: str) -> None:
    columns = _four(ioi_columns(2))
    columns[column][1] = value
    with pytest.raises(PromptError, match=rf"^row 1, column '{column}': .*{problem}"):
        PromptPairs.from_strings(**columns, tokenizer=ioi_tokenizer())


def test_an_answer_that_merges_with_the_prompt_is_refused() -> None:
    columns = _four(ioi_columns(2))
    columns["clean"][1] = columns["clean"][1].removesuffix("o")  # "... a drink t"
    columns["clean_answer"][1] = "o Mary"
    message = (
        r"^row 1, column 'clean_answer': 'o Mary' merges with the end of the prompt: the prompt"
        r" ends in \[' drink', ' t'\] alone but \[' drink', ' to', ' Mary'\] with the answer"
    )
    with pytest.raises(PromptError, match=message):
        PromptPairs.from_strings(**columns, tokenizer=ioi_tokenizer())
    # A space-led answer after a prompt ending at a word boundary is fine, and its tokens
    # are the ones the model sees in place.
    columns["clean"][1] += "o"
    columns["clean_answer"][1] = " Mary and John"
    pairs = PromptPairs.from_strings(**columns, tokenizer=ioi_tokenizer())
    tok = ioi_tokenizer()
    assert pairs.rows[1].clean_answer == tuple(tok.encode(" Mary and John"))


def test_a_tokenizer_that_appends_after_the_prompt_is_refused() -> None:
    class WithEos:
        """Wraps the real tokenizer, adding an end-of-text token like BERT's [SEP]."""

        def __init__(self) -> None:
            self.inner = ioi_tokenizer()

        def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
            ids = self.inner.encode(text, add_special_tokens=False)
            return [*ids, 1] if add_special_tokens else ids

        def decode(self, ids: list[int]) -> str:
            return self.inner.decode(ids)

    columns = _four(ioi_columns(1))
    with pytest.raises(PromptError, match=r"appends \['\[PAD\]'\] after the prompt"):
        PromptPairs.from_strings(**columns, tokenizer=WithEos())
    fine = PromptPairs.from_strings(**columns, tokenizer=WithEos(), add_special_tokens=False)
    assert fine.prompt_len == 14


def test_not_a_tokenizer_is_refused() -> None:
    with pytest.raises(
        ConfigError, match=r"^tokenizer: got a dict \(allowed: an object with encode"
    ):
        PromptPairs.from_strings(**_four(ioi_columns(1)), tokenizer={})


def test_token_ids_build_the_same_pairs_as_text() -> None:
    tok = ioi_tokenizer()
    text = ioi_pairs()
    columns = ioi_columns()
    ids = PromptPairs.from_token_ids(
        [tok.encode(s) for s in columns["clean"]],
        torch.tensor([tok.encode(s) for s in columns["corrupted"]]),
        torch.tensor([tok.encode(a)[0] for a in columns["clean_answer"]]),
        [tok.encode(a) for a in columns["corrupted_answer"]],
        tokenizer=tok,
        labels={"template": columns["template"]},
        roles={name: [pos] * 6 for name, pos in ROLES.items()},
    )
    assert ids.rows == text.rows  # the same token ids
    assert ids.position_labels == text.position_labels
    a, b = ids.to_pair(), text.to_pair()
    for x, y in ((a.clean, b.clean), (a.corrupted, b.corrupted)):
        assert torch.equal(x.inputs, y.inputs) and torch.equal(x.targets, y.targets)
    assert ids.texts is None and text.texts is not None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            dict(clean_answer=[3, 99]),
            r"^row 1, column 'clean_answer': token id 99 out of range \(ids 0..19\)",
        ),
        (dict(clean_answer=[3, [-1]]), r"^row 1, column 'clean_answer': token id -1 out of range"),
        (
            dict(clean=[[1, 2], [1, True]]),
            r"^row 1, column 'clean': expected int token ids, got True",
        ),
        (dict(corrupted_answer=[[4], []]), r"^row 1, column 'corrupted_answer': no tokens"),
        (dict(corrupted=[[1, 2]]), r"^corrupted: 1 entries but 'clean' has 2"),
        (dict(roles={"R": [0, 2]}), r"^row 1, column 'R': role position 2 is not a token position"),
        (dict(roles={"R": [0]}), r"^roles.R: 1 positions for 2 rows"),
        (dict(labels={"example": [0, 1]}), r"^labels.example: reserved name"),
        (dict(labels={"R": [0, 1]}, roles={"R": [0, 0]}), r"^roles.R: also a label name"),
    ],
)
def test_bad_token_ids_are_refused(kwargs: dict, message: str) -> None:
    good = dict(
        clean=[[1, 2], [1, 3]],
        corrupted=[[1, 3], [1, 2]],
        clean_answer=[3, 4],
        corrupted_answer=[4, 3],
    )
    PromptPairs.from_token_ids(**good, vocab_size=20)  # the unchanged rows pass
    with pytest.raises((PromptError, ConfigError), match=message):
        PromptPairs.from_token_ids(**(good | kwargs), vocab_size=20)


def test_multi_token_pairs_teacher_force_both_answers_in_two_rows() -> None:
    pairs = PromptPairs.from_token_ids(
        [[1, 2, 3], [1, 2, 4]], [[1, 5, 3], [1, 5, 4]], [[6, 7], 8], [9, [10, 11, 12]],
        roles={"B": [1, 1]},
    )  # fmt: skip
    assert pairs.is_multi_token and pairs.seq_len == 5
    assert pairs.position_labels == ("1", "B", "'3'|'4'", "answer[0]", "answer[1]")
    pair = pairs.to_pair()
    assert pair.clean.inputs.tolist() == [
        [1, 2, 3, 6, 0],  # example 0, clean answer 6 7 (the last token is only predicted)
        [1, 2, 3, 0, 0],  # example 0, corrupted answer 9
        [1, 2, 4, 0, 0],  # example 1, clean answer 8
        [1, 2, 4, 10, 11],  # example 1, corrupted answer 10 11 12
    ]
    assert pair.corrupted.inputs[:, 1].tolist() == [5] * 4
    assert torch.equal(pair.corrupted.inputs[:, 2:], pair.clean.inputs[:, 2:])
    assert pair.clean.targets.tolist()[3] == [-100, -100, 10, 11, 12]
    assert pair.clean.targets.tolist()[0] == [-100, -100, 6, 7, -100]
    assert pair.clean.labels["answer_sign"].tolist() == [1.0, -1.0, 1.0, -1.0]
    assert pair.clean.labels[EXAMPLE].tolist() == [0, 0, 1, 1]
    assert pair.answer_pos.tolist() == [2] * 4
    # A slice of whole examples is a valid pair and its metric reads only that slice.
    part = slice_pair(pair, 2, 4)
    logits = torch.randn(2, 5, 13)
    assert pairs.default_metric(part)(logits, part.clean).shape == (2,)


def _four(columns: dict) -> dict:
    return {k: list(v) for k, v in columns.items() if k != "template"}
