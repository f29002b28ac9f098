"""Training and held-out evaluation of the model organisms."""

from mesainterp.training.config import CurriculumStage, TrainConfig, load_train_config
from mesainterp.training.evaluation import (
    HELD_OUT_SEED_BASE,
    EvalResult,
    evaluate,
    held_out_seed,
    train_seed,
    validate_inputs,
)
from mesainterp.training.forward import forward_chunks, forward_logits
from mesainterp.training.loop import TrainResult, train
from mesainterp.training.presets import PRESETS, preset

__all__ = [
    "HELD_OUT_SEED_BASE",
    "PRESETS",
    "CurriculumStage",
    "EvalResult",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "forward_chunks",
    "forward_logits",
    "held_out_seed",
    "load_train_config",
    "preset",
    "train",
    "train_seed",
    "validate_inputs",
]
