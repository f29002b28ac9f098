"""Static audit: no code path in the package can unpickle or evaluate text."""

from __future__ import annotations

import ast
from pathlib import Path

import mesainterp

PACKAGE = Path(mesainterp.__file__).parent

FORBIDDEN_MODULES = {
    "pickle",
    "cPickle",
    "dill",
    "cloudpickle",
    "joblib",
    "shelve",
    "marshal",
    "yaml",
}
# Builtins that run text as code (`model.eval()` is a method, not these).
FORBIDDEN_BUILTINS = {"eval", "exec", "__import__", "compile"}
FORBIDDEN_METHODS = {"read_pickle", "to_pickle", "unsafe_load", "full_load"}


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _problems(source: str, label: str) -> list[str]:
    tree = ast.parse(source, filename=label)
    out = []
    for node in ast.walk(tree):
        where = f"{label}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            out += [f"{where}: imports {n}" for n in names if n.split(".")[0] in FORBIDDEN_MODULES]
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in FORBIDDEN_BUILTINS:
            out.append(f"{where}: calls {func.id}")
        name = func.attr if isinstance(func, ast.Attribute) else ""
        if name in FORBIDDEN_METHODS:
            out.append(f"{where}: calls {name}")
        if name == "load" and isinstance(func, ast.Attribute):
            owner = getattr(func.value, "id", "")
            if owner == "torch":
                weights_only = _kw(node, "weights_only")
                if not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
                    out.append(f"{where}: torch.load without weights_only=True")
            if owner in ("np", "numpy"):
                allow = _kw(node, "allow_pickle")
                if not (isinstance(allow, ast.Constant) and allow.value is False):
                    out.append(f"{where}: np.load without allow_pickle=False")
    return out


def test_no_loader_can_run_code() -> None:
    problems = [
        p
        for path in sorted(PACKAGE.rglob("*.py"))
        for p in _problems(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE)))
    ]
    assert problems == []


def test_the_audit_catches_what_it_should() -> None:
    source = (
        "import pickle\nimport torch\nimport numpy as np\nimport pandas as pd\n"
        "torch.load('x')\ntorch.load('x', weights_only=True)\nnp.load('y')\n"
        "eval('1')\nmodel.eval()\npd.read_pickle('z')\n"
    )
    found = _problems(source, "probe.py")
    assert [f.split(": ", 1)[1] for f in found] == [
        "imports pickle",
        "torch.load without weights_only=True",
        "np.load without allow_pickle=False",
        "calls eval",
        "calls read_pickle",
    ]
