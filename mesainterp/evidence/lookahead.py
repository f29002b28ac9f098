"""Test 3, look-ahead (Jenner et al. 2024): a future answer step is decodable early.

At the position that predicts the first answer token (the path's start), the
answer's step two ahead (`path[2]`: two tokens after the one being predicted)
is probed in every layer. Examples whose path is shorter are left out. Control:
the best of the random-init twin's probe, the shuffled-label probe (any layer)
and the majority class. Pass: value - control >= `lookahead_margin`.
"""

from __future__ import annotations

from mesainterp.evidence.config import EvidenceConfig
from mesainterp.evidence.layer_probe import probe_by_layer
from mesainterp.evidence.profile import EvidenceInputs
from mesainterp.evidence.result import EvidenceResult, judged, not_applicable

__all__ = ["LOOKAHEAD_STEP", "look_ahead"]

NAME = "look_ahead"
LOOKAHEAD_STEP = 2


def look_ahead(inputs: EvidenceInputs, cfg: EvidenceConfig) -> EvidenceResult:
    """Test 3 (see the module docstring)."""
    criterion = (
        f"accuracy of a probe for path[{LOOKAHEAD_STEP}] at the position predicting path[0]"
        f" (best layer) minus the best of random-init twin / shuffled labels / majority"
        f" >= {cfg.lookahead_margin:g}"
    )
    if inputs.profile.kind != "path" or "path" not in inputs.data.labels:
        return not_applicable(
            NAME, criterion, cfg.lookahead_margin, f"task {inputs.task.name!r} has no path answer"
        )
    path = inputs.data.labels["path"]
    if path.shape[1] <= LOOKAHEAD_STEP or int((path[:, LOOKAHEAD_STEP] >= 0).sum()) < 4 * cfg.folds:
        return not_applicable(
            NAME, criterion, cfg.lookahead_margin,
            f"too few examples with a path of more than {LOOKAHEAD_STEP} steps",
        )  # fmt: skip
    probe = probe_by_layer(
        inputs, "path", label_column=LOOKAHEAD_STEP, pos=inputs.query_pos, cfg=cfg
    )
    control, control_name = probe.best_control
    return judged(
        test=NAME,
        criterion=criterion,
        metric=f"held-out accuracy of the path[{LOOKAHEAD_STEP}] probe (layer {probe.best_layer})",
        value=probe.value,
        ci=probe.ci,
        control=control,
        control_name=control_name,
        threshold=cfg.lookahead_margin,
        details=probe.to_dict() | {"ci": "percentile bootstrap over examples"},
    )
