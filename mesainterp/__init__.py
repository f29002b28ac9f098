"""mesainterp: find internal search in transformers.

The names a notebook needs are exported here; everything else lives in its
module. Importing the package has no side effects.
"""

from mesainterp._version import __version__
from mesainterp.discovery import Circuit
from mesainterp.errors import CheckpointError, ConfigError, MesaInterpError
from mesainterp.model import (
    Checkpoint,
    ModelConfig,
    build_model,
    fingerprint,
    load_checkpoint,
    model_shape,
    random_init_twin,
    save_checkpoint,
)
from mesainterp.patching import Receiver, patch, patch_pair, path_patch
from mesainterp.probes import ProbeSpec, run_probes
from mesainterp.provenance import provenance
from mesainterp.sites import Site
from mesainterp.tasks import get_task

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "Circuit",
    "ConfigError",
    "MesaInterpError",
    "ModelConfig",
    "ProbeSpec",
    "Receiver",
    "Site",
    "__version__",
    "build_model",
    "fingerprint",
    "get_task",
    "load_checkpoint",
    "model_shape",
    "patch",
    "patch_pair",
    "path_patch",
    "provenance",
    "random_init_twin",
    "run_probes",
    "save_checkpoint",
]
