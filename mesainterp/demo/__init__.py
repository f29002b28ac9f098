"""The default analysis of a shipped model (`mesainterp demo`, `make demo`)."""

from mesainterp.demo.overlays import OverlayData, overlay_data
from mesainterp.demo.pipeline import DemoPlan, run_demo

__all__ = ["DemoPlan", "OverlayData", "overlay_data", "run_demo"]
