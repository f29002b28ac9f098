"""The battery's thresholds and sizes are pinned: moving one is a visible change.

They were fixed once, with battery version 2, before it was run on any trained
model (rationale in `mesainterp.evidence.config`). Change them only with a new
battery version and a stated reason, never after looking at a model's result.
"""

from __future__ import annotations

from mesainterp.evidence import BATTERY_VERSION, EvidenceConfig
from mesainterp.evidence.iterative import MIN_RISE
from mesainterp.evidence.stats import ALPHA


def test_thresholds_are_pinned() -> None:
    cfg = EvidenceConfig()
    assert BATTERY_VERSION == 2
    assert ALPHA == 0.05
    assert MIN_RISE == 0.1
    assert (cfg.goal_margin, cfg.retarget_margin, cfg.lookahead_margin) == (0.2, 0.2, 0.2)
    assert cfg.iterative_margin == 0.25
    assert (cfg.faithfulness_threshold, cfg.algorithm_threshold) == (0.8, 0.9)
    assert cfg.n_twins == 5 and cfg.n_boot == 2000


def test_the_random_init_control_is_never_a_single_draw() -> None:
    import pytest

    from mesainterp.errors import ConfigError

    with pytest.raises(ConfigError, match="n_twins"):
        EvidenceConfig(n_twins=1)
