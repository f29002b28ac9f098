"""Run the patching tests single-threaded.

On a shared 2-core machine torch's intra-op threads spin against other processes and
the many small ops of a sweep slow down by orders of magnitude; one thread is faster.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
