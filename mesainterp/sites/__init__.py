"""Sites: typed places in a model where activations are read or patched."""

from mesainterp.sites.site import HEAD_KINDS, LAYER_KINDS, SITE_KINDS, Site, SiteKind
from mesainterp.sites.sweeps import (
    SiteError,
    attn_out_sites,
    head_sites,
    mlp_sites,
    resid_sites,
    unique_hook_names,
    validate_sites,
)

__all__ = [
    "HEAD_KINDS",
    "LAYER_KINDS",
    "SITE_KINDS",
    "Site",
    "SiteError",
    "SiteKind",
    "attn_out_sites",
    "head_sites",
    "mlp_sites",
    "resid_sites",
    "unique_hook_names",
    "validate_sites",
]
