"""Models: configs, building, checkpoints, fingerprints."""

from mesainterp.model.build import ModelShape, build_model, model_shape, random_init_twin
from mesainterp.model.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from mesainterp.model.config import ModelConfig
from mesainterp.model.fingerprint import fingerprint

__all__ = [
    "Checkpoint",
    "ModelConfig",
    "ModelShape",
    "build_model",
    "fingerprint",
    "load_checkpoint",
    "model_shape",
    "random_init_twin",
    "save_checkpoint",
]
