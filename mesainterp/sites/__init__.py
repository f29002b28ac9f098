"""Sites: typed places in a model where activations are read or patched."""

from mesainterp.sites.named import SWEEPS, SweepName, named_sites
from mesainterp.sites.site import (
    GRAPH_KINDS,
    HEAD_KINDS,
    LAYER_KINDS,
    MODEL_KINDS,
    PATCH_KINDS,
    PROBE_KINDS,
    RECEIVER_KINDS,
    SENDER_KINDS,
    SITE_KINDS,
    ProbeSiteKind,
    ReceiverKind,
    Site,
    SiteKind,
)
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
    "GRAPH_KINDS",
    "HEAD_KINDS",
    "LAYER_KINDS",
    "MODEL_KINDS",
    "PATCH_KINDS",
    "PROBE_KINDS",
    "RECEIVER_KINDS",
    "SENDER_KINDS",
    "SITE_KINDS",
    "SWEEPS",
    "ProbeSiteKind",
    "ReceiverKind",
    "Site",
    "SiteError",
    "SiteKind",
    "SweepName",
    "attn_out_sites",
    "head_sites",
    "mlp_sites",
    "named_sites",
    "resid_sites",
    "unique_hook_names",
    "validate_sites",
]
