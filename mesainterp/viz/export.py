"""Turn figure objects into bytes or files, only when the caller asks.

Matplotlib figures become SVG text, PNG bytes or files in several formats;
plotly figures become an HTML fragment that expects plotly.js on the page.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import plotly.graph_objects as go
from matplotlib.figure import Figure

from mesainterp.errors import ConfigError, allowed
from mesainterp.viz._style import publication_style

__all__ = ["STATIC_FORMATS", "plotly_fragment", "save_static", "to_png", "to_svg"]

STATIC_FORMATS = ("png", "svg", "pdf")


def to_svg(fig: Figure) -> str:
    """The figure as standalone SVG text (text kept as text, no external refs)."""
    buffer = io.StringIO()
    with publication_style():
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and DOCTYPE for inlining


def to_png(fig: Figure, *, dpi: int = 200) -> bytes:
    buffer = io.BytesIO()
    with publication_style():
        fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


def save_static(
    fig: Figure, stem: str | Path, *, formats: Sequence[str] = STATIC_FORMATS, dpi: int = 300
) -> list[Path]:
    """Write `stem.png`, `stem.svg`, `stem.pdf` (as asked); returns the paths."""
    unknown = [f for f in formats if f not in STATIC_FORMATS]
    if unknown:
        raise ConfigError(
            "formats", f"unknown format(s) {allowed(unknown)}", allowed(STATIC_FORMATS)
        )
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    # Fixed metadata keeps repeated builds byte-identical for SVG and PDF.
    metadata = {
        "svg": {"Date": None},
        "pdf": {"CreationDate": None, "ModDate": None},
        "png": {"Software": None},
    }
    with publication_style():
        for fmt in formats:
            path = stem.with_suffix(f".{fmt}")
            fig.savefig(path, format=fmt, dpi=dpi, metadata=metadata[fmt])
            written.append(path)
    return written


def plotly_fragment(fig: go.Figure, *, div_id: str | None = None) -> str:
    """A <div> + <script> drawing `fig`; the page must load plotly.js itself."""
    return fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        include_mathjax=False,
        div_id=div_id,
        config={"displaylogo": False, "responsive": True},
    )
