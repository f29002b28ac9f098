"""Every import in the package follows the layer order written in docs/ARCHITECTURE.md.

The order is parsed from the document itself, so the page and the code cannot drift:
a module may import from its own stage and the stages listed before it, never from
a later one. Imports inside functions and under `TYPE_CHECKING` count too: a lazy
import is still a dependency. The top-level `mesainterp/__init__.py` is the curated
public API and may import from any stage.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "mesainterp"
DOC = ROOT / "docs" / "ARCHITECTURE.md"
TOP = "__init__"  # the public API: above every stage

# Imports against the order in files this change could not edit, each with its reason.
# Remove an entry when its file is fixed; a stale entry fails the test below.
ALLOWED: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Violation:
    module: str
    line: int
    imported: str
    stage: str
    imported_stage: str

    def __str__(self) -> str:
        return (
            f"{self.module}:{self.line} imports {self.imported} ({self.imported_stage}/),"
            f" a later stage than its own ({self.stage}/)"
        )


def parse_layer_order(text: str) -> list[str]:
    """The stage names of the first code block under '## Layer order', top to bottom:
    `tasks/` gives 'tasks', `errors.py` gives 'errors'."""
    section = re.search(r"^## Layer order\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    if section is None:
        raise AssertionError("docs/ARCHITECTURE.md has no '## Layer order' section")
    block = re.search(r"^```[^\n]*\n(.*?)^```", section.group(1), re.M | re.S)
    if block is None:
        raise AssertionError("the '## Layer order' section has no code block")
    stages = []
    for line in block.group(1).splitlines():
        if not line.strip():
            continue
        token = line.split()[0]
        name = token.removesuffix("/").removesuffix(".py")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise AssertionError(f"layer order: cannot read a stage from {line!r}")
        stages.append(name)
    if len(set(stages)) != len(stages):
        raise AssertionError(f"layer order: a stage is listed twice: {stages}")
    return stages


def stage_of(module: str) -> str:
    """'mesainterp.zoo.loader' -> 'zoo'; 'mesainterp.errors' -> 'errors'; 'mesainterp' -> TOP."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else TOP


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    # A package's own __init__ counts as inside it; a module's base is its package.
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports_of(
    module: str, source: str, modules: set[str], *, is_package: bool = False
) -> list[tuple[int, str]]:
    """(line, imported mesainterp module) for every import anywhere in `source`.

    `from mesainterp import zoo` imports the module mesainterp.zoo when one exists
    (in `modules`), else the name from the top-level package.
    """
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, is_package, node)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.append((node.lineno, sub if sub in modules else target))
    # One entry per (line, module): `from m import a, b` is one import of m.
    return sorted({(line, name) for line, name in found if name.split(".")[0] == "mesainterp"})


def violations(
    sources: Mapping[str, str], order: list[str], *, packages: frozenset[str] = frozenset()
) -> tuple[list[Violation], list[str]]:
    """(imports against `order`, modules in no stage) for {module name: source}.

    `packages` names the modules that are a package's `__init__`.
    """
    rank = {stage: i for i, stage in enumerate(order)} | {TOP: len(order)}
    modules = set(sources)
    bad: list[Violation] = []
    unplaced = sorted(m for m in modules if stage_of(m) not in rank)
    for module, source in sorted(sources.items()):
        stage = stage_of(module)
        if stage not in rank:
            continue
        for line, imported in imports_of(module, source, modules, is_package=module in packages):
            target = stage_of(imported)
            if target not in rank:
                unplaced.append(f"{imported} (imported by {module})")
            elif rank[target] > rank[stage]:
                bad.append(Violation(module, line, imported, stage, target))
    return bad, unplaced


def _package_sources() -> tuple[dict[str, str], frozenset[str]]:
    sources: dict[str, str] = {}
    packages = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
            packages.add(".".join(parts))
        sources[".".join(parts)] = path.read_text(encoding="utf-8")
    return sources, frozenset(packages)


ORDER = parse_layer_order(DOC.read_text(encoding="utf-8"))


def test_every_import_follows_the_documented_layer_order() -> None:
    sources, packages = _package_sources()
    bad, unplaced = violations(sources, ORDER, packages=packages)
    assert not unplaced, f"modules in no stage of docs/ARCHITECTURE.md: {unplaced}"
    unexpected = [v for v in bad if (v.module, v.imported) not in ALLOWED]
    assert not unexpected, "imports against the layer order:\n" + "\n".join(map(str, unexpected))
    stale = set(ALLOWED) - {(v.module, v.imported) for v in bad}
    assert not stale, f"allowlist entries that no longer apply (remove them): {sorted(stale)}"


def test_the_doc_lists_every_stage_of_the_package() -> None:
    on_disk = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    on_disk |= {p.stem for p in PACKAGE.glob("*.py")} - {TOP}
    assert on_disk <= set(ORDER), f"not in docs/ARCHITECTURE.md: {sorted(on_disk - set(ORDER))}"


# The checker itself, on small fake packages: it must see what it is meant to see.

FAKE_ORDER = ["errors", "model", "patching", "report", "cli"]


def _check(sources: dict[str, str], packages: frozenset[str] = frozenset()) -> list[str]:
    base = {"mesainterp": "", "mesainterp.errors": "", "mesainterp.report.html": "",
            "mesainterp.cli.main": "", "mesainterp.model.build": ""}  # fmt: skip
    bad, unplaced = violations(base | sources, FAKE_ORDER, packages=packages)
    assert not unplaced
    return [f"{v.module}->{v.imported_stage}" for v in bad]


@pytest.mark.parametrize(
    "source",
    [
        "from mesainterp.report.html import page",
        "import mesainterp.report.html",
        "def draw():\n    from mesainterp.report.html import page\n    return page",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from mesainterp.cli.main import x",
        "from mesainterp import report",
        "from mesainterp import load_model",  # a name of the top-level package
        "from ..report import html",
    ],
)
def test_the_checker_catches_an_upward_import(source: str) -> None:
    assert len(_check({"mesainterp.patching.engine": source})) == 1


@pytest.mark.parametrize(
    "source",
    [
        "from mesainterp.model.build import build_model",
        "from mesainterp.errors import ConfigError",
        "from mesainterp.patching import engine",  # its own stage
        "from . import engine",
        "from ..model import build",
        "import torch\nfrom torch import nn",
    ],
)
def test_the_checker_accepts_imports_from_earlier_stages(source: str) -> None:
    assert _check({"mesainterp.patching.engine": source}) == []


def test_a_package_init_resolves_relative_imports_inside_itself() -> None:
    packages = frozenset({"mesainterp.patching"})
    assert _check({"mesainterp.patching": "from .engine import run"}, packages) == []
    assert _check({"mesainterp.patching": "from ..cli import main"}, packages) == [
        "mesainterp.patching->cli"
    ]


def test_the_checker_reports_a_module_in_no_stage() -> None:
    _, unplaced = violations({"mesainterp.newpkg.x": ""}, FAKE_ORDER)
    assert unplaced == ["mesainterp.newpkg.x"]


def test_the_order_is_read_from_the_doc() -> None:
    doc = "# A\n\n## Layer order\n\n```\ntasks/   gen\nerrors.py  e\n\nmodel/\n```\n\n## B\n```\nx/\n```"
    assert parse_layer_order(doc) == ["tasks", "errors", "model"]
    with pytest.raises(AssertionError, match="twice"):
        parse_layer_order("## Layer order\n```\nmodel/\nmodel/\n```\n")
    assert ORDER.index("tasks") < ORDER.index("prompts") < ORDER.index("model")
    assert ORDER.index("runs") < ORDER.index("demo") < ORDER.index("cli")
