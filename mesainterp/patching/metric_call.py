"""Accept both metric forms: TransformerLens's `metric(logits)` and ours `metric(logits, batch)`.

TransformerLens patching functions take a metric of the logits alone; the toolkit's
metrics (and every task's `default_metric`) also receive the batch. Front ends pass
whatever the caller gave through `as_batch_metric` once, so the engines only ever
see the two-argument form. The signature is read once, up front, rather than
catching `TypeError` on every call: a `TypeError` raised inside a metric is a bug in
that metric and must not be mistaken for a wrong arity.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, cast

from torch import Tensor

from mesainterp.errors import ConfigError
from mesainterp.patching.metrics import MetricFn

__all__ = ["AnyMetric", "as_batch_metric", "metric_arity"]

# What callers may pass: a metric of the logits alone, or of the logits and the batch.
AnyMetric = Callable[[Tensor], Tensor] | Callable[[Tensor, Any], Tensor]

_FORMS = "metric(logits) or metric(logits, batch)"
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _name(metric: object) -> str:
    return getattr(metric, "__qualname__", None) or type(metric).__name__


def metric_arity(metric: object) -> int:
    """How many positional arguments `metric` is called with: 1 (logits) or 2 (logits, batch).

    Two when it requires two (`def metric(logits, batch)`), takes `*args`, or names
    its optional second parameter `batch` (`def metric(logits, batch=None)`, as the
    toolkit's metrics do); otherwise one. An optional second parameter of another
    name is left alone: TransformerLens-style metrics carry defaulted extras
    (`def ioi_metric(logits, answer_tokens=answer_tokens)`) that must not receive
    the batch. A callable whose signature cannot be read (some builtins) is assumed
    to be the toolkit's form.
    """
    if not callable(metric):
        raise ConfigError("metric", f"expected a callable, got {type(metric).__name__}", _FORMS)
    try:
        signature = inspect.signature(metric)
    except (TypeError, ValueError):
        return 2
    params = signature.parameters.values()
    positional = [p for p in params if p.kind in _POSITIONAL]
    required = [p for p in positional if p.default is inspect.Parameter.empty]
    variadic = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
    keyword_only = [
        p.name
        for p in params
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is inspect.Parameter.empty
    ]
    if keyword_only or len(required) > 2 or not (positional or variadic):
        raise ConfigError(
            "metric",
            f"{_name(metric)}{signature} cannot be called with the logits (and the batch)",
            _FORMS,
        )
    takes_batch = len(positional) >= 2 and positional[1].name == "batch"
    return 2 if len(required) == 2 or variadic or takes_batch else 1


def as_batch_metric(metric: AnyMetric) -> MetricFn:
    """`metric` in the toolkit's form `metric(logits, batch)`.

    A one-argument metric is wrapped (keeping its name for provenance); a
    two-argument one is returned as is. Anything else is refused in one line naming
    both accepted forms.

    >>> import torch
    >>> last_logit = as_batch_metric(lambda logits: logits[:, -1, 0])
    >>> last_logit(torch.ones(2, 3, 4), None)
    tensor([1., 1.])
    >>> as_batch_metric(lambda logits, batch, extra: logits)
    Traceback (most recent call last):
    ...
    mesainterp.errors.ConfigError: metric: <lambda>(logits, batch, extra) cannot be called with the logits (and the batch) (allowed: metric(logits) or metric(logits, batch))
    """
    if metric_arity(metric) == 2:
        return cast(MetricFn, metric)
    logits_only = cast(Callable[[Tensor], Tensor], metric)

    @functools.wraps(logits_only)
    def with_batch(logits: Tensor, batch: Any = None) -> Tensor:
        return logits_only(logits)

    return with_batch
