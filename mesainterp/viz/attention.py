"""Attention patterns through circuitsvis, rendered fully offline.

circuitsvis's own `render` builds HTML that loads its JavaScript from a CDN and
probes a web host on every call. Here the HTML is built around the JavaScript
bundled in the installed circuitsvis wheel (`circuitsvis/dist/cdn/iife.js`),
which is inlined, so a saved page makes no network request. Props are JSON
with `<`, `>`, `&` and the JS line separators escaped, so no token string
(even one containing ``</script>``) can end the script element; React then
renders tokens as text, never as markup.
"""

from __future__ import annotations

import html
import json
import re
import uuid
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from mesainterp.errors import ConfigError

__all__ = [
    "CircuitsVisHTML",
    "attention_heads",
    "circuitsvis_js",
    "script_safe_js",
    "script_safe_json",
]

_SCRIPT_END = re.compile(r"</(script)", re.IGNORECASE)
_COMMENT_OPEN = re.compile(r"<!--")
_SOURCE_MAP = re.compile(r"^//# sourceMappingURL=.*$", re.MULTILINE)
_JSON_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def script_safe_json(value: Any) -> str:
    """JSON that is also safe inside an HTML <script> element."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    for raw, escaped in _JSON_ESCAPES.items():
        text = text.replace(raw, escaped)
    return text


def script_safe_js(source: str) -> str:
    """Library JavaScript made safe to inline: no `</script` or `<!--` left, no
    source-map comment (a browser with devtools open would go and fetch it)."""
    source = _SOURCE_MAP.sub("", source)
    source = _SCRIPT_END.sub(r"<\\/\1", source)
    return _COMMENT_OPEN.sub(r"<\\!--", source)


@cache
def circuitsvis_js() -> str:
    """The circuitsvis browser bundle shipped in the installed wheel, script-safe."""
    bundle = resources.files("circuitsvis").joinpath("dist", "cdn", "iife.js")
    try:
        source = bundle.read_text(encoding="utf-8")
    except FileNotFoundError as err:  # pragma: no cover - depends on the installed wheel
        raise ConfigError(
            "circuitsvis", "the installed wheel has no dist/cdn/iife.js bundle"
        ) from err
    return script_safe_js(source)


@dataclass(frozen=True, kw_only=True)
class CircuitsVisHTML:
    """A circuitsvis component with its props; renders to offline HTML.

    `fragment()` is a <div> plus the script that renders into it (with the
    bundle inlined unless `include_js=False`, for pages that load it once);
    `page()` is a complete HTML document. Notebooks render it via `_repr_html_`.
    """

    component: str
    props: dict[str, Any]
    element_id: str = field(default_factory=lambda: "cv-" + uuid.uuid4().hex[:12])

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", self.component):
            raise ConfigError("component", f"not a circuitsvis component name: {self.component!r}")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", self.element_id):
            raise ConfigError("element_id", f"not a safe HTML id: {self.element_id!r}")

    def render_script(self) -> str:
        """The JavaScript that draws this component (needs the bundle loaded)."""
        return (
            f'CircuitsVis.render("{self.element_id}", CircuitsVis.{self.component}, '
            f"{script_safe_json(self.props)});"
        )

    def fragment(self, *, include_js: bool = True) -> str:
        bundle = f"<script>{circuitsvis_js()}</script>\n" if include_js else ""
        return (
            f'<div id="{self.element_id}" class="circuitsvis" style="margin: 15px 0;"></div>\n'
            f"{bundle}<script>{self.render_script()}</script>"
        )

    def page(self, *, title: str = "Attention") -> str:
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title></head>\n<body>\n"
            f"{self.fragment()}\n</body></html>\n"
        )

    def _repr_html_(self) -> str:
        return self.fragment()

    def __html__(self) -> str:
        return self.fragment()


def attention_heads(
    attention: Float[Tensor, "head query key"] | np.ndarray,
    tokens: list[str],
    *,
    head_names: list[str] | None = None,
    mask_upper_tri: bool = True,
    max_value: float | None = None,
) -> CircuitsVisHTML:
    """circuitsvis AttentionHeads for one example: `attention` is [head, query, key]."""
    pattern = (
        attention.detach().float().cpu().numpy()
        if isinstance(attention, torch.Tensor)
        else np.asarray(attention, dtype=float)
    )
    if pattern.ndim != 3 or pattern.shape[1] != pattern.shape[2]:
        raise ConfigError(
            "attention",
            f"needs shape [head, query, key] with query == key, got {tuple(pattern.shape)}",
        )
    if len(tokens) != pattern.shape[1]:
        raise ConfigError(
            "tokens",
            f"needs one token per position: {len(tokens)} tokens, {pattern.shape[1]} positions",
        )
    if not np.isfinite(pattern).all():
        raise ConfigError("attention", "contains NaN or infinite values")
    if head_names is not None and len(head_names) != pattern.shape[0]:
        raise ConfigError(
            "head_names",
            f"needs one name per head: {len(head_names)} names, {pattern.shape[0]} heads",
        )
    props: dict[str, Any] = {
        "attention": np.round(pattern, 5).tolist(),
        "tokens": [str(t) for t in tokens],
        "maskUpperTri": bool(mask_upper_tri),
    }
    if head_names is not None:
        props["attentionHeadNames"] = [str(n) for n in head_names]
    if max_value is not None:
        props["maxValue"] = float(max_value)
    return CircuitsVisHTML(component="AttentionHeads", props=props)
