"""One self-contained HTML page from a run directory or a list of sections.

Nothing on the page is fetched: plotly.js (from the installed plotly package)
and the circuitsvis bundle (from the installed circuitsvis wheel) are inlined
once each, static figures are inline SVG, images are data: URIs, and every
string that came from a result (titles, tokens, table cells, provenance) is
escaped. With `interactive=False` the page carries no plotly.js at all and
shows the static (matplotlib) figures instead, which makes it ~5 MB smaller.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from mesainterp.atomic import atomic_write_bytes, atomic_write_text
from mesainterp.errors import ConfigError
from mesainterp.report.rundir import Run, load_run
from mesainterp.report.sections import Section, sections_from_run
from mesainterp.viz.attention import circuitsvis_js, script_safe_js
from mesainterp.viz.export import STATIC_FORMATS, plotly_fragment, save_static, to_svg

__all__ = ["build_report", "write_report", "write_static_figures"]

MAX_TABLE_ROWS = 200

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #222; background: #fff; }
main { max-width: 1100px; margin: 0 auto; padding: 24px; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
p.caption { color: #555; font-size: 0.9em; }
nav ol { columns: 2; font-size: 0.9em; }
.figure > svg { width: min(100%, 760px); height: auto; }
.figure img { max-width: 100%; }
table.data { border-collapse: collapse; font-size: 0.8em; margin: 8px 0; }
table.data th, table.data td { border: 1px solid #ddd; padding: 2px 6px; text-align: right; }
table.data th { background: #f4f4f4; }
pre.provenance { background: #f7f7f7; padding: 12px; overflow-x: auto; font-size: 0.8em; }
.meta { color: #666; font-size: 0.85em; }
"""


@cache
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return script_safe_js(get_plotlyjs())


def _figure_html(section: Section, interactive: bool) -> str:
    if interactive and section.plotly is not None:
        return plotly_fragment(section.plotly, div_id=f"fig-{section.name}")
    if section.static is not None:
        return to_svg(section.static)
    if section.plotly is not None:
        return '<p class="caption">(interactive figure left out: static report)</p>'
    return ""


def _table_html(section: Section) -> str:
    if section.table is None:
        return ""
    table = section.table
    note = ""
    if len(table) > MAX_TABLE_ROWS:
        note = f'<p class="caption">First {MAX_TABLE_ROWS} of {len(table)} rows.</p>'
        table = table.head(MAX_TABLE_ROWS)
    return (
        table.to_html(
            classes="data", index=False, escape=True, float_format=lambda v: f"{v:.4g}", border=0
        )
        + note
    )


def _section_html(section: Section, interactive: bool) -> str:
    parts = [
        f'<section id="{html.escape(section.name)}">',
        f"<h2>{html.escape(section.title)}</h2>",
    ]
    if section.caption:
        parts.append(f'<p class="caption">{html.escape(section.caption)}</p>')
    figure = _figure_html(section, interactive)
    if figure:
        parts.append(f'<div class="figure">{figure}</div>')
    if section.view is not None:
        parts.append(f'<div class="figure">{section.view.fragment(include_js=False)}</div>')
    if section.image is not None:
        data = base64.b64encode(section.image).decode("ascii")
        parts.append(
            f'<div class="figure"><img alt="{html.escape(section.title)}" src="data:{section.image_type};base64,{data}"></div>'
        )
    parts.append(_table_html(section))
    parts.append("</section>")
    return "\n".join(p for p in parts if p)


def _provenance_html(provenance: dict[str, Any] | None, command: Sequence[str] | None) -> str:
    block = {"command": list(command) if command else None, **(provenance or {})}
    text = json.dumps(block, indent=2, sort_keys=True, default=str)
    return f'<section id="provenance"><h2>Provenance</h2><pre class="provenance">{html.escape(text)}</pre></section>'


def build_report(
    source: str | Path | Run | Sequence[Section],
    *,
    title: str | None = None,
    provenance: dict[str, Any] | None = None,
    command: Sequence[str] | None = None,
    interactive: bool = True,
) -> str:
    """The report as one HTML string that makes no network request.

    `source` is a run directory (see `mesainterp.report.rundir`), a loaded `Run`,
    or a list of `Section`s (then pass `provenance`/`command` yourself).
    """
    if isinstance(source, (str, Path)):
        source = load_run(source)
    if isinstance(source, Run):
        sections = sections_from_run(source)
        title = title or source.title
        provenance = provenance if provenance is not None else source.provenance
        command = command if command is not None else source.command
    else:
        sections = list(source)
        if not all(isinstance(s, Section) for s in sections):
            raise ConfigError("source", "expected a run directory or a list of Section values")
    title = title or "mesainterp report"
    names = [s.name for s in sections]
    if len(set(names)) != len(names):
        raise ConfigError(
            "sections", "section names must be unique (they become ids and file names)"
        )
    uses_plotly = interactive and any(s.plotly is not None for s in sections)
    uses_circuitsvis = any(s.view is not None for s in sections)
    head = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # Belt and braces: the page itself forbids any fetch that is not inline.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; img-src data: blob:; "
        'font-src data:; worker-src blob:">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style>",
    ]
    if uses_plotly:
        head.append(
            f"<script>window.PlotlyConfig = {{MathJaxConfig: 'local'}};</script>\n<script>{_plotly_js()}</script>"
        )
    if uses_circuitsvis:
        head.append(f"<script>{circuitsvis_js()}</script>")
    head.append("</head><body><main>")
    toc = "".join(
        f'<li><a href="#{html.escape(s.name)}">{html.escape(s.title)}</a></li>' for s in sections
    )
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">{len(sections)} sections · {"interactive" if uses_plotly else "static"} figures · '
        "self-contained, works offline</p>",
        f'<nav><ol>{toc}<li><a href="#provenance">Provenance</a></li></ol></nav>',
        *(_section_html(s, interactive) for s in sections),
        _provenance_html(provenance, command),
        "</main></body></html>\n",
    ]
    return "\n".join(head + body)


def write_static_figures(
    sections: Sequence[Section], out_dir: str | Path, *, formats: Sequence[str] = STATIC_FORMATS
) -> list[Path]:
    """Save every static figure (and image file) for papers: out_dir/<name>.<fmt>."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for section in sections:
        if section.static is not None:
            written.extend(save_static(section.static, out / section.name, formats=formats))
        if section.image is not None:
            suffix = ".svg" if section.image_type == "image/svg+xml" else ".png"
            target = out / f"{section.name}{suffix}"
            atomic_write_bytes(target, section.image)
            written.append(target)
    return written


def write_report(
    run_dir: str | Path,
    *,
    out: str | Path | None = None,
    figures_dir: str | Path | None = None,
    interactive: bool = True,
    formats: Sequence[str] = STATIC_FORMATS,
) -> tuple[Path, list[Path]]:
    """Build RUN_DIR/report.html and RUN_DIR/figures/; returns (report path, figure paths).

    A saved patching result is a run directory:

    >>> model = mesainterp.build_model(mesainterp.ModelConfig(
    ...     n_layers=1, d_model=16, n_heads=2, d_head=8, d_mlp=32, d_vocab=11, n_ctx=8, seed=0))
    >>> pairs = mesainterp.PromptPairs.from_token_ids(
    ...     [[5, 1, 2], [6, 1, 2], [7, 3, 2], [8, 3, 2]],  # clean prompts
    ...     [[6, 1, 2], [5, 1, 2], [8, 3, 2], [7, 3, 2]],  # corrupted: first token swapped
    ...     [5, 6, 7, 8], [6, 5, 8, 7])                     # clean and corrupted answers
    >>> pair = pairs.to_pair()
    >>> import tempfile
    >>> sites = mesainterp.named_sites("heads", mesainterp.model_shape(model))
    >>> result = mesainterp.patch_pair(model, pair, sites, metric=pairs.default_metric())
    >>> run_dir = result.save(tempfile.mkdtemp())
    >>> page, figures = mesainterp.write_report(run_dir, interactive=False, formats=())
    >>> page.name, figures
    ('report.html', [])
    >>> "L0" in page.read_text()
    True
    """
    run = load_run(run_dir)
    sections = sections_from_run(run)
    page = build_report(
        sections,
        title=run.title,
        provenance=run.provenance,
        command=run.command,
        interactive=interactive,
    )
    target = Path(out) if out is not None else run.path / "report.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, page)
    figures = write_static_figures(
        sections, figures_dir if figures_dir is not None else run.path / "figures", formats=formats
    )
    return target, figures
