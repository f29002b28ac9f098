"""mesainterp: find internal search in transformers.

The workflow a notebook needs, in the order it is used:

    load or wrap a model   load_model, wrap_hf_model, load_hf_dir, build_model, ModelConfig,
                           save_checkpoint, load_checkpoint
    build a dataset        PromptPairs, load_prompts, get_task
    name places in it      Site, named_sites, probe_sites
    patch                  patch, patch_pair, path_patch
    attribute              node_attribution, edge_attribution
    find a circuit         acdc, top_edges, Circuit, faithfulness
    probe                  collect_activations, run_probes, ProbeSpec
    controls               random_init_twin
    report                 write_report, provenance

Everything else lives in its subpackage (`mesainterp.zoo`, `mesainterp.viz`, ...),
which loads on first attribute access. Importing the package has no side effects
and loads neither torch nor TransformerLens until a name is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mesainterp._version import __version__
from mesainterp.errors import CheckpointError, ConfigError, MesaInterpError

if TYPE_CHECKING:  # what the lazy names resolve to, for type checkers and IDEs
    from mesainterp.attribution import edge_attribution, node_attribution
    from mesainterp.discovery import Circuit, acdc, faithfulness, top_edges
    from mesainterp.model import (
        ModelConfig,
        build_model,
        fingerprint,
        load_checkpoint,
        load_hf_dir,
        model_shape,
        random_init_twin,
        save_checkpoint,
        wrap_hf_model,
    )
    from mesainterp.patching import patch, patch_pair, path_patch
    from mesainterp.probes import ProbeSpec, collect_activations, probe_sites, run_probes
    from mesainterp.prompts import PromptPairs, load_prompts
    from mesainterp.provenance_stamp import provenance
    from mesainterp.report import write_report
    from mesainterp.sites import Site, named_sites
    from mesainterp.tasks import get_task
    from mesainterp.zoo import load_model

# Public name -> the module that defines it; resolved on first use.
_LAZY_NAMES: dict[str, str] = {
    "load_model": "mesainterp.zoo",
    "wrap_hf_model": "mesainterp.model",
    "load_hf_dir": "mesainterp.model",
    "build_model": "mesainterp.model",
    "ModelConfig": "mesainterp.model",
    "model_shape": "mesainterp.model",
    "fingerprint": "mesainterp.model",
    "random_init_twin": "mesainterp.model",
    "PromptPairs": "mesainterp.prompts",
    "load_prompts": "mesainterp.prompts",
    "get_task": "mesainterp.tasks",
    "Site": "mesainterp.sites",
    "named_sites": "mesainterp.sites",
    "probe_sites": "mesainterp.probes",
    "patch": "mesainterp.patching",
    "patch_pair": "mesainterp.patching",
    "path_patch": "mesainterp.patching",
    "node_attribution": "mesainterp.attribution",
    "edge_attribution": "mesainterp.attribution",
    "acdc": "mesainterp.discovery",
    "top_edges": "mesainterp.discovery",
    "Circuit": "mesainterp.discovery",
    "faithfulness": "mesainterp.discovery",
    "collect_activations": "mesainterp.probes",
    "run_probes": "mesainterp.probes",
    "ProbeSpec": "mesainterp.probes",
    "write_report": "mesainterp.report",
    "provenance": "mesainterp.provenance_stamp",
    "save_checkpoint": "mesainterp.model",
    "load_checkpoint": "mesainterp.model",
}

# Subpackages and modules reachable as attributes (`mesainterp.zoo.load(...)`).
SUBMODULES: tuple[str, ...] = (
    "attribution",
    "cli",
    "demo",
    "discovery",
    "evidence",
    "model",
    "patching",
    "probes",
    "prompts",
    "report",
    "runs",
    "sites",
    "stats",
    "tasks",
    "training",
    "viz",
    "zoo",
)

__all__ = [
    "CheckpointError",
    "Circuit",
    "ConfigError",
    "MesaInterpError",
    "ModelConfig",
    "ProbeSpec",
    "PromptPairs",
    "Site",
    "__version__",
    "acdc",
    "build_model",
    "collect_activations",
    "edge_attribution",
    "faithfulness",
    "fingerprint",
    "get_task",
    "load_checkpoint",
    "load_hf_dir",
    "load_model",
    "load_prompts",
    "model_shape",
    "named_sites",
    "node_attribution",
    "patch",
    "patch_pair",
    "path_patch",
    "probe_sites",
    "provenance",
    "random_init_twin",
    "run_probes",
    "save_checkpoint",
    "top_edges",
    "wrap_hf_model",
    "write_report",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY_NAMES:
        value = getattr(importlib.import_module(_LAZY_NAMES[name]), name)
    elif name in SUBMODULES:
        value = importlib.import_module(f"mesainterp.{name}")
    else:
        raise AttributeError(f"module 'mesainterp' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(SUBMODULES))
