"""The report in a real headless Chromium: nothing leaves the machine, nothing
errors, no token runs as script, and the page visibly shows its figures."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mesainterp.report import build_report
from mesainterp.viz import attention_heads
from tests.unit.report._example import HOSTILE_TOKENS, write_example_run

pytestmark = pytest.mark.browser

PWNED = "window.__pwned === undefined ? null : window.__pwned"
RENDERED_PLOTS = "document.querySelectorAll('.plotly-graph-div .main-svg').length"
PLOT_DIVS = "document.querySelectorAll('.plotly-graph-div').length"
CIRCUITSVIS_CHILDREN = (
    "Array.from(document.querySelectorAll('.circuitsvis')).map(e => e.childElementCount)"
)
INJECTED = (
    "[document.scripts.length, document.querySelectorAll('img, iframe, object, embed').length]"
)
PAINTED_CANVAS = """Array.from(document.querySelectorAll('canvas')).map(c => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; })"""


def _pixel_std(png: bytes) -> float:
    image = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)
    return float(image.std())


@pytest.fixture(scope="module")
def example_run(tmp_path_factory) -> Path:
    return write_example_run(tmp_path_factory.mktemp("browser") / "run")


@pytest.mark.parametrize("interactive", [True, False], ids=["interactive", "static"])
def test_report_loads_offline_without_errors(example_run, browser_page, interactive, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(build_report(example_run, interactive=interactive), encoding="utf-8")
    report = browser_page(
        page,
        expressions={
            "pwned": PWNED,
            "plots": RENDERED_PLOTS,
            "plot_divs": PLOT_DIVS,
            "circuitsvis": CIRCUITSVIS_CHILDREN,
            "svgs": "document.querySelectorAll('.figure > svg').length",
        },
    )
    (tmp_path / "screenshot.png").write_bytes(report.screenshot)
    assert report.requests, "no request was recorded at all: the listener is not working"
    assert report.remote_requests == []
    assert report.console_errors == []
    assert report.values["pwned"] is None
    assert report.values["circuitsvis"] == [1]  # the attention view rendered its root
    if interactive:
        assert report.values["plot_divs"] >= 6
        assert report.values["plots"] >= report.values["plot_divs"]  # every plot drew its SVG
    else:
        assert report.values["plot_divs"] == 0 and report.values["svgs"] >= 6
    assert _pixel_std(report.screenshot) > 20  # not blank: figures, text and colour


def test_hostile_tokens_never_become_markup(browser_page, tmp_path):
    rng = np.random.default_rng(0)
    n = len(HOSTILE_TOKENS)
    pattern = rng.random((2, n, n))
    pattern /= pattern.sum(-1, keepdims=True)
    page = tmp_path / "attention.html"
    page.write_text(attention_heads(pattern, HOSTILE_TOKENS).page(), encoding="utf-8")
    report = browser_page(
        page, expressions={"pwned": PWNED, "injected": INJECTED, "canvas": PAINTED_CANVAS}
    )
    (tmp_path / "attention.png").write_bytes(report.screenshot)
    assert report.values["pwned"] is None
    assert report.remote_requests == []  # the <img src=https://...> token never became an element
    assert report.console_errors == []
    assert report.values["injected"] == [2, 0]  # our two scripts, no element made from a token
    assert all(painted > 0 for painted in report.values["canvas"])
    assert _pixel_std(report.screenshot) > 5


def test_a_remote_request_would_be_caught(browser_page, tmp_path):
    """The detector itself: a page that does fetch is reported (the host does not resolve)."""
    page = tmp_path / "leaky.html"
    page.write_text(
        '<!DOCTYPE html><html><body><img src="https://example.invalid/pixel.png"></body></html>'
    )
    report = browser_page(page, settle_s=1.0)
    assert report.remote_requests == ["https://example.invalid/pixel.png"]
