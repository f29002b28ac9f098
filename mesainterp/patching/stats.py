"""Normalising patching effects and their seeded bootstrap intervals.

Both live in `mesainterp.stats` (one normalisation and one bootstrap for every
layer); they are re-exported here because patching is where they are used most.
"""

from __future__ import annotations

from mesainterp.stats import bootstrap_normalised, normalised_effect

__all__ = ["bootstrap_normalised", "normalised_effect"]
