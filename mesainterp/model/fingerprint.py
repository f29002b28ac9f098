"""A model's identity for provenance: sha256 over its named weights."""

from __future__ import annotations

import hashlib

import torch

__all__ = ["fingerprint", "fingerprint_state"]


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


def fingerprint(model: torch.nn.Module) -> str:
    """Fingerprint of a model's weights (a `TransformerBridge` or any module)."""
    return fingerprint_state(dict(model.state_dict()))
