"""The metric adaptor: both accepted forms by signature, everything else refused in one line."""

from __future__ import annotations

import functools

import pytest
import torch

from mesainterp.errors import ConfigError
from mesainterp.patching.metric_call import as_batch_metric, metric_arity
from mesainterp.patching.metrics import logit_diff

LOGITS = torch.arange(24.0).reshape(2, 3, 4)


def logits_only(logits):
    return logits[:, -1, 0]


def with_batch(logits, batch):
    return logits[:, -1, 0] + batch


class CallableMetric:
    def __call__(self, logits):
        return logits[:, -1, 1]


ANSWERS = torch.tensor([[0, 1], [2, 3]])


def tl_style_metric(logits, answer_tokens=ANSWERS, per_prompt=True):
    """Like TransformerLens's tutorials: defaulted extras that must not get the batch."""
    last = logits[:, -1]
    rows = torch.arange(last.shape[0])
    diff = last[rows, answer_tokens[:, 0]] - last[rows, answer_tokens[:, 1]]
    return diff if per_prompt else diff.mean()


def takes_args(*args):
    return args[0][:, -1, 0]


@pytest.mark.parametrize(
    ("metric", "arity"),
    [
        (logits_only, 1),
        (with_batch, 2),
        (lambda logits, batch=None: logits[:, 0, 0], 2),
        (logit_diff(torch.tensor([2, 2]), torch.tensor([0, 1]), torch.tensor([1, 0])), 2),
        (CallableMetric(), 1),
        (functools.partial(with_batch, batch=1.0), 1),
        (takes_args, 2),
        (lambda logits, *, scale=2.0: logits[:, 0, 0] * scale, 1),
        (tl_style_metric, 1),
        (lambda batch_logits, batch=None: batch_logits[:, 0, 0], 2),
    ],
)
def test_arity_is_read_from_the_signature(metric, arity: int) -> None:
    assert metric_arity(metric) == arity
    wrapped = as_batch_metric(metric)
    assert (wrapped is metric) == (arity == 2)


def test_defaulted_extras_of_a_transformer_lens_metric_keep_their_values() -> None:
    wrapped = as_batch_metric(tl_style_metric)
    assert torch.equal(wrapped(LOGITS, "a batch"), tl_style_metric(LOGITS))


def test_a_one_argument_metric_is_called_with_the_logits_only() -> None:
    wrapped = as_batch_metric(logits_only)
    assert torch.equal(wrapped(LOGITS, "ignored batch"), logits_only(LOGITS))
    assert wrapped.__qualname__ == "logits_only"  # the name provenance records
    assert torch.equal(as_batch_metric(with_batch)(LOGITS, 1.0), LOGITS[:, -1, 0] + 1.0)


@pytest.mark.parametrize(
    ("metric", "shown"),
    [
        (lambda logits, batch, extra: logits, "<lambda>(logits, batch, extra)"),
        (lambda: 0, "<lambda>()"),
        (lambda logits, *, scale: logits, "<lambda>(logits, *, scale)"),
    ],
)
def test_other_arities_are_refused_in_one_line_naming_both_forms(metric, shown: str) -> None:
    with pytest.raises(ConfigError) as err:
        as_batch_metric(metric)
    message = str(err.value)
    assert message == (
        f"metric: {shown} cannot be called with the logits (and the batch)"
        " (allowed: metric(logits) or metric(logits, batch))"
    )


def test_not_callable_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^metric: expected a callable, got str"):
        metric_arity("logit_diff")


def test_a_type_error_inside_a_metric_is_not_mistaken_for_its_arity() -> None:
    def broken(logits):
        return logits + "oops"

    wrapped = as_batch_metric(broken)
    with pytest.raises(TypeError, match="unsupported operand"):
        wrapped(LOGITS, None)
