"""Directions and ablations: which run is patched, and with what.

Direction:
    denoising  the corrupted run is the base; sites get clean-side values
               ("is this site sufficient to restore the clean behaviour?").
    noising    the clean run is the base; sites get corrupted-side values
               ("is this site necessary for the clean behaviour?").

Ablation (the value written into a site):
    resample   the counterfactual run's activation (clean for denoising, corrupted for noising)
    zero       zeros
    mean       mean over a reference distribution, over examples and positions
               (for attention patterns: over examples only, since rows differ in length)
    pos_mean   mean over the reference distribution per position
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch
from einops import reduce
from torch import Tensor

from mesainterp.errors import ConfigError, allowed

__all__ = [
    "ABLATIONS",
    "DIRECTIONS",
    "AblationKind",
    "Direction",
    "PatchSpec",
    "replacement_from",
]

Direction = Literal["denoising", "noising"]
AblationKind = Literal["resample", "zero", "mean", "pos_mean"]
DIRECTIONS: tuple[str, ...] = get_args(Direction)
ABLATIONS: tuple[str, ...] = get_args(AblationKind)


@dataclass(frozen=True, kw_only=True)
class PatchSpec:
    """How a sweep patches: direction and ablation."""

    direction: Direction = "denoising"
    ablation: AblationKind = "resample"

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ConfigError("direction", f"got {self.direction!r}", allowed(DIRECTIONS))
        if self.ablation not in ABLATIONS:
            raise ConfigError("ablation", f"got {self.ablation!r}", allowed(ABLATIONS))

    @property
    def needs_reference(self) -> bool:
        return self.ablation in ("mean", "pos_mean")

    def to_dict(self) -> dict[str, str]:
        return {"direction": self.direction, "ablation": self.ablation}


def replacement_from(
    ablation: AblationKind, *, name: str, base_act: Tensor, source_act: Tensor | None
) -> Tensor:
    """The full-shape replacement tensor for one hook, from the source (or reference) run.

    `base_act` gives the shape; for resample `source_act` is the counterfactual run's
    activation, for mean/pos_mean it is the reference run's activation (any batch size).
    Means are broadcast with `expand`, so they cost no memory per example.
    """
    if ablation == "zero":
        return torch.zeros_like(base_act)
    if source_act is None:
        raise ConfigError("ablation", f"{ablation!r} needs source activations for {name}")
    if ablation == "resample":
        if source_act.shape != base_act.shape:
            raise ConfigError(
                "source",
                f"counterfactual activation {name} has shape {tuple(source_act.shape)}, "
                f"the base run has {tuple(base_act.shape)}",
            )
        return source_act
    is_pattern = name.endswith("hook_pattern")
    if ablation == "mean" and not is_pattern:
        mean = reduce(source_act, "batch pos ... -> 1 1 ...", "mean")
    else:  # per position (a pattern's rows are its query positions)
        mean = reduce(source_act, "batch ... -> 1 ...", "mean")
    if mean.shape[1:] != base_act.shape[1:] and not (ablation == "mean" and not is_pattern):
        raise ConfigError(
            "reference",
            f"reference activation {name} has shape {tuple(source_act.shape)}, "
            f"positions must match the base run's {tuple(base_act.shape)}",
        )
    return mean.expand_as(base_act)
