"""mesainterp: find internal search in transformers.

The names a notebook needs are exported here; everything else lives in its
module. Importing the package has no side effects.
"""

from mesainterp._version import __version__
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
from mesainterp.provenance import provenance

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "ConfigError",
    "MesaInterpError",
    "ModelConfig",
    "__version__",
    "build_model",
    "fingerprint",
    "load_checkpoint",
    "model_shape",
    "provenance",
    "random_init_twin",
    "save_checkpoint",
]
