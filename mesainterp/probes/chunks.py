"""Sites streamed through a probe solver in chunks under a memory budget.

Each site's probe is an independent problem, so fitting the sites a chunk at a time
gives the same probes as one batch, while the solver's working memory (Gram
matrices, preconditioners, fold copies of the features) is held for one chunk only.
"""

from __future__ import annotations

from mesainterp.errors import ConfigError

__all__ = ["MEMORY_BUDGET_BYTES", "site_chunks"]

# Working memory a sweep may hold beyond its inputs and results, when the caller
# names no chunk size.
MEMORY_BUDGET_BYTES = 2 * 1024**3


def site_chunks(sites: int, per_site_bytes: int, chunk_sites: int | None) -> list[slice]:
    """Slices covering range(sites), `chunk_sites` long (None: as many sites as
    `per_site_bytes` each fit in `MEMORY_BUDGET_BYTES`, at least one)."""
    if chunk_sites is None:
        chunk_sites = max(1, MEMORY_BUDGET_BYTES // max(per_site_bytes, 1))
    elif not isinstance(chunk_sites, int) or isinstance(chunk_sites, bool) or chunk_sites < 1:
        raise ConfigError("chunk_sites", f"expected a positive int or None, got {chunk_sites!r}")
    return [slice(a, min(a + chunk_sites, sites)) for a in range(0, max(sites, 1), chunk_sites)]
