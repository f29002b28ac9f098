"""A locally trained BPE tokenizer on IOI-style sentences, rows for it, and a model to match."""

from __future__ import annotations

import functools
from typing import Any

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from mesainterp.model import ModelConfig, build_model

__all__ = ["NAMES", "PLACES", "ioi_columns", "ioi_model", "ioi_prompt", "ioi_tokenizer"]

NAMES = ("Mary", "John", "Alice", "Bob", "Tom", "Anna")
PLACES = ("store", "park", "garden")


def ioi_prompt(io: str, s: str, place: str = "store") -> str:
    return f"When {io} and {s} went to the {place}, {s} gave a drink to"


@functools.cache
def ioi_tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level BPE trained in milliseconds; no byte alphabet, so unseen characters
    become the unknown token."""
    corpus = [ioi_prompt(a, b, p) + f" {a}" for a in NAMES for b in NAMES if a != b for p in PLACES]
    bpe = Tokenizer(models.BPE(unk_token="[UNK]"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=200, special_tokens=["[UNK]", "[PAD]"], initial_alphabet=[], show_progress=False
    )
    bpe.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="[UNK]", pad_token="[PAD]")


def ioi_model(n_ctx: int = 24) -> Any:
    config = ModelConfig(
        n_layers=2, d_model=32, n_heads=2, d_head=16, d_mlp=64,
        d_vocab=len(ioi_tokenizer()), n_ctx=n_ctx, seed=7,
    )  # fmt: skip
    return build_model(config)


def ioi_columns(n: int = 6) -> dict[str, list[Any]]:
    """IOI pairs with the names swapped in the corrupted prompt (so the answer flips),
    and role positions for this tokenizer (no BOS: 'When' is position 0)."""
    out: dict[str, list[Any]] = {
        k: [] for k in ("clean", "corrupted", "clean_answer", "corrupted_answer", "template")
    }
    for i in range(n):
        io, s = NAMES[i % len(NAMES)], NAMES[(i + 1) % len(NAMES)]
        place = PLACES[i % len(PLACES)]
        out["clean"].append(ioi_prompt(io, s, place))
        out["corrupted"].append(ioi_prompt(s, io, place))
        out["clean_answer"].append(f" {io}")
        out["corrupted_answer"].append(f" {s}")
        out["template"].append("BABA" if i % 2 else "ABBA")
    return out


ROLES = {"IO": 1, "S1": 3, "S2": 9, "END": -1}
