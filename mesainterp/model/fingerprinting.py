"""A model's identity for provenance: sha256 over its named weights, hashed once.

Hashing every weight costs seconds at GPT-2 size, and every saved result asks for
it. `fingerprint(model)` therefore remembers the digest per model object, keyed by
what would change if the weights did: for every parameter and buffer its name,
storage address, shape, dtype, device and version counter (`tensor._version`,
which every in-place write bumps, `no_grad` or not). A stale key recomputes.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Hashable

import torch

__all__ = ["clear_fingerprint_cache", "fingerprint", "fingerprint_state", "weights_key"]

_CACHE: weakref.WeakKeyDictionary[torch.nn.Module, tuple[Hashable, str]] = (
    weakref.WeakKeyDictionary()
)


def fingerprint_state(state: dict[str, torch.Tensor]) -> str:
    """sha256 over (name, dtype, shape, bytes) of every tensor, in name order."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().to("cpu").contiguous()
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(str(tuple(tensor.shape)).encode())
        # A byte view keeps bfloat16 hashable (numpy has no bfloat16).
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return "sha256:" + digest.hexdigest()


def weights_key(model: torch.nn.Module) -> tuple[Hashable, ...]:
    """Cheap summary that changes whenever any parameter or buffer could have changed."""
    tensors: list[tuple[str, torch.Tensor]] = list(model.named_parameters(remove_duplicate=False))
    tensors += list(model.named_buffers(remove_duplicate=False))
    return tuple(
        (
            name,
            t.data_ptr(),
            t.storage_offset(),
            tuple(t.shape),
            t.dtype,
            str(t.device),
            t._version,
        )
        for name, t in tensors
    )


def fingerprint(model: torch.nn.Module, *, cache: bool = True) -> str:
    """Fingerprint of a model's weights (a `TransformerBridge` or any module).

    Computed once per model object and reused while `weights_key` is unchanged;
    `cache=False` always rehashes.

    >>> model = mesainterp.build_model(mesainterp.ModelConfig(
    ...     n_layers=1, d_model=16, n_heads=2, d_head=8, d_mlp=32, d_vocab=11, n_ctx=8, seed=0))
    >>> mesainterp.fingerprint(model)
    'sha256:eeeafb2a39b1...'
    >>> mesainterp.fingerprint(model) == mesainterp.fingerprint(model, cache=False)
    True
    """
    key = weights_key(model) if cache else None
    if key is not None:
        hit = _CACHE.get(model)
        if hit is not None and hit[0] == key:
            return hit[1]
    digest = fingerprint_state(dict(model.state_dict()))
    if key is not None:
        _CACHE[model] = (key, digest)
    return digest


def clear_fingerprint_cache() -> None:
    """Forget every remembered fingerprint."""
    _CACHE.clear()
