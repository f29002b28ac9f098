"""Tensor shapes: the dimension names of the jaxtyping annotations, and their check.

Public tensor-taking functions say their shapes in the signature
(`clean: Int[Tensor, "batch pos"]`), with the dimension names of `DIMS`. A name
used twice in one call binds one size: clean and corrupted inputs annotated
`"batch pos"` must agree, or the call is refused. Modifiers are jaxtyping's: a
leading `_` leaves a dimension untied (`_batch`: any number of examples), `#` lets
it broadcast, `*` makes it variadic, and `...` or `_` alone is any shape or size.

`@shape_checked` makes those annotations checked at run time, with jaxtyping under
beartype, when the environment sets MESAINTERP_TYPECHECK=1 before mesainterp is
imported. The test suite sets it (tests/conftest.py); otherwise the decorator
returns the function itself, so users pay nothing (a checked call costs a few
tenths of a millisecond). A decorator, not jaxtyping's import hook
(`--jaxtyping-packages`): the hook checks every annotated function of the package,
private hot loops and `Protocol`-typed returns beartype cannot check included; this
checks the public surface, where a wrong shape comes from the caller.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from typing import Any, TypeAlias, TypeVar

from jaxtyping import Float, Int
from torch import Tensor

from mesainterp.errors import MesaInterpError

__all__ = [
    "CHECKING",
    "DIMS",
    "ModelInput",
    "ReferenceInput",
    "is_shape_checked",
    "shape_checked",
]

F = TypeVar("F", bound=Callable[..., Any])

# Read once, at import: the decorator wraps (or not) when each module is imported.
CHECKING: bool = os.environ.get("MESAINTERP_TYPECHECK", "").lower() in ("1", "true", "yes")

# The one vocabulary of dimension names; tests/unit/test_shapes.py refuses any other
# name in the annotation of a checked function.
DIMS: dict[str, str] = {
    "batch": "examples of a batch (a clean/corrupted pair counts once)",
    "pos": "token positions of the model's input",
    "d_model": "residual stream width",
    "d_head": "width of one attention head",
    "heads": "attention (query) heads of a layer",
    "kv_heads": "key/value heads of a layer (fewer than heads under grouped-query attention)",
    "query": "query positions of a restarted run (the patched position and after)",
    "key": "key positions an attention pattern reads",
    "d_vocab_out": "output vocabulary: the last dimension of the logits",
    "act": "(variadic) a hook activation's dimensions after batch",
    "sites": "sites of a sweep, of a probe set, or scored by attribution",
    "rows": "row labels of a pivoted result table",
    "cols": "column labels of a pivoted result table",
    "n_up": "upstream nodes (senders) of the edge graph",
    "n_down": "downstream nodes (receivers) of the edge graph",
    "inputs": "head inputs of a layer: every head's query, key and value",
    "n": "examples of an activation dataset (probes)",
    "d": "width of one site's activation (probes)",
    "out": "probe outputs: classes, or regression targets",
    "labels": "binary labels of a multilabel probe",
    "groups": "position groups of a position-aware edge graph (positions or token roles)",
}

# What a model is run on: token ids, or embeddings fed in place of the token embedding.
ModelInput: TypeAlias = Int[Tensor, "batch pos"] | Float[Tensor, "batch pos d_model"]
# Inputs whose activations give mean ablations: any number of examples (and, for a
# plain mean, of positions), so neither dimension is tied to the analysed batch.
ReferenceInput: TypeAlias = Int[Tensor, "_batch _pos"] | Float[Tensor, "_batch _pos d_model"]

_CHECKED: set[str] = set()  # "module.qualname" of every decorated function


def _name(fn: Any) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def is_shape_checked(fn: Any) -> bool:
    """Whether `fn` (or the function it wraps) carries `@shape_checked`."""
    return _name(inspect.unwrap(fn)) in _CHECKED


@functools.cache
def _checker() -> Callable[[Any], Any]:
    try:
        from beartype import BeartypeConf, beartype
    except ImportError as exc:
        raise MesaInterpError(
            "MESAINTERP_TYPECHECK=1 needs beartype (pip install beartype, or the [dev] extra)"
        ) from exc
    from jaxtyping import jaxtyped

    # An int is a float here, as PEP 484 and mypy have it (`threshold=0`).
    return jaxtyped(typechecker=beartype(conf=BeartypeConf(is_pep484_tower=True)))


def shape_checked(fn: F) -> F:
    """Check `fn`'s annotations (jaxtyping shapes, under beartype) on every call when
    MESAINTERP_TYPECHECK=1; otherwise return `fn` unchanged.

    Goes directly on the function, below `@torch.no_grad()` and the like: the
    annotations are read in the defining module's namespace.
    """
    if hasattr(fn, "__wrapped__") or not hasattr(fn, "__globals__"):
        raise TypeError(f"{_name(fn)}: put @shape_checked directly on the function")
    _CHECKED.add(_name(fn))
    if not CHECKING:
        return fn
    checked: F = _checker()(fn)
    return checked
