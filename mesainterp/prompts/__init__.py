"""A researcher's own prompts as counterfactual pairs: text or token ids, any tokenizer.

`PromptPairs` holds aligned clean/corrupted prompts with their answers, label columns
and named roles; `to_pair()` gives the `CounterfactualPair` every analysis takes and
`default_metric()` its metric; `load_prompts` / `save_prompts` read and write CSV and
JSONL.
"""

from mesainterp.prompts.columns import EXAMPLE, LabelValue
from mesainterp.prompts.errors import PromptError
from mesainterp.prompts.files import FORMATS, load_prompts, save_prompts
from mesainterp.prompts.metrics import ANSWER_SIGN, answer_logprob_diff, default_metric
from mesainterp.prompts.pairs import PromptPairs
from mesainterp.prompts.positions import label_positions, position_label
from mesainterp.prompts.rows import (
    PROMPT_COLUMNS,
    PromptRow,
    PromptText,
    check_one_length,
    check_row,
    tokenize_row,
)

__all__ = [
    "ANSWER_SIGN",
    "EXAMPLE",
    "FORMATS",
    "PROMPT_COLUMNS",
    "LabelValue",
    "PromptError",
    "PromptPairs",
    "PromptRow",
    "PromptText",
    "answer_logprob_diff",
    "check_one_length",
    "check_row",
    "default_metric",
    "label_positions",
    "load_prompts",
    "position_label",
    "save_prompts",
    "tokenize_row",
]
