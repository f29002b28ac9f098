"""circuitsvis offline rendering, escaping, static export, and no global plotting state."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from mesainterp.errors import ConfigError
from mesainterp.viz import attention_heads, save_static, to_png, to_svg, tree_figure
from mesainterp.viz.attention import circuitsvis_js, script_safe_js, script_safe_json
from tests.unit.report._example import HOSTILE_TOKENS


def _pattern(n: int, heads: int = 2) -> torch.Tensor:
    return torch.softmax(torch.randn(heads, n, n, generator=torch.Generator().manual_seed(0)), -1)


def test_props_cannot_end_the_script_element():
    view = attention_heads(_pattern(len(HOSTILE_TOKENS)), HOSTILE_TOKENS)
    script = view.render_script()
    assert "</" not in script and "<!--" not in script and "\u2028" not in script
    props = json.loads(script[script.index("{") : script.rindex(")")])
    assert props["tokens"] == HOSTILE_TOKENS  # escaping is lossless


def test_fragment_has_balanced_scripts_and_no_remote_source():
    page = attention_heads(_pattern(len(HOSTILE_TOKENS)), HOSTILE_TOKENS).page()
    # Inside a script element only "</script" ends it (and "<!--" could change how
    # the parser reads it); neither may appear except as the real end tags.
    assert page.count("</script>") == 2  # bundle + render call
    assert len(re.findall("</script", page, re.IGNORECASE)) == 2 and "<!--" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "unpkg" not in page and "sourceMappingURL" not in page
    assert "CircuitsVis.render(" in page and "CircuitsVis.AttentionHeads" in page


def test_bundle_is_the_installed_wheel_made_script_safe():
    js = circuitsvis_js()
    assert "var CircuitsVis" in js[:200]
    assert not re.search("</script", js, re.IGNORECASE)
    assert script_safe_js('a="</script>";b="</SCRIPT>"') == 'a="<\\/script>";b="<\\/SCRIPT>"'
    assert script_safe_json("</script>&") == '"\\u003c/script\\u003e\\u0026"'


def test_attention_refuses_mismatched_inputs():
    with pytest.raises(ConfigError, match="one token per position"):
        attention_heads(_pattern(3), ["a", "b"])
    with pytest.raises(ConfigError, match="head, query, key"):
        attention_heads(np.ones((3, 3)), ["a", "b", "c"])
    with pytest.raises(ConfigError, match="one name per head"):
        attention_heads(_pattern(2), ["a", "b"], head_names=["x"])


def test_static_export_is_deterministic(tmp_path):
    fig = tree_figure([(0, 1), (0, 2)], root=0, goal=2)
    svg = to_svg(fig)
    assert svg.startswith("<svg") and svg == to_svg(fig)
    assert to_png(fig)[:8] == b"\x89PNG\r\n\x1a\n"
    paths = save_static(fig, tmp_path / "sub" / "tree")
    assert [p.suffix for p in paths] == [".png", ".svg", ".pdf"]
    again = save_static(fig, tmp_path / "again" / "tree", formats=("svg", "pdf"))
    assert (
        again[0].read_bytes() == paths[1].read_bytes()
        and again[1].read_bytes() == paths[2].read_bytes()
    )
    with pytest.raises(ConfigError, match="formats"):
        save_static(fig, tmp_path / "x", formats=("gif",))


NO_GLOBAL_STATE = """
import sys, matplotlib
before = dict(matplotlib.rcParams)
from tests.unit.report._example import write_example_run
from mesainterp.report import build_report
import tempfile
run = write_example_run(tempfile.mkdtemp())
build_report(run, interactive=False)
assert "matplotlib.pyplot" not in sys.modules, "pyplot was imported"
changed = [k for k, v in matplotlib.rcParams.items() if before.get(k) != v]
assert not changed, changed
print("ok")
"""


def test_figures_touch_no_pyplot_and_no_global_theme():
    result = subprocess.run(
        [sys.executable, "-c", NO_GLOBAL_STATE], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
