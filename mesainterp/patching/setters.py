"""Writing a site's slice of a replacement activation into an activation tensor."""

from __future__ import annotations

from torch import Tensor

from mesainterp.sites.site import Site

__all__ = ["apply_site"]


def apply_site(site: Site, act: Tensor, replacement: Tensor, *, start: int = 0) -> Tensor:
    """Write the site's slice of `replacement` (full positions) into `act` (positions >= start)."""
    out = act.clone()
    if site.kind == "pattern":
        # [b, H, q, k]: the query axis is sliced from `start`, the key axis is whole.
        if site.pos is None:
            out[:, site.head] = replacement[:, site.head, start:]
        else:
            out[:, site.head, site.pos - start] = replacement[:, site.head, site.pos]
        return out
    if site.head is None:
        if site.pos is None:
            out[:] = replacement[:, start:]
        else:
            out[:, site.pos - start] = replacement[:, site.pos]
        return out
    if site.pos is None:
        out[:, :, site.head] = replacement[:, start:, site.head]
    else:
        out[:, site.pos - start, site.head] = replacement[:, site.pos, site.head]
    return out
