"""Models: configs, building, HuggingFace wrapping, checkpoints, fingerprints."""

from mesainterp.model.build import ModelShape, build_model, model_shape, random_init_twin
from mesainterp.model.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from mesainterp.model.config import ModelConfig
from mesainterp.model.fingerprinting import fingerprint
from mesainterp.model.hf import load_hf_dir, wrap_hf_model
from mesainterp.model.shape import model_source

__all__ = [
    "Checkpoint",
    "ModelConfig",
    "ModelShape",
    "build_model",
    "fingerprint",
    "load_checkpoint",
    "load_hf_dir",
    "model_shape",
    "model_source",
    "random_init_twin",
    "save_checkpoint",
    "wrap_hf_model",
]
