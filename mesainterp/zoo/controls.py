"""Control twins: the random-init model every claim about a model is compared against.

One seeding rule, so the command line, the evidence battery and notebooks build the
same controls: a control twin has the architecture of the model under test and the
seed one past that model's own, so it is never the model itself nor the starting
point of its training run.

    role            model under test                  its control twin
    trained         the trained weights (seed s run)  random init, seed s + 1
    planted         hand-set weights (config seed s)  random init, seed s + 1
    random-init     random init, seed s + 1           random init, seed s + 2
"""

from __future__ import annotations

from typing import Literal, get_args

from transformer_lens.model_bridge import TransformerBridge

from mesainterp.errors import ConfigError, allowed
from mesainterp.model.build import random_init_twin
from mesainterp.model.config import ModelConfig
from mesainterp.zoo.loader import LoadedModel

__all__ = [
    "ROLES",
    "Role",
    "control_seed",
    "control_twin",
    "loaded_control_twin",
    "random_init_model",
]

Role = Literal["trained", "planted", "random-init"]
ROLES: tuple[str, ...] = get_args(Role)


def control_seed(config: ModelConfig, *, role: Role = "trained") -> int:
    """The seed of the control twin of the model in `role` built from `config`."""
    if role not in ROLES:
        raise ConfigError("role", f"got {role!r}", allowed(ROLES))
    return config.seed + (2 if role == "random-init" else 1)


def control_twin(config: ModelConfig, *, role: Role = "trained") -> TransformerBridge:
    """The control twin of the model in `role` built from `config` (see the table above)."""
    return random_init_twin(config, seed=control_seed(config, role=role))


def random_init_model(config: ModelConfig) -> TransformerBridge:
    """The random-init model under test in the `random-init` role: the trained
    model's own control twin (seed s + 1), scored as a model in its own right."""
    return control_twin(config, role="trained")


def loaded_control_twin(loaded: LoadedModel, *, role: Role = "trained") -> TransformerBridge:
    """The control twin of a loaded model. A zoo model or checkpoint is rebuilt from its
    native config with the seed rule above; a HuggingFace model from its HF config with
    its architecture's own initialisation, at the same offsets from its recorded seed
    (0 when it records none)."""
    if loaded.config is not None:
        return control_twin(loaded.config, role=role)
    if role not in ROLES:
        raise ConfigError("role", f"got {role!r}", allowed(ROLES))
    own_seed = int(getattr(loaded.model.cfg, "seed", None) or 0)
    return random_init_twin(loaded.model, seed=own_seed + (2 if role == "random-init" else 1))
