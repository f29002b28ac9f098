"""Fingerprints are computed once per model object and recomputed when the weights change."""

from __future__ import annotations

import importlib

import pytest
import torch

from mesainterp import provenance
from mesainterp.model.fingerprinting import clear_fingerprint_cache, fingerprint

# The package re-exports the function under the module's name; reach the module itself.
fingerprint_module = importlib.import_module("mesainterp.model.fingerprinting")


@pytest.fixture
def hashes(monkeypatch) -> list[int]:
    """Counts full hashes of the weights."""
    calls: list[int] = []
    real = fingerprint_module.fingerprint_state

    def counted(state):
        calls.append(1)
        return real(state)

    monkeypatch.setattr(fingerprint_module, "fingerprint_state", counted)
    clear_fingerprint_cache()
    return calls


def test_hashed_once_per_model_and_reused_by_provenance(tiny_model, hashes) -> None:
    first = fingerprint(tiny_model)
    assert provenance(model=tiny_model)["model_fingerprint"] == first
    assert fingerprint(tiny_model) == first
    assert len(hashes) == 1


def test_stale_after_an_in_place_weight_change(tiny_model, hashes) -> None:
    before = fingerprint(tiny_model)
    param = next(tiny_model.parameters())
    saved = param.detach().clone()
    with torch.no_grad():
        param.add_(1)
    after = fingerprint(tiny_model)
    assert after != before
    assert after == fingerprint(tiny_model, cache=False)
    with torch.no_grad():
        param.copy_(saved)
    assert fingerprint(tiny_model) == before  # same bytes again, same digest
    assert len(hashes) == 4


def test_replaced_and_reloaded_weights_are_seen(tiny_model, tiny_config, hashes) -> None:
    from mesainterp.model import build_model, random_init_twin

    before = fingerprint(tiny_model)
    tiny_model.load_state_dict(random_init_twin(tiny_config).state_dict())
    assert fingerprint(tiny_model) != before
    param = next(tiny_model.parameters())
    param.data = torch.zeros_like(param)  # a new tensor behind the same parameter
    assert fingerprint(tiny_model) == fingerprint(tiny_model, cache=False)
    # Another object with the same weights hashes by itself and agrees.
    assert fingerprint(build_model(tiny_config)) != fingerprint(tiny_model)


def test_an_explicit_fingerprint_skips_hashing(tiny_model, hashes) -> None:
    stamp = provenance(model=tiny_model, model_fingerprint="sha256:given")
    assert stamp["model_fingerprint"] == "sha256:given" and not hashes
