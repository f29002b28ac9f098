"""Family bridges built once per session; torch single-threaded as in tests/unit/patching."""

from __future__ import annotations

import pytest
from transformer_lens.model_bridge import TransformerBridge

from tests.families import ALL_FAMILIES, family_bridge
from tests.unit.patching.conftest import _one_thread  # noqa: F401  (autouse fixture)


class _LazyBridges(dict[str, TransformerBridge]):
    def __missing__(self, family: str) -> TransformerBridge:
        if family not in ALL_FAMILIES:
            raise KeyError(family)
        self[family] = family_bridge(family)
        return self[family]


@pytest.fixture(scope="session")
def bridges() -> dict[str, TransformerBridge]:
    """Every family's bridge, built on first use and shared by the session."""
    return _LazyBridges()
