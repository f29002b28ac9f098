"""Importing the package has no side effects; the CLI speaks clearly."""

import json
import os
import subprocess
import sys

import mesainterp

CLEAN_IMPORT = """
import os, sys, socket
def refuse(*a, **k):
    raise RuntimeError("network access at import")
socket.socket.connect = refuse
before = set(os.listdir('.'))
argv = list(sys.argv)
hook = sys.excepthook
import mesainterp, mesainterp.cli.main
import matplotlib
assert set(os.listdir('.')) == before, 'files written'
assert sys.argv == argv and sys.excepthook is hook
print('ok')
"""


def test_import_has_no_side_effects(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", CLEAN_IMPORT], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    assert list(tmp_path.iterdir()) == []


def test_public_api_is_curated():
    assert "build_model" in mesainterp.__all__
    for name in mesainterp.__all__:
        assert hasattr(mesainterp, name)


def _cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "mesainterp", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=os.environ | {"MESAINTERP_NO_PROGRESS": "1"},
    )


def test_cli_help_and_version():
    assert _cli("--help").returncode == 0
    version = _cli("--version")
    assert version.returncode == 0 and mesainterp.__version__ in version.stdout


def test_cli_bad_input_is_one_line_and_nonzero(tmp_path):
    result = _cli("info", str(tmp_path / "missing"))
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert "not a checkpoint directory" in result.stderr


def test_cli_json_output(tmp_path, tiny_model, tiny_config):
    from mesainterp.model import save_checkpoint

    digest = save_checkpoint(tiny_model, tmp_path / "m", config=tiny_config)
    result = _cli("--json", "info", str(tmp_path / "m"))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["fingerprint"] == digest
    assert data["model"]["n_layers"] == tiny_config.n_layers


def test_top_level_is_lazy_and_complete():
    code = (
        "import sys, mesainterp\n"
        "assert 'torch' not in sys.modules, 'torch loaded at import'\n"
        "for name in mesainterp.__all__: getattr(mesainterp, name)\n"
        "for name in mesainterp.SUBMODULES: getattr(mesainterp, name)\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_unknown_top_level_name_is_an_attribute_error():
    try:
        mesainterp.no_such_name  # noqa: B018
    except AttributeError as err:
        assert "no_such_name" in str(err)
    else:
        raise AssertionError("no error for an unknown name")


def test_no_package_attribute_hides_a_submodule():
    """`import mesainterp.discovery.acdc` must give the module, not a function of that name."""
    import importlib
    import pkgutil

    shadowed = []
    for info in pkgutil.walk_packages(mesainterp.__path__, "mesainterp."):
        if not info.ispkg or info.name.startswith("mesainterp.cli"):
            continue
        package = importlib.import_module(info.name)
        for sub in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{info.name}.{sub.name}")
            if getattr(package, sub.name) is not module:
                shadowed.append(f"{info.name}.{sub.name}")
    assert shadowed == []
