"""Any HuggingFace-style tokenizer, used through the few methods every one of them has.

Nothing here imports `transformers` or `tokenizers`: a tokenizer is any object with
`encode(text, add_special_tokens=...)` or `__call__(text, add_special_tokens=...)`
returning `{"input_ids": [...]}`, and `decode([id])` or `convert_ids_to_tokens([id])`
for showing tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mesainterp.errors import ConfigError

__all__ = ["check_tokenizer", "encode", "token_strings", "unknown_token_id", "vocab_size"]

_NEEDS = "an object with encode(text) or __call__(text), and decode or convert_ids_to_tokens"


def check_tokenizer(tokenizer: Any) -> None:
    """Refuse an object that cannot encode text or show tokens, before any row is read."""
    can_encode = hasattr(tokenizer, "encode") or callable(tokenizer)
    can_show = hasattr(tokenizer, "decode") or hasattr(tokenizer, "convert_ids_to_tokens")
    if not (can_encode and can_show):
        raise ConfigError("tokenizer", f"got a {type(tokenizer).__name__}", _NEEDS)


def encode(tokenizer: Any, text: str, *, special: bool) -> list[int]:
    """Token ids of `text`, with or without the tokenizer's special tokens (e.g. BOS)."""
    if hasattr(tokenizer, "encode"):
        ids = tokenizer.encode(text, add_special_tokens=special)
    else:
        ids = tokenizer(text, add_special_tokens=special)["input_ids"]
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    if ids and isinstance(ids[0], list):  # a batch of one
        ids = ids[0]
    return [int(i) for i in ids]


def token_strings(tokenizer: Any | None, ids: Sequence[int]) -> list[str]:
    """How each token reads: `decode([id])` (" Mary"), else the vocabulary entry ("ĠMary"),
    else the id itself when there is no tokenizer."""
    if tokenizer is None:
        return [str(i) for i in ids]
    if hasattr(tokenizer, "decode"):
        return [str(tokenizer.decode([i])) for i in ids]
    return [str(t) for t in tokenizer.convert_ids_to_tokens(list(ids))]


def unknown_token_id(tokenizer: Any | None) -> int | None:
    """The id the tokenizer uses for text it cannot represent, if it has one."""
    unk = getattr(tokenizer, "unk_token_id", None)
    return None if unk is None else int(unk)


def vocab_size(tokenizer: Any | None) -> int | None:
    """The number of token ids, added tokens included (`len(tokenizer)`), if known."""
    if tokenizer is None or not hasattr(tokenizer, "__len__"):
        return None
    return len(tokenizer)
