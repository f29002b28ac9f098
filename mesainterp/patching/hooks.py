"""A hook context that removes exactly the hooks it added, on any exit.

TransformerLens's own cleanup has twice got this wrong: backward hooks outliving a
`hooks()` context (issue 1323) and a reset that removed the user's own hooks (1636).
Both come from removing hooks by *level* or *category* rather than by identity. Here
every hook is registered on its HookPoint through `HookPoint.add_hook` (so the
bridge's reshaping of q/k/v/z still applies), the returned handle is remembered, and
exit removes precisely those handles — from torch and from the HookPoint's own
bookkeeping lists — inside a `finally`, so an exception, a KeyboardInterrupt or a
generator closed early cannot leave one behind. Hooks installed by anyone else are
never touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

from transformer_lens.hook_points import HookPoint, LensHandle
from transformer_lens.model_bridge import TransformerBridge

from mesainterp.errors import MesaInterpError

__all__ = ["HookFn", "count_hooks", "hook_context", "resolve_hook_point"]

HookFn = Callable[..., Any]
_Direction = Literal["fwd", "bwd"]


def resolve_hook_point(model: TransformerBridge, name: str) -> HookPoint:
    """The HookPoint behind a (possibly legacy-aliased) hook name; refuses unknown names."""
    hook_dict = model.hook_dict
    point = hook_dict.get(name)
    if point is None:
        close = sorted(n for n in hook_dict if n.rsplit(".", 1)[-1] == name.rsplit(".", 1)[-1])
        hint = f" (hook points with that suffix: {', '.join(close[:6])})" if close else ""
        raise MesaInterpError(f"hook name {name!r} does not exist on this model{hint}")
    return point


def _remove(point: HookPoint, direction: _Direction, handle: LensHandle) -> None:
    # Remove from torch first: even if the bookkeeping list was rebuilt by someone
    # else (reset_hooks replaces it), the torch hook must go.
    handle.hook.remove()
    handles = point.fwd_hooks if direction == "fwd" else point.bwd_hooks
    for i, other in enumerate(handles):
        if other is handle:
            del handles[i]
            break


@contextmanager
def hook_context(
    model: TransformerBridge,
    fwd: Sequence[tuple[str, HookFn]] = (),
    bwd: Sequence[tuple[str, HookFn]] = (),
) -> Iterator[TransformerBridge]:
    """Install forward/backward hooks for the duration of a `with` block.

    Hook functions take `(activation, *, hook)` like TransformerLens hooks and may
    return a replacement. Names are resolved before anything is installed, so a typo
    installs nothing.
    """
    plan: list[tuple[HookPoint, _Direction, HookFn]] = [
        (resolve_hook_point(model, name), "fwd", fn) for name, fn in fwd
    ] + [(resolve_hook_point(model, name), "bwd", fn) for name, fn in bwd]
    added: list[tuple[HookPoint, _Direction, LensHandle]] = []
    try:
        for point, direction, fn in plan:
            handle = point.add_hook(fn, dir=direction)
            added.append((point, direction, handle))
        yield model
    finally:
        # Reverse order; each removal is independent so one failure cannot strand the rest.
        errors: list[BaseException] = []
        for point, direction, handle in reversed(added):
            try:
                _remove(point, direction, handle)
            except BaseException as err:  # pragma: no cover - defensive
                errors.append(err)
        if errors:  # pragma: no cover - defensive
            raise errors[0]


def count_hooks(model: TransformerBridge) -> dict[str, tuple[int, int, int, int]]:
    """Per HookPoint: (TL fwd handles, TL bwd handles, torch fwd hooks, torch bwd hooks).

    Counts both TransformerLens's bookkeeping and torch's own hook dicts, so a hook
    that one of them forgot is still seen.
    """
    out: dict[str, tuple[int, int, int, int]] = {}
    for name, module in model.named_modules():
        if isinstance(module, HookPoint):
            out[name] = (
                len(module.fwd_hooks),
                len(module.bwd_hooks),
                len(module._forward_hooks),
                len(module._backward_hooks),
            )
    return out
