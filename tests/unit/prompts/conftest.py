"""Prompt tests run patching sweeps too: single-threaded for the same reason."""

from tests.unit.patching.conftest import _one_thread

__all__ = ["_one_thread"]
