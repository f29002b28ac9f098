"""Exact activation patching: one engine over typed site sets, path patching, results."""

from mesainterp.patching.ablation import ABLATIONS, DIRECTIONS, PatchSpec
from mesainterp.patching.api import patch, patch_pair, summarise
from mesainterp.patching.engine import METHODS, SweepValues, capture, run_sweep, site_hooks
from mesainterp.patching.fast import FastForward, unsupported_reason
from mesainterp.patching.hooks import count_hooks, hook_context, resolve_hook_point
from mesainterp.patching.metrics import (
    answer_logprob,
    exact_path_accuracy,
    logit_diff,
    neg_kl_to_clean,
)
from mesainterp.patching.path import Receiver, path_patch, run_path_sweep
from mesainterp.patching.results import PatchResult, load_result
from mesainterp.patching.stats import bootstrap_normalised, normalised_effect

__all__ = [
    "ABLATIONS",
    "DIRECTIONS",
    "METHODS",
    "FastForward",
    "PatchResult",
    "PatchSpec",
    "Receiver",
    "SweepValues",
    "answer_logprob",
    "bootstrap_normalised",
    "capture",
    "count_hooks",
    "exact_path_accuracy",
    "hook_context",
    "load_result",
    "logit_diff",
    "neg_kl_to_clean",
    "normalised_effect",
    "patch",
    "patch_pair",
    "path_patch",
    "resolve_hook_point",
    "run_path_sweep",
    "run_sweep",
    "site_hooks",
    "summarise",
    "unsupported_reason",
]
