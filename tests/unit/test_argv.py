"""Library code never reads the process's argv: the command a result records is the
one `cli.main` parsed, passed down (docs/ARCHITECTURE.md). Only `cli/` and
`__main__.py` may touch `sys.argv`."""

from __future__ import annotations

import ast
from pathlib import Path

import mesainterp

PACKAGE = Path(mesainterp.__file__).parent
ALLOWED = ("cli/", "__main__.py")
ARGV = {"argv", "orig_argv"}


def argv_reads(source: str) -> list[int]:
    """Line numbers where `source` reads sys.argv / sys.orig_argv (under any alias of
    `sys`, or imported from it by name)."""
    tree = ast.parse(source)
    aliases = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
        if alias.name == "sys"
    }
    lines = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in ARGV
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
        ):
            lines.append(node.lineno)
        if isinstance(node, ast.ImportFrom) and node.module == "sys":
            lines += [node.lineno for alias in node.names if alias.name in ARGV]
    return sorted(lines)


def test_the_check_finds_every_way_of_reading_argv() -> None:
    source = (
        "import sys\nimport sys as s\nfrom sys import orig_argv\n"
        "a = sys.argv\nb = s.argv[1:]\n'sys.argv in a string is no read'\n"
    )
    assert argv_reads(source) == [3, 4, 5]
    assert argv_reads("import os\nargv = os.environ\n") == []


def test_no_library_module_reads_sys_argv() -> None:
    found = [
        f"{path.relative_to(PACKAGE).as_posix()}:{line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if not path.relative_to(PACKAGE).as_posix().startswith(ALLOWED)
        for line in argv_reads(path.read_text())
    ]
    assert found == [], f"sys.argv read outside cli/: {found}"
