"""Every third-party module the package, notebooks, benchmarks and tests import is
declared in pyproject.toml, in a group the code's users install, and every core
dependency is used.

An import is mapped to its distribution with `importlib.metadata.packages_distributions`
(`sklearn` is scikit-learn); a module not installed here is taken as its own
distribution name. A module that works only because some other package pulls it in
(IPython through jupyter, PIL through matplotlib) is refused: a resolver may drop it.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The pyproject groups each tree may import from ("core" is [project] dependencies).
# The package's Ray executor imports ray lazily, from the `distributed` extra; the test
# command installs dev, notebooks and distributed (Makefile).
TREES: dict[str, tuple[str, ...]] = {
    "mesainterp": ("core", "distributed"),
    "notebooks/src": ("core", "notebooks"),
    "benchmarks": ("core", "dev", "distributed"),
    "tests": ("core", "dev", "notebooks", "distributed"),
}
# Core dependencies the package needs without importing them, and why.
NOT_IMPORTED = {
    "circuitsvis": "its JavaScript bundle is read from the installed wheel",
    "muutils": "pinned below the version that breaks maze-dataset",
    "pyarrow": "pandas' Parquet engine",
}


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_groups(pyproject: Mapping[str, object]) -> dict[str, set[str]]:
    """Group -> the normalised distribution names it declares."""
    project = pyproject["project"]
    assert isinstance(project, dict)
    groups = {"core": project["dependencies"], **project.get("optional-dependencies", {})}
    pattern = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
    out = {}
    for group, requirements in groups.items():
        names = (pattern.match(r) for r in requirements)
        out[group] = {normalise(m.group()) for m in names if m is not None}
    return out


def imported_modules(source: str) -> set[str]:
    """The top-level names of the absolute imports in `source` (lazy ones included)."""
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.partition(".")[0])
    return out


def first_party(root: Path) -> set[str]:
    """This repository's own top-level modules, as seen from files under `root`."""
    siblings = {p.stem for p in root.glob("*.py")} | {p.name for p in root.iterdir() if p.is_dir()}
    # The circuits/ scripts, which the tests import to re-run them.
    scripts = {p.stem for p in (ROOT / "circuits").glob("*.py")}
    return {"mesainterp", "tests", "benchmarks", "notebooks"} | siblings | scripts


def undeclared(
    files: Iterable[tuple[str, str]],
    allowed: set[str],
    *,
    local: set[str],
    distributions: Mapping[str, list[str]],
) -> list[str]:
    """'module (distribution) in FILE' for every import of (name, source) `files` whose
    distribution is not among `allowed`."""
    found = []
    for name, source in files:
        for module in sorted(imported_modules(source)):
            if module in sys.stdlib_module_names or module in local:
                continue
            dists = [normalise(d) for d in distributions.get(module, [module])]
            if not allowed.intersection(dists):
                found.append(f"{module} ({dists[0]}) in {name}")
    return found


def _tree_files(tree: str) -> list[tuple[str, str]]:
    root = ROOT / tree
    paths = root.glob("*.py") if tree == "notebooks/src" else root.rglob("*.py")
    return [(p.relative_to(ROOT).as_posix(), p.read_text()) for p in sorted(paths)]


GROUPS = declared_groups(tomllib.loads((ROOT / "pyproject.toml").read_text()))
DISTRIBUTIONS = importlib.metadata.packages_distributions()


def test_every_import_is_declared_for_its_tree() -> None:
    problems = []
    for tree, groups in TREES.items():
        allowed = set().union(*(GROUPS[g] for g in groups))
        local = first_party(ROOT / tree)
        problems += [
            f"{p} (declare it in: {' or '.join(groups)})"
            for p in undeclared(
                _tree_files(tree), allowed, local=local, distributions=DISTRIBUTIONS
            )
        ]
    assert not problems, "undeclared imports:\n" + "\n".join(problems)


def test_every_core_dependency_is_imported_by_the_package() -> None:
    used = set()
    for _, source in _tree_files("mesainterp"):
        for module in imported_modules(source):
            used |= {normalise(d) for d in DISTRIBUTIONS.get(module, [module])}
    unused = GROUPS["core"] - used - set(NOT_IMPORTED)
    assert unused == set(), f"declared in [project] dependencies, never imported: {unused}"


def test_an_undeclared_import_is_found() -> None:
    """The check on a synthetic tree: an import provided only transitively, one not
    installed at all, and the allowed kinds (stdlib, first-party, declared, relative)."""
    source = (
        "import os\nimport numpy as np\nfrom . import sibling\nimport _helper\n"
        "from mesainterp.stats import bootstrap\nfrom PIL import Image\n"
        "def lazy():\n    import not_a_real_distribution_xyz\n"
    )
    found = undeclared(
        [("synthetic.py", source)],
        GROUPS["core"],
        local={"mesainterp", "_helper"},
        distributions={**DISTRIBUTIONS, "PIL": ["Pillow"]},
    )
    assert found == [
        "PIL (pillow) in synthetic.py",
        "not_a_real_distribution_xyz (not-a-real-distribution-xyz) in synthetic.py",
    ]
