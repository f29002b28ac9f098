"""Report sections: a titled figure, table or circuitsvis view, and how a run's
results become sections.

A `Section` holds objects, not HTML: an interactive plotly figure and/or a
static matplotlib figure, a table, a circuitsvis view, or an image file's
bytes. `build_report` renders them; `write_static_figures` saves the static ones.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from matplotlib.figure import Figure

from mesainterp.errors import ConfigError
from mesainterp.report.rundir import Result, Run, RunDirError, read_table
from mesainterp.viz.attention import CircuitsVisHTML, attention_heads
from mesainterp.viz.circuit import circuit_graph
from mesainterp.viz.patching import patching_heatmap
from mesainterp.viz.probes import (
    probe_curves,
    probe_heatmap,
)
from mesainterp.viz.scatter import align_sites, attribution_scatter

__all__ = ["IMAGE_TYPES", "Section", "sections_from_run", "slug"]

IMAGE_TYPES = {".svg": "image/svg+xml", ".png": "image/png"}


def slug(text: str) -> str:
    """A file- and id-safe name."""
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "section"


@dataclass(frozen=True, kw_only=True)
class Section:
    """One block of the report. Give at least one of plotly, static, table, view, image."""

    title: str
    name: str = ""
    caption: str = ""
    plotly: go.Figure | None = None
    static: Figure | None = None
    table: pd.DataFrame | None = None
    view: CircuitsVisHTML | None = None
    image: bytes | None = None
    image_type: str = ""

    def __post_init__(self) -> None:
        if not self.title:
            raise ConfigError("title", "a section needs a title")
        if all(v is None for v in (self.plotly, self.static, self.table, self.view, self.image)):
            raise ConfigError(
                "Section",
                f"{self.title!r} has nothing to show (plotly, static, table, view or image)",
            )
        if self.image is not None and self.image_type not in IMAGE_TYPES.values():
            raise ConfigError(
                "image_type", f"unsupported {self.image_type!r}", ", ".join(IMAGE_TYPES.values())
            )
        if not self.name:
            object.__setattr__(self, "name", slug(self.title))


def _patching(run: Run, result: Result) -> list[Section]:
    table = read_table(run.file(result.path))
    opts = result.options
    labels = opts.get("position_labels")  # e.g. the prompt's tokens, one per position
    kinds = (
        [opts["kind"]]
        if "kind" in opts
        else sorted(str(k) for k in table["kind"].dropna().unique())
    )
    sections = []
    for kind in kinds:
        rows = table[table["kind"] == kind]
        has_heads = (
            "head" in rows and rows["head"].notna().any() and (rows["head"].dropna() >= 0).any()
        )
        x = opts.get("x", "head" if has_heads else "position")
        if x == "head" and "position" in opts and "position" in rows:
            chosen = rows[rows["position"] == opts["position"]]
            chunks = [(f" at position {int(opts['position'])}", chosen)]
        else:
            # A heads-by-position table draws one panel per position itself: none dropped.
            chunks = [("", rows)]
        for suffix, chunk in chunks:
            title = f"{opts.get('title', f'Patching: {kind}')}{suffix}"
            sections.append(
                Section(
                    title=title,
                    name=slug(f"{result.name}-{kind}{suffix}"),
                    caption=opts.get(
                        "caption",
                        "Effect of patching each site; hover for the confidence interval and n.",
                    ),
                    plotly=patching_heatmap(
                        chunk,
                        x=x,
                        kind=kind,
                        title=title,
                        position_labels=labels,
                        position_roles=opts.get("position_roles"),
                    ),
                    static=patching_heatmap(
                        chunk,
                        x=x,
                        kind=kind,
                        title=title,
                        position_labels=labels,
                        position_roles=opts.get("position_roles"),
                        backend="matplotlib",
                    ),
                )
            )
    return sections


def _probes(run: Run, result: Result) -> list[Section]:
    table = read_table(run.file(result.path))
    opts = result.options
    targets = (
        [opts["target"]] if "target" in opts else sorted(str(t) for t in table["target"].unique())
    )
    pos, hook = opts.get("pos"), opts.get("hook")
    labels = opts.get("position_labels")  # e.g. a prompt file's roles and tokens
    sections = []
    for target in targets:
        rows = table[table["target"] == target]
        title = opts.get("title", f"Probe: {target}")
        caption = opts.get(
            "caption",
            "Probe score by layer (±1.96 se) against random-init, shuffled-label and majority controls.",
        )
        sections.append(
            Section(
                title=title,
                name=slug(f"{result.name}-{target}"),
                caption=caption,
                plotly=probe_curves(table, target=target, pos=pos, hook=hook),
                static=probe_curves(table, target=target, pos=pos, hook=hook, backend="matplotlib"),
            )
        )
        if pos is not None or rows["pos"].nunique() < 2:
            continue
        # One layer × position grid per hook point when a layer has several.
        several = hook is None and "hook" in rows and rows.duplicated(["layer", "pos"]).any()
        hooks: list[str | None] = [hook]
        if several:
            points = rows["hook"].astype(str).str.rsplit(".", n=1).str[-1]
            hooks = [str(h) for h in sorted(points.unique())]
        for h in hooks:
            suffix = f" ({h})" if several else ""
            sections.append(
                Section(
                    title=f"{title}: layer × position{suffix}",
                    name=slug(f"{result.name}-{target}-grid{suffix}"),
                    plotly=probe_heatmap(table, target=target, hook=h, position_labels=labels),
                    static=probe_heatmap(
                        table, target=target, hook=h, position_labels=labels, backend="matplotlib"
                    ),
                )
            )
    return sections


def _attribution(run: Run, result: Result) -> list[Section]:
    if "exact" not in result.options:
        raise RunDirError(
            f"results[{result.name!r}]: an attribution result needs 'exact' (the exact patching table)"
        )
    merged = align_sites(
        read_table(run.file(result.options["exact"])), read_table(run.file(result.path))
    )
    title = result.options.get("title", "Attribution vs exact patching")
    return [
        Section(
            title=title,
            name=slug(result.name),
            caption=result.options.get("caption", "One point per site; the dotted line is y = x."),
            plotly=attribution_scatter(
                merged["exact"], merged["attribution"], labels=list(merged["site"]), title=title
            ),
            static=attribution_scatter(
                merged["exact"], merged["attribution"], title=title, backend="matplotlib"
            ),
        )
    ]


def _json(run: Run, result: Result) -> Any:
    path = run.file(result.path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunDirError(f"{path}: not valid JSON ({err})") from err


def _circuit(run: Run, result: Result) -> list[Section]:
    data = _json(run, result)
    try:
        nodes, edges = data["nodes"], data["edges"]
        scores = data.get("scores") or [float(e["score"]) for e in edges]
    except (KeyError, TypeError) as err:
        raise RunDirError(
            f"{result.path}: a circuit needs 'nodes' and 'edges' with scores ({err!r} missing)"
        ) from err
    if not isinstance(edges, list) or len(scores) != len(edges):
        raise RunDirError(f"{result.path}: needs one score per edge")
    faithfulness = data.get("faithfulness")
    method = f" ({data['method']})" if data.get("method") else ""
    title = result.options.get("title", data.get("title", f"Circuit{method}"))
    rows = []
    for edge, score in zip(edges, scores, strict=True):
        if isinstance(edge, dict):
            port = f".{edge['input']}" if edge.get("input") else ""
            rows.append(
                {"source": edge["source"], "target": f"{edge['target']}{port}", "score": score}
            )
        else:
            rows.append({"source": edge[0], "target": edge[1], "score": score})
    table = pd.DataFrame(rows, columns=["source", "target", "score"])
    return [
        Section(
            title=title,
            name=slug(result.name),
            caption=result.options.get(
                "caption", "Nodes by layer; edge width ∝ |score|, blue positive, orange negative."
            ),
            plotly=circuit_graph(nodes, edges, scores, faithfulness=faithfulness, title=title),
            static=circuit_graph(
                nodes, edges, scores, faithfulness=faithfulness, title=title, backend="matplotlib"
            ),
            table=table.sort_values("score", key=abs, ascending=False).reset_index(drop=True),
        )
    ]


def _attention(run: Run, result: Result) -> list[Section]:
    data = _json(run, result)
    try:
        view = attention_heads(
            data["attention"], list(data["tokens"]), head_names=data.get("head_names")
        )
    except (KeyError, TypeError) as err:
        raise RunDirError(
            f"{result.path}: attention needs 'tokens' and 'attention' ({err!r})"
        ) from err
    return [
        Section(
            title=result.options.get("title", "Attention"),
            name=slug(result.name),
            caption=result.options.get("caption", ""),
            view=view,
        )
    ]


def _figure(run: Run, result: Result) -> list[Section]:
    path = run.file(result.path)
    if path.suffix not in IMAGE_TYPES:
        raise RunDirError(f"{path}: figures must be {', '.join(IMAGE_TYPES)}")
    return [
        Section(
            title=result.options.get("title", result.name),
            name=slug(result.name),
            caption=result.options.get("caption", ""),
            image=path.read_bytes(),
            image_type=IMAGE_TYPES[path.suffix],
        )
    ]


def _table(run: Run, result: Result) -> list[Section]:
    table = read_table(run.file(result.path))
    return [
        Section(
            title=result.options.get("title", result.name),
            name=slug(result.name),
            caption=result.options.get("caption", ""),
            table=table,
        )
    ]


def _scorecard(run: Run, result: Result) -> list[Section]:
    data = _json(run, result)
    if not isinstance(data, dict) or data.get("format") != "mesainterp.scorecard":
        raise RunDirError(f"{result.path}: not a scorecard (format 'mesainterp.scorecard')")
    cols = ("test", "verdict", "value", "ci_low", "ci_high", "control", "control_name",
            "threshold", "reason")  # fmt: skip
    try:
        table = pd.DataFrame([{c: t.get(c) for c in cols} for t in data["tests"]], columns=cols)
        summary = data["summary"]
        caption = (
            f"{data.get('model_name', '')}: passed {summary['passed']} of"
            f" {summary['applicable']} applicable tests. Each test passes when its margin"
            " (value minus control, or the value) reaches the threshold shown."
        )
    except (KeyError, TypeError, AttributeError) as err:
        raise RunDirError(
            f"{result.path}: a scorecard needs 'tests' and 'summary' ({err!r})"
        ) from err
    return [
        Section(
            title=result.options.get("title", "Internal-search evidence"),
            name=slug(result.name),
            caption=result.options.get("caption", caption),
            table=table,
        )
    ]


def _mechanism(run: Run, result: Result) -> list[Section]:
    """The card's claims first (supported, then failed), the literature table, then
    each evidence table the claims point to, in the card's order."""
    data = _json(run, result)
    if not isinstance(data, dict) or data.get("format") != "mesainterp.mechanism":
        raise RunDirError(f"{result.path}: not a mechanism card (format 'mesainterp.mechanism')")
    try:
        claims = pd.DataFrame(data["claims"])
        cols = ["status", "kind", "text", "evidence", "value", "ci_low", "ci_high"]
        claims = claims[cols] if len(claims) else pd.DataFrame(columns=cols)
        literature = pd.DataFrame(data.get("literature", []))
        tables = dict(data.get("tables", {}))
        n_ok = int((claims["status"] == "supported").sum())
    except (KeyError, TypeError, ValueError) as err:
        raise RunDirError(f"{result.path}: a mechanism card needs 'claims' ({err!r})") from err
    base = slug(result.name)
    out = [
        Section(
            title=result.options.get("title", "Mechanism"),
            name=base,
            caption=f"{data.get('model_name', '')} on {data.get('task', '')}: {n_ok} of"
            f" {len(claims)} claims supported. Each status is computed from the number and"
            " interval beside it against thresholds fixed in code; the evidence column"
            " names the table and row below.",
            table=claims,
        )
    ]
    if len(literature):
        out.append(
            Section(
                title=f"Compared with {literature['source'].iloc[0]}",
                name=f"{base}-literature",
                caption="Each verdict is judged on the claims above by a rule declared in code.",
                table=literature[["finding", "verdict", "evidence"]],
            )
        )
    for name, path in tables.items():
        table = read_table(run.file(str(path)))
        if name == "roles" and "assigned" in table:
            table = table[table["assigned"].astype(bool)]
        out.append(
            Section(
                title=f"Evidence: {path}",
                name=f"{base}-{slug(name)}",
                caption=f"{len(table)} rows" + (" (assigned roles)" if name == "roles" else ""),
                table=table.reset_index(drop=True),
            )
        )
    return out


_BUILDERS = {
    "patching": _patching,
    "probes": _probes,
    "attribution": _attribution,
    "circuit": _circuit,
    "attention": _attention,
    "figure": _figure,
    "table": _table,
    "scorecard": _scorecard,
    "mechanism": _mechanism,
}


def sections_from_run(run: Run) -> list[Section]:
    """The report sections of every result in a run, in manifest order."""
    sections: list[Section] = []
    for result in run.results:
        try:
            sections.extend(_BUILDERS[result.kind](run, result))
        except ConfigError as err:
            raise RunDirError(
                f"{result.path}: cannot draw {result.kind} result {result.name!r}: {err}"
            ) from err
    return sections
